//! The SVSM side of varstore_platform_t: guest memory as a page map with holes and read-only
//! pages (the checks an SVSM makes before touching a guest page), a flash region in memory,
//! randomness and a log.
use crate::ffi;
use crate::sys::Region;
use core::ffi::{c_char, c_int, c_void};

pub const PAGE: u64 = 4096;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// Not guest RAM (MMIO, a VMSA or CAA page, beyond the map): every access fails.
    Hole,
    ReadOnly,
    ReadWrite,
}

pub struct GuestMemory {
    pub ram: Region,
    pages: [Page; GuestMemory::PAGES],
    pub reads: u64,
    pub writes: u64,
    pub refused: u64,
}

impl GuestMemory {
    pub const PAGES: usize = 1024; // 4 MiB of guest-physical space

    pub fn new() -> GuestMemory {
        GuestMemory { ram: Region::new(Self::PAGES * PAGE as usize), pages: [Page::ReadWrite; Self::PAGES], reads: 0, writes: 0, refused: 0 }
    }
    pub fn set(&mut self, gpa: u64, pages: usize, kind: Page) {
        let first = (gpa / PAGE) as usize;
        for p in first..first + pages {
            self.pages[p] = kind;
        }
    }
    /// Every page of [gpa, gpa + length) is guest RAM (and writable, for a write).
    fn check(&self, gpa: u64, length: usize, write: bool) -> bool {
        let Some(end) = gpa.checked_add(length as u64) else { return false };
        if end > self.ram.len as u64 {
            return false;
        }
        if length == 0 {
            return true;
        }
        (gpa / PAGE..=(end - 1) / PAGE).all(|p| match self.pages[p as usize] {
            Page::Hole => false,
            Page::ReadOnly => !write,
            Page::ReadWrite => true,
        })
    }
    pub fn bytes(&self, gpa: u64, length: usize) -> &mut [u8] {
        &mut self.ram.bytes()[gpa as usize..gpa as usize + length]
    }
}

pub struct Flash {
    pub region: Region,
    pub size: usize,
    pub reads: u64,
    pub writes: u64,
    pub flushes: u64,
}

impl Flash {
    pub fn from(image: &[u8]) -> Flash {
        let region = Region::new(image.len());
        region.bytes()[..image.len()].copy_from_slice(image);
        Flash { region, size: image.len(), reads: 0, writes: 0, flushes: 0 }
    }
    fn range(&self, offset: u64, length: usize) -> Option<core::ops::Range<usize>> {
        let end = offset.checked_add(length as u64)?;
        if end > self.size as u64 { None } else { Some(offset as usize..end as usize) }
    }
}

/// What the platform callbacks' context points at.
pub struct Host {
    pub guest: GuestMemory,
    pub flash: Option<Flash>,
    pub logged: u64,
}

impl Host {
    pub fn new() -> Host {
        Host { guest: GuestMemory::new(), flash: None, logged: 0 }
    }

    /// The callbacks, with the flash ones only when an image is loaded.
    pub fn platform(&mut self) -> ffi::Platform {
        let (flash_size, with_flash) = match &self.flash {
            Some(f) => (f.size as u64, true),
            None => (0, false),
        };
        ffi::Platform {
            context: self as *mut Host as *mut c_void,
            guest_read: Some(guest_read),
            guest_write: Some(guest_write),
            flash_read: if with_flash { Some(flash_read) } else { None },
            flash_write: if with_flash { Some(flash_write) } else { None },
            flash_flush: if with_flash { Some(flash_flush) } else { None },
            flash_size,
            flash_sector_size: 512,
            random: Some(random),
            log: Some(log),
            witness: None,
        }
    }
}

unsafe fn host<'a>(context: *mut c_void) -> &'a mut Host {
    &mut *(context as *mut Host)
}

unsafe extern "C" fn guest_read(context: *mut c_void, gpa: u64, buffer: *mut c_void, length: usize) -> c_int {
    let h = host(context);
    if !h.guest.check(gpa, length, false) {
        h.guest.refused += 1;
        return -1;
    }
    h.guest.reads += 1;
    core::ptr::copy_nonoverlapping(h.guest.ram.base.add(gpa as usize), buffer as *mut u8, length);
    0
}

unsafe extern "C" fn guest_write(context: *mut c_void, gpa: u64, buffer: *const c_void, length: usize) -> c_int {
    let h = host(context);
    if !h.guest.check(gpa, length, true) {
        h.guest.refused += 1;
        return -1;
    }
    h.guest.writes += 1;
    core::ptr::copy_nonoverlapping(buffer as *const u8, h.guest.ram.base.add(gpa as usize), length);
    0
}

unsafe extern "C" fn flash_read(context: *mut c_void, offset: u64, buffer: *mut c_void, length: usize) -> c_int {
    let Some(f) = host(context).flash.as_mut() else { return -1 };
    let Some(r) = f.range(offset, length) else { return -1 };
    f.reads += 1;
    core::ptr::copy_nonoverlapping(f.region.base.add(r.start), buffer as *mut u8, length);
    0
}

unsafe extern "C" fn flash_write(context: *mut c_void, offset: u64, buffer: *const c_void, length: usize) -> c_int {
    let Some(f) = host(context).flash.as_mut() else { return -1 };
    let Some(r) = f.range(offset, length) else { return -1 };
    f.writes += 1;
    core::ptr::copy_nonoverlapping(buffer as *const u8, f.region.base.add(r.start), length);
    0
}

unsafe extern "C" fn flash_flush(context: *mut c_void) -> c_int {
    let Some(f) = host(context).flash.as_mut() else { return -1 };
    f.flushes += 1;
    0
}

unsafe extern "C" fn random(_context: *mut c_void, buffer: *mut c_void, length: usize) -> c_int {
    if crate::sys::random(core::slice::from_raw_parts_mut(buffer as *mut u8, length)) { 0 } else { -1 }
}

unsafe extern "C" fn log(context: *mut c_void, message: *const c_char) {
    host(context).logged += 1;
    let mut n = 0;
    while *message.add(n) != 0 {
        n += 1;
    }
    crate::sys::write_all(2, b"svsm-rust: log: ");
    crate::sys::write_all(2, core::slice::from_raw_parts(message as *const u8, n));
    crate::sys::write_all(2, b"\n");
}
