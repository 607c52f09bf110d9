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
//! bytes here by `(segment, offset)`, which stay valid until released.

use super::shard::alloc_size;
use std::mem::size_of;

const NIL: u32 = u32::MAX;

/// Which queue's stream an answer's bytes are appended to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Small = 0,
    Main = 1,
}

/// Where an entry's bytes are: segment id and offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Loc {
    pub seg: u32,
    pub off: u32,
}

struct Segment {
    /// Empty while the id is free.
    buf: Box<[u8]>,
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
    #[inline]
    pub fn get(&self, at: Loc, len: usize) -> &[u8] {
        let off = at.off as usize;
        &self.segments[at.seg as usize].buf[off..off + len]
    }

    /// Appends `data` to `stream`.
    pub fn push(&mut self, stream: Stream, data: &[u8]) -> Loc {
        let at = self.reserve(stream, data.len());
        let off = at.off as usize;
        self.segments[at.seg as usize].buf[off..off + data.len()].copy_from_slice(data);
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
        let (src, dst) = (from.off as usize, to.off as usize);
        if to.seg == from.seg {
            self.segments[to.seg as usize]
                .buf
                .copy_within(src..src + len, dst);
        } else {
            let [a, b] = self
                .segments
                .get_disjoint_mut([from.seg as usize, to.seg as usize])
                .expect("two live segments");
            b.buf[dst..dst + len].copy_from_slice(&a.buf[src..src + len]);
        }
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
            if s.buf.len() - used >= len {
                s.used += len as u32;
                s.live += 1;
                return Loc {
                    seg: cur,
                    off: used as u32,
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
        let seg = Segment {
            buf: vec![0; size].into_boxed_slice(),
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
        Loc { seg: id, off: 0 }
    }

    fn free_segment(&mut self, id: u32) {
        let s = &mut self.segments[id as usize];
        self.held -= alloc_size(s.buf.len());
        s.buf = Box::default();
        s.used = 0;
        s.live = 0;
        self.free.push(id);
    }

    #[cfg(test)]
    pub fn held_segments(&self) -> Vec<Held> {
        self.segments
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.buf.is_empty())
            .map(|(id, s)| Held {
                id: id as u32,
                size: s.buf.len(),
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

#[cfg(test)]
mod tests {
    use super::*;

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
            assert_eq!(a.get(at, b.len()), &b[..]);
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
        assert_eq!(at.off, 0);
        assert_eq!(a.held_segments().len(), 1);
    }

    #[test]
    fn moved_bytes_land_at_the_end_of_main() {
        let mut a = Arena::new(32 << 10);
        let x = a.push(Stream::Small, b"first");
        let y = a.push(Stream::Small, b"second");
        let x2 = a.move_to(Stream::Main, x, 5);
        assert_eq!(a.get(x2, 5), b"first");
        assert_ne!(x2.seg, x.seg);
        // Round main again, within main's own segment.
        let x3 = a.move_to(Stream::Main, x2, 5);
        assert_eq!((x3.seg, x3.off), (x2.seg, 5));
        assert_eq!(a.get(x3, 5), b"first");
        assert_eq!(a.get(y, 6), b"second");
    }

    #[test]
    fn an_oversize_answer_gets_its_own_segment() {
        let mut a = Arena::new(32 << 10);
        let size = a.segment_size();
        let big: Vec<u8> = (0..3000).map(|n| n as u8).collect();
        assert!(big.len() > size);
        let small = a.push(Stream::Small, b"small");
        let at = a.push(Stream::Small, &big);
        assert_eq!(a.get(at, big.len()), &big[..]);
        assert_eq!(a.held(), size + alloc_size(big.len()));
        // Not copied when it moves to main, and the stream goes on filling
        // its own segment.
        assert_eq!(a.move_to(Stream::Main, at, big.len()), at);
        let next = a.push(Stream::Small, b"next");
        assert_eq!((next.seg, next.off), (small.seg, 5));
        a.release(at);
        assert_eq!(a.held(), size);
    }
}
