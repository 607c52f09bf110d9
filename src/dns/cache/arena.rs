//! A shard's answer bytes: fixed-size segments, each one allocation, filled
//! in insertion order, one stream of segments per S3-FIFO queue.
//!
//! One heap block per answer let the cache's real memory drift above what
//! it charged: answers are allocated amid the forwarding path's transient
//! blocks of similar sizes, so freed answers left allocator pages partly
//! used (measured ~1.10x the budget in the running server). Here the cache
//! holds a few large blocks and charges exactly those.
//!
//! Entries leave each queue in the order they entered it (S3-FIFO moves an
//! entry to main, or round main again, only at a queue's head, and then its
//! bytes are copied to the end of main's stream), so a stream's segments
//! empty oldest first and a segment is freed when its last entry leaves.
//! Holes left by replaced, expired or removed entries are reclaimed when the
//! rest of their segment leaves by the queue order. An answer larger than a
//! segment gets a segment of its own size.
//!
//! Not for: deciding what to evict; [`super::shard`] does that, and refers to
//! bytes here by [`Loc`]: a segment id and a pointer into it, valid until
//! released. Segments never move while they live, so a hit reads an
//! answer through the entry's pointer with no table in between.

use std::alloc::{Layout, alloc_zeroed, dealloc, handle_alloc_error};
use std::mem::size_of;
use std::ptr::NonNull;

const NIL: u32 = u32::MAX;

/// Which queue's stream an answer's bytes are appended to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Small = 0,
    Main = 1,
}

/// Where an entry's bytes are: their segment's id, and their first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Loc {
    pub seg: u32,
    pub at: NonNull<u8>,
}

struct Segment {
    /// The segment's `size` bytes, allocated zeroed; dangling while the id
    /// is free.
    ptr: NonNull<u8>,
    /// 0 while the id is free.
    size: usize,
    /// Bytes handed out from the start.
    used: u32,
    /// Entries whose bytes are here.
    live: u32,
    #[cfg(test)]
    born: Born,
}

/// When and for which stream (`None`: oversize) a segment was opened.
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Born {
    pub seq: u64,
    pub stream: Option<Stream>,
}

/// A held segment as tests see it.
#[cfg(test)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct Held {
    pub id: u32,
    pub size: usize,
    pub live: u32,
    pub born: Born,
}

pub(crate) struct Arena {
    segments: Vec<Segment>,
    /// Ids in `segments` whose buffer was freed, for reuse.
    free: Vec<u32>,
    /// Each stream's segment being filled, or NIL.
    current: [u32; 2],
    segment_size: usize,
    /// Allocator bytes of the buffers held.
    held: usize,
    #[cfg(test)]
    opened: u64,
}

impl Arena {
    /// Segments of `clamp(budget / 32, 1 KiB, 16 KiB)`, a power of two (an
    /// exact allocator size class): small enough that even a 1 MiB cache's
    /// 16 KiB shards waste little in their two partly filled segments,
    /// large enough that a segment is a few dozen answers.
    pub fn new(budget: usize) -> Arena {
        let segment_size = (budget / 32).clamp(1024, 16 * 1024);
        Arena {
            segments: Vec::new(),
            free: Vec::new(),
            current: [NIL; 2],
            segment_size: 1 << segment_size.ilog2(),
            held: 0,
            #[cfg(test)]
            opened: 0,
        }
    }

    #[cfg(test)]
    pub fn segment_size(&self) -> usize {
        self.segment_size
    }

    /// Every byte held: the buffers at their allocator size, and the tables.
    pub fn bytes(&self) -> usize {
        self.held
            + self.segments.capacity() * size_of::<Segment>()
            + self.free.capacity() * size_of::<u32>()
    }

    /// The `len` bytes stored at `at`.
    ///
    /// # Safety
    /// `at` and `len` are what [`Arena::push`] or [`Arena::move_to`] on this
    /// arena returned and were given, and `at` has not been released since.
    #[inline]
    pub unsafe fn get(&self, at: Loc, len: usize) -> &[u8] {
        // SAFETY: per the contract, `len` bytes at `at` lie inside a segment
        // that is still allocated (its live count includes this entry), were
        // initialised (allocated zeroed, then written), and are only written
        // through `&mut self`, which this borrow of `self` excludes.
        unsafe { std::slice::from_raw_parts(at.at.as_ptr(), len) }
    }

    /// Appends `data` to `stream`.
    pub fn push(&mut self, stream: Stream, data: &[u8]) -> Loc {
        let at = self.reserve(stream, data.len());
        // SAFETY: `reserve` handed out `data.len()` bytes at `at`, inside a
        // live segment and apart from any other entry's; `data` is a
        // caller's buffer, never the arena's own memory.
        unsafe {
            at.at
                .as_ptr()
                .copy_from_nonoverlapping(data.as_ptr(), data.len());
        }
        at
    }

    /// Moves the `len` bytes at `from` to the end of `stream` and releases
    /// the old place. A dedicated (oversize) segment is not part of any
    /// stream's order, so its bytes stay where they are.
    pub fn move_to(&mut self, stream: Stream, from: Loc, len: usize) -> Loc {
        if len > self.segment_size {
            return from;
        }
        // The source keeps a live count of at least 1 here, so reserving
        // cannot free it.
        let to = self.reserve(stream, len);
        // SAFETY: `from` is a live entry's `len` bytes (the caller's
        // contract, as for `get`) and `to` the `len` bytes just reserved,
        // both inside live segments; `copy` allows any overlap.
        unsafe { std::ptr::copy(from.at.as_ptr(), to.at.as_ptr(), len) };
        self.release(from);
        to
    }

    /// One entry's bytes at `at` are no longer needed. The last entry to
    /// leave a segment frees it, or rewinds it if it is still being filled.
    pub fn release(&mut self, at: Loc) {
        let id = at.seg;
        let s = &mut self.segments[id as usize];
        debug_assert!(s.live > 0, "release of an empty segment");
        s.live -= 1;
        if s.live > 0 {
            return;
        }
        if self.current.contains(&id) {
            s.used = 0;
        } else {
            self.free_segment(id);
        }
    }

    fn reserve(&mut self, stream: Stream, len: usize) -> Loc {
        if len > self.segment_size {
            return self.open(len, len, None);
        }
        let cur = self.current[stream as usize];
        if cur != NIL {
            let s = &mut self.segments[cur as usize];
            let used = s.used as usize;
            if s.size - used >= len {
                s.used += len as u32;
                s.live += 1;
                return Loc {
                    seg: cur,
                    // SAFETY: `used + len <= size`: in bounds of the segment.
                    at: unsafe { s.ptr.add(used) },
                };
            }
            self.current[stream as usize] = NIL;
            if s.live == 0 {
                self.free_segment(cur);
            }
        }
        let at = self.open(self.segment_size, len, Some(stream));
        self.current[stream as usize] = at.seg;
        at
    }

    /// A new segment of `size` bytes with its first `len` handed out.
    fn open(&mut self, size: usize, len: usize, _stream: Option<Stream>) -> Loc {
        #[cfg(test)]
        {
            self.opened += 1;
        }
        let layout = segment_layout(size);
        // SAFETY: the layout's size is at least 1 KiB or an answer's
        // length, never zero.
        let ptr = NonNull::new(unsafe { alloc_zeroed(layout) })
            .unwrap_or_else(|| handle_alloc_error(layout));
        let seg = Segment {
            ptr,
            size,
            used: len as u32,
            live: 1,
            #[cfg(test)]
            born: Born {
                seq: self.opened,
                stream: _stream,
            },
        };
        self.held += alloc_size(size);
        let id = match self.free.pop() {
            Some(id) => {
                self.segments[id as usize] = seg;
                id
            }
            None => {
                self.segments.push(seg);
                (self.segments.len() - 1) as u32
            }
        };
        Loc { seg: id, at: ptr }
    }

    fn free_segment(&mut self, id: u32) {
        let s = &mut self.segments[id as usize];
        self.held -= alloc_size(s.size);
        // SAFETY: allocated in `open` with this layout, and freed once: the
        // id is marked free (size 0) right after.
        unsafe { dealloc(s.ptr.as_ptr(), segment_layout(s.size)) };
        s.ptr = NonNull::dangling();
        s.size = 0;
        s.used = 0;
        s.live = 0;
        self.free.push(id);
    }

    #[cfg(test)]
    pub fn held_segments(&self) -> Vec<Held> {
        self.segments
            .iter()
            .enumerate()
            .filter(|(_, s)| s.size > 0)
            .map(|(id, s)| Held {
                id: id as u32,
                size: s.size,
                live: s.live,
                born: s.born,
            })
            .collect()
    }

    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.held
    }
}

/// Bytes the allocator really hands out for an `n`-byte request: mimalloc's
/// size classes (8-byte steps to 64, then four classes per power of two).
pub(crate) fn alloc_size(n: usize) -> usize {
    match n {
        0 => 0,
        1..=64 => n.div_ceil(8) * 8,
        _ => {
            let step = n.next_power_of_two() / 8;
            n.div_ceil(step) * step
        }
    }
}

fn segment_layout(size: usize) -> Layout {
    Layout::from_size_align(size, 1).expect("a segment is far below isize::MAX")
}

impl Drop for Arena {
    fn drop(&mut self) {
        for s in &self.segments {
            if s.size > 0 {
                // SAFETY: a held segment, allocated in `open` with this
                // layout and not yet freed.
                unsafe { dealloc(s.ptr.as_ptr(), segment_layout(s.size)) };
            }
        }
    }
}

// SAFETY: an `Arena` owns its segments outright (nothing else points into
// them but the entries of the shard that owns the arena, which move with
// it), so it may move to another thread like a `Vec<Box<[u8]>>`.
unsafe impl Send for Arena {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tests read only what they just pushed or moved and still hold.
    fn get(a: &Arena, at: Loc, len: usize) -> &[u8] {
        // SAFETY: see above.
        unsafe { a.get(at, len) }
    }

    #[test]
    fn alloc_size_follows_size_classes() {
        assert_eq!(alloc_size(1), 8);
        assert_eq!(alloc_size(64), 64);
        assert_eq!(alloc_size(65), 80);
        assert_eq!(alloc_size(129), 160);
        assert_eq!(alloc_size(256), 256);
    }

    #[test]
    fn segment_size_follows_the_budget() {
        assert_eq!(Arena::new(0).segment_size(), 1024);
        assert_eq!(Arena::new(16 << 10).segment_size(), 1024);
        assert_eq!(Arena::new(256 << 10).segment_size(), 8 << 10);
        // memory_mib = 31: 496 KiB a shard, 15.5 KiB rounds down to a class.
        assert_eq!(Arena::new(496 << 10).segment_size(), 8 << 10);
        assert_eq!(Arena::new(64 << 20).segment_size(), 16 << 10);
    }

    #[test]
    fn bytes_come_back_as_stored_and_segments_free_when_empty() {
        let mut a = Arena::new(32 << 10);
        let size = a.segment_size();
        let blobs: Vec<Vec<u8>> = (0..40u8).map(|n| vec![n; 90 + n as usize]).collect();
        let locs: Vec<Loc> = blobs.iter().map(|b| a.push(Stream::Small, b)).collect();
        for (b, &at) in blobs.iter().zip(&locs) {
            assert_eq!(get(&a, at, b.len()), &b[..]);
        }
        let segs = a.held_segments().len();
        assert!(segs > 2, "spans several segments");
        assert_eq!(a.held(), segs * size);
        // Releasing in order frees every segment but the one being filled.
        for &at in &locs {
            a.release(at);
        }
        assert_eq!(a.held_segments().len(), 1);
        assert_eq!(a.held(), size);
        // Which is rewound and reused, not grown.
        let at = a.push(Stream::Small, &blobs[0]);
        let start = locs.iter().find(|l| l.seg == at.seg).unwrap().at;
        assert_eq!(at.at, start, "rewound to the start of its segment");
        assert_eq!(a.held_segments().len(), 1);
    }

    #[test]
    fn moved_bytes_land_at_the_end_of_main() {
        let mut a = Arena::new(32 << 10);
        let x = a.push(Stream::Small, b"first");
        let y = a.push(Stream::Small, b"second");
        let x2 = a.move_to(Stream::Main, x, 5);
        assert_eq!(get(&a, x2, 5), b"first");
        assert_ne!(x2.seg, x.seg);
        // Round main again, within main's own segment.
        let x3 = a.move_to(Stream::Main, x2, 5);
        // SAFETY: 5 bytes into a live segment.
        assert_eq!((x3.seg, x3.at), (x2.seg, unsafe { x2.at.add(5) }));
        assert_eq!(get(&a, x3, 5), b"first");
        assert_eq!(get(&a, y, 6), b"second");
    }

    #[test]
    fn an_oversize_answer_gets_its_own_segment() {
        let mut a = Arena::new(32 << 10);
        let size = a.segment_size();
        let big: Vec<u8> = (0..3000).map(|n| n as u8).collect();
        assert!(big.len() > size);
        let small = a.push(Stream::Small, b"small");
        let at = a.push(Stream::Small, &big);
        assert_eq!(get(&a, at, big.len()), &big[..]);
        // Charged as the allocator's 3072-byte size class.
        assert_eq!(a.held(), size + 3072);
        // Not copied when it moves to main, and the stream goes on filling
        // its own segment.
        assert_eq!(a.move_to(Stream::Main, at, big.len()), at);
        let next = a.push(Stream::Small, b"next");
        // SAFETY: 5 bytes into a live segment.
        assert_eq!((next.seg, next.at), (small.seg, unsafe { small.at.add(5) }));
        a.release(at);
        assert_eq!(a.held(), size);
    }
}
