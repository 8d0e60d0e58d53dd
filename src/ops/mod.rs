//! Operations, one per file: each takes its own `XxxOptions` and returns an `XxxReport` or record. Never a configuration or a schedule.

pub mod backup;
pub mod check;
pub mod diff;
pub mod drill;
pub mod find;
pub mod keys;
pub mod ls;
pub mod mount;
pub mod progress;
pub mod prune;
pub mod replicate;
pub mod restore;
pub mod suspect;
pub mod verify;
