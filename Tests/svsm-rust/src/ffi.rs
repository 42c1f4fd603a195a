//! include/varstore.h, declared by hand as an SVSM written in Rust would (no bindgen).
use core::ffi::{c_char, c_int, c_void};

pub type GuestRead = unsafe extern "C" fn(*mut c_void, u64, *mut c_void, usize) -> c_int;
pub type GuestWrite = unsafe extern "C" fn(*mut c_void, u64, *const c_void, usize) -> c_int;
pub type FlashRead = unsafe extern "C" fn(*mut c_void, u64, *mut c_void, usize) -> c_int;
pub type FlashWrite = unsafe extern "C" fn(*mut c_void, u64, *const c_void, usize) -> c_int;
pub type FlashFlush = unsafe extern "C" fn(*mut c_void) -> c_int;
pub type Random = unsafe extern "C" fn(*mut c_void, *mut c_void, usize) -> c_int;
pub type Log = unsafe extern "C" fn(*mut c_void, *const c_char);
pub type WitnessFn = unsafe extern "C" fn(*mut c_void, *const u8, usize) -> c_int;

/// varstore_platform_t
#[repr(C)]
pub struct Platform {
    pub context: *mut c_void,
    pub guest_read: Option<GuestRead>,
    pub guest_write: Option<GuestWrite>,
    pub flash_read: Option<FlashRead>,
    pub flash_write: Option<FlashWrite>,
    pub flash_flush: Option<FlashFlush>,
    pub flash_size: u64,
    pub flash_sector_size: u32,
    pub random: Option<Random>,
    pub log: Option<Log>,
    pub witness: Option<WitnessFn>,
}

pub const KEY_VOLUME: u32 = 0;
pub const KEY_KEYSLOT: u32 = 1;
pub const FLAG_NO_CUSTOM_MODE: u32 = 1 << 0;
pub const FLAG_NO_PHYSICAL_PRESENCE: u32 = 1 << 1;

/// varstore_config_t
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Config {
    pub nonvolatile_bytes: u64,
    pub volatile_bytes: u64,
    pub key: *const u8,
    pub key_length: usize,
    pub key_kind: u32,
    pub flags: u32,
    pub minimum_generation: u64,
    pub minimum_digest: *const u8,
}

impl Config {
    pub const fn memory() -> Config {
        Config {
            nonvolatile_bytes: 0,
            volatile_bytes: 0,
            key: core::ptr::null(),
            key_length: 0,
            key_kind: KEY_VOLUME,
            flags: 0,
            minimum_generation: 0,
            minimum_digest: core::ptr::null(),
        }
    }
}

pub const OK: c_int = 0;
pub const ERR_INVALID_ARGUMENT: c_int = 1;
pub const ERR_WRONG_KEY: c_int = 4;

/// varstore_t, opaque.
#[repr(C)]
pub struct Varstore {
    _opaque: [u8; 0],
}

extern "C" {
    pub fn varstore_create(config: *const Config, platform: *const Platform, error: *mut c_int) -> *mut Varstore;
    pub fn varstore_svsm_call(store: *mut Varstore, rax: u64, rcx: *mut u64, rdx: u64, r8: u64) -> u64;
    pub fn varstore_mmio_read(store: *mut Varstore, offset: u64, size: u32) -> u64;
    pub fn varstore_mmio_write(store: *mut Varstore, offset: u64, size: u32, value: u64);
    pub fn varstore_manifest(store: *mut Varstore, version: u32, buffer: *mut u8, length: usize) -> usize;
    pub fn varstore_destroy(store: *mut Varstore);
}

const _: () = assert!(core::mem::size_of::<Platform>() == 88);
const _: () = assert!(core::mem::size_of::<Config>() == 56);
