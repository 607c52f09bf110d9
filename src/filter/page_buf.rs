//! `PageBuf`: a growable `[u64]` on its own anonymous memory mapping.
//!
//! The index and the rebuild's work array are the only large allocations in
//! the process. Keeping them out of the allocator means their memory goes
//! back to the kernel the moment they are dropped (an allocator may keep
//! freed memory resident for reuse), pages never written are never
//! resident, and growing is `mremap` without a copy. That is what keeps the
//! peak during a rebuild within steady + 1.5x the index. Linux only.
//! Not for: web pages (see `web::pages`) or small vectors (use `Vec`).

use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

pub struct PageBuf {
    ptr: NonNull<u64>,
    len: usize,
    /// Elements the mapping holds; 0 means no mapping.
    cap: usize,
}

// SAFETY: PageBuf owns its mapping exclusively, like Vec<u64>.
unsafe impl Send for PageBuf {}
// SAFETY: shared access is read-only through Deref.
unsafe impl Sync for PageBuf {}

fn bytes(cap: usize) -> usize {
    cap.checked_mul(8).expect("PageBuf size overflows")
}

impl PageBuf {
    pub fn new() -> PageBuf {
        PageBuf {
            ptr: NonNull::dangling(),
            len: 0,
            cap: 0,
        }
    }

    /// Room for `cap` elements; only pages written become resident.
    pub fn with_capacity(cap: usize) -> PageBuf {
        let mut b = PageBuf::new();
        b.reserve_total(cap);
        b
    }

    /// `len` zeroes.
    pub fn zeroed(len: usize) -> PageBuf {
        let mut b = PageBuf::with_capacity(len);
        // Fresh anonymous pages read as zero.
        b.len = len;
        b
    }

    fn reserve_total(&mut self, cap: usize) {
        if cap <= self.cap {
            return;
        }
        let new = if self.cap == 0 {
            // SAFETY: a fresh private anonymous mapping; checked below.
            unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    bytes(cap),
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            }
        } else {
            // SAFETY: ptr/cap describe our own live mapping.
            unsafe {
                libc::mremap(
                    self.ptr.as_ptr().cast(),
                    bytes(self.cap),
                    bytes(cap),
                    libc::MREMAP_MAYMOVE,
                )
            }
        };
        if new == libc::MAP_FAILED {
            panic!(
                "out of memory mapping {} MiB: {}",
                bytes(cap) >> 20,
                std::io::Error::last_os_error()
            );
        }
        self.ptr = NonNull::new(new.cast()).expect("mmap returned null");
        self.cap = cap;
    }

    pub fn push(&mut self, v: u64) {
        if self.len == self.cap {
            self.reserve_total((self.cap * 2).max(512));
        }
        // SAFETY: len < cap after the reserve.
        unsafe { self.ptr.as_ptr().add(self.len).write(v) };
        self.len += 1;
    }

    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Grows to `len` with zeroes, or truncates.
    pub fn resize_zeroed(&mut self, len: usize) {
        if len > self.cap {
            self.reserve_total(len.max(self.cap + self.cap / 4));
        }
        for i in self.len..len {
            // SAFETY: i < len <= cap.
            unsafe { self.ptr.as_ptr().add(i).write(0) };
        }
        self.len = len;
    }

    /// `len` zeroes on huge pages where the kernel has them (2 MiB on x86_64
    /// and on the Pi's 4 KiB-page kernels): the served table is probed at
    /// random, and with 4 KiB pages almost every probe also misses the TLB
    /// (a page walk, far dearer under a hypervisor). The mapping is rounded
    /// up to whole, aligned 2 MiB pages so all of it can be huge; the table
    /// writes every page anyway, so residency grows by at most the rounding.
    /// Falls back to ordinary pages if anything fails.
    pub fn zeroed_huge(len: usize) -> PageBuf {
        const HUGE: usize = 2 << 20;
        if bytes(len) < HUGE {
            return PageBuf::zeroed(len);
        }
        let size = bytes(len).div_ceil(HUGE) * HUGE;
        // SAFETY: a fresh private anonymous mapping; checked below.
        let raw = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size + HUGE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if raw == libc::MAP_FAILED {
            return PageBuf::zeroed(len);
        }
        let start = raw as usize;
        let aligned = start.div_ceil(HUGE) * HUGE;
        let tail = start + size + HUGE - (aligned + size);
        // SAFETY: both trimmed ranges lie inside the mapping just made and
        // are page-aligned; the advice is on what remains.
        unsafe {
            if aligned > start {
                libc::munmap(raw, aligned - start);
            }
            if tail > 0 {
                libc::munmap((aligned + size) as *mut libc::c_void, tail);
            }
            libc::madvise(aligned as *mut libc::c_void, size, libc::MADV_HUGEPAGE);
        }
        PageBuf {
            ptr: NonNull::new(aligned as *mut u64).expect("mmap returned null"),
            len,
            cap: size / 8,
        }
    }

    /// Gives the unused tail of the mapping back to the kernel.
    pub fn shrink_to_fit(&mut self) {
        let keep_pages = bytes(self.len).div_ceil(4096) * 4096;
        if self.cap == 0 || keep_pages >= bytes(self.cap) {
            return;
        }
        // SAFETY: the range is page-aligned, inside our mapping and past len.
        unsafe {
            libc::madvise(
                self.ptr.as_ptr().cast::<u8>().add(keep_pages).cast(),
                bytes(self.cap) - keep_pages,
                libc::MADV_DONTNEED,
            );
        }
    }
}

impl Default for PageBuf {
    fn default() -> Self {
        PageBuf::new()
    }
}

impl Drop for PageBuf {
    fn drop(&mut self) {
        if self.cap > 0 {
            // SAFETY: our own mapping, unmapped once.
            unsafe { libc::munmap(self.ptr.as_ptr().cast(), bytes(self.cap)) };
        }
    }
}

impl Deref for PageBuf {
    type Target = [u64];
    fn deref(&self) -> &[u64] {
        // SAFETY: len elements are initialised (written or zero pages).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl DerefMut for PageBuf {
    fn deref_mut(&mut self) -> &mut [u64] {
        // SAFETY: as in deref, and we hold &mut self.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_truncates_and_zeroes() {
        let mut b = PageBuf::with_capacity(3);
        for i in 0..10_000u64 {
            b.push(i);
        }
        assert_eq!(b.len(), 10_000);
        assert_eq!(b[9_999], 9_999);
        b.truncate(10);
        b.shrink_to_fit();
        assert_eq!(&b[..3], &[0, 1, 2]);
        b.resize_zeroed(20);
        assert_eq!(&b[9..12], &[9, 0, 0]);
        let z = PageBuf::zeroed(100_000);
        assert!(z.iter().all(|v| *v == 0));
        let mut h = PageBuf::zeroed_huge(600_000);
        assert_eq!(
            h.as_ptr() as usize % (2 << 20),
            0,
            "huge table is 2 MiB aligned"
        );
        assert!(h.iter().all(|v| *v == 0));
        h[599_999] = 7;
        h.resize_zeroed(700_000);
        assert_eq!((h[599_999], h[600_000], h[699_999]), (7, 0, 0));
        assert_eq!(PageBuf::zeroed_huge(10).len(), 10);
        assert!(PageBuf::new().is_empty());
    }
}
