//! Content-defined chunking with FastCDC (the 2020 algorithm).
//!
//! Boundaries depend only on content, so an insertion early in a file moves the boundaries near
//! it and leaves the rest of the file's chunks, and their ids, unchanged.

use std::io::Read;

use serde::{Deserialize, Serialize};

/// The largest chunk any repository's chunker can cut (FastCDC's maximum `max_size`, 16 MiB), so
/// the largest data blob a reader accepts.
pub const MAX_CHUNK_BYTES: usize = fastcdc::v2020::MAXIMUM_MAX;

/// The chunker's parameters, fixed for a repository at `init` and recorded in its config.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkerParams {
    /// Always `"fastcdc-v2020"` in format v1.
    pub algorithm: ChunkAlgorithm,
    pub min_size: u32,
    pub avg_size: u32,
    pub max_size: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChunkAlgorithm {
    #[serde(rename = "fastcdc-v2020")]
    FastCdc2020,
}

impl Default for ChunkerParams {
    /// 512 KiB / 1 MiB / 8 MiB: large enough that per-chunk overhead (index entries, hashing
    /// set-up) is negligible, small enough that an edited document shares most of its chunks.
    fn default() -> Self {
        ChunkerParams {
            algorithm: ChunkAlgorithm::FastCdc2020,
            min_size: 512 * 1024,
            avg_size: 1024 * 1024,
            max_size: 8 * 1024 * 1024,
        }
    }
}

impl ChunkerParams {
    /// Chunks of about `avg_size` bytes: at least half that, at most eight times (saturating),
    /// the proportions of the default.
    pub fn from_avg(avg_size: u32) -> ChunkerParams {
        ChunkerParams {
            min_size: avg_size / 2,
            avg_size,
            max_size: avg_size.saturating_mul(8),
            ..Default::default()
        }
    }

    /// Checks the sizes against FastCDC's limits.
    pub fn validate(&self) -> Result<(), String> {
        use fastcdc::v2020::{
            AVERAGE_MAX, AVERAGE_MIN, MAXIMUM_MAX, MAXIMUM_MIN, MINIMUM_MAX, MINIMUM_MIN,
        };
        let (min, avg, max) = self.sizes();
        let ok = (MINIMUM_MIN..=MINIMUM_MAX).contains(&min)
            && (AVERAGE_MIN..=AVERAGE_MAX).contains(&avg)
            && (MAXIMUM_MIN..=MAXIMUM_MAX).contains(&max)
            && self.min_size <= self.avg_size
            && self.avg_size <= self.max_size;
        if ok {
            Ok(())
        } else {
            Err(format!(
                "chunk sizes {}/{}/{} are outside FastCDC's limits (min {MINIMUM_MIN}..{MINIMUM_MAX}, avg {AVERAGE_MIN}..{AVERAGE_MAX}, max {MAXIMUM_MIN}..{MAXIMUM_MAX}, min <= avg <= max)",
                self.min_size, self.avg_size, self.max_size
            ))
        }
    }

    fn sizes(&self) -> (usize, usize, usize) {
        (
            self.min_size as usize,
            self.avg_size as usize,
            self.max_size as usize,
        )
    }

    /// Splits a byte slice; returns the chunk boundaries as (offset, length).
    pub fn cut(&self, data: &[u8]) -> Vec<(usize, usize)> {
        let (min, avg, max) = self.sizes();
        fastcdc::v2020::FastCDC::new(data, min, avg, max)
            .map(|c| (c.offset, c.length))
            .collect()
    }

    /// Splits a stream, handing each chunk to `f` as it is found. Reads `source` once.
    pub fn stream<R: Read>(
        &self,
        source: R,
        mut f: impl FnMut(Vec<u8>) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let (min, avg, max) = self.sizes();
        let chunker = fastcdc::v2020::StreamCDC::new(source, min, avg, max);
        for chunk in chunker {
            match chunk {
                Ok(c) => f(c.data)?,
                Err(fastcdc::v2020::Error::IoError(e)) => return Err(e),
                Err(e) => return Err(std::io::Error::other(e.to_string())),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_params_are_valid() {
        ChunkerParams::default().validate().unwrap();
    }

    #[test]
    fn stream_and_slice_agree() {
        let p = ChunkerParams {
            min_size: 4096,
            avg_size: 16384,
            max_size: 65536,
            ..ChunkerParams::default()
        };
        let data: Vec<u8> = (0..1_000_000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let mut streamed = Vec::new();
        p.stream(&data[..], |c| {
            streamed.push(c.len());
            Ok(())
        })
        .unwrap();
        let cut: Vec<usize> = p.cut(&data).into_iter().map(|(_, l)| l).collect();
        assert_eq!(streamed, cut);
    }
}
