//! One allocator for the whole process: mimalloc, tuned to give memory
//! back, and SQLite routed to it too. SQLite otherwise uses the C
//! library's malloc (glibc here, musl on the board), whose per-thread
//! arenas keep their own free pages: under a flood of new names that was
//! about a megabyte more peak RSS (benches/memory.sh, docs/performance.md).
//! Not for: bounding anything; the cache and the filter bound their bytes.

// Links mimalloc's C library into every binary of the crate, tests too.
extern crate mimalloc as _;

use rusqlite::ffi;
use std::ffi::{c_int, c_long, c_void};

/// mimalloc's `mi_option_purge_delay` (mimalloc.h).
const MI_OPTION_PURGE_DELAY: i32 = 15;

unsafe extern "C" {
    fn mi_option_set(option: i32, value: c_long);
    fn mi_malloc(size: usize) -> *mut c_void;
    fn mi_realloc(p: *mut c_void, size: usize) -> *mut c_void;
    fn mi_free(p: *mut c_void);
    fn mi_usable_size(p: *const c_void) -> usize;
    fn mi_good_size(size: usize) -> usize;
}

/// Call first thing in `main`, before any thread or SQLite connection.
/// Freed pages go back to the kernel at once rather than after a delay:
/// under a flood of new names the cache evicts and inserts without pause,
/// and pages kept "for a moment" add up to megabytes of RSS.
/// `MIMALLOC_PURGE_DELAY` in the environment still wins, for measuring.
pub fn tune() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets a documented option; mimalloc reads it on its next purge.
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, 0) }
    }
    let _ = route_sqlite();
}

/// Whether SQLite now allocates from mimalloc (false if it was already
/// initialised, which only a test can arrange).
pub fn route_sqlite() -> bool {
    let methods = ffi::sqlite3_mem_methods {
        xMalloc: Some(sqlite_malloc),
        xFree: Some(sqlite_free),
        xRealloc: Some(sqlite_realloc),
        xSize: Some(sqlite_size),
        xRoundup: Some(sqlite_roundup),
        xInit: Some(sqlite_init),
        xShutdown: Some(sqlite_shutdown),
        pAppData: std::ptr::null_mut(),
    };
    // SAFETY: SQLITE_CONFIG_MALLOC takes a pointer to the methods and
    // copies them; it is refused (SQLITE_MISUSE) once SQLite is
    // initialised, in which case SQLite simply keeps the C allocator.
    let rc = unsafe { ffi::sqlite3_config(ffi::SQLITE_CONFIG_MALLOC, &methods) };
    if rc != ffi::SQLITE_OK {
        tracing::debug!("SQLite keeps the C allocator (sqlite3_config: {rc})");
    }
    rc == ffi::SQLITE_OK
}

unsafe extern "C" fn sqlite_malloc(n: c_int) -> *mut c_void {
    // SAFETY: mimalloc's malloc; SQLite never asks for a negative size.
    unsafe { mi_malloc(n.max(0) as usize) }
}

unsafe extern "C" fn sqlite_free(p: *mut c_void) {
    // SAFETY: p came from sqlite_malloc or sqlite_realloc.
    unsafe { mi_free(p) }
}

unsafe extern "C" fn sqlite_realloc(p: *mut c_void, n: c_int) -> *mut c_void {
    // SAFETY: p came from sqlite_malloc or sqlite_realloc.
    unsafe { mi_realloc(p, n.max(0) as usize) }
}

unsafe extern "C" fn sqlite_size(p: *mut c_void) -> c_int {
    // SAFETY: p came from sqlite_malloc or sqlite_realloc (SQLite's contract).
    unsafe { mi_usable_size(p) as c_int }
}

unsafe extern "C" fn sqlite_roundup(n: c_int) -> c_int {
    // SAFETY: a pure function of its argument.
    unsafe { mi_good_size(n.max(0) as usize) as c_int }
}

unsafe extern "C" fn sqlite_init(_: *mut c_void) -> c_int {
    ffi::SQLITE_OK
}

unsafe extern "C" fn sqlite_shutdown(_: *mut c_void) {}
