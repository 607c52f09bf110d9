//! A shard's entry table: slots in fixed chunks of 64, handed out in order
//! and addressed by a `u32` index.
//!
//! Growing adds a chunk and never reallocates or moves a slot, so growth
//! leaves no freed blocks of odd sizes behind in the allocator, and what
//! the table holds ([`Slab::bytes`]) is exact.
//! Not for: free lists or queue links; the shard threads those through its
//! entries.

use std::mem::size_of;

const CHUNK: usize = 64;

pub(crate) struct Slab<T> {
    chunks: Vec<Box<[T]>>,
    /// Slots handed out so far; the rest of the last chunk is unused.
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Slab<T> {
        Slab {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T: Default> Slab<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    /// Heap bytes held: every chunk in full, and the chunk list.
    pub fn bytes(&self) -> usize {
        self.chunks.len() * CHUNK * size_of::<T>() + self.chunks.capacity() * size_of::<Box<[T]>>()
    }

    /// Puts `item` in the next slot and returns its index.
    pub fn push(&mut self, item: T) -> u32 {
        if self.len == self.chunks.len() * CHUNK {
            let chunk = (0..CHUNK).map(|_| T::default()).collect();
            self.chunks.push(chunk);
        }
        let i = self.len;
        self.len += 1;
        self[i] = item;
        i as u32
    }
}

impl<T> std::ops::Index<usize> for Slab<T> {
    type Output = T;
    fn index(&self, i: usize) -> &T {
        &self.chunks[i / CHUNK][i % CHUNK]
    }
}

impl<T> std::ops::IndexMut<usize> for Slab<T> {
    fn index_mut(&mut self, i: usize) -> &mut T {
        &mut self.chunks[i / CHUNK][i % CHUNK]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_keep_their_place_as_chunks_are_added() {
        let mut s: Slab<u64> = Slab::default();
        assert_eq!((s.len(), s.bytes()), (0, 0));
        assert_eq!(s.push(7), 0);
        let first: *const u64 = &s[0];
        for n in 1..200u64 {
            assert_eq!(s.push(n * 10), n as u32);
        }
        assert_eq!(s.len(), 200);
        assert_eq!((s[0], s[64], s[199]), (7, 640, 1990));
        assert_eq!(&s[0] as *const u64, first, "slot 0 never moved");
        s[64] = 1;
        assert_eq!(s[64], 1);
        // Four chunks of 64 eight-byte slots, and a chunk list with room
        // for four 16-byte boxes.
        assert_eq!(s.bytes(), 4 * 64 * 8 + 4 * 16);
    }
}
