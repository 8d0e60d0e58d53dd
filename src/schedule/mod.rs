//! Everything whose input is a schedule: runs, sync, jobs, keys on every copy, status, media rotation, alerts, summary and the daemon.

pub mod alert;
pub mod backup_job;
pub mod beacon;
pub mod checks;
pub mod daemon;
pub mod drill_job;
pub mod fleet;
pub mod keys;
pub mod media;
pub mod prune_job;
pub mod run;
pub mod status;
pub mod summary;
pub mod suspect;
pub mod timer;
pub mod verify_job;
