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
//! Each folder is a layer, listed here from the bottom up. A module imports from its own folder
//! and from the rows before its own, never from a later row (`tests/integration/layers.rs`
//! reads the source and checks it, with no import circles between files):
//!
//! | layer | folder | what it holds | rule |
//! |---|---|---|---|
//! | 0 | [`error`], [`id`] | the one error type; keyed ids | imports nothing of the crate |
//! | 0 | [`format`] | chunker, compression, sealing (age), packs, trees, snapshot manifests | on-target encodings; no I/O, no async |
//! | 0 | [`plan`] | 3-2-1 evaluation, retention, cron dialect, timetables, human dates | pure decisions; time is passed in |
//! | 1 | [`store`] | targets, repository, index, catalog and decisions, locks, blob reading, the state directory and its records | the only I/O on targets and state; only `store::target` sees `object_store` |
//! | 2 | [`ops`] | backup, restore, check, prune, replicate, verify, drill, keys, suspect, ls, find, diff, mount | one operation per file: its `XxxOptions` in, `XxxReport` or record out; never a configuration or a schedule |
//! | 3 | [`config`] | the configuration files, validated; opening configured targets | assembles operations' options from configuration |
//! | 3 | [`schedule`] | runs, backup/prune/verify/drill jobs, suspect decisions on every copy, status, disks, alerts, summary, timer, daemon | everything whose input is a schedule |
//! | 3 | [`paper`] | the governors' report and the recovery sheet, their document model and renderers | built from records and status |
//! | edge | `cli` (in the binary) | argument parsing and printing | parses, calls one library function, prints |
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
