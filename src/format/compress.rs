//! zstd compression of blobs, skipped where it would not pay.
//!
//! Photos, office documents (which are zip files) and video do not compress. Compressing them
//! anyway costs most of a backup's CPU time for nothing, so a blob larger than 64 KiB is first
//! judged by compressing three 16 KiB samples at level 1; if those do not shrink by at least 3%,
//! the blob is stored as it is. A blob is also stored as it is whenever its compressed form is not
//! smaller.
//!
//! Reading, nothing is decompressed without a bound: a blob to at most the `raw_length` its index
//! entry gives, which the caller first checks against what the format allows for its kind; a
//! sealed object's JSON to at most a limit, streamed, so that a forged zstd frame of a few
//! kilobytes that expands to gigabytes is refused after the limit, without holding it.

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

/// Decompresses a blob whose plaintext is `raw_length` bytes long (the caller checks
/// `raw_length` against what the format allows: it is the size of the buffer allocated).
pub fn decompress(data: &[u8], raw_length: usize) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    decompress_into(data, raw_length, &mut out)?;
    Ok(out)
}

/// [`decompress`] into `out`, which is cleared first and keeps its allocation: a reader that
/// reuses one buffer for every blob does not fault in fresh pages for each.
pub fn decompress_into(data: &[u8], raw_length: usize, out: &mut Vec<u8>) -> io::Result<()> {
    out.clear();
    out.reserve(raw_length);
    let written = DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(zstd::bulk::Decompressor::new()?);
        }
        // Writes at most the spare capacity; `reserve` may give more than `raw_length`, so a
        // longer frame is caught by the length check below.
        slot.as_mut()
            .expect("just set")
            .decompress_to_buffer(data, out)
    })?;
    if written != raw_length {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("decompressed to {written} bytes, expected {raw_length}"),
        ));
    }
    Ok(())
}

/// The message for an object larger than its format allows.
pub fn too_large(limit: u64) -> String {
    format!("it is larger than the format allows ({limit} bytes): the object is forged or damaged")
}

/// Parses JSON from one or more zstd frames, reading at most `limit` decompressed bytes: more is
/// refused with [`too_large`]. The JSON is parsed as it is decompressed, so memory holds the
/// value, not the text.
pub fn decompress_json<T: serde::de::DeserializeOwned>(
    data: &[u8],
    limit: u64,
) -> Result<T, String> {
    let decoder =
        zstd::stream::read::Decoder::with_buffer(data).map_err(|e| format!("zstd: {e}"))?;
    let mut bounded = Bounded {
        inner: decoder,
        left: limit,
        exceeded: false,
    };
    let parsed = serde_json::from_reader(io::BufReader::with_capacity(64 * 1024, &mut bounded));
    match parsed {
        Ok(value) => Ok(value),
        Err(_) if bounded.exceeded => Err(too_large(limit)),
        Err(e) if e.is_io() => Err(format!("zstd: {e}")),
        Err(e) => Err(format!("not valid JSON ({e})")),
    }
}

/// A reader that fails once more than `left` bytes have been read through it.
struct Bounded<R> {
    inner: R,
    left: u64,
    exceeded: bool,
}

impl<R: io::Read> io::Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Read one byte past the limit, to tell "exactly the limit" from "more".
        let want = buf
            .len()
            .min(usize::try_from(self.left + 1).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n as u64 > self.left {
            self.exceeded = true;
            return Err(io::Error::new(io::ErrorKind::InvalidData, "too large"));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_json_is_decompressed_within_a_limit() {
        let json = br#"{"a":[1,2,3]}"#;
        let z = zstd::bulk::compress(json, 3).unwrap();
        let v: serde_json::Value = decompress_json(&z, json.len() as u64).unwrap();
        assert_eq!(v["a"][2], 3);
        let e = decompress_json::<serde_json::Value>(&z, json.len() as u64 - 1).unwrap_err();
        assert!(
            e.contains("larger than the format allows (12 bytes)"),
            "{e}"
        );
        // A bomb: valid JSON followed by 64 MiB of spaces, refused at 1 MiB.
        let mut big = json.to_vec();
        big.resize(64 << 20, b' ');
        let z = zstd::bulk::compress(&big, 3).unwrap();
        assert!(z.len() < 64 * 1024);
        let e = decompress_json::<serde_json::Value>(&z, 1 << 20).unwrap_err();
        assert!(e.contains("larger than the format allows"), "{e}");
        let e = decompress_json::<serde_json::Value>(b"not zstd", 1 << 20).unwrap_err();
        assert!(e.starts_with("zstd"), "{e}");
    }

    #[test]
    fn a_reused_buffer_holds_exactly_the_blob_and_a_longer_frame_is_refused() {
        let text = "a blob of text\n".repeat(1000);
        let z = zstd::bulk::compress(text.as_bytes(), 3).unwrap();
        // A buffer with room to spare, as one from a pool has: it keeps its memory, and holds
        // the blob alone.
        let mut out = vec![7u8; 1 << 20];
        let kept = out.capacity();
        decompress_into(&z, text.len(), &mut out).unwrap();
        assert_eq!(out, text.as_bytes());
        assert_eq!(out.capacity(), kept);
        // A frame longer than its index says is refused even where the buffer has room.
        let e = decompress_into(&z, text.len() - 1, &mut out).unwrap_err();
        assert!(e.to_string().contains("expected"), "{e}");
        let e = decompress_into(b"not zstd", 10, &mut out).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::Other, "{e}");
    }

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
