//! SQLite allocates from mimalloc once `allocator::tune` ran (its own test
//! binary, so nothing has initialised SQLite before).

use rusqlite::ffi;
use std::ffi::c_void;

unsafe extern "C" {
    fn mi_is_in_heap_region(p: *const c_void) -> bool;
}

#[test]
fn sqlite_allocates_from_mimalloc_after_tune() {
    assert!(
        glory_hole::allocator::route_sqlite(),
        "SQLITE_CONFIG_MALLOC refused"
    );
    // SAFETY: a plain allocation through SQLite's allocator, freed below.
    let p = unsafe { ffi::sqlite3_malloc(4000) };
    assert!(!p.is_null());
    // SAFETY: p is a live allocation.
    assert!(
        unsafe { mi_is_in_heap_region(p) },
        "SQLite's memory is not mimalloc's"
    );
    // SAFETY: p came from sqlite3_malloc.
    unsafe { ffi::sqlite3_free(p) };

    let c = rusqlite::Connection::open_in_memory().unwrap();
    c.execute_batch("CREATE TABLE t (x TEXT); INSERT INTO t VALUES (hex(randomblob(5000)));")
        .unwrap();
    let n: i64 = c
        .query_row("SELECT length(x) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 10000);
}
