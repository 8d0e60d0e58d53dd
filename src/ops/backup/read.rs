//! The reader threads: they read files (several at once), cut them into chunks with FastCDC,
//! name each chunk by its keyed hash, and send the chunks not stored yet to the pack workers.
//!
//! Deduplication happens here, against one set of every blob the index lists (in a pack that is
//! really there) or this run has queued, so a blob is stored once however many files hold it.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::packs::Blob;
use crate::format::chunker::ChunkerParams;
use crate::format::crypto::RepoKey;
use crate::format::pack::BlobKind;
use crate::format::tree::Look;
use crate::id::Id;
use crate::ops::progress::Counters;
use crate::store::spill::IdSet;

/// What the reader threads share: the chunker, the key, the set of blobs already stored or
/// queued, and the queue to the pack workers.
pub(super) struct Chunking {
    pub(super) chunker: ChunkerParams,
    pub(super) key: Arc<RepoKey>,
    /// Blobs stored before this run.
    pub(super) in_place: Arc<super::InPlace>,
    /// Blobs queued in this run.
    pub(super) seen: Mutex<IdSet>,
    pub(super) work: crossbeam_channel::Sender<Blob>,
    pub(super) counters: Arc<Counters>,
    pub(super) blobs_added: AtomicU64,
    pub(super) bytes_added: AtomicU64,
    pub(super) bytes_read: AtomicU64,
    /// Whether to note each file's [`Look`] (for ransomware detection): a byte histogram of
    /// its first 64 KiB, already in memory.
    pub(super) looks: bool,
}

/// What a reader found: the file's content ids, its size, and how its start looks.
pub(super) type Found = (Vec<Id>, u64, Option<Look>);

/// A file for a reader thread, and where to send its content ids and size.
pub(super) struct ReadJob {
    pub(super) path: PathBuf,
    pub(super) size_hint: u64,
    pub(super) reply: crossbeam_channel::Sender<Result<Found, ReadError>>,
}

pub(super) type Reply = crossbeam_channel::Receiver<Result<Found, ReadError>>;

impl Chunking {
    /// A reader thread: reads the files it is given until the job queue closes. Once `cancel`
    /// is set it reads nothing more, answering each job with [`ReadError::Stopped`].
    pub(super) fn serve(
        &self,
        jobs: crossbeam_channel::Receiver<ReadJob>,
        cancel: Option<&AtomicBool>,
    ) {
        let mut buf = Vec::new();
        for job in jobs {
            if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                let _ = job.reply.send(Err(ReadError::Stopped));
                continue;
            }
            let result = self.read_file(&mut buf, &job.path, job.size_hint);
            let _ = job.reply.send(result);
        }
    }

    /// Reads, chunks and queues a file; returns its blob ids, the bytes read and its look.
    pub(super) fn read_file(
        &self,
        buf: &mut Vec<u8>,
        path: &Path,
        size_hint: u64,
    ) -> Result<Found, ReadError> {
        let mut file = File::open(path).map_err(ReadError::Io)?;
        let mut content = Vec::new();
        let mut look = None;
        let total = if size_hint <= self.chunker.max_size as u64 {
            // Small enough to read whole: one read call, no streaming buffer.
            buf.clear();
            file.read_to_end(buf).map_err(ReadError::Io)?;
            if self.looks {
                look = crate::plan::ransomware::look(buf);
            }
            for (off, len) in self.chunker.cut(buf) {
                self.add_chunk(buf[off..off + len].to_vec(), &mut content)?;
            }
            self.counters
                .bytes
                .fetch_add(buf.len() as u64, Ordering::Relaxed);
            if buf.capacity() > 2 * self.chunker.max_size as usize {
                *buf = Vec::new();
            }
            buf.len() as u64
        } else {
            let mut total = 0u64;
            let mut failed = None;
            let r = self.chunker.stream(&mut file, |chunk| {
                if self.looks && total == 0 {
                    look = crate::plan::ransomware::look(&chunk);
                }
                total += chunk.len() as u64;
                self.counters
                    .bytes
                    .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                if let Err(e) = self.add_chunk(chunk, &mut content) {
                    failed = Some(e);
                    return Err(std::io::Error::other("pipeline stopped"));
                }
                Ok(())
            });
            if let Some(e) = failed {
                return Err(e);
            }
            r.map_err(ReadError::Io)?;
            total
        };
        self.bytes_read.fetch_add(total, Ordering::Relaxed);
        Ok((content, total, look))
    }

    fn add_chunk(&self, data: Vec<u8>, content: &mut Vec<Id>) -> Result<(), ReadError> {
        let id = self.key.blob_id(&data);
        content.push(id);
        self.queue(BlobKind::Data, id, data)
            .map_err(|_| ReadError::Stopped)
    }

    /// Sends a blob to the pack workers unless it is stored or queued already.
    pub(super) fn queue(&self, kind: BlobKind, id: Id, data: Vec<u8>) -> Result<(), Stopped> {
        if !self.in_place.contains(&id) && self.seen.lock().expect("seen lock").insert(id) {
            self.blobs_added.fetch_add(1, Ordering::Relaxed);
            self.bytes_added
                .fetch_add(data.len() as u64, Ordering::Relaxed);
            self.work
                .send(Blob { kind, id, data })
                .map_err(|_| Stopped)?;
        }
        Ok(())
    }

    pub(super) fn is_stored(&self, id: &Id) -> bool {
        self.in_place.contains(id) || self.seen.lock().expect("seen lock").contains(id)
    }
}

/// The pipeline stopped (an upload failed, so the pack workers are gone); the uploader
/// reports why.
#[derive(Debug)]
pub(super) struct Stopped;

pub(super) enum ReadError {
    Io(std::io::Error),
    Stopped,
}

impl From<Stopped> for ReadError {
    fn from(_: Stopped) -> Self {
        ReadError::Stopped
    }
}
