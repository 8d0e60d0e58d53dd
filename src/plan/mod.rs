//! Pure policy: the 3-2-1 evaluation, retention, cron dialect, timetables and human dates. Time is passed in; no I/O.

pub mod policy;
pub mod timetable;
pub mod when;
