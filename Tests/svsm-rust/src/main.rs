//! Drives the embedded object through the Rust caller (lib.rs) and measures what an SVSM
//! integrator needs: heap peaks, the arena rule, stack depth. Each scenario runs in a child
//! process with a fresh arena, so libcrypto's one-time state is charged to every figure.
//!
//!   svsm-rust [--image IMAGE KEYFILE] [--secureboot IMAGE KEYFILE DBX-AUTH] [--replay TRACE...]
#![no_std]
#![no_main]

use core::ffi::{c_char, c_int, CStr};
use svsm_uefivars::edk2::{self, *};
use svsm_uefivars::platform::{Flash, Host, Page, PAGE};
use svsm_uefivars::sys::{self, Exit, Region};
use svsm_uefivars::uefivars::{RequestParams, SvsmResultCode as R, UefiMm};
use svsm_uefivars::{arena, env, errln, ffi, outln, stack};

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    errln!("svsm-rust: panic: {}", info);
    sys::fatal("panic")
}

/// The prebuilt libcore refers to it; with panic = "abort" nothing unwinds, so it is never called.
#[no_mangle]
pub extern "C" fn rust_eh_personality() {}

/// The object's environment, referenced from here so the link takes it from this program
/// before the object's archive is scanned (and never from libc or compiler_builtins).
struct Table<const N: usize>([*const (); N]);
unsafe impl<const N: usize> core::marker::Sync for Table<N> {}
#[used]
static ENVIRONMENT: Table<25> = Table([
    env::posix_memalign as *const (), env::free as *const (), env::memset as *const (), env::memcpy as *const (),
    env::memmove as *const (), env::memcmp as *const (), env::arc4random_buf as *const (), env::__stack_chk_fail as *const (),
    core::ptr::addr_of!(env::__stack_chk_guard) as *const (),
    env::__adddf3 as *const (), env::__subdf3 as *const (), env::__muldf3 as *const (), env::__divdf3 as *const (),
    env::__eqdf2 as *const (), env::__nedf2 as *const (), env::__ltdf2 as *const (), env::__ledf2 as *const (),
    env::__gtdf2 as *const (), env::__gedf2 as *const (), env::__unorddf2 as *const (), env::__floatdidf as *const (),
    env::__floatundidf as *const (), env::__fixdfdi as *const (), env::__fixunsdfdi as *const (), env::ceil as *const (),
]);

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;
/// The request stack each scenario gets (the depth actually used is measured and printed).
const REQUEST_STACK: usize = 256 * KIB;

/// Guest-physical layout: the MM buffer (64 KiB, page-aligned, as VirtMmCommunicationDxe
/// allocates it), a second buffer for the device's DMA, a hole, read-only pages.
const BUFFER: u64 = 0x10_0000;
const DMA_BUFFER: u64 = 0x14_0000;
const HOLE: u64 = 0x20_0000;
const READ_ONLY: u64 = 0x30_0000;
const MM_REQUEST: u64 = (4 << 32) | 1;

static mut FAILURES: u32 = 0;
fn check(ok: bool, what: &str) {
    if !ok {
        errln!("svsm-rust: FAILED: {}", what);
        unsafe { FAILURES += 1 };
    }
}
fn failures() -> u32 {
    unsafe { FAILURES }
}

fn guest_host() -> Host {
    let mut host = Host::new();
    host.guest.set(HOLE, 16, Page::Hole);
    host.guest.set(READ_ONLY, 16, Page::ReadOnly);
    host
}

/// Sends the message at BUFFER through protocol 4 call 1, RDX = 64 KiB; returns RAX.
fn mm(service: &UefiMm, gpa: u64) -> R {
    let mut params = RequestParams { rcx: gpa, rdx: MAX_BUFFER_SIZE as u64, r8: 0 };
    service.request(MM_REQUEST, &mut params)
}

fn buffer(host: &Host) -> &mut [u8] {
    host.guest.bytes(BUFFER, MAX_BUFFER_SIZE)
}

fn set(service: &UefiMm, host: &Host, guid: &[u8; 16], name: &[u8], attributes: u32, data: &[u8]) -> u64 {
    edk2::set_variable(buffer(host), guid, name, attributes, data);
    let rax = mm(service, BUFFER);
    check(rax == R::SUCCESS, "SetVariable: SVSM status");
    edk2::status(buffer(host))
}

/// "prefix" followed by the decimal `n`.
fn numbered<'a>(out: &'a mut [u8; 24], prefix: &[u8], n: usize) -> &'a [u8] {
    out[..prefix.len()].copy_from_slice(prefix);
    let mut digits = [0u8; 10];
    let mut len = 0;
    let mut v = n;
    loop {
        digits[len] = b'0' + (v % 10) as u8;
        len += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for i in 0..len {
        out[prefix.len() + i] = digits[len - 1 - i];
    }
    &out[..prefix.len() + len]
}

/// SetVariable until the store refuses; returns how many were stored.
fn fill(service: &UefiMm, host: &Host, prefix: &[u8], attributes: u32, data: &[u8]) -> usize {
    let mut name = [0u8; 24];
    for i in 0.. {
        let status = set(service, host, &TEST_VENDOR, numbered(&mut name, prefix, i), attributes, data);
        if status != EFI_SUCCESS {
            check(status == EFI_OUT_OF_RESOURCES, "a full store answers EFI_OUT_OF_RESOURCES");
            return i;
        }
    }
    0
}

/// The smallest variables the quota allows (a one-character name, one byte of data, a fresh
/// vendor GUID each): the most bookkeeping per byte of store. Returns how many were stored.
fn fill_smallest(service: &UefiMm, host: &Host, tag: u8, attributes: u32) -> usize {
    for i in 0.. {
        let mut guid = TEST_VENDOR;
        guid[0] = tag;
        guid[8..16].copy_from_slice(&(i as u64).to_le_bytes());
        let status = set(service, host, &guid, b"A", attributes, &[i as u8]);
        if status != EFI_SUCCESS {
            check(status == EFI_OUT_OF_RESOURCES, "a full store answers EFI_OUT_OF_RESOURCES");
            return i;
        }
    }
    0
}

/// GetNextVariableName from the start to NOT_FOUND; returns the count.
fn walk(service: &UefiMm, host: &Host) -> usize {
    let mut guid = [0u8; 16];
    let mut previous = [0u8; 1024];
    let mut previous_len = 2;
    let mut count = 0;
    loop {
        edk2::get_next_variable_name(buffer(host), &guid, &previous[..previous_len], 1024);
        check(mm(service, BUFFER) == R::SUCCESS, "GetNextVariableName: SVSM status");
        let b = buffer(host);
        match edk2::status(b) {
            EFI_SUCCESS => {}
            EFI_NOT_FOUND => return count,
            other => {
                errln!("svsm-rust: GetNextVariableName: status {:#x}", other);
                check(false, "GetNextVariableName walk");
                return count;
            }
        }
        let at = MM_HEADER + VARIABLE_HEADER;
        guid.copy_from_slice(&b[at..at + 16]);
        previous_len = get64(b, at + 16) as usize;
        previous[..previous_len].copy_from_slice(&b[at + NEXT_NAME..at + NEXT_NAME + previous_len]);
        count += 1;
    }
}

fn report_stack(what: &str) -> usize {
    let depth = stack::deepest();
    outln!("svsm-rust: stack: {}: deepest {} bytes", what, depth);
    stack::repaint();
    depth
}

// --- scenarios --------------------------------------------------------------------------------

/// Every call of the C ABI, in memory: QUERY_PROTOCOL, protocol 4 call 1 with edk2's layout,
/// the guest-memory refusals, the MMIO transport, the manifest, destroy.
fn calls() -> i32 {
    let mut host = guest_host();
    let service = match UefiMm::create(&ffi::Config::memory(), &mut host) {
        Ok(s) => s,
        Err(e) => {
            errln!("svsm-rust: varstore_create failed: {}", e);
            return 1;
        }
    };
    report_stack("varstore_create (memory)");

    // QUERY_PROTOCOL (protocol 0, call 6), routed to the service for protocol 4.
    let mut p = RequestParams { rcx: (4 << 32) | 1, ..Default::default() };
    check(service.request(6, &mut p) == R::SUCCESS && p.rcx == (1 << 32) | 1, "QUERY_PROTOCOL(4, 1) answers min = max = 1");
    let mut p = RequestParams { rcx: (4 << 32) | 2, ..Default::default() };
    check(service.request(6, &mut p) == R::SUCCESS && p.rcx == 0, "QUERY_PROTOCOL(4, 2) answers 0");
    let mut p = RequestParams { rcx: (2 << 32) | 1, ..Default::default() };
    check(service.request(6, &mut p) == R::SUCCESS && p.rcx == 0, "QUERY_PROTOCOL of another protocol answers 0");

    // GET_PAYLOAD_SIZE: RDX − 24 − 16, what VariableSmmRuntimeDxe sizes every request from.
    edk2::get_payload_size(buffer(&host));
    check(mm(&service, BUFFER) == R::SUCCESS && status(buffer(&host)) == EFI_SUCCESS, "GET_PAYLOAD_SIZE");
    let payload = get64(buffer(&host), MM_HEADER + VARIABLE_HEADER);
    check(payload == (MAX_BUFFER_SIZE - 40) as u64, "GET_PAYLOAD_SIZE answers 65496 for RDX = 64 KiB");

    // SetVariable, GetVariable (too small, then right), GetNextVariableName, QueryVariableInfo.
    let mut value = [0u8; 100];
    for (i, b) in value.iter_mut().enumerate() {
        *b = i as u8 ^ 0x5a;
    }
    check(set(&service, &host, &TEST_VENDOR, b"RustVar", NV | BS | RT, &value) == EFI_SUCCESS, "SetVariable RustVar");
    edk2::get_variable(buffer(&host), &TEST_VENDOR, b"RustVar", 0);
    check(mm(&service, BUFFER) == R::SUCCESS, "GetVariable: SVSM status");
    let at = MM_HEADER + VARIABLE_HEADER;
    check(status(buffer(&host)) == EFI_BUFFER_TOO_SMALL && get64(buffer(&host), at + 16) == 100, "GetVariable with DataSize 0: BUFFER_TOO_SMALL, 100");
    edk2::get_variable(buffer(&host), &TEST_VENDOR, b"RustVar", 100);
    check(mm(&service, BUFFER) == R::SUCCESS && status(buffer(&host)) == EFI_SUCCESS, "GetVariable RustVar");
    check(get32(buffer(&host), at + 32) == NV | BS | RT, "GetVariable: attributes");
    check(&buffer(&host)[at + ACCESS_NAME + 16..at + ACCESS_NAME + 116] == &value[..], "GetVariable: data");
    let found = walk(&service, &host);
    check(found >= 1, "GetNextVariableName finds RustVar");
    edk2::query_variable_info(buffer(&host), NV | BS | RT);
    check(mm(&service, BUFFER) == R::SUCCESS && status(buffer(&host)) == EFI_SUCCESS, "QueryVariableInfo");
    check(get64(buffer(&host), at) == 256 * KIB as u64, "QueryVariableInfo: 256 KiB of NV storage");
    report_stack("protocol 4 call 1 (GetVariable, SetVariable, GetNext, Query)");

    // What the object refuses, before it parses anything, and what this handler refuses.
    edk2::get_payload_size(buffer(&host));
    let mut p = RequestParams { rcx: 0, rdx: MAX_BUFFER_SIZE as u64, r8: 0 };
    check(service.request(MM_REQUEST, &mut p) == R::INVALID_PARAMETER, "RCX = 0: INVALID_PARAMETER");
    check(mm(&service, BUFFER + 8) == R::INVALID_ADDRESS, "a misaligned buffer: INVALID_ADDRESS");
    check(mm(&service, HOLE) == R::INVALID_ADDRESS, "a buffer in a hole: INVALID_ADDRESS");
    check(mm(&service, 64 * MIB as u64) == R::INVALID_ADDRESS, "a buffer beyond guest memory: INVALID_ADDRESS");
    let ro = host.guest.bytes(READ_ONLY, 4096);
    edk2::get_payload_size(ro);
    check(mm(&service, READ_ONLY) == R::INVALID_ADDRESS, "a read-only buffer: the reply cannot be written, INVALID_ADDRESS");
    // A message that runs into the hole: the buffer's last page is RAM, the next is not.
    let edge = HOLE - PAGE;
    let m = host.guest.bytes(edge, PAGE as usize);
    edk2::get_payload_size(m);
    put64(m, 16, 8000);
    check(mm(&service, edge) == R::INVALID_ADDRESS, "a message crossing into a hole: INVALID_ADDRESS");
    edk2::get_payload_size(m);
    check(mm(&service, edge) == R::SUCCESS, "a short message on the last page before a hole (RDX reaches into it)");
    for (rdx, what) in [(16u64, "RDX < 24: INVALID_PARAMETER"), (256 * KIB as u64 + 1, "RDX > 256 KiB: INVALID_PARAMETER")] {
        edk2::get_payload_size(buffer(&host));
        let mut p = RequestParams { rcx: BUFFER, rdx, r8: 0 };
        check(service.request(MM_REQUEST, &mut p) == R::INVALID_PARAMETER, what);
    }
    let mut p = RequestParams { rcx: BUFFER, rdx: MAX_BUFFER_SIZE as u64, r8: 0 };
    check(service.request((4 << 32) | 2, &mut p) == R::UNSUPPORTED_CALL, "protocol 4 call 2: UNSUPPORTED_CALL");
    check(service.request((5 << 32) | 1, &mut p) == R::UNSUPPORTED_PROTOCOL, "protocol 5: UNSUPPORTED_PROTOCOL");
    check(host.guest.refused > 0, "the guest-memory map refused accesses");

    // The uefi-vars registers, as an L1 VMM that traps the guest's MMIO would drive them.
    check(service.mmio_read(0, 2) == 0xEF1, "MMIO: magic");
    service.mmio_write(2, 2, 1); // RESET
    service.mmio_write(4, 4, MAX_BUFFER_SIZE as u64);
    service.mmio_write(8, 4, DMA_BUFFER & 0xffff_ffff);
    service.mmio_write(0xC, 4, DMA_BUFFER >> 32);
    let dma = host.guest.bytes(DMA_BUFFER, MAX_BUFFER_SIZE);
    edk2::set_variable(dma, &TEST_VENDOR, b"ViaMmio", NV | BS | RT, b"mmio");
    service.mmio_write(2, 2, 2); // DMA_MM
    check(service.mmio_read(2, 2) == 0 && status(dma) == EFI_SUCCESS, "MMIO SetVariable");
    edk2::get_variable(dma, &TEST_VENDOR, b"ViaMmio", 16);
    service.mmio_write(2, 2, 2);
    check(service.mmio_read(2, 2) == 0 && status(dma) == EFI_SUCCESS, "MMIO GetVariable");
    check(&dma[at + ACCESS_NAME + 16..at + ACCESS_NAME + 20] == b"mmio", "MMIO GetVariable: data");
    // The SVSM call sees what the device stored.
    edk2::get_variable(buffer(&host), &TEST_VENDOR, b"ViaMmio", 16);
    check(mm(&service, BUFFER) == R::SUCCESS && status(buffer(&host)) == EFI_SUCCESS, "the SVSM call reads the MMIO variable");
    report_stack("uefi-vars MMIO registers");

    let mut manifest = [0u8; 48];
    check(service.manifest(0, &mut manifest) == 8 && manifest[0] == 0 && manifest[4] == 4, "manifest v0: in memory, no PK, verified updates");
    check(service.manifest(1, &mut manifest) == 48 && manifest[0] == 1, "manifest v1: 48 bytes");
    check(service.manifest(0, &mut manifest[..7]) == 0, "manifest: a short buffer gives 0");

    service.destroy();
    // The first service leaves the runtime's one-time state (lazily built globals); a second
    // one, used and destroyed, must leave nothing more.
    let once = arena::stats().in_use;
    let again = UefiMm::create(&ffi::Config::memory(), &mut host).ok().unwrap();
    set(&again, &host, &TEST_VENDOR, b"Again", NV | BS | RT, &value);
    again.destroy();
    let s = arena::stats();
    outln!("svsm-rust: calls: after destroy {} bytes of one-time runtime state remain; a second service leaves {} more", once, s.in_use - once);
    check(s.in_use == once, "destroy returns every block the service allocated");
    environment_used()
}

/// The calls arrived at this program's environment, not libc's.
fn environment_used() -> i32 {
    let c = env::calls();
    outln!(
        "svsm-rust: environment calls: posix_memalign {}, free {}, memset {}, memcpy {}, memmove {}, memcmp {}, arc4random_buf {}, soft-float {}, ceil {}",
        c.posix_memalign, c.free, c.memset, c.memcpy, c.memmove, c.memcmp, c.arc4random_buf, c.soft_float, c.ceil
    );
    check(c.posix_memalign > 0 && c.free > 0 && c.memset > 0 && c.memmove > 0, "the object allocates and copies through this program");
    if failures() == 0 { 0 } else { 1 }
}

struct Image<'a> {
    path: &'a CStr,
    key: &'a CStr,
}

fn load(image: &Image) -> Option<(Flash, Region, usize)> {
    let (bytes, len) = sys::read_file(image.path.as_ptr())?;
    let (key, key_len) = sys::read_file(image.key.as_ptr())?;
    let flash = Flash::from(&bytes.bytes()[..len]);
    bytes.release();
    Some((flash, key, key_len))
}

fn keyslot_config(key: &Region, len: usize) -> ffi::Config {
    ffi::Config { key: key.base, key_length: len, key_kind: ffi::KEY_KEYSLOT, ..ffi::Config::memory() }
}

/// An encrypted image in the in-memory flash, opened with a keyslot secret; what is written
/// survives destroying and re-creating the service; a wrong secret is refused.
fn image(image: &Image) -> i32 {
    let Some((flash, key, key_len)) = load(image) else {
        errln!("svsm-rust: cannot read {:?} or {:?}", image.path, image.key);
        return 2;
    };
    let mut host = guest_host();
    host.flash = Some(flash);
    let config = keyslot_config(&key, key_len);
    let before = arena::stats().in_use;
    arena::reset_peak();
    let Ok(service) = UefiMm::create(&config, &mut host) else {
        errln!("svsm-rust: the image does not open");
        return 1;
    };
    let s = arena::stats();
    outln!("svsm-rust: image: opened ({} bytes of flash): {} bytes held, peak {} during the open ({} of it libcrypto)",
        host.flash.as_ref().unwrap().size, s.in_use - before, s.peak - before, s.libcrypto_peak);
    report_stack("varstore_create (image, keyslot: LUKS2 header, PBKDF2, log replay)");
    let mut manifest = [0u8; 8];
    check(service.manifest(0, &mut manifest) == 8 && manifest[4] & 1 == 1, "manifest: persistent_nv_vars");
    let writes = host.flash.as_ref().unwrap().writes;
    check(set(&service, &host, &TEST_VENDOR, b"RustImage", NV | BS | RT, b"persisted") == EFI_SUCCESS, "SetVariable on the image");
    let f = host.flash.as_ref().unwrap();
    check(f.writes > writes && f.flushes > 0, "a non-volatile SetVariable writes and flushes the flash");
    report_stack("SetVariable committed to the image (AES-GCM record, XTS sectors)");
    service.destroy();

    let Ok(service) = UefiMm::create(&config, &mut host) else {
        check(false, "the image reopens");
        return 1;
    };
    edk2::get_variable(buffer(&host), &TEST_VENDOR, b"RustImage", 64);
    check(mm(&service, BUFFER) == R::SUCCESS && status(buffer(&host)) == EFI_SUCCESS, "the variable survives re-creating the service");
    let at = MM_HEADER + VARIABLE_HEADER + ACCESS_NAME + 20;
    check(&buffer(&host)[at..at + 9] == b"persisted", "and reads back");
    service.destroy();

    let mut wrong = keyslot_config(&key, key_len);
    key.bytes()[0] ^= 1;
    wrong.key = key.base;
    check(UefiMm::create(&wrong, &mut host).err() == Some(ffi::ERR_WRONG_KEY), "a wrong secret: VARSTORE_ERR_WRONG_KEY");
    if failures() == 0 {
        outln!("svsm-rust: image: keyslot open, write, reopen, read back, wrong key refused");
    }
    environment_used()
}

/// A recorded OVMF request stream through protocol 4 call 1 (RDX = 64 KiB) and through the
/// device's DMA (BUFFER_SIZE = 64 KiB), into two stores: every reply must be the same bytes.
fn replay(path: &CStr) -> i32 {
    let Some((trace, size)) = sys::read_file(path.as_ptr()) else {
        errln!("svsm-rust: cannot read {:?}", path);
        return 2;
    };
    let t = &trace.bytes()[..size];
    if size < 16 || &t[..8] != b"UVTRACE1" {
        errln!("svsm-rust: {:?} is not a UVTRACE1 file", path);
        return 2;
    }
    let mut host = guest_host();
    let (Ok(svsm), Ok(device)) = (UefiMm::create(&ffi::Config::memory(), &mut host), UefiMm::create(&ffi::Config::memory(), &mut host)) else {
        return 1;
    };
    device.mmio_write(4, 4, MAX_BUFFER_SIZE as u64);
    device.mmio_write(8, 4, DMA_BUFFER);
    device.mmio_write(0xC, 4, 0);
    let (mut offset, mut requests, mut identical) = (16usize, 0usize, 0usize);
    while offset + 24 <= size {
        let record = &t[offset..];
        let len = get32(record, 12) as usize;
        if len > size - offset - 24 {
            break;
        }
        offset += 24 + len;
        if &record[..4] != b"REQ " || len < 24 || len > MAX_BUFFER_SIZE {
            continue;
        }
        requests += 1;
        let payload = &record[24..24 + len];
        host.guest.bytes(BUFFER, len).copy_from_slice(payload);
        host.guest.bytes(DMA_BUFFER, len).copy_from_slice(payload);
        let rax = mm(&svsm, BUFFER);
        device.mmio_write(2, 2, 2);
        let device_status = device.mmio_read(2, 2);
        // SVSM_SUCCESS is device status 0; INVALID_REQUEST 0x11; INVALID_PARAMETER 0x12.
        let same_status = (rax == R::SUCCESS && device_status == 0)
            || (rax == R::INVALID_REQUEST && device_status == 0x11)
            || (rax == R::INVALID_PARAMETER && device_status == 0x12);
        if same_status && host.guest.bytes(BUFFER, len) == host.guest.bytes(DMA_BUFFER, len) {
            identical += 1;
        } else if failures() < 10 {
            errln!("svsm-rust: {:?}: request {}: SVSM {:#x}, device {:#x}", path, requests, rax.0, device_status);
            check(false, "replay: the same reply on both transports");
        }
    }
    svsm.destroy();
    device.destroy();
    outln!("svsm-rust: replay {:?}: {} requests, {} replies identical through protocol 4 call 1 and the MMIO device", path, requests, identical);
    check(requests > 0 && identical == requests, "replay");
    report_stack("replayed OVMF boot (both transports)");
    if failures() == 0 { 0 } else { 1 }
}

/// Heap figures: an empty store; full 256 KiB and 1 MiB stores (small and 4 KiB variables);
/// the extra held by the largest requests.
fn heap() -> i32 {
    outln!("svsm-rust: heap: figures are arena bytes (16-byte headers and 16-byte rounding included)");
    let mut host = guest_host();
    let service = UefiMm::create(&ffi::Config::memory(), &mut host).ok().unwrap();
    let s = arena::stats();
    outln!("svsm-rust: heap: empty store: {} bytes held ({} libcrypto), peak {}", s.in_use, s.libcrypto_in_use, s.peak);
    // The largest requests on the empty store: a SetVariable filling the 64 KiB buffer (above
    // the 33 KiB variable limit, refused after it is copied and parsed), and the largest one
    // accepted.
    let big = Region::new(64 * KIB);
    let room = MAX_BUFFER_SIZE - MM_HEADER - VARIABLE_HEADER - ACCESS_NAME - 2 * 8;
    for (data, what) in [(room, "64 KiB SetVariable (refused: over the 33 KiB limit)"), (0x8400 - 60 - 16, "largest accepted SetVariable (33 KiB)")] {
        let before = arena::stats().in_use;
        arena::reset_peak();
        let st = set(&service, &host, &TEST_VENDOR, b"Biggest", NV | BS | RT, &big.bytes()[..data]);
        let s = arena::stats();
        outln!("svsm-rust: heap: {}: status {:#x}, extra during the request {} bytes, held after {}", what, st, s.peak - before, s.in_use as isize - before as isize);
    }
    // The largest buffer the call accepts (coconut's limit): RDX = 256 KiB.
    let before = arena::stats().in_use;
    arena::reset_peak();
    edk2::get_payload_size(buffer(&host));
    let mut p = RequestParams { rcx: BUFFER, rdx: 256 * KIB as u64, r8: 0 };
    check(service.request(MM_REQUEST, &mut p) == R::SUCCESS, "RDX = 256 KiB is accepted");
    let s = arena::stats();
    outln!("svsm-rust: heap: a request with RDX = 256 KiB: extra during the request {} bytes, held after {}", s.peak - before, s.in_use as isize - before as isize);
    report_stack("64 KiB SetVariable");
    service.destroy();

    for (nv, data, shape) in [(256 * KIB, 1usize, "smallest variables"), (256 * KIB, 16, "16-byte variables"), (256 * KIB, 4096, "4 KiB variables"), (MIB, 1, "smallest variables"), (MIB, 16, "16-byte variables"), (MIB, 4096, "4 KiB variables")] {
        let base = arena::stats().in_use;
        arena::reset_peak();
        let config = ffi::Config { nonvolatile_bytes: nv as u64, ..ffi::Config::memory() };
        let service = UefiMm::create(&config, &mut host).ok().unwrap();
        let stored = if data == 1 {
            fill_smallest(&service, &host, 1, NV | BS | RT)
        } else {
            fill(&service, &host, b"Fill", NV | BS | RT, &big.bytes()[..data])
        };
        let full = arena::stats();
        let walked = walk(&service, &host);
        check(walked >= stored, "every stored variable is enumerated");
        let s = arena::stats();
        outln!(
            "svsm-rust: heap: full {} KiB store, {} ({} variables): {} bytes held, peak {} ({} per KiB of store), high water {}",
            nv / KIB, shape, stored, full.in_use - base, s.peak - base, (s.peak - base) / (nv / KIB), s.high_water
        );
        service.destroy();
    }
    report_stack("filling a 1 MiB store");
    big.release();
    if failures() == 0 { 0 } else { 1 }
}

/// A real authenticated dbx append (Microsoft's signed DBXUpdate, verified with PKCS#7 against
/// the KEK the image holds) on the Secure Boot example image.
fn secureboot(image: &Image, auth: &CStr) -> i32 {
    let (Some((flash, key, key_len)), Some((update, update_len))) = (load(image), sys::read_file(auth.as_ptr())) else {
        errln!("svsm-rust: cannot read the Secure Boot image, key or update");
        return 2;
    };
    let mut host = guest_host();
    host.flash = Some(flash);
    let service = UefiMm::create(&keyslot_config(&key, key_len), &mut host).ok().unwrap();
    let mut manifest = [0u8; 8];
    check(service.manifest(0, &mut manifest) == 8 && manifest[4] & 2 == 2, "manifest: secureboot_enabled (PK enrolled)");
    let before = arena::stats().in_use;
    arena::reset_peak();
    stack::repaint();
    let st = set(&service, &host, &IMAGE_SECURITY_DATABASE, b"dbx", NV | BS | RT | TIME_BASED_AUTH | APPEND, &update.bytes()[..update_len]);
    let s = arena::stats();
    check(st == EFI_SUCCESS, "the signed dbx append is accepted");
    outln!(
        "svsm-rust: heap: authenticated dbx append ({} bytes, PKCS#7 verified): status {:#x}, image store held {} bytes before, extra during the request {} ({} of the peak libcrypto's)",
        update_len, st, before, s.peak - before, s.libcrypto_peak
    );
    report_stack("authenticated dbx append (PKCS#7 verify, commit)");
    // The same append with one byte of the signed payload changed must fail verification.
    let last = update_len - 1;
    update.bytes()[last] ^= 1;
    let st = set(&service, &host, &IMAGE_SECURITY_DATABASE, b"dbx", NV | BS | RT | TIME_BASED_AUTH | APPEND, &update.bytes()[..update_len]);
    check(st == 0x8000_0000_0000_001a, "a tampered dbx append: EFI_SECURITY_VIOLATION");
    service.destroy();
    if failures() == 0 { 0 } else { 1 }
}

/// The integrator's rule (spec/svsm-integration.md): the arena an SVSM gives the object for
/// a store of `nonvolatile` + `volatile` bytes.
fn arena_rule(nonvolatile: usize, volatile: usize) -> usize {
    ARENA_FIXED + ARENA_PER_STORE_BYTE * (nonvolatile + volatile)
}
/// libcrypto's state once an image is open (~370 KB), the request copies for RDX up to
/// 256 KiB (one kept, one in flight), a PKCS#7 verification (~320 KB), with room to spare.
const ARENA_FIXED: usize = 2 * MIB;
/// The smallest variables cost ~4.9 arena bytes per byte of quota (peak, Dictionary growth
/// included), ~5.5 with this allocator's fragmentation.
const ARENA_PER_STORE_BYTE: usize = 8;

/// The full-store workload in an arena of exactly the rule's size: both classes filled with
/// the smallest variables (the most bookkeeping per stored byte), walked, read, half deleted
/// and refilled, and the largest request sent on top of it.
fn bounded(nonvolatile: usize, volatile: usize) -> i32 {
    let mut host = guest_host();
    let config = ffi::Config { nonvolatile_bytes: nonvolatile as u64, volatile_bytes: volatile as u64, ..ffi::Config::memory() };
    let service = UefiMm::create(&config, &mut host).ok().unwrap();
    let nv = fill_smallest(&service, &host, 1, NV | BS | RT);
    let v = fill_smallest(&service, &host, 2, BS | RT);
    let walked = walk(&service, &host);
    for i in (0..nv).step_by(2) {
        let mut guid = TEST_VENDOR;
        guid[0] = 1;
        guid[8..16].copy_from_slice(&(i as u64).to_le_bytes());
        let st = set(&service, &host, &guid, b"A", NV | BS | RT, &[]);
        check(st == EFI_SUCCESS, "delete");
    }
    let refilled = fill_smallest(&service, &host, 3, NV | BS | RT);
    let big = Region::new(64 * KIB);
    let room = MAX_BUFFER_SIZE - MM_HEADER - VARIABLE_HEADER - ACCESS_NAME - 2 * 8;
    set(&service, &host, &TEST_VENDOR, b"Biggest", NV | BS | RT, &big.bytes()[..room]);
    let s = largest_request_then_destroy(service, &host);
    outln!(
        "svsm-rust: bounded: {} KiB NV + {} KiB volatile in an arena of {} bytes: {} + {} variables, {} walked, {} refilled; peak {} bytes, high water {}, {} allocation failures",
        nonvolatile / KIB, volatile / KIB, arena_rule(nonvolatile, volatile), nv, v, walked, refilled, s.peak, s.high_water, s.failures
    );
    check(s.failures == 0, "no allocation failed");
    if failures() == 0 { 0 } else { 1 }
}

/// The last step of both bounded runs: the largest buffer the protocol allows (RDX = 256 KiB)
/// on the full store, then the store destroyed; the arena's figures after it.
fn largest_request_then_destroy(service: UefiMm, host: &Host) -> arena::Stats {
    edk2::get_payload_size(buffer(host));
    let mut p = RequestParams { rcx: BUFFER, rdx: 256 * KIB as u64, r8: 0 };
    check(service.request(MM_REQUEST, &mut p) == R::SUCCESS, "RDX = 256 KiB on a full store");
    service.destroy();
    arena::stats()
}

/// The same rule with an image: the Secure Boot image opened, its NV store filled, the signed
/// dbx append, the largest buffer; the arena is sized from the image's size (its capacity is
/// smaller) and 256 KiB of volatile store.
fn bounded_image(image: &Image, auth: &CStr) -> i32 {
    let (Some((flash, key, key_len)), Some((update, update_len))) = (load(image), sys::read_file(auth.as_ptr())) else {
        return 2;
    };
    let flash_size = flash.size;
    let mut host = guest_host();
    host.flash = Some(flash);
    let service = UefiMm::create(&keyslot_config(&key, key_len), &mut host).ok().unwrap();
    let st = set(&service, &host, &IMAGE_SECURITY_DATABASE, b"dbx", NV | BS | RT | TIME_BASED_AUTH | APPEND, &update.bytes()[..update_len]);
    check(st == EFI_SUCCESS, "the signed dbx append");
    let nv = fill_smallest(&service, &host, 1, NV | BS | RT);
    let v = fill_smallest(&service, &host, 2, BS | RT);
    let s = largest_request_then_destroy(service, &host);
    outln!(
        "svsm-rust: bounded: a {} KiB image + 256 KiB volatile in an arena of {} bytes: dbx append, {} + {} variables; peak {} bytes ({} libcrypto), high water {}, {} allocation failures",
        flash_size / KIB, arena_rule(flash_size, 256 * KIB), nv, v, s.peak, s.libcrypto_peak, s.high_water, s.failures
    );
    check(s.failures == 0, "no allocation failed");
    if failures() == 0 { 0 } else { 1 }
}

/// Runs a scenario in a child with a fresh arena of `bytes` and a fresh request stack.
fn scenario(name: &str, bytes: usize, f: impl FnOnce() -> i32) -> Exit {
    sys::in_child(|| {
        let region = Region::new(bytes);
        arena::install(region.base, bytes);
        stack::install(REQUEST_STACK);
        let code = f();
        let s = arena::stats();
        outln!(
            "svsm-rust: {}: arena {} bytes: peak {} ({} libcrypto), {} allocations ({} by libcrypto), {} failures; deepest stack {} bytes",
            name, bytes, s.peak, s.libcrypto_peak, s.allocations, s.libcrypto_allocations, s.failures, stack::deepest()
        );
        code
    })
}

fn expect_success(name: &str, exit: Exit, failed: &mut u32) {
    match exit {
        Exit::Code(0) => {}
        Exit::Code(c) => {
            errln!("svsm-rust: FAILED: {} exited with {}", name, c);
            *failed += 1;
        }
        Exit::Signal(s) => {
            errln!("svsm-rust: FAILED: {} was killed by signal {}", name, s);
            *failed += 1;
        }
    }
}

#[no_mangle]
pub extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    env::seed_stack_guard();
    if !env::route_libcrypto_to_arena() {
        sys::fatal("CRYPTO_set_mem_functions refused: libcrypto allocated before main");
    }
    let args: &[*const c_char] = unsafe { core::slice::from_raw_parts(argv, argc as usize) };
    let arg = |i: usize| unsafe { CStr::from_ptr(args[i]) };
    let (mut image_args, mut secureboot_args, mut traces) = (None, None, 1..1);
    let mut i = 1;
    while i < args.len() {
        match arg(i).to_bytes() {
            b"--image" if i + 2 < args.len() => {
                image_args = Some(Image { path: arg(i + 1), key: arg(i + 2) });
                i += 3;
            }
            b"--secureboot" if i + 3 < args.len() => {
                secureboot_args = Some((Image { path: arg(i + 1), key: arg(i + 2) }, arg(i + 3)));
                i += 4;
            }
            b"--replay" => {
                traces = i + 1..args.len();
                i = args.len();
            }
            _ => {
                errln!("usage: svsm-rust [--image IMAGE KEYFILE] [--secureboot IMAGE KEYFILE DBX-AUTH] [--replay TRACE...]");
                return 2;
            }
        }
    }

    let mut failed = 0;
    const BIG: usize = 64 * MIB;
    expect_success("calls", scenario("calls", BIG, calls), &mut failed);
    if let Some(image_args) = &image_args {
        expect_success("image", scenario("image", BIG, || image(image_args)), &mut failed);
    }
    for t in traces {
        expect_success("replay", scenario("replay", BIG, || replay(arg(t))), &mut failed);
    }
    expect_success("heap", scenario("heap", BIG, heap), &mut failed);
    if let Some((image_args, auth)) = &secureboot_args {
        expect_success("secureboot", scenario("secureboot", BIG, || secureboot(image_args, auth)), &mut failed);
    }
    for (nv, v) in [(256 * KIB, 256 * KIB), (MIB, 256 * KIB)] {
        let size = arena_rule(nv, v);
        expect_success("bounded", scenario("bounded", size, || bounded(nv, v)), &mut failed);
    }
    if let Some((image_args, auth)) = &secureboot_args {
        if let Some((f, _, _)) = load(image_args) {
            let size = arena_rule(f.size, 256 * KIB);
            expect_success("bounded image", scenario("bounded image", size, || bounded_image(image_args, auth)), &mut failed);
        }
    }
    // Too small an arena: the object cannot report an allocation failure; Embedded Swift traps.
    match scenario("out of memory", 256 * KIB, || {
        let mut host = guest_host();
        let config = ffi::Config { nonvolatile_bytes: MIB as u64, ..ffi::Config::memory() };
        let service = UefiMm::create(&config, &mut host).ok().unwrap();
        fill_smallest(&service, &host, 1, NV | BS | RT);
        0
    }) {
        Exit::Signal(s) => outln!("svsm-rust: out of memory: a 1 MiB store filled in a 256 KiB arena: the object traps (signal {}{})", s, if s == 4 { ", SIGILL: ud2" } else { "" }),
        Exit::Code(c) => {
            errln!("svsm-rust: FAILED: a 1 MiB store in a 256 KiB arena: expected a trap, exit {}", c);
            failed += 1;
        }
    }
    if failed == 0 {
        outln!("svsm-rust: all scenarios passed");
        0
    } else {
        1
    }
}
