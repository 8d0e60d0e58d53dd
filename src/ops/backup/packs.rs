//! The pack workers: they compress new blobs (when it pays), append them to a data or a tree
//! pack, and encrypt each pack as it is built, streaming it to a file in the target's scratch
//! directory; then the uploader stores the finished packs.
//!
//! A pack is written to disk rather than held in memory, so memory stays bounded by the
//! channels, whatever the pack size. Its name (the BLAKE3 of its encrypted bytes) is computed
//! on the way out.

use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::format::compress::Compressor;
use crate::format::crypto::RepoKey;
use crate::format::pack::{BlobKind, PackHeader, PackWriter};
use crate::id::Id;
use crate::store::index::IndexPack;
use crate::store::repo::{Repository, pack_key};
use crate::store::target::Scratch;

/// A new blob on its way to a worker.
pub(super) struct Blob {
    pub(super) kind: BlobKind,
    pub(super) id: Id,
    pub(super) data: Vec<u8>,
}

/// A pack written to a file in the target's scratch directory, encrypted and complete.
pub(super) struct PackFile {
    /// BLAKE3 of the file: the object's name.
    id: Id,
    path: PathBuf,
    size: u64,
    header: PackHeader,
}

/// Where a pack's encrypted bytes go while it is built: a buffered file, hashed on the way.
struct PackSink {
    file: std::io::BufWriter<File>,
    hasher: blake3::Hasher,
    size: u64,
}

impl std::io::Write for PackSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// Stores a finished pack; returns what the index records about it.
pub(super) async fn upload(repo: &Repository, pack: PackFile) -> Result<IndexPack> {
    repo.target()
        .put_file(&pack_key(&pack.id), &pack.path, pack.size)
        .await?;
    Ok(IndexPack {
        id: pack.id,
        kind: pack.header.kind,
        size: pack.size,
        blobs: pack.header.blobs,
    })
}

/// Compresses and packs blobs until the channel closes; returns when its last packs are sent.
/// Each pack is streamed to a file in `scratch` as it is built, so no pack is held in memory.
pub(super) fn pack_worker(
    rx: crossbeam_channel::Receiver<Blob>,
    tx: tokio::sync::mpsc::Sender<Result<PackFile>>,
    key: &RepoKey,
    scratch: &Scratch,
    pack_size: u64,
    level: i32,
    stored: &AtomicU64,
) {
    let result = (|| -> Result<()> {
        let mut compressor = Compressor::new(level).expect("zstd level checked before");
        let mut data: Option<(PathBuf, PackWriter<PackSink>)> = None;
        let mut trees: Option<(PathBuf, PackWriter<PackSink>)> = None;
        let open = |kind: BlobKind| -> Result<(PathBuf, PackWriter<PackSink>)> {
            let (path, file) = scratch
                .create("pack")
                .map_err(|e| Error::local(scratch.path(), "cannot create a pack file", e))?;
            let sink = PackSink {
                file: std::io::BufWriter::with_capacity(1 << 20, file),
                hasher: blake3::Hasher::new(),
                size: 0,
            };
            let writer = PackWriter::to(key, kind, sink)
                .map_err(|e| Error::local(&path, "cannot write a pack file", e))?;
            Ok((path, writer))
        };
        let close = |(path, writer): (PathBuf, PackWriter<PackSink>)| -> Result<PackFile> {
            let (mut sink, header) = writer
                .finish_into()
                .map_err(|e| Error::local(&path, "cannot write a pack file", e))?;
            std::io::Write::flush(&mut sink)
                .map_err(|e| Error::local(&path, "cannot write a pack file", e))?;
            Ok(PackFile {
                id: Id(*sink.hasher.finalize().as_bytes()),
                path,
                size: sink.size,
                header,
            })
        };
        for blob in rx {
            let slot = match blob.kind {
                BlobKind::Data => &mut data,
                BlobKind::Tree => &mut trees,
            };
            if slot.is_none() {
                *slot = Some(open(blob.kind)?);
            }
            let (path, writer) = slot.as_mut().expect("just opened");
            let raw = blob.data.len();
            let written = match compressor.compress(&blob.data) {
                Some(z) => {
                    stored.fetch_add(z.len() as u64, Ordering::Relaxed);
                    writer.add(blob.id, &z, raw, true)
                }
                None => {
                    stored.fetch_add(raw as u64, Ordering::Relaxed);
                    writer.add(blob.id, &blob.data, raw, false)
                }
            };
            written.map_err(|e| Error::local(path.as_path(), "cannot write a pack file", e))?;
            if writer.len() >= pack_size {
                let full = close(slot.take().expect("writer present"))?;
                if tx.blocking_send(Ok(full)).is_err() {
                    return Ok(()); // the uploader stopped; its error is reported
                }
            }
        }
        for w in [data, trees].into_iter().flatten() {
            if !w.1.is_empty() && tx.blocking_send(Ok(close(w)?)).is_err() {
                return Ok(());
            }
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = tx.blocking_send(Err(e));
    }
}
