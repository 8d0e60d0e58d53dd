//! The flags several commands share (`--config-dir`, `--state-dir`) and what they open: the
//! repository of `--repo` or the copies of a schedule's, with the key from the environment.

use std::path::PathBuf;

use clap::Args;
use firesafe::config::Config;
use firesafe::format::crypto::Unlock;
use firesafe::store::repo::Repository;
use firesafe::store::snapshot::{Catalog, Listed};
use firesafe::store::state::StateDir;
use firesafe::store::target::{Location, Target, TargetOptions};
use firesafe::{Error, Result};

// `--config-dir DIR`, the directory holding targets/ and schedules/. A command that describes
// the flag gives it its help with `mut_arg`. (Flag groups carry no doc comment: clap would take
// it for the command's own description.)
#[derive(Args, Debug)]
pub(super) struct ConfigDir {
    #[arg(
        long,
        default_value = ".",
        env = "FIRESAFE_CONFIG_DIR",
        value_name = "DIR"
    )]
    pub config_dir: PathBuf,
}

impl ConfigDir {
    /// The configuration in the directory, checked.
    pub fn load(&self) -> Result<Config> {
        Config::load(&self.config_dir)
    }
}

// `--state-dir DIR`, where run history, records, locks and the audit log are kept. Each command
// says what it keeps or reads there with `mut_arg("state_dir", |a| a.help(state_help("...")))`.
#[derive(Args, Debug)]
pub(super) struct StateDirFlag {
    #[arg(long, env = "FIRESAFE_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

impl StateDirFlag {
    /// The directory given, or the default: the configuration directory's own (see
    /// [`StateDir::default_for`]), or with no configuration (`--repo` alone) the base default.
    pub fn path(&self, config: Option<&ConfigDir>) -> PathBuf {
        if let Some(dir) = &self.state_dir {
            return dir.clone();
        }
        match config {
            Some(c) => {
                let path = StateDir::default_for(&c.config_dir);
                note_legacy_records(&path);
                path
            }
            None => StateDir::default_path(),
        }
    }

    /// Opens the state directory, creating it when it does not exist.
    pub fn open(&self, config: Option<&ConfigDir>) -> Result<StateDir> {
        StateDir::open(&self.path(config))
    }

    /// Opens the state directory only if it exists (for commands that only read records).
    pub fn open_existing(&self, config: Option<&ConfigDir>) -> Result<Option<StateDir>> {
        let path = self.path(config);
        if path.is_dir() {
            StateDir::open(&path).map(Some)
        } else {
            Ok(None)
        }
    }
}

/// Records kept in the base directory before each configuration had its own are not read by
/// default any more: say where they are, once, when this configuration has none yet.
fn note_legacy_records(path: &std::path::Path) {
    let base = StateDir::default_path();
    if !path.exists() && base.join("history.jsonl").is_file() {
        eprintln!(
            "firesafe: note: no records for this configuration yet in {}; older records are in {} (pass --state-dir {} to use them)",
            path.display(),
            base.display(),
            base.display()
        );
    }
}

/// The help of `--state-dir` for a command: `kept` says what the command keeps or reads there.
pub(super) fn state_help(kept: &str) -> String {
    format!(
        "{kept} (default: a folder for this configuration directory under /var/lib/firesafe/configs for root, ~/.local/state/firesafe/configs otherwise)"
    )
}

/// The target of `--repo`; with `create`, a missing directory or prefix is created.
pub(super) fn target(url: Option<&str>, create: bool) -> Result<Target> {
    let url = url.ok_or_else(|| {
        Error::Usage("no repository given: pass --repo DIR or --repo s3://BUCKET/PREFIX (or set FIRESAFE_REPO)".into())
    })?;
    let location = Location::parse(url)?;
    Target::open(url, &location, &TargetOptions::default(), create)
}

/// The user's key from the environment.
pub(super) fn unlock_from_env() -> Result<Option<Unlock>> {
    if let Some(path) = std::env::var_os("FIRESAFE_KEY_FILE") {
        let path = PathBuf::from(path);
        firesafe::ops::keys::check_private(&path)?;
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Error::WrongKey(format!(
                "FIRESAFE_KEY_FILE={}: cannot read the key file ({e}); check the path",
                path.display()
            ))
        })?;
        let unlock = Unlock::parse_identity_file(&text).map_err(|why| {
            Error::WrongKey(format!("FIRESAFE_KEY_FILE={}: {why}", path.display()))
        })?;
        return Ok(Some(unlock));
    }
    if let Ok(p) = std::env::var("FIRESAFE_PASSPHRASE") {
        if p.is_empty() {
            return Err(Error::WrongKey("FIRESAFE_PASSPHRASE is empty".into()));
        }
        return Ok(Some(Unlock::Passphrase(p.into())));
    }
    Ok(None)
}

/// The repository of `--repo`, opened with the key from the environment.
pub(super) async fn open(url: Option<&str>) -> Result<Repository> {
    let target = target(url, false)?;
    // Fail on a missing repository before asking for a key.
    Repository::read_config(&target).await?;
    let unlock = unlock_from_env()?.ok_or_else(|| {
        Error::WrongKey(
            "no key given: set FIRESAFE_KEY_FILE to the repository's age identity file, or FIRESAFE_PASSPHRASE".into(),
        )
    })?;
    Repository::open(target, &unlock).await
}

/// The snapshot SPEC names; with `--as-of DATE`, SPEC must be `latest` and the newest snapshot at
/// or before DATE is taken.
pub(super) fn pick<'c>(
    catalog: &'c Catalog,
    spec: &str,
    source: Option<&str>,
    as_of: Option<&str>,
) -> Result<&'c Listed> {
    match as_of {
        None => catalog.resolve(spec, source),
        Some(date) if spec == "latest" => catalog.resolve(&format!("@{date}"), source),
        Some(_) => Err(Error::Usage(format!(
            "--as-of picks a snapshot by time, so it goes with `latest`, not \"{spec}\" (or write SOURCE@DATE instead)"
        ))),
    }
}

/// The repository of `--repo`, or with `--schedule NAME` every copy of the schedule's that
/// opens, in the schedule's order. The key comes from the environment, or else from the
/// schedule. A warning is printed for each target not used.
pub(super) async fn open_copies(
    url: Option<&str>,
    schedule: Option<&str>,
    config: &ConfigDir,
) -> Result<Vec<Repository>> {
    let Some(name) = schedule else {
        return Ok(vec![open(url).await?]);
    };
    let config = config.load()?;
    let schedule = config.schedule(name)?;
    let unlock = match unlock_from_env()? {
        Some(u) => u,
        None => config.schedule_key(schedule)?,
    };
    let (repos, notes) =
        firesafe::config::targets::open_schedule_repos(&config, schedule, &unlock).await?;
    for n in &notes {
        eprintln!("firesafe: warning: {n}");
    }
    Ok(repos)
}
