//! Reused buffers for packs. A pack is read and decrypted into buffers of up to its size (16
//! MiB by default); a fresh buffer that large is a mapping of its own, and every page of it is
//! faulted in and zeroed by the kernel as it is first written. Checks, verifications, restores
//! and drills read thousands of packs, so they take their buffers from a small pool instead:
//! a buffer given back keeps its pages, and the next pack is read into memory already mapped.
//!
//! At most [`KEPT`] buffers of at most [`LARGEST`] bytes are kept, so the pool holds at most a
//! few packs' worth of memory however many packs are read.

use std::ops::{Deref, DerefMut};
use std::sync::Mutex;

use crate::format::chunker::MAX_CHUNK_BYTES;

/// Buffers kept for reuse.
pub const KEPT: usize = 4;

/// The largest buffer kept (a buffer grown larger is freed when given back).
pub const LARGEST: usize = 40 << 20;

/// A pool of buffers of one use.
pub struct Pool {
    kept: Mutex<Vec<Vec<u8>>>,
    /// How many are kept.
    most: usize,
    /// The largest kept.
    largest: usize,
    /// New buffers are a multiple of this.
    round: usize,
}

/// Packs and their plaintext.
pub static PACKS: Pool = Pool::new(KEPT, LARGEST, 4 << 20);

/// One blob's plaintext at a time, as a check or a restore decompresses it. Two are kept: the
/// blobs of two packs are decompressed at once on a folder target, and a restore that
/// decompresses more at once frees the others as before.
pub static BLOBS: Pool = Pool::new(2, MAX_CHUNK_BYTES, 1 << 20);

impl Pool {
    const fn new(most: usize, largest: usize, round: usize) -> Pool {
        Pool {
            kept: Mutex::new(Vec::new()),
            most,
            largest,
            round,
        }
    }

    /// An empty buffer with room for at least `capacity` bytes: the smallest kept one that is
    /// large enough, or a new one.
    pub fn take(&'static self, capacity: usize) -> Buffer {
        let mut kept = self.kept.lock().expect("buffer pool lock");
        let fit = kept
            .iter()
            .enumerate()
            .filter(|(_, b)| b.capacity() >= capacity)
            .min_by_key(|(_, b)| b.capacity())
            .map(|(i, _)| i);
        let b = match fit {
            Some(i) => {
                let mut b = kept.swap_remove(i);
                b.clear();
                b
            }
            None => {
                drop(kept);
                // Rounded up, so that one buffer serves a pack and its plaintext, and packs of
                // slightly different sizes.
                Vec::with_capacity(capacity.next_multiple_of(self.round))
            }
        };
        Buffer(b, Some(self))
    }

    fn give_back(&self, b: Vec<u8>) {
        if b.capacity() == 0 || b.capacity() > self.largest {
            return;
        }
        let mut kept = self.kept.lock().expect("buffer pool lock");
        if kept.len() < self.most {
            kept.push(b);
        } else if let Some(smallest) = kept.iter_mut().min_by_key(|p| p.capacity())
            && smallest.capacity() < b.capacity()
        {
            // Keep the larger: packs are of one size, and a small buffer serves few of them.
            *smallest = b;
        }
    }
}

/// A buffer from a pool, given back to it when dropped.
#[derive(Default)]
pub struct Buffer(Vec<u8>, Option<&'static Pool>);

impl std::fmt::Debug for Buffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Buffer").field(&self.0.len()).finish()
    }
}

impl Buffer {
    /// A buffer for a pack or its plaintext, from [`PACKS`].
    pub fn with_capacity(capacity: usize) -> Buffer {
        PACKS.take(capacity)
    }

    /// The buffer as shared bytes; it goes back to the pool when the last clone is dropped.
    pub fn into_bytes(self) -> bytes::Bytes {
        bytes::Bytes::from_owner(self)
    }
}

impl Deref for Buffer {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl DerefMut for Buffer {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

impl AsRef<[u8]> for Buffer {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        if let Some(pool) = self.1 {
            pool.give_back(std::mem::take(&mut self.0));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_given_back_is_reused_empty_and_the_pool_stays_small() {
        let mut a = Buffer::with_capacity(1 << 20);
        a.extend_from_slice(b"pack bytes");
        let at = a.as_ptr();
        drop(a);
        let b = Buffer::with_capacity(1000);
        assert!(b.is_empty());
        assert!(b.capacity() >= 1000);
        let _ = at;
        drop(b);
        let many: Vec<Buffer> = (0..KEPT + 4).map(|_| Buffer::with_capacity(4096)).collect();
        drop(many);
        assert!(PACKS.kept.lock().expect("lock").len() <= KEPT);
        let huge = Buffer::with_capacity(LARGEST + 1);
        drop(huge);
        assert!(
            PACKS
                .kept
                .lock()
                .expect("lock")
                .iter()
                .all(|p| p.capacity() <= LARGEST)
        );
    }
}
