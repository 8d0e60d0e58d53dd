//! The state directory: per-schedule state, run history, and the locks that keep two runs of one
//! schedule from overlapping.
//!
//! ```text
//! STATE/schedules/NAME.json   last scheduled time handled, last start, end and outcome
//! STATE/history.jsonl         one JSON line per run
//! STATE/audit.jsonl           one JSON line per restore (see crate::store::audit)
//! STATE/locks/NAME.lock       held (flock) while NAME runs, by the daemon or `firesafe run`
//! STATE/media/               rotated disks: what each held when written, the rotation log
//!                             (see crate::schedule::media)
//! ```
//!
//! A lock is an advisory `flock`: the kernel drops it when the holder exits, however it exits, so
//! a crashed run never leaves a schedule locked.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use nix::fcntl::{Flock, FlockArg};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What is remembered about one schedule.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleState {
    /// The scheduled time of the last run started (catch-up looks for times after it).
    pub last_scheduled: Option<DateTime<Utc>>,
    pub last_started: Option<DateTime<Utc>>,
    pub last_finished: Option<DateTime<Utc>>,
    pub last_outcome: Option<RunOutcome>,
}

/// One run, as recorded in the history.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunRecord {
    pub schedule: String,
    /// The time it was scheduled for (`None` for a run started by hand).
    pub scheduled_for: Option<DateTime<Utc>>,
    pub started: DateTime<Utc>,
    pub finished: DateTime<Utc>,
    pub outcome: RunOutcome,
    /// What went wrong, in one line (the problems joined by "; "), or what a clean run did.
    pub message: String,
    /// Each problem of a run that did not end complete, one sentence each (target or share
    /// first, then what to do): the alert email lists them once each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// How a run ended; written `complete`, `degraded`, `failed` or `interrupted` in the history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunOutcome {
    /// Every source backed up to every target.
    Complete,
    /// It ran, but a target failed or a snapshot is partial.
    Degraded,
    /// It could not run.
    Failed,
    /// Stopped by a signal; what was read is stored.
    Interrupted,
}

impl RunOutcome {
    /// Every outcome, in the order metrics list them.
    pub const ALL: [RunOutcome; 4] = [
        RunOutcome::Complete,
        RunOutcome::Degraded,
        RunOutcome::Failed,
        RunOutcome::Interrupted,
    ];

    /// The word written in the history.
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Complete => "complete",
            RunOutcome::Degraded => "degraded",
            RunOutcome::Failed => "failed",
            RunOutcome::Interrupted => "interrupted",
        }
    }
}

impl std::str::FromStr for RunOutcome {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<RunOutcome, String> {
        RunOutcome::ALL
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| format!("\"{s}\" is not a run outcome"))
    }
}

impl std::fmt::Display for RunOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for RunOutcome {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// An open state directory.
#[derive(Clone, Debug)]
pub struct StateDir {
    root: PathBuf,
}

/// A held schedule lock; released when dropped.
pub struct Lock {
    _flock: Flock<File>,
}

impl StateDir {
    /// Opens (creating) a state directory. It holds file names (the audit log of restores) and
    /// the history, which are personal data: others may not list it (mode 0711, so that a
    /// metrics collector running as another user can still reach `metrics/`), and everything in
    /// it but the metrics is private to its owner.
    pub fn open(root: &Path) -> Result<StateDir> {
        private_dir(root, 0o711)?;
        for dir in [root.join("schedules"), root.join("locks")] {
            private_dir(&dir, 0o700)?;
        }
        Ok(StateDir {
            root: root.to_path_buf(),
        })
    }

    /// The default state directory of a configuration directory: a folder of its own under
    /// [`StateDir::default_path`], `configs/NAME-HASH`, named after the configuration
    /// directory's canonical path (its last two components, and a hash of all of it), so that a
    /// demo, a test configuration and the school's real one never share records.
    pub fn default_for(config_dir: &Path) -> PathBuf {
        Self::default_path()
            .join("configs")
            .join(config_slug(config_dir))
    }

    /// The base of the defaults: `/var/lib/firesafe` for root, `~/.local/state/firesafe`
    /// otherwise. Commands given only `--repo` (no configuration) keep their records here.
    pub fn default_path() -> PathBuf {
        if nix::unistd::geteuid().is_root() {
            PathBuf::from("/var/lib/firesafe")
        } else {
            std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".local/state/firesafe"))
                .unwrap_or_else(|| PathBuf::from(".firesafe-state"))
        }
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The default directory of the schedules' metrics, `STATE/metrics`, made if need be with
    /// mode 0755 exactly: the collector (node_exporter) runs as another user and reads it.
    pub fn metrics_dir(&self) -> Result<PathBuf> {
        let dir = self.root.join("metrics");
        private_dir(&dir, 0o755)?;
        Ok(dir)
    }

    /// Takes the schedule's lock without waiting; `None` if another run holds it.
    pub fn try_lock(&self, schedule: &str) -> Result<Option<Lock>> {
        let path = self.root.join("locks").join(format!("{schedule}.lock"));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| Error::local(&path, "cannot open the lock file", e))?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(flock) => Ok(Some(Lock { _flock: flock })),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
            Err((_, e)) => Err(Error::local(&path, "cannot lock", std::io::Error::from(e))),
        }
    }

    pub fn load(&self, schedule: &str) -> Result<ScheduleState> {
        read_json(
            &self.state_file(schedule),
            "is not valid state (delete it to start afresh)",
        )
    }

    /// Records a finished run: replaces the schedule's state (atomically) and appends to the
    /// history.
    pub fn record(&self, run: &RunRecord) -> Result<()> {
        let mut state = self.load(&run.schedule)?;
        if run.scheduled_for.is_some() {
            state.last_scheduled = run.scheduled_for;
        }
        state.last_started = Some(run.started);
        state.last_finished = Some(run.finished);
        state.last_outcome = Some(run.outcome);
        write_json(&self.state_file(&run.schedule), &state)?;
        append_line(&self.root.join("history.jsonl"), run)
    }

    /// Every recorded run, oldest first.
    pub fn history(&self) -> Result<Vec<RunRecord>> {
        read_lines(&self.root.join("history.jsonl"))
    }

    fn state_file(&self, schedule: &str) -> PathBuf {
        self.root.join("schedules").join(format!("{schedule}.json"))
    }
}

/// Reads a JSON file of the state directory; a missing file is the default value. `invalid`
/// says what to do about a file that is not valid.
pub(crate) fn read_json<T: DeserializeOwned + Default>(
    path: &Path,
    invalid: &'static str,
) -> Result<T> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| Error::local(path, invalid, std::io::Error::other(e))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(e) => Err(Error::local(path, "cannot read", e)),
    }
}

/// Replaces a JSON file of the state directory atomically (a temporary file, then a rename),
/// creating its directory.
pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    if let Some(dir) = path.parent() {
        private_dir(dir, 0o700)?;
    }
    let tmp = path.with_extension("json.tmp");
    let _ = std::fs::remove_file(&tmp);
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(&serde_json::to_vec_pretty(value).expect("state serialises")))
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| Error::local(path, "cannot write", e))
}

/// Creates `dir` if need be, with the parents it lacks, and gives it exactly `mode`, whatever
/// the umask (the service's is 0077) and whatever mode a directory made by an older version or
/// by hand has: a mode only ever tightened would leave the state directory closed to the
/// metrics collector. The parents made here get `mode` too, so that `0711` on the state
/// directory is not undone by a `configs/` above it that the umask made 0700.
pub(crate) fn private_dir(dir: &Path, mode: u32) -> Result<()> {
    make_dir(dir, mode)?;
    set_mode(dir, mode)
}

/// Makes `dir` and its missing parents, each with exactly `mode`; one already there is left as
/// it is.
fn make_dir(dir: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty())
        && !parent.is_dir()
    {
        make_dir(parent, mode)?;
    }
    match std::fs::DirBuilder::new().mode(mode).create(dir) {
        Ok(()) => set_mode(dir, mode),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(Error::local(dir, "cannot create the state directory", e)),
    }
}

/// Gives a directory of the state exactly `mode`.
fn set_mode(dir: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(dir)
        .map_err(|e| Error::local(dir, "cannot read the state directory", e))?;
    if meta.permissions().mode() & 0o7777 != mode {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
            .map_err(|e| Error::local(dir, "cannot set the mode of the state directory", e))?;
    }
    Ok(())
}

/// Appends one JSON line to a log of the state directory.
pub(crate) fn append_line<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::local(path, "cannot open", e))?;
    // A log made before these were private is made private now.
    let _ = f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600));
    let mut line = serde_json::to_vec(value).expect("a record serialises");
    line.push(b'\n');
    f.write_all(&line)
        .map_err(|e| Error::local(path, "cannot write", e))
}

/// Every record of a JSON-lines log, oldest first; a missing file is an empty log, and a line
/// that cannot be read (a torn write) is skipped.
pub(crate) fn read_lines<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::local(path, "cannot read", e)),
    };
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

/// `NAME-HASH` for a configuration directory: the last two components of its canonical path in
/// safe characters, and 12 hex digits of the BLAKE3 hash of the whole path.
fn config_slug(config_dir: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let canonical = std::fs::canonicalize(config_dir)
        .or_else(|_| std::path::absolute(config_dir))
        .unwrap_or_else(|_| config_dir.to_path_buf());
    let hash = blake3::hash(canonical.as_os_str().as_bytes()).to_hex();
    let parts: Vec<String> = canonical
        .components()
        .rev()
        .filter_map(|c| match c {
            std::path::Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
            _ => None,
        })
        .take(2)
        .collect();
    let name: String = parts
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("-")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    let name = if name.is_empty() {
        "root".to_string()
    } else {
        name
    };
    format!("{name}-{}", &hash[..12])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One configuration directory, however it is named, has one state directory; two have two.
    #[test]
    fn each_configuration_directory_has_its_own_default() {
        let dir = tempfile::tempdir().expect("tempdir");
        let school = dir.path().join("etc/firesafe");
        let demo = dir.path().join("demo/firesafe");
        std::fs::create_dir_all(&school).expect("mkdir");
        std::fs::create_dir_all(&demo).expect("mkdir");
        std::os::unix::fs::symlink(&school, dir.path().join("link")).expect("symlink");
        let a = StateDir::default_for(&school);
        assert_eq!(a, StateDir::default_for(&dir.path().join("link")));
        assert_eq!(a, StateDir::default_for(&school.join("../firesafe")));
        assert_ne!(a, StateDir::default_for(&demo));
        let name = a.file_name().expect("name").to_string_lossy().into_owned();
        assert!(
            name.starts_with("etc-firesafe-") && name.len() == "etc-firesafe-".len() + 12,
            "{name}"
        );
        assert!(a.starts_with(StateDir::default_path().join("configs")));
    }
}
