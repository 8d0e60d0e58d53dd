//! The governors' disaster-recovery report: what the backups achieved over a period, in plain
//! English on the first page, with the evidence behind it.
//!
//! [`gather()`] collects the facts: the live 3-2-1 status of every share (every target opened
//! now), the runs, drills and verifications recorded in the state directory during the period,
//! and the snapshots in the repository (for storage growth). [`build()`] turns those facts, and
//! nothing else, into a [`Doc`](crate::paper::doc::Doc): every sentence is derived from a record
//! or from what a target holds, and where there is no record the report says so ("No restore
//! drill was recorded between ...") and marks it red, rather than assuming all is well.
//!
//! One file per part of the document, in reading order: `summary.rs` (the first page, from the
//! seven checks of `checks.rs`, `proof.rs` and `ransomware.rs`), `risks.rs`, `detail.rs` (each share) and `appendix.rs`;
//! `build.rs` puts them in order. `facts.rs` is the data they read (`gather.rs` reads it),
//! `share.rs` what it says about one share, and `words.rs` how dates, durations and lists are
//! written.

mod appendix;
mod build;
mod checks;
mod detail;
mod expected;
mod facts;
mod gather;
mod proof;
mod ransomware;
mod risks;
mod share;
mod summary;
mod trouble;
mod words;

pub use build::build;
pub use facts::{Evidence, GrowthPoint, ReportData, ScheduleData, Storage, TargetInfo, absolute};
pub use gather::{ReportOptions, gather};
pub use words::describe_seconds;
