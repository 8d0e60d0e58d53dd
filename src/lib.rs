//! firesafe: encrypted, deduplicated backups for schools, with verification you can show governors.
//!
//! # Architecture
//!
//! ```text
//! backup:  walk source -> change detection vs parent snapshot -> read -> FastCDC chunk
//!          -> keyed BLAKE3 id -> dedup against index -> zstd -> pack -> age encrypt
//!          -> upload (object_store: local path / S3) -> index -> snapshot
//! restore: snapshot -> trees -> blobs -> packs -> decrypt -> decompress -> verify id -> files
//! check:   every snapshot's trees and blobs are indexed, every pack exists; --read-data
//!          downloads, decrypts, decompresses and re-hashes every blob
//! ```
//!
//! The modules form layers, and imports point down only:
//!
//! | layer | modules | rule |
//! |---|---|---|
//! | 0 pure | [`id`], [`chunker`], [`crypto`], [`compress`], [`pack`], [`tree`], [`policy`], [`when`], [`doc`], [`pdf`] | no I/O, no async |
//! | 1 storage and format | [`target`], [`lock`], [`repo`], [`index`], [`snapshot`], [`blobs`] | the only code that sees `object_store` is [`target`] |
//! | 2 operations | [`backup`], [`restore`], [`check`], [`keys`], [`ls`], [`replicate`], [`find`], [`diff`], [`prune`] | each owns its `Options` and returns its `Stats` or `Report` |
//! | 3 orchestration and edges | [`config`], [`job`], [`alert`], [`audit`], [`status`], [`state`], [`timetable`], [`daemon`], [`media`], [`mount`], [`summary`], [`site`], [`report`], [`sheet`], `cli` (in the binary), [`progress`] | assembles options from configuration; parses, calls, prints |
//!
//! The on-target format is specified in `docs/FORMAT.md`.

pub mod error;
pub mod id;

pub mod config;
pub mod format;
pub mod ops;
pub mod paper;
pub mod plan;
pub mod schedule;
pub mod store;

pub use error::{Error, Result};
pub use id::Id;

/// The program version recorded in every snapshot.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
