//! The heap the object (and the libcrypto it calls) allocates from: a fixed arena owned by
//! the harness, first fit over a free list with boundary tags, so every byte is accounted
//! for and an arena of a given size is a hard limit, as a kernel heap is.
//!
//! Block layout: a 16-byte header (size including the header, with flag bits; the previous
//! block's size), then the payload, 16-byte aligned. A free block's payload holds the list links.
use core::cell::UnsafeCell;
use core::ptr::null_mut;

const HEADER: usize = 16;
const MIN_BLOCK: usize = 32;
const USED: usize = 1;
/// The block was allocated through libcrypto's hooks (CRYPTO_set_mem_functions).
const LIBCRYPTO: usize = 2;
const FLAGS: usize = 15;

#[repr(C)]
struct Block {
    size: usize,
    prev_size: usize,
    // free blocks only:
    next: *mut Block,
    prev: *mut Block,
}

#[derive(Clone, Copy, Default)]
pub struct Stats {
    /// Bytes of blocks in use (headers and rounding included): what the arena really gives.
    pub in_use: usize,
    pub peak: usize,
    /// The part of in_use that libcrypto allocated.
    pub libcrypto_in_use: usize,
    pub libcrypto_peak: usize,
    /// Highest arena offset ever handed out (fragmentation shows as high_water > peak).
    pub high_water: usize,
    pub allocations: u64,
    pub libcrypto_allocations: u64,
    pub frees: u64,
    pub failures: u64,
}

pub struct Arena {
    base: usize,
    end: usize,
    free: *mut Block,
    pub stats: Stats,
}

struct Global(UnsafeCell<Option<Arena>>);
unsafe impl Sync for Global {}
static ARENA: Global = Global(UnsafeCell::new(None));

fn round16(n: usize) -> usize {
    (n + 15) & !15
}

impl Arena {
    unsafe fn block_size(b: *mut Block) -> usize {
        (*b).size & !FLAGS
    }
    unsafe fn next_of(&self, b: *mut Block) -> *mut Block {
        let n = b as usize + Self::block_size(b);
        if n < self.end { n as *mut Block } else { null_mut() }
    }
    unsafe fn unlink(&mut self, b: *mut Block) {
        if !(*b).prev.is_null() { (*(*b).prev).next = (*b).next } else { self.free = (*b).next }
        if !(*b).next.is_null() { (*(*b).next).prev = (*b).prev }
    }
    unsafe fn push(&mut self, b: *mut Block) {
        (*b).prev = null_mut();
        (*b).next = self.free;
        if !self.free.is_null() { (*self.free).prev = b }
        self.free = b;
    }
    unsafe fn set_free(&mut self, b: *mut Block, size: usize, prev_size: usize) {
        (*b).size = size;
        (*b).prev_size = prev_size;
        let n = self.next_of(b);
        if !n.is_null() { (*n).prev_size = size }
        self.push(b);
    }

    unsafe fn alloc(&mut self, size: usize, align: usize, libcrypto: bool) -> *mut u8 {
        let align = align.max(16);
        if size > self.end - self.base || !align.is_power_of_two() {
            self.stats.failures += 1;
            return null_mut();
        }
        let need = (round16(size) + HEADER).max(MIN_BLOCK);
        let mut b = self.free;
        while !b.is_null() {
            let start = b as usize;
            let bsize = Self::block_size(b);
            let mut payload = (start + HEADER + align - 1) & !(align - 1);
            while payload - HEADER != start && payload - HEADER - start < MIN_BLOCK {
                payload += align;
            }
            let at = payload - HEADER;
            if at + need <= start + bsize {
                self.unlink(b);
                let prev_size = (*b).prev_size;
                let mut avail = bsize;
                let mut prev = prev_size;
                if at != start {
                    let front = at - start;
                    self.set_free(b, front, prev_size);
                    avail -= front;
                    prev = front;
                }
                let block = at as *mut Block;
                (*block).prev_size = prev;
                let mut used = avail;
                if avail - need >= MIN_BLOCK {
                    used = need;
                    let tail = (at + need) as *mut Block;
                    (*block).size = need;
                    self.set_free(tail, avail - need, need);
                }
                (*block).size = used | USED | if libcrypto { LIBCRYPTO } else { 0 };
                let n = self.next_of(block);
                if !n.is_null() { (*n).prev_size = used }
                let s = &mut self.stats;
                s.in_use += used;
                s.peak = s.peak.max(s.in_use);
                s.high_water = s.high_water.max(at + used - self.base);
                s.allocations += 1;
                if libcrypto {
                    s.libcrypto_in_use += used;
                    s.libcrypto_peak = s.libcrypto_peak.max(s.libcrypto_in_use);
                    s.libcrypto_allocations += 1;
                }
                return payload as *mut u8;
            }
            b = (*b).next;
        }
        self.stats.failures += 1;
        null_mut()
    }

    unsafe fn release(&mut self, p: *mut u8) {
        let mut b = (p as usize - HEADER) as *mut Block;
        let flags = (*b).size & FLAGS;
        if flags & USED == 0 {
            crate::sys::fatal("arena: double free");
        }
        let mut size = Self::block_size(b);
        self.stats.in_use -= size;
        self.stats.frees += 1;
        if flags & LIBCRYPTO != 0 { self.stats.libcrypto_in_use -= size }
        let n = self.next_of(b);
        if !n.is_null() && (*n).size & USED == 0 {
            self.unlink(n);
            size += Self::block_size(n);
        }
        let mut prev_size = (*b).prev_size;
        if prev_size != 0 {
            let p = (b as usize - prev_size) as *mut Block;
            if (*p).size & USED == 0 {
                self.unlink(p);
                size += prev_size;
                prev_size = (*p).prev_size;
                b = p;
            }
        }
        self.set_free(b, size, prev_size);
    }

    unsafe fn usable(p: *mut u8) -> usize {
        Self::block_size((p as usize - HEADER) as *mut Block) - HEADER
    }
}

/// Makes `region` the heap, replacing any earlier arena (its blocks must all be gone).
pub fn install(base: *mut u8, len: usize) {
    let start = round16(base as usize);
    let end = (base as usize + len) & !15;
    let mut arena = Arena { base: start, end, free: null_mut(), stats: Stats::default() };
    unsafe {
        arena.set_free(start as *mut Block, end - start, 0);
        *ARENA.0.get() = Some(arena);
    }
}

fn with<R>(f: impl FnOnce(&mut Arena) -> R) -> Option<R> {
    unsafe { (*ARENA.0.get()).as_mut().map(f) }
}

pub fn allocate(size: usize, align: usize, libcrypto: bool) -> *mut u8 {
    with(|a| unsafe { a.alloc(size, align, libcrypto) }).unwrap_or(null_mut())
}

/// True if the arena handed out `p`.
pub fn owns(p: *mut u8) -> bool {
    with(|a| (p as usize) >= a.base && (p as usize) < a.end).unwrap_or(false)
}

pub fn release(p: *mut u8) {
    with(|a| unsafe { a.release(p) });
}

pub fn usable_size(p: *mut u8) -> usize {
    unsafe { Arena::usable(p) }
}

pub fn stats() -> Stats {
    with(|a| a.stats).unwrap_or_default()
}

/// Starts a new peak measurement from the current use.
pub fn reset_peak() {
    with(|a| {
        a.stats.peak = a.stats.in_use;
        a.stats.libcrypto_peak = a.stats.libcrypto_in_use;
    });
}
