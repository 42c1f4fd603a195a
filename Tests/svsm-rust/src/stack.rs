//! The request stack: every call into the object runs on a stack the harness owns (as an
//! SVSM runs requests on a task stack of fixed size), painted beforehand so its deepest use
//! can be read off afterwards. The lowest page is a guard.
use crate::sys::Region;
use core::cell::UnsafeCell;
use core::ffi::c_void;

const PAINT: u64 = 0x5356_534d_5354_4b21; // "SVSMSTK!"

struct State {
    region: Option<Region>,
}
struct Global(UnsafeCell<State>);
unsafe impl Sync for Global {}
static STACK: Global = Global(UnsafeCell::new(State { region: None }));

/// Allocates a request stack of `bytes` (plus a guard page) and paints it.
pub fn install(bytes: usize) {
    let region = Region::new(bytes + 4096);
    region.guard_first_page();
    unsafe { (*STACK.0.get()).region = Some(region) };
    repaint();
}

/// Paints the whole stack: the next `deepest` measures from here.
pub fn repaint() {
    if let Some(r) = unsafe { &(*STACK.0.get()).region } {
        let words = unsafe { core::slice::from_raw_parts_mut(r.base.add(4096) as *mut u64, (r.len - 4096) / 8) };
        for w in words.iter_mut() {
            *w = PAINT;
        }
    }
}

/// Bytes of the stack touched since the last paint.
pub fn deepest() -> usize {
    let Some(r) = (unsafe { &(*STACK.0.get()).region }) else { return 0 };
    let words = unsafe { core::slice::from_raw_parts(r.base.add(4096) as *const u64, (r.len - 4096) / 8) };
    let untouched = words.iter().take_while(|&&w| w == PAINT).count();
    (words.len() - untouched) * 8
}

extern "C" fn trampoline(closure: *mut c_void) {
    let f = unsafe { &mut *(closure as *mut &mut dyn FnMut()) };
    f();
}

/// Runs `f` on the request stack (directly if none is installed).
pub fn on_request_stack<R>(f: impl FnOnce() -> R) -> R {
    let mut f = Some(f);
    let mut result: Option<R> = None;
    let mut call = || result = Some((f.take().unwrap())());
    let top = unsafe { (*STACK.0.get()).region.as_ref().map(|r| r.base as usize + r.len) };
    match top {
        None => call(),
        Some(top) => {
            let mut dynamic: &mut dyn FnMut() = &mut call;
            let closure = &mut dynamic as *mut &mut dyn FnMut() as *mut c_void;
            unsafe {
                core::arch::asm!(
                    "mov r12, rsp",
                    "mov rsp, {top}",
                    "call {entry}",
                    "mov rsp, r12",
                    top = in(reg) top & !15,
                    entry = in(reg) trampoline as extern "C" fn(*mut c_void),
                    in("rdi") closure,
                    out("r12") _,
                    clobber_abi("C"),
                );
            }
        }
    }
    result.unwrap()
}
