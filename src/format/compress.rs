//! zstd compression of blobs, skipped where it would not pay.
//!
//! Photos, office documents (which are zip files) and video do not compress. Compressing them
//! anyway costs most of a backup's CPU time for nothing, so a blob larger than 64 KiB is first
//! judged by compressing three 16 KiB samples at level 1; if those do not shrink by at least 3%,
//! the blob is stored as it is. A blob is also stored as it is whenever its compressed form is not
//! smaller.

use std::io;

const SAMPLE: usize = 16 * 1024;
const SAMPLE_FROM: usize = 64 * 1024;

/// A reusable compressor (one per worker thread).
pub struct Compressor {
    level: i32,
    full: Option<zstd::bulk::Compressor<'static>>,
    probe: zstd::bulk::Compressor<'static>,
    sample: Vec<u8>,
}

impl Compressor {
    /// `level` 0 turns compression off; 1..=22 are zstd levels.
    pub fn new(level: i32) -> io::Result<Compressor> {
        let full = if level == 0 {
            None
        } else {
            Some(zstd::bulk::Compressor::new(level)?)
        };
        Ok(Compressor {
            level,
            full,
            probe: zstd::bulk::Compressor::new(1)?,
            sample: Vec::with_capacity(3 * SAMPLE),
        })
    }

    pub fn level(&self) -> i32 {
        self.level
    }

    /// The compressed form of `data`, or `None` when it should be stored as it is.
    pub fn compress(&mut self, data: &[u8]) -> Option<Vec<u8>> {
        let full = self.full.as_mut()?;
        if data.len() < 64 {
            return None;
        }
        if data.len() >= SAMPLE_FROM {
            self.sample.clear();
            let mid = data.len() / 2 - SAMPLE / 2;
            self.sample.extend_from_slice(&data[..SAMPLE]);
            self.sample.extend_from_slice(&data[mid..mid + SAMPLE]);
            self.sample.extend_from_slice(&data[data.len() - SAMPLE..]);
            let probe = self.probe.compress(&self.sample).ok()?;
            if probe.len() * 100 > self.sample.len() * 97 {
                return None;
            }
        }
        let out = full.compress(data).ok()?;
        (out.len() < data.len()).then_some(out)
    }
}

thread_local! {
    /// One decompression context per thread, reused for every blob it reads.
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// Decompresses a blob whose plaintext is `raw_length` bytes long.
pub fn decompress(data: &[u8], raw_length: usize) -> io::Result<Vec<u8>> {
    let out = DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(zstd::bulk::Decompressor::new()?);
        }
        slot.as_mut()
            .expect("just set")
            .decompress(data, raw_length)
    })?;
    if out.len() != raw_length {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("decompressed to {} bytes, expected {raw_length}", out.len()),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_compresses_and_random_does_not() {
        let mut c = Compressor::new(3).unwrap();
        let text = "the quick brown fox jumps over the lazy dog\n".repeat(5000);
        let z = c.compress(text.as_bytes()).unwrap();
        assert!(z.len() < text.len() / 10);
        assert_eq!(decompress(&z, text.len()).unwrap(), text.as_bytes());
        let random: Vec<u8> = (0..200_000).map(|_| rand::random::<u8>()).collect();
        assert!(c.compress(&random).is_none());
        assert!(
            Compressor::new(0)
                .unwrap()
                .compress(text.as_bytes())
                .is_none()
        );
    }
}
