//! The integration tests: one binary, a module per capability. They drive the real `firesafe`
//! binary and, where `FIRESAFE_TEST_S3=1` and the usual `AWS_*` variables point at an
//! S3-compatible server (tests/run.sh starts SeaweedFS on 127.0.0.1), run against S3 too.

mod support;

mod alerts;
mod bad_input;
mod chunking;
mod cli_help;
mod copies;
mod corruption;
mod crash;
mod credentials;
mod damage;
mod dedup;
mod dropped;
mod escape;
mod find;
mod fleet;
mod fleet_garage;
mod forged;
mod garage;
mod hostile;
mod key_passwd;
mod keys;
mod layers;
mod media;
mod no_plaintext;
mod object_lock;
mod prune;
mod ransomware_detect;
mod readme;
mod recovery;
mod recovery_sheet;
mod report;
mod report_ransomware;
mod report_term;
mod restore_swap;
mod restore_technician;
mod round_trip;
mod run_schedule;
mod scheduler;
mod status;
mod summary;
mod suspect;
mod target_conformance;
mod technician;
mod verify_drill;
