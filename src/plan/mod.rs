//! Pure policy: the 3-2-1 evaluation, retention, cron dialect, timetables, what was due and
//! what was done, human dates, and the ransomware score of a backup. Time is passed in; no I/O.

pub mod cron;
pub mod due;
pub mod policy;
pub mod ransomware;
pub mod retention;
pub mod timetable;
pub mod when;
pub mod words;
