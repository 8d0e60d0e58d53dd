//! Packs: many blobs in one encrypted object.
//!
//! A pack's plaintext is its blobs one after another, then a header (JSON) listing them, then the
//! header's length as a 4-byte little-endian integer. The whole plaintext is one age file. The
//! header repeats what the index says, so a lost index can be rebuilt from the packs alone.
//! Few large objects mean few requests to object storage; one kind of blob per pack means restoring
//! or checking trees never downloads file data.

use std::io::Write;

use serde::{Deserialize, Serialize};

use crate::format::crypto::RepoKey;
use crate::id::Id;

/// What a blob holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlobKind {
    /// A chunk of file content.
    Data,
    /// A directory listing (a [`crate::format::tree::Tree`]).
    Tree,
}

impl BlobKind {
    pub fn name(self) -> &'static str {
        match self {
            BlobKind::Data => "data",
            BlobKind::Tree => "tree",
        }
    }
}

/// One blob's place in a pack's plaintext.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackEntry {
    pub id: Id,
    /// Byte offset in the pack's plaintext.
    pub offset: u32,
    /// Stored length.
    pub length: u32,
    /// Length of the blob's plaintext.
    pub raw_length: u32,
    /// Whether the stored bytes are one zstd frame (otherwise they are the plaintext).
    pub zstd: bool,
}

/// The header at the end of a pack's plaintext.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PackHeader {
    pub kind: BlobKind,
    pub blobs: Vec<PackEntry>,
}

/// A pack being filled. Blobs are encrypted as they are added and written to `W`: memory (for
/// small packs and tests) or a file (a backup streams each pack to a temporary file, so a pack
/// never has to fit in memory).
pub struct PackWriter<W: Write = Vec<u8>> {
    kind: BlobKind,
    sealer: age::stream::StreamWriter<W>,
    offset: u64,
    blobs: Vec<PackEntry>,
}

/// A finished, encrypted pack held in memory, ready to upload.
pub struct SealedPack {
    /// BLAKE3 of `bytes`: the object's name.
    pub id: Id,
    pub bytes: Vec<u8>,
    pub header: PackHeader,
}

impl PackWriter<Vec<u8>> {
    pub fn new(key: &RepoKey, kind: BlobKind, capacity: usize) -> PackWriter<Vec<u8>> {
        PackWriter::to(key, kind, Vec::with_capacity(capacity)).expect("writing to memory")
    }

    /// Finishes a pack built in memory.
    pub fn finish(self) -> SealedPack {
        let (bytes, header) = self.finish_into().expect("writing to memory");
        SealedPack {
            id: Id::of_object(&bytes),
            bytes,
            header,
        }
    }
}

impl<W: Write> PackWriter<W> {
    /// A pack written to `sink` as it is built.
    pub fn to(key: &RepoKey, kind: BlobKind, sink: W) -> std::io::Result<PackWriter<W>> {
        Ok(PackWriter {
            kind,
            sealer: key.sealer_to(sink)?,
            offset: 0,
            blobs: Vec::new(),
        })
    }

    /// Plaintext bytes so far.
    pub fn len(&self) -> u64 {
        self.offset
    }

    pub fn is_empty(&self) -> bool {
        self.blobs.is_empty()
    }

    /// Appends one blob's stored bytes.
    pub fn add(
        &mut self,
        id: Id,
        stored: &[u8],
        raw_length: usize,
        zstd: bool,
    ) -> std::io::Result<()> {
        let offset = u32::try_from(self.offset)
            .map_err(|_| std::io::Error::other("pack larger than 4 GiB"))?;
        self.sealer.write_all(stored)?;
        self.blobs.push(PackEntry {
            id,
            offset,
            length: stored.len() as u32,
            raw_length: raw_length as u32,
            zstd,
        });
        self.offset += stored.len() as u64;
        Ok(())
    }

    /// Writes the header and trailer, finishes encryption, and hands back the sink.
    pub fn finish_into(mut self) -> std::io::Result<(W, PackHeader)> {
        let header = PackHeader {
            kind: self.kind,
            blobs: self.blobs,
        };
        let json = serde_json::to_vec(&header).expect("serialising a pack header");
        self.sealer.write_all(&json)?;
        self.sealer.write_all(&(json.len() as u32).to_le_bytes())?;
        let sink = self.sealer.finish()?;
        Ok((sink, header))
    }
}

/// Reads the header from a pack's decrypted plaintext, checking every entry lies inside it.
pub fn read_header(plaintext: &[u8]) -> Result<PackHeader, String> {
    let n = plaintext.len();
    if n < 4 {
        return Err("pack is shorter than its trailer".into());
    }
    let hlen = u32::from_le_bytes(plaintext[n - 4..].try_into().expect("4 bytes")) as usize;
    if hlen > n - 4 {
        return Err(format!("pack header length {hlen} exceeds the pack"));
    }
    let body = n - 4 - hlen;
    let header: PackHeader = serde_json::from_slice(&plaintext[body..n - 4])
        .map_err(|e| format!("pack header is not valid ({e})"))?;
    for b in &header.blobs {
        if b.offset as usize + b.length as usize > body {
            return Err(format!("blob {} lies outside the pack", b.id.short()));
        }
    }
    Ok(header)
}

/// The stored bytes of one blob inside a decrypted pack.
pub fn blob_bytes(plaintext: &[u8], offset: u32, length: u32) -> Option<&[u8]> {
    plaintext.get(offset as usize..offset as usize + length as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_round_trip() {
        let key = RepoKey::generate();
        let mut w = PackWriter::new(&key, BlobKind::Data, 1024);
        let a = key.blob_id(b"alpha");
        let b = key.blob_id(b"beta!");
        w.add(a, b"alpha", 5, false).unwrap();
        w.add(b, b"beta!", 5, false).unwrap();
        let sealed = w.finish();
        assert_eq!(sealed.id, Id::of_object(&sealed.bytes));
        let plain = key.open(&sealed.bytes).unwrap();
        let h = read_header(&plain).unwrap();
        assert_eq!(h.kind, BlobKind::Data);
        assert_eq!(h.blobs.len(), 2);
        assert_eq!(
            blob_bytes(&plain, h.blobs[1].offset, h.blobs[1].length).unwrap(),
            b"beta!"
        );
        assert!(read_header(&plain[..plain.len() - 1]).is_err());
    }
}
