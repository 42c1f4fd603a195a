//! Everything the object needs from its environment besides libcrypto, defined here with
//! strong symbols so the link binds the object to them and never to libc (CI checks the
//! binary's symbol table; the counters below show the calls arrive). An SVSM provides the
//! same list (spec/svsm-integration.md).
use crate::arena;
use core::cell::UnsafeCell;
use core::ffi::{c_char, c_int, c_void};

#[derive(Clone, Copy, Default)]
pub struct Calls {
    pub posix_memalign: u64,
    pub free: u64,
    pub memset: u64,
    pub memcpy: u64,
    pub memmove: u64,
    pub memcmp: u64,
    pub arc4random_buf: u64,
    pub soft_float: u64,
    pub ceil: u64,
}

struct Counters(UnsafeCell<Calls>);
unsafe impl Sync for Counters {}
static CALLS: Counters = Counters(UnsafeCell::new(Calls {
    posix_memalign: 0, free: 0, memset: 0, memcpy: 0, memmove: 0, memcmp: 0, arc4random_buf: 0, soft_float: 0, ceil: 0,
}));

fn count(f: impl FnOnce(&mut Calls)) {
    unsafe { f(&mut *CALLS.0.get()) }
}

pub fn calls() -> Calls {
    unsafe { *CALLS.0.get() }
}

// --- the allocator -------------------------------------------------------------------------

/// The Embedded Swift runtime allocates every object and buffer here (swift_slowAlloc).
#[no_mangle]
pub unsafe extern "C" fn posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> c_int {
    count(|c| c.posix_memalign += 1);
    if align < core::mem::size_of::<usize>() || !align.is_power_of_two() {
        return 22; // EINVAL
    }
    let p = arena::allocate(size, align, false);
    if p.is_null() {
        return 12; // ENOMEM
    }
    *out = p as *mut c_void;
    0
}

/// Frees arena blocks; anything else came from glibc's malloc (this process's own use).
#[no_mangle]
pub unsafe extern "C" fn free(p: *mut c_void) {
    if p.is_null() {
        return;
    }
    if arena::owns(p as *mut u8) {
        count(|c| c.free += 1);
        arena::release(p as *mut u8);
    } else {
        crate::sys::__libc_free(p);
    }
}

// libcrypto's allocations go to the same arena (an SVSM's OpenSSL uses the kernel heap).
unsafe extern "C" fn crypto_malloc(size: usize, _file: *const c_char, _line: c_int) -> *mut c_void {
    arena::allocate(size.max(1), 16, true) as *mut c_void
}
unsafe extern "C" fn crypto_realloc(p: *mut c_void, size: usize, file: *const c_char, line: c_int) -> *mut c_void {
    if p.is_null() {
        return crypto_malloc(size, file, line);
    }
    if size == 0 {
        crypto_free(p, file, line);
        return core::ptr::null_mut();
    }
    let old = arena::usable_size(p as *mut u8);
    if old >= size {
        return p;
    }
    let q = crypto_malloc(size, file, line);
    if !q.is_null() {
        memcpy(q, p, old);
        crypto_free(p, file, line);
    }
    q
}
unsafe extern "C" fn crypto_free(p: *mut c_void, _file: *const c_char, _line: c_int) {
    free(p)
}

extern "C" {
    fn CRYPTO_set_mem_functions(
        m: unsafe extern "C" fn(usize, *const c_char, c_int) -> *mut c_void,
        r: unsafe extern "C" fn(*mut c_void, usize, *const c_char, c_int) -> *mut c_void,
        f: unsafe extern "C" fn(*mut c_void, *const c_char, c_int),
    ) -> c_int;
}

/// Routes libcrypto's allocations to the arena; must run before libcrypto allocates anything.
pub fn route_libcrypto_to_arena() -> bool {
    unsafe { CRYPTO_set_mem_functions(crypto_malloc, crypto_realloc, crypto_free) == 1 }
}

// --- memory functions ------------------------------------------------------------------------
// Written as plain loops; the crate is #![no_builtins], so LLVM does not turn them back into
// calls to themselves.

#[no_mangle]
pub unsafe extern "C" fn memset(d: *mut c_void, c: c_int, n: usize) -> *mut c_void {
    count(|k| k.memset += 1);
    let d8 = d as *mut u8;
    let byte = c as u8;
    let word = (byte as u64) * 0x0101_0101_0101_0101;
    let mut i = 0;
    while i + 8 <= n {
        (d8.add(i) as *mut u64).write_unaligned(word);
        i += 8;
    }
    while i < n {
        *d8.add(i) = byte;
        i += 1;
    }
    d
}

unsafe fn copy_forward(d: *mut u8, s: *const u8, n: usize) {
    let mut i = 0;
    while i + 8 <= n {
        (d.add(i) as *mut u64).write_unaligned((s.add(i) as *const u64).read_unaligned());
        i += 8;
    }
    while i < n {
        *d.add(i) = *s.add(i);
        i += 1;
    }
}

#[no_mangle]
pub unsafe extern "C" fn memcpy(d: *mut c_void, s: *const c_void, n: usize) -> *mut c_void {
    count(|k| k.memcpy += 1);
    copy_forward(d as *mut u8, s as *const u8, n);
    d
}

#[no_mangle]
pub unsafe extern "C" fn memmove(d: *mut c_void, s: *const c_void, n: usize) -> *mut c_void {
    count(|k| k.memmove += 1);
    let (d8, s8) = (d as *mut u8, s as *const u8);
    if (d8 as usize) <= (s8 as usize) || (d8 as usize) >= (s8 as usize) + n {
        copy_forward(d8, s8, n);
    } else {
        let mut i = n;
        while i >= 8 {
            i -= 8;
            (d8.add(i) as *mut u64).write_unaligned((s8.add(i) as *const u64).read_unaligned());
        }
        while i > 0 {
            i -= 1;
            *d8.add(i) = *s8.add(i);
        }
    }
    d
}

#[no_mangle]
pub unsafe extern "C" fn memcmp(a: *const c_void, b: *const c_void, n: usize) -> c_int {
    count(|k| k.memcmp += 1);
    let (a, b) = (a as *const u8, b as *const u8);
    for i in 0..n {
        let (x, y) = (*a.add(i), *b.add(i));
        if x != y {
            return x as c_int - y as c_int;
        }
    }
    0
}

// --- randomness and the stack protector ------------------------------------------------------

/// The Swift runtime's hashing seed. An SVSM would draw from RDSEED/its DRBG.
#[no_mangle]
pub unsafe extern "C" fn arc4random_buf(buf: *mut c_void, n: usize) {
    count(|k| k.arc4random_buf += 1);
    if !crate::sys::random(core::slice::from_raw_parts_mut(buf as *mut u8, n)) {
        crate::sys::fatal("no randomness for arc4random_buf");
    }
}

#[no_mangle]
pub static mut __stack_chk_guard: usize = 0x2f8a_6e21_c3d4_5b19;

#[no_mangle]
pub extern "C" fn __stack_chk_fail() -> ! {
    crate::sys::fatal("stack smashing detected in the object")
}

/// A fresh canary; call before the first call into the object.
pub fn seed_stack_guard() {
    let mut bytes = [0u8; 8];
    if crate::sys::random(&mut bytes) {
        unsafe { __stack_chk_guard = usize::from_le_bytes(bytes) & !0xff } // a NUL byte stops string overruns
    }
}

// --- soft-float -------------------------------------------------------------------------------
// The object is built soft-float: a double travels as its bit pattern in a general register,
// the convention of x86_64-unknown-none, where Rust's compiler_builtins provides these
// routines. On this host compiler_builtins and libgcc pass doubles in SSE registers, so the
// harness defines its own with the object's convention (they compute on the host's FPU,
// which is the harness's business, not the object's).

fn f(bits: u64) -> f64 {
    count(|k| k.soft_float += 1);
    f64::from_bits(bits)
}

#[no_mangle]
pub extern "C" fn __adddf3(a: u64, b: u64) -> u64 { (f(a) + f(b)).to_bits() }
#[no_mangle]
pub extern "C" fn __subdf3(a: u64, b: u64) -> u64 { (f(a) - f(b)).to_bits() }
#[no_mangle]
pub extern "C" fn __muldf3(a: u64, b: u64) -> u64 { (f(a) * f(b)).to_bits() }
#[no_mangle]
pub extern "C" fn __divdf3(a: u64, b: u64) -> u64 { (f(a) / f(b)).to_bits() }
/// 0 if equal, non-zero otherwise (unordered included).
#[no_mangle]
pub extern "C" fn __eqdf2(a: u64, b: u64) -> c_int { if f(a) == f(b) { 0 } else { 1 } }
#[no_mangle]
pub extern "C" fn __nedf2(a: u64, b: u64) -> c_int { __eqdf2(a, b) }
/// -1, 0, 1; unordered → 1 (so "a < b" and "a <= b" are false).
#[no_mangle]
pub extern "C" fn __ltdf2(a: u64, b: u64) -> c_int {
    let (x, y) = (f(a), f(b));
    if x < y { -1 } else if x == y { 0 } else { 1 }
}
#[no_mangle]
pub extern "C" fn __ledf2(a: u64, b: u64) -> c_int { __ltdf2(a, b) }
/// -1, 0, 1; unordered → -1 (so "a > b" and "a >= b" are false).
#[no_mangle]
pub extern "C" fn __gtdf2(a: u64, b: u64) -> c_int {
    let (x, y) = (f(a), f(b));
    if x > y { 1 } else if x == y { 0 } else { -1 }
}
#[no_mangle]
pub extern "C" fn __gedf2(a: u64, b: u64) -> c_int { __gtdf2(a, b) }
#[no_mangle]
pub extern "C" fn __unorddf2(a: u64, b: u64) -> c_int { (f(a).is_nan() || f(b).is_nan()) as c_int }
#[no_mangle]
pub extern "C" fn __floatdidf(a: i64) -> u64 { count(|k| k.soft_float += 1); (a as f64).to_bits() }
#[no_mangle]
pub extern "C" fn __floatundidf(a: u64) -> u64 { count(|k| k.soft_float += 1); (a as f64).to_bits() }
#[no_mangle]
pub extern "C" fn __fixdfdi(a: u64) -> i64 { f(a) as i64 }
#[no_mangle]
pub extern "C" fn __fixunsdfdi(a: u64) -> u64 { f(a) as u64 }

/// libm's ceil, soft-float convention.
#[no_mangle]
pub extern "C" fn ceil(a: u64) -> u64 {
    count(|k| k.ceil += 1);
    let x = f64::from_bits(a);
    if x.is_nan() || x.is_infinite() || x.abs() >= 4_503_599_627_370_496.0 {
        return a;
    }
    let t = x as i64 as f64;
    let r = if t < x { t + 1.0 } else { t };
    if r == 0.0 && x < 0.0 { (-0.0f64).to_bits() } else { r.to_bits() }
}
