//! The UEFI MM protocol handler, shaped like coconut-svsm's kernel/src/protocols/uefivars.rs:
//! one store behind one lock, protocol 4 call 1 dispatched with the guest's RCX/RDX, the core
//! protocol's QUERY_PROTOCOL routed here for protocol 4, and (for a trapped-MMIO transport,
//! e.g. the L1 VMM of TDX partitioning) the uefi-vars register block. The checks of the
//! request itself live in the object; this layer only maps its RAX to a result.
use crate::ffi;
use crate::platform::Host;
use crate::stack::on_request_stack;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};

pub const SVSM_CORE_PROTOCOL: u32 = 0;
pub const SVSM_CORE_QUERY_PROTOCOL: u32 = 6;
pub const SVSM_UEFI_MM_PROTOCOL: u32 = 4;
pub const SVSM_UEFI_MM_REQUEST: u32 = 1;

/// coconut's RequestParams: the guest's RCX, RDX, R8 in, RCX (etc.) out.
#[derive(Clone, Copy, Default)]
pub struct RequestParams {
    pub rcx: u64,
    pub rdx: u64,
    pub r8: u64,
}

/// SVSM result codes (AMD 58019 / coconut protocols/errors.rs).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SvsmResultCode(pub u64);
impl SvsmResultCode {
    pub const SUCCESS: Self = Self(0);
    pub const UNSUPPORTED_PROTOCOL: Self = Self(0x8000_0001);
    pub const UNSUPPORTED_CALL: Self = Self(0x8000_0002);
    pub const INVALID_ADDRESS: Self = Self(0x8000_0003);
    pub const INVALID_PARAMETER: Self = Self(0x8000_0005);
    pub const INVALID_REQUEST: Self = Self(0x8000_0006);
    pub const BUSY: Self = Self(0x8000_0007);
}

/// A spin lock around the store, as coconut's `SpinLock<EfiVarStore>`.
pub struct Locked<T> {
    taken: AtomicBool,
    value: UnsafeCell<T>,
}
unsafe impl<T> Sync for Locked<T> {}
impl<T> Locked<T> {
    pub const fn new(value: T) -> Self {
        Locked { taken: AtomicBool::new(false), value: UnsafeCell::new(value) }
    }
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        while self.taken.swap(true, Ordering::Acquire) {
            core::hint::spin_loop();
        }
        let r = f(unsafe { &mut *self.value.get() });
        self.taken.store(false, Ordering::Release);
        r
    }
}

/// The service: the object's store and the platform it was created with (the platform
/// struct must outlive the store: the object keeps its callbacks).
pub struct UefiMm {
    store: *mut ffi::Varstore,
    _platform: *mut ffi::Platform,
}

impl UefiMm {
    /// varstore_create on the request stack; the error code on failure.
    pub fn create(config: &ffi::Config, host: &mut Host) -> Result<UefiMm, i32> {
        let platform = crate::boxed(host.platform());
        let mut error: i32 = -1;
        let store = on_request_stack(|| unsafe { ffi::varstore_create(config, platform, &mut error) });
        if store.is_null() { Err(error) } else { Ok(UefiMm { store, _platform: platform }) }
    }

    /// One SVSM call as the request loop sees it: RAX selects protocol and call.
    pub fn request(&self, rax: u64, params: &mut RequestParams) -> SvsmResultCode {
        let protocol = (rax >> 32) as u32;
        let call = rax as u32;
        let result = match protocol {
            SVSM_CORE_PROTOCOL if call == SVSM_CORE_QUERY_PROTOCOL => self.query_protocol(params),
            SVSM_UEFI_MM_PROTOCOL => self.uefi_mm_protocol_request(call, params),
            _ => Err(SvsmResultCode::UNSUPPORTED_PROTOCOL),
        };
        match result {
            Ok(()) => SvsmResultCode::SUCCESS,
            Err(code) => code,
        }
    }

    /// coconut's uefi_mm_protocol_request: call 1 is the MM request; the object checks the
    /// buffer (address, alignment, 24 ≤ RDX ≤ 256 KiB, MessageLength) and copies it once.
    pub fn uefi_mm_protocol_request(&self, call: u32, params: &mut RequestParams) -> Result<(), SvsmResultCode> {
        let rax = (SVSM_UEFI_MM_PROTOCOL as u64) << 32 | call as u64;
        let code = self.raw_call(rax, params);
        if code == SvsmResultCode::SUCCESS { Ok(()) } else { Err(code) }
    }

    /// The core protocol's QUERY_PROTOCOL, routed here when it asks about protocol 4.
    pub fn query_protocol(&self, params: &mut RequestParams) -> Result<(), SvsmResultCode> {
        if (params.rcx >> 32) as u32 != SVSM_UEFI_MM_PROTOCOL {
            params.rcx = 0;
            return Ok(());
        }
        let code = self.raw_call(SVSM_CORE_QUERY_PROTOCOL as u64, params);
        if code == SvsmResultCode::SUCCESS { Ok(()) } else { Err(code) }
    }

    fn raw_call(&self, rax: u64, params: &mut RequestParams) -> SvsmResultCode {
        let store = self.store;
        let mut rcx = params.rcx;
        let (rdx, r8) = (params.rdx, params.r8);
        let rax = STORE_LOCK.with(|_| on_request_stack(|| unsafe { ffi::varstore_svsm_call(store, rax, &mut rcx, rdx, r8) }));
        params.rcx = rcx;
        SvsmResultCode(rax)
    }

    /// A trapped read of the uefi-vars register block (offset from its base).
    pub fn mmio_read(&self, offset: u64, size: u32) -> u64 {
        let store = self.store;
        STORE_LOCK.with(|_| on_request_stack(|| unsafe { ffi::varstore_mmio_read(store, offset, size) }))
    }

    pub fn mmio_write(&self, offset: u64, size: u32, value: u64) {
        let store = self.store;
        STORE_LOCK.with(|_| on_request_stack(|| unsafe { ffi::varstore_mmio_write(store, offset, size, value) }))
    }

    /// The attestation manifest (version 0: coconut's 8 bytes; 1: 48 bytes).
    pub fn manifest(&self, version: u32, out: &mut [u8]) -> usize {
        let store = self.store;
        STORE_LOCK.with(|_| on_request_stack(|| unsafe { ffi::varstore_manifest(store, version, out.as_mut_ptr(), out.len()) }))
    }

    pub fn destroy(self) {
        let store = self.store;
        on_request_stack(|| unsafe { ffi::varstore_destroy(store) });
        crate::unboxed(self._platform);
    }
}

static STORE_LOCK: Locked<()> = Locked::new(());
