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

/// Buffers kept for reuse.
pub const KEPT: usize = 4;

/// The largest buffer kept (a buffer grown larger is freed when given back).
pub const LARGEST: usize = 40 << 20;

/// New buffers are a multiple of this.
const ROUND: usize = 4 << 20;

static POOL: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// A buffer from the pool, given back to it when dropped.
#[derive(Debug, Default)]
pub struct Buffer(Vec<u8>);

impl Buffer {
    /// An empty buffer with room for at least `capacity` bytes: the smallest kept one that is
    /// large enough, or a new one.
    pub fn with_capacity(capacity: usize) -> Buffer {
        let mut pool = POOL.lock().expect("buffer pool lock");
        let fit = pool
            .iter()
            .enumerate()
            .filter(|(_, b)| b.capacity() >= capacity)
            .min_by_key(|(_, b)| b.capacity())
            .map(|(i, _)| i);
        match fit {
            Some(i) => {
                let mut b = pool.swap_remove(i);
                b.clear();
                Buffer(b)
            }
            None => {
                drop(pool);
                // Rounded up, so that one buffer serves a pack and its plaintext, and packs of
                // slightly different sizes.
                Buffer(Vec::with_capacity(capacity.next_multiple_of(ROUND)))
            }
        }
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
        let b = std::mem::take(&mut self.0);
        if b.capacity() == 0 || b.capacity() > LARGEST {
            return;
        }
        let mut pool = POOL.lock().expect("buffer pool lock");
        if pool.len() < KEPT {
            pool.push(b);
        } else if let Some(smallest) = pool.iter_mut().min_by_key(|p| p.capacity())
            && smallest.capacity() < b.capacity()
        {
            // Keep the larger: packs are of one size, and a small buffer serves few of them.
            *smallest = b;
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
        assert!(POOL.lock().expect("lock").len() <= KEPT);
        let huge = Buffer::with_capacity(LARGEST + 1);
        drop(huge);
        assert!(
            POOL.lock()
                .expect("lock")
                .iter()
                .all(|p| p.capacity() <= LARGEST)
        );
    }
}
