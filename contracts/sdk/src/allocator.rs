//! The global allocator on `wasm32`: a bump allocator from `__heap_base`, over pages
//! grown on demand.
//!
//! A contract instance lives for one call, so memory is never worth returning: the
//! allocator only hands out fresh bytes past the last allocation, growing linear memory
//! a page at a time, and takes back just the most recent block (which makes a growing
//! `Vec` or `String` at the end of the heap cheap to extend in place). It is a few
//! dozen instructions, deterministic, and needs no free lists. When memory cannot
//! grow (the host's page limit), allocation fails and the contract reverts with
//! "memory allocation of N bytes failed" through the panic handler.

use core::alloc::{GlobalAlloc, Layout};
use core::arch::wasm32;
use core::cell::Cell;
use core::ptr;

const PAGE_BYTES: usize = 65536;

unsafe extern "C" {
    /// First byte past the stack and static data, defined by `wasm-ld`.
    static __heap_base: u8;
}

struct Bump {
    /// First free byte; 0 until the first allocation.
    next: Cell<usize>,
    /// End of linear memory as this allocator last saw it.
    end: Cell<usize>,
}

// SAFETY: a contract instance is single-threaded (threads are disabled by the host).
unsafe impl Sync for Bump {}

#[global_allocator]
static ALLOCATOR: Bump = Bump {
    next: Cell::new(0),
    end: Cell::new(0),
};

impl Bump {
    /// Makes `[.., new_next)` addressable, growing memory when needed.
    fn reserve_to(&self, new_next: usize) -> bool {
        if self.end.get() == 0 {
            // The heap starts after the stack and data (`__heap_base`, from the linker), in
            // the pages the module has: a small call never grows memory. (1.96 needs no block.)
            // SAFETY: only the symbol's address is taken, never its contents.
            #[allow(unused_unsafe)]
            let base = unsafe { &raw const __heap_base } as usize;
            self.next.set(base);
            self.end.set(wasm32::memory_size(0) * PAGE_BYTES);
        }
        let end = self.end.get();
        if new_next <= end {
            return true;
        }
        let pages = (new_next - end).div_ceil(PAGE_BYTES);
        if wasm32::memory_grow(0, pages) == usize::MAX {
            return false;
        }
        self.end.set(end + pages * PAGE_BYTES);
        true
    }

    fn start_for(&self, layout: Layout) -> Option<(usize, usize)> {
        if self.end.get() == 0 && !self.reserve_to(0) {
            return None;
        }
        let start = self.next.get().checked_next_multiple_of(layout.align())?;
        let new_next = start.checked_add(layout.size())?;
        Some((start, new_next))
    }
}

unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.start_for(layout) {
            Some((start, new_next)) if self.reserve_to(new_next) => {
                self.next.set(new_next);
                start as *mut u8
            }
            _ => ptr::null_mut(),
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // Only the most recent block can be taken back.
        if ptr as usize + layout.size() == self.next.get() {
            self.next.set(ptr as usize);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let start = ptr as usize;
        if start + layout.size() == self.next.get() {
            // The last block grows or shrinks where it is.
            if let Some(new_next) = start.checked_add(new_size) {
                if self.reserve_to(new_next) {
                    self.next.set(new_next);
                    return ptr;
                }
            }
            return ptr::null_mut();
        }
        if new_size <= layout.size() {
            return ptr;
        }
        // SAFETY: the caller guarantees `layout.align()` is valid and `new_size` does
        // not overflow when rounded to it.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: a fresh block of `new_size >= layout.size()` bytes cannot overlap the
        // old one, which stays valid for `layout.size()` bytes.
        unsafe {
            let new = self.alloc(new_layout);
            if !new.is_null() {
                ptr::copy_nonoverlapping(ptr, new, layout.size());
            }
            new
        }
    }
}
