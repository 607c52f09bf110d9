//! Gives back what only start-up needed. Start-up runs code the service
//! never runs again (configuration, migrations, compiling lists, building
//! the web router), and the kernel maps our program file around every page
//! it touches, so the process ends start-up with most of its code mapped.
//! [`startup_pages`] unmaps the clean pages of our program file (and of
//! shared libraries, on a build that has them): they stay in the kernel's
//! page cache, so the code the service still runs
//! maps back in on first use without reading flash, and what is never
//! used again stops counting against the process (and is the first thing
//! the kernel drops when the board runs short of memory).
//! Only read-only, never-copied mappings are touched: their contents after
//! a re-map are exactly the file's, so nothing can change underneath code.
//! Not for: the allocator's memory (the cache and the filter bound theirs).

use std::io;

/// Unmaps the clean file-backed code and constants of the running
/// program. Returns the bytes that were mapped before.
pub fn startup_pages() -> io::Result<u64> {
    let smaps = std::fs::read_to_string("/proc/self/smaps")?;
    let mut dropped = 0;
    for m in clean_file_mappings(&smaps) {
        // SAFETY: the range is a whole mapping of a program or library
        // file that is not writable and holds no copied-on-write page, so
        // MADV_DONTNEED only drops page-table entries; the next access
        // maps the same file page again.
        let rc = unsafe { libc::madvise(m.start as *mut libc::c_void, m.len, libc::MADV_DONTNEED) };
        if rc == 0 {
            dropped += m.rss_kib * 1024;
        }
    }
    Ok(dropped)
}

/// KiB of the process's resident pages that are backed by files (code,
/// constants, shared mappings): /proc/self/statm's third field. Cheap
/// enough to read every few seconds, to decide when unmapping is worth it.
pub fn file_pages_kib() -> io::Result<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm")?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(2)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| io::Error::other(format!("/proc/self/statm: unexpected {statm:?}")))?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u64;
    Ok(pages * page / 1024)
}

#[derive(Debug, PartialEq)]
struct Mapping {
    start: usize,
    len: usize,
    rss_kib: u64,
}

/// File mappings that are not writable and have no anonymous
/// (copied-on-write) pages, from the text of /proc/self/smaps.
fn clean_file_mappings(smaps: &str) -> Vec<Mapping> {
    let mut out = Vec::new();
    let mut current: Option<(Mapping, bool)> = None;
    let finish = |c: Option<(Mapping, bool)>, out: &mut Vec<Mapping>| {
        if let Some((m, true)) = c {
            out.push(m);
        }
    };
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-')
            && let (Ok(start), Ok(end)) =
                (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
        {
            finish(current.take(), &mut out);
            let perms = fields.next().unwrap_or("");
            let name = fields.nth(3).unwrap_or("");
            // A file (not [heap], [vdso] or an anonymous mapping), and not
            // a device.
            let file = name.starts_with('/') && !name.starts_with("/dev/");
            let eligible = file && perms.starts_with('r') && !perms.contains('w');
            current = Some((
                Mapping {
                    start,
                    len: end - start,
                    rss_kib: 0,
                },
                eligible,
            ));
            continue;
        }
        let Some((m, eligible)) = current.as_mut() else {
            continue;
        };
        let kib = || fields.clone().next().and_then(|v| v.parse::<u64>().ok());
        match first {
            "Rss:" => m.rss_kib = kib().unwrap_or(0),
            // Copied-on-write pages (relocations): dropping them would
            // bring back the file's unrelocated bytes.
            "Anonymous:" if kib() != Some(0) => *eligible = false,
            _ => {}
        }
    }
    finish(current, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
55d0a0000000-55d0a0100000 r--p 00000000 fe:00 42 /usr/bin/glory-hole
Rss:                 400 kB
Anonymous:             0 kB
55d0a0100000-55d0a0800000 r-xp 00100000 fe:00 42 /usr/bin/glory-hole
Rss:                5000 kB
Anonymous:             0 kB
55d0a0800000-55d0a0900000 r--p 00800000 fe:00 42 /usr/bin/glory-hole
Rss:                 500 kB
Anonymous:           500 kB
55d0a0900000-55d0a0910000 rw-p 00900000 fe:00 42 /usr/bin/glory-hole
Rss:                  64 kB
Anonymous:            64 kB
7f0000000000-7f0000100000 r-xp 00000000 fe:00 7 /usr/lib/libc.so.6
Rss:                1000 kB
Anonymous:             0 kB
7f0000200000-7f0000300000 rw-p 00000000 00:00 0
Rss:                1000 kB
Anonymous:          1000 kB
7f0000400000-7f0000500000 r--s 00000000 00:05 9 /dev/fb0
Rss:                1000 kB
Anonymous:             0 kB
7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0 [vdso]
Rss:                   8 kB
Anonymous:             0 kB
";

    #[test]
    fn file_pages_shrink_when_unmapped() {
        let before = file_pages_kib().unwrap();
        assert!(before > 0, "a running program has file pages");
        startup_pages().unwrap();
        let after = file_pages_kib().unwrap();
        assert!(after < before, "file pages {before} KiB -> {after} KiB");
    }

    #[test]
    fn only_clean_read_only_file_mappings_are_chosen() {
        let got = clean_file_mappings(SMAPS);
        assert_eq!(
            got,
            vec![
                Mapping {
                    start: 0x55d0a0000000,
                    len: 0x100000,
                    rss_kib: 400
                },
                Mapping {
                    start: 0x55d0a0100000,
                    len: 0x700000,
                    rss_kib: 5000
                },
                Mapping {
                    start: 0x7f0000000000,
                    len: 0x100000,
                    rss_kib: 1000
                },
            ],
            "the relocated (copied), writable, anonymous and device mappings are left alone"
        );
    }

    #[test]
    fn the_running_program_keeps_running_after_its_pages_are_dropped() {
        let before = startup_pages().expect("reads /proc/self");
        // Code and constants fault back in from the page cache.
        let v: Vec<String> = (0..1000).map(|i| format!("{i:x}")).collect();
        assert_eq!(v[255], "ff");
        assert!(before > 0, "the test binary had pages of its own mapped");
    }
}
