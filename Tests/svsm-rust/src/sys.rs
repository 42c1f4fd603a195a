//! The host process's own needs, from libc: output, files, anonymous memory, processes.
//! Nothing here is handed to the object; in an SVSM these are the kernel's own facilities.
use core::ffi::{c_char, c_int, c_void};
use core::fmt;

extern "C" {
    fn write(fd: c_int, buf: *const c_void, count: usize) -> isize;
    fn open(path: *const c_char, flags: c_int, ...) -> c_int;
    fn read(fd: c_int, buf: *mut c_void, count: usize) -> isize;
    fn close(fd: c_int) -> c_int;
    fn lseek(fd: c_int, offset: i64, whence: c_int) -> i64;
    fn mmap(addr: *mut c_void, len: usize, prot: c_int, flags: c_int, fd: c_int, off: i64) -> *mut c_void;
    fn munmap(addr: *mut c_void, len: usize) -> c_int;
    fn mprotect(addr: *mut c_void, len: usize, prot: c_int) -> c_int;
    fn getrandom(buf: *mut c_void, len: usize, flags: u32) -> isize;
    fn fork() -> c_int;
    fn waitpid(pid: c_int, status: *mut c_int, options: c_int) -> c_int;
    fn _exit(code: c_int) -> !;
    fn abort() -> !;
    /// glibc's allocator, for memory the process (not the object) allocated.
    pub fn __libc_free(p: *mut c_void);
}

pub fn write_all(fd: c_int, bytes: &[u8]) {
    let mut done = 0;
    while done < bytes.len() {
        let n = unsafe { write(fd, bytes[done..].as_ptr() as *const c_void, bytes.len() - done) };
        if n <= 0 {
            return;
        }
        done += n as usize;
    }
}

pub struct Fd(pub c_int);
impl fmt::Write for Fd {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        write_all(self.0, s.as_bytes());
        Ok(())
    }
}

#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{ use core::fmt::Write; let _ = writeln!($crate::sys::Fd(1), $($arg)*); }};
}
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {{ use core::fmt::Write; let _ = writeln!($crate::sys::Fd(2), $($arg)*); }};
}

/// Anonymous, zeroed, page-aligned memory owned by the harness (guest RAM, flash, arenas,
/// the request stack). Never freed: the process is short-lived.
pub struct Region {
    pub base: *mut u8,
    pub len: usize,
}

impl Region {
    pub fn new(len: usize) -> Region {
        let len = (len + 4095) & !4095;
        let p = unsafe { mmap(core::ptr::null_mut(), len.max(4096), 3, 0x22, -1, 0) };
        if p as isize == -1 {
            fatal("mmap failed");
        }
        Region { base: p as *mut u8, len }
    }
    pub fn bytes(&self) -> &mut [u8] {
        unsafe { core::slice::from_raw_parts_mut(self.base, self.len) }
    }
    pub fn release(self) {
        unsafe { munmap(self.base as *mut c_void, self.len) };
    }
    /// Makes the first page inaccessible (a stack guard).
    pub fn guard_first_page(&self) {
        unsafe { mprotect(self.base as *mut c_void, 4096, 0) };
    }
}

/// A whole file, read into a fresh region; None if it cannot be read.
pub fn read_file(path: *const c_char) -> Option<(Region, usize)> {
    unsafe {
        let fd = open(path, 0);
        if fd < 0 {
            return None;
        }
        let size = lseek(fd, 0, 2);
        if size < 0 || lseek(fd, 0, 0) != 0 {
            close(fd);
            return None;
        }
        let region = Region::new(size as usize);
        let mut done = 0usize;
        while done < size as usize {
            let n = read(fd, region.base.add(done) as *mut c_void, size as usize - done);
            if n <= 0 {
                close(fd);
                return None;
            }
            done += n as usize;
        }
        close(fd);
        Some((region, size as usize))
    }
}

pub fn random(buf: &mut [u8]) -> bool {
    let mut done = 0;
    while done < buf.len() {
        let n = unsafe { getrandom(buf[done..].as_mut_ptr() as *mut c_void, buf.len() - done, 0) };
        if n <= 0 {
            return false;
        }
        done += n as usize;
    }
    true
}

/// How a child process ended.
pub enum Exit {
    Code(i32),
    Signal(i32),
}

/// Runs `f` in a child process (a fresh arena, a fresh libcrypto) and waits for it.
pub fn in_child(f: impl FnOnce() -> i32) -> Exit {
    let pid = unsafe { fork() };
    if pid < 0 {
        fatal("fork failed");
    }
    if pid == 0 {
        let code = f();
        unsafe { _exit(code) }
    }
    let mut status: c_int = 0;
    unsafe { waitpid(pid, &mut status, 0) };
    if status & 0x7f == 0 {
        Exit::Code((status >> 8) & 0xff)
    } else {
        Exit::Signal(status & 0x7f)
    }
}

pub fn fatal(message: &str) -> ! {
    write_all(2, b"svsm-rust: fatal: ");
    write_all(2, message.as_bytes());
    write_all(2, b"\n");
    unsafe { abort() }
}

pub fn exit(code: i32) -> ! {
    unsafe { _exit(code) }
}
