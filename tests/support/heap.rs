//! The Rust heap as a test binary's allocator counts it: mimalloc (the
//! server's allocator) counting the bytes allocated and not yet freed, and
//! their peak. A test binary that wants the numbers registers it:
//! `#[global_allocator] static GLOBAL: support::heap::Counting = support::heap::Counting;`
//! It sees the whole process, so such a binary keeps its tests from
//! allocating beside each other. SQLite's own heap (C malloc) is not in it.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};

pub struct Counting;

static HEAP_BYTES: AtomicI64 = AtomicI64::new(0);
static PEAK_BYTES: AtomicI64 = AtomicI64::new(0);

fn grew(by: i64) {
    let now = HEAP_BYTES.fetch_add(by, Relaxed) + by;
    PEAK_BYTES.fetch_max(now, Relaxed);
}

// SAFETY: forwards every call unchanged to mimalloc; the counters are
// static atomics, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size() as i64);
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        grew(layout.size() as i64);
        unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        grew(new_size as i64 - layout.size() as i64);
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HEAP_BYTES.fetch_sub(layout.size() as i64, Relaxed);
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }
}

/// Bytes allocated and not yet freed.
pub fn heap_bytes() -> i64 {
    HEAP_BYTES.load(Relaxed)
}

/// The most `heap_bytes` was since the last `reset_peak`.
pub fn peak_heap_bytes() -> i64 {
    PEAK_BYTES.load(Relaxed)
}

/// Starts a new peak from the bytes held now.
pub fn reset_peak() {
    PEAK_BYTES.store(heap_bytes(), Relaxed);
}
