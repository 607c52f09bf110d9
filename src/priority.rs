//! Thread priorities: the data plane never waits on background work.
//! Threads that may burn CPU for a while — the query-log writer, the list
//! compiler — lower their own priority, so on a busy board the UDP threads
//! answering queries always run first.

/// Nice value for background threads (0 is normal, 19 the lowest).
const BACKGROUND_NICE: libc::c_int = 10;

/// Lowers the calling thread's priority (on Linux, nice is per thread).
/// Failure only costs priority, so it is ignored.
pub fn background_thread() {
    // SAFETY: setpriority with who = 0 changes only the calling thread.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, BACKGROUND_NICE);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_the_calling_thread_is_lowered() {
        // SAFETY: getpriority only reads.
        let nice = || unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        let before = nice();
        let lowered = std::thread::spawn(move || {
            super::background_thread();
            nice()
        })
        .join()
        .unwrap();
        // Already lower than that (tests run under nice): raising it back
        // would need privileges, and is not wanted either.
        let want = if before > super::BACKGROUND_NICE {
            before
        } else {
            super::BACKGROUND_NICE
        };
        assert!(
            lowered == want || lowered == super::BACKGROUND_NICE,
            "{lowered}"
        );
        assert_eq!(nice(), before, "the calling thread only");
    }
}
