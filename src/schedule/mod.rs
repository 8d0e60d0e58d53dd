//! Everything whose input is a schedule: runs, sync, jobs, status, media rotation, alerts, summary and the daemon.

pub mod alert;
pub mod checks;
pub mod daemon;
pub mod media;
pub mod run;
pub mod status;
pub mod summary;
