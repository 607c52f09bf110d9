//! A cache-line prefetch hint for the writer's fixed-size tables (the name
//! cache, the top-domain counters): a group's look-ups issue their loads
//! first, so their misses overlap instead of each stalling its own row.
//!
//! Not for: anything that must happen; a prefetch is a hint and may do
//! nothing (other CPUs).

/// Asks the CPU to start loading `p`'s cache line and go on. A hint only:
/// it never faults.
#[inline(always)]
pub(super) fn prefetch<T>(p: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 only reads, and `p` is a valid reference.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>((p as *const T).cast());
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: PRFM only reads, and `p` is a valid reference.
    unsafe {
        std::arch::asm!("prfm pldl1keep, [{0}]", in(reg) p as *const T, options(nostack, readonly, preserves_flags));
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let _ = p;
}
