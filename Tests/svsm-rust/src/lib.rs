//! A `#![no_std]` caller of the embedded variable-service object, as coconut-svsm would link
//! it: the environment the object needs (env: allocator over a fixed arena, memory functions,
//! randomness, stack protector, soft-float), the platform callbacks over a page-granular guest
//! memory map and an in-memory flash (platform), the C ABI declared by hand (ffi), and a
//! protocol handler in the shape of coconut's uefivars.rs (uefivars). Only `sys` touches libc,
//! for the host process's own output, files and memory.
#![no_std]
// The memory functions are written as loops; without this LLVM would turn them into calls
// to themselves.
#![no_builtins]

pub mod arena;
pub mod edk2;
pub mod env;
pub mod ffi;
pub mod platform;
pub mod stack;
pub mod sys;
pub mod uefivars;

/// A value in its own pages, outside the arena (harness bookkeeping, not the object's heap).
pub fn boxed<T>(value: T) -> *mut T {
    let region = sys::Region::new(core::mem::size_of::<T>());
    let p = region.base as *mut T;
    unsafe { p.write(value) };
    p
}

pub fn unboxed<T>(p: *mut T) {
    let region = sys::Region { base: p as *mut u8, len: (core::mem::size_of::<T>() + 4095) & !4095 };
    unsafe { core::ptr::drop_in_place(p) };
    region.release();
}
