//! Configuration: `targets/NAME.toml` and `schedules/NAME.toml`, one file per thing.
//!
//! Loading checks everything a run depends on and reports each problem with its file, line and
//! key. This module only assembles the operations' own option types; nothing below it reads
//! configuration.

pub mod fleet;
pub mod message;
pub mod ransomware;
pub mod site;
pub mod targets;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::plan::cron::cron_schedule;
use crate::plan::policy::Policy;
use crate::plan::timetable::Timetable;
use crate::store::target::Location;

/// Where a copy is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Site {
    Onsite,
    Offsite,
}

/// What kind of storage a target is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// A directory on a mounted filesystem (an SMB/NFS NAS share, a disk).
    Path,
    /// An S3-compatible bucket.
    S3,
}

/// `targets/NAME.toml`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    #[serde(default)]
    pub description: String,
    pub kind: TargetKind,
    pub location: Site,
    /// `nas`, `object-storage`, `removable-disk`, ...: copies on the same medium count once.
    pub medium: String,
    /// kind = "path": the directory.
    pub path: Option<PathBuf>,
    /// kind = "s3": bucket and key prefix; endpoint, region and credentials from the AWS_*
    /// environment variables.
    pub bucket: Option<String>,
    #[serde(default)]
    pub prefix: String,
    /// kind = "s3": the endpoint URL, when it is not AWS_ENDPOINT_URL (for example
    /// "https://s3.eu-west-2.example.net"); credentials still come from the environment.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// Refuse every deletion from routine runs (`firesafe prune` skips the target unless given
    /// `--include-append-only`): a stolen server password cannot erase the backups here.
    #[serde(default)]
    pub append_only: bool,
    /// kind = "s3": ask for S3 Object Lock retention (COMPLIANCE mode) of this many days on
    /// every object written; the bucket must have been created with object lock enabled.
    pub object_lock_days: Option<u32>,
    /// kind = "path": the removable disks rotated through `path`, by filesystem label or as
    /// `UUID=...`; only a disk of the pool is ever written (see [`crate::schedule::media`]).
    #[serde(default)]
    pub pool: Vec<String>,
    /// With `pool`: how often, in days, a disk should go off site.
    pub rotate_days: Option<u32>,
    /// kind = "s3", on a cloud server: take credentials from the instance metadata service
    /// when none are in the environment or the shared credentials file.
    #[serde(default)]
    pub instance_credentials: bool,
    /// kind = "path", medium "nas" or "removable-disk": the directory must be on a mounted
    /// filesystem (default true), so that an unmounted share is never taken for the copy.
    pub require_mount: Option<bool>,
    /// Objects moved at once to or from the target (1-32; default 2 for a path, 6 for S3).
    pub transfers: Option<usize>,
    #[serde(skip)]
    pub name: String,
}

impl TargetSpec {
    /// Whether the target's directory must be on a mounted filesystem: a NAS or removable disk
    /// without a pool (a pool's disks are identified by label), unless `require_mount = false`.
    pub fn needs_mount(&self) -> bool {
        self.kind == TargetKind::Path
            && self.pool.is_empty()
            && (self.medium == "nas" || self.medium == "removable-disk")
            && self.require_mount.unwrap_or(true)
    }

    /// How to open the target.
    pub fn options(&self) -> crate::store::target::TargetOptions {
        crate::store::target::TargetOptions {
            object_lock_days: self.object_lock_days,
            instance_credentials: self.instance_credentials,
            transfers: self.transfers,
            ..crate::store::target::TargetOptions::default()
        }
    }

    pub fn location(&self) -> Location {
        match self.kind {
            TargetKind::Path => Location::Path(self.path.clone().expect("checked when loaded")),
            TargetKind::S3 => Location::S3 {
                bucket: self.bucket.clone().expect("checked when loaded"),
                prefix: self.prefix.trim_matches('/').to_string(),
                endpoint: self.endpoint.clone(),
                region: self.region.clone(),
            },
        }
    }
}

/// One share a schedule backs up.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// The share label recorded in snapshots (`curriculum`).
    pub name: String,
    pub path: PathBuf,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// `schedules/NAME.toml`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    #[serde(default)]
    pub description: String,
    /// Five-field crontab expression (minute hour day month weekday).
    pub cron: String,
    /// IANA time zone the cron expression is read in (`Europe/London`).
    pub timezone: String,
    /// Target names; the first reachable one receives the backup, the others are brought up to
    /// date from it.
    pub targets: Vec<String>,
    /// The age identity file that opens the repository.
    pub key_file: PathBuf,
    /// zstd level (0 = off); default: the repository's.
    pub compression: Option<i32>,
    pub sources: Vec<SourceSpec>,
    /// The 3-2-1 policy the schedule's copies are held to.
    #[serde(default)]
    pub policy: PolicySpec,
    /// Monitoring after each run.
    #[serde(default)]
    pub alerts: AlertsSpec,
    /// Which snapshots `firesafe prune` keeps; without it, prune keeps everything.
    pub retention: Option<RetentionSpec>,
    /// Scheduled verification of the schedule's targets.
    pub verify: Option<VerifySpec>,
    /// Scheduled restore drills.
    pub drill: Option<DrillSpec>,
    /// Ransomware detection in each backup: on with its defaults when the table is absent.
    #[serde(default)]
    pub ransomware: ransomware::RansomwareSpec,
    #[serde(skip)]
    pub name: String,
    /// `cron`, `timezone` and the other cron times, parsed once by [`ScheduleSpec::parse_times`]
    /// (which [`Config::load`] calls).
    #[serde(skip)]
    times: Option<Times>,
}

/// A schedule's times, parsed from its cron expressions in its time zone.
#[derive(Clone, Debug)]
pub struct Times {
    pub timezone: chrono_tz::Tz,
    /// The backup runs (`cron`).
    pub backup: Timetable,
    /// `[verify] cron`, `[drill] cron` and `[alerts] summary_cron`, where given.
    pub verify: Option<Timetable>,
    pub drill: Option<Timetable>,
    pub summary: Option<Timetable>,
}

impl ScheduleSpec {
    /// Parses every cron time of the schedule in its time zone, once; the problems are returned
    /// as (key, what is wrong) for the loader to place in the file.
    pub fn parse_times(&mut self) -> std::result::Result<(), Vec<(&'static str, String)>> {
        let mut problems = Vec::new();
        let timezone = chrono_tz::Tz::from_str(&self.timezone);
        if timezone.is_err() {
            problems.push((
                "timezone",
                format!(
                    "key timezone: \"{}\" is not an IANA time zone (for example Europe/London)",
                    self.timezone
                ),
            ));
        }
        let mut parse = |key: &'static str, label: &str, expr: Option<&String>| {
            let expr = expr?;
            match cron_schedule(expr) {
                Ok(c) => Some(c),
                Err(why) => {
                    problems.push((key, format!("{label}key {key}: {why}")));
                    None
                }
            }
        };
        let backup = parse("cron", "", Some(&self.cron));
        let summary = parse("summary_cron", "", self.alerts.summary_cron.as_ref());
        let verify = parse("cron", "[verify] ", self.verify.as_ref().map(|v| &v.cron));
        let drill = parse("cron", "[drill] ", self.drill.as_ref().map(|d| &d.cron));
        let (Ok(tz), Some(backup), true) = (timezone, backup, problems.is_empty()) else {
            return Err(problems);
        };
        let table = |c: Option<cron::Schedule>| c.map(|c| Timetable::new(c, tz));
        let times = Times {
            timezone: tz,
            backup: Timetable::new(backup, tz),
            verify: table(verify),
            drill: table(drill),
            summary: table(summary),
        };
        // A time that never comes (`0 2 30 2 *`) would leave a schedule that never runs and a
        // daemon with nothing to do: every time must come at least once a year.
        let year_from = chrono::Utc::now();
        let never = |t: &Timetable| {
            t.next_after(year_from)
                .is_none_or(|at| at > year_from + chrono::Duration::days(366))
        };
        for (key, label, t, expr) in [
            ("cron", "", Some(&times.backup), Some(&self.cron)),
            (
                "cron",
                "[verify] ",
                times.verify.as_ref(),
                self.verify.as_ref().map(|v| &v.cron),
            ),
            (
                "cron",
                "[drill] ",
                times.drill.as_ref(),
                self.drill.as_ref().map(|d| &d.cron),
            ),
            (
                "summary_cron",
                "",
                times.summary.as_ref(),
                self.alerts.summary_cron.as_ref(),
            ),
        ] {
            if let (Some(t), Some(expr)) = (t, expr)
                && never(t)
            {
                problems.push((
                    key,
                    format!(
                        "{label}key {key}: \"{expr}\" does not come once in the next year (a day that does not exist in that month?); give a time that does"
                    ),
                ));
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        self.times = Some(times);
        Ok(())
    }

    /// The schedule's parsed times.
    ///
    /// # Panics
    /// On a spec that [`ScheduleSpec::parse_times`] has not accepted: every schedule of a loaded
    /// [`Config`] has.
    pub fn times(&self) -> &Times {
        self.times
            .as_ref()
            .expect("Config::load parses every schedule's times")
    }
}

/// `[verify]` in a schedule: a structure check of every target, a rotating read-back of the
/// data, and a comparison of the copies, at its own cron times.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifySpec {
    /// Five-field cron time, in the schedule's time zone.
    pub cron: String,
    /// Percent of each target's data read back per run (default 5: everything within 20 runs).
    #[serde(default = "default_read_percent")]
    pub read_percent: f64,
    /// Repair damaged or missing objects from a healthy copy on another target.
    #[serde(default)]
    pub repair: bool,
}

fn default_read_percent() -> f64 {
    crate::ops::verify::DEFAULT_READ_PERCENT
}

/// `[drill]` in a schedule: restore drills at their own cron times.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillSpec {
    pub cron: String,
    /// `sample` (default), `full` or `site-loss`.
    #[serde(default)]
    pub kind: crate::store::records::DrillKind,
    /// Files restored by a sample drill, per source and target (default 20).
    #[serde(default = "default_sample_files")]
    pub sample_files: u32,
    /// For `site-loss`: the recovery key file (kept apart from the schedule's key_file).
    pub recovery_key_file: Option<PathBuf>,
    /// Where drills restore to (default: a temporary directory); never a live share.
    pub scratch_dir: Option<PathBuf>,
}

fn default_sample_files() -> u32 {
    crate::ops::drill::DEFAULT_SAMPLE_FILES
}

/// `[retention]` in a schedule: which snapshots of each source to keep. A snapshot is kept if
/// any rule keeps it; the newest complete snapshot of each source is always kept.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionSpec {
    /// The newest N snapshots.
    pub keep_last: u32,
    /// The newest snapshot of each of the last N hours, days, ISO weeks, months, years (in the
    /// schedule's time zone) that have one.
    pub keep_hourly: u32,
    pub keep_daily: u32,
    pub keep_weekly: u32,
    pub keep_monthly: u32,
    pub keep_yearly: u32,
    /// Hours a pack must stay marked unused before prune deletes it; longer than any backup
    /// run (default 24). See docs/FORMAT.md, "Pruning".
    pub grace_hours: Option<u32>,
}

/// `[alerts]` in a schedule.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsSpec {
    /// Pinged (GET) after every successful run; `/fail` is appended when a run fails, ends
    /// degraded or a verdict is not OK (the healthchecks.io convention).
    pub ping_url: Option<String>,
    /// Where to write Prometheus metrics (default: STATE/metrics/SCHEDULE.prom).
    pub metrics_file: Option<PathBuf>,
    /// Who is emailed when a run fails, ends degraded or a verdict is not OK.
    #[serde(default)]
    pub email_to: Vec<String>,
    pub email_from: Option<String>,
    pub smtp_host: Option<String>,
    pub smtp_port: Option<u16>,
    /// `starttls` (the default), `tls` (implicit TLS, port 465) or `none` (a relay on this
    /// machine only).
    #[serde(default)]
    pub smtp_tls: SmtpTls,
    /// The SMTP user; the password comes from FIRESAFE_SMTP_PASSWORD, never from this file.
    pub smtp_user: Option<String>,
    /// An extra CA certificate (PEM) to trust for the SMTP server, besides the system's.
    pub smtp_ca_file: Option<PathBuf>,
    /// When the daemon emails a summary of the last 7 days (five-field cron, in the schedule's
    /// time zone); none by default.
    pub summary_cron: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    #[default]
    Starttls,
    Tls,
    None,
}

/// `[policy]` in a schedule. Every key has the 3-2-1 default.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicySpec {
    pub min_copies: usize,
    pub min_media: usize,
    pub min_offsite: usize,
    /// The maximum age of the newest good copy, in hours (the RPO).
    pub max_age_hours: u32,
    /// Whether the live share counts as one of the copies.
    pub live_data_counts: bool,
    /// The recovery time objective: how many hours a full restore of one share may take. Full
    /// restore drills measure it; the report compares.
    pub rto_hours: Option<f64>,
}

impl Default for PolicySpec {
    fn default() -> Self {
        let p = Policy::default();
        PolicySpec {
            min_copies: p.min_copies,
            min_media: p.min_media,
            min_offsite: p.min_offsite,
            max_age_hours: p.max_age.num_hours() as u32,
            live_data_counts: p.live_data_counts,
            rto_hours: None,
        }
    }
}

impl PolicySpec {
    pub fn policy(&self) -> Policy {
        Policy {
            min_copies: self.min_copies,
            min_media: self.min_media,
            min_offsite: self.min_offsite,
            max_age: chrono::Duration::hours(i64::from(self.max_age_hours)),
            live_data_counts: self.live_data_counts,
        }
    }
}

/// Every target and schedule under a configuration directory.
#[derive(Debug, Default)]
pub struct Config {
    pub dir: PathBuf,
    pub targets: BTreeMap<String, TargetSpec>,
    pub schedules: BTreeMap<String, ScheduleSpec>,
    /// `site.toml`, when there is one: the school's name and whom to call.
    pub site: Option<crate::config::site::SiteSpec>,
}

/// One problem in one file.
fn problem(file: &Path, text: &str, span: Option<std::ops::Range<usize>>, message: &str) -> String {
    match span {
        Some(s) => {
            let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
            let col = s.start
                - text[..s.start.min(text.len())]
                    .rfind('\n')
                    .map_or(0, |i| i + 1)
                + 1;
            format!("{}:{line}:{col}: {message}", file.display())
        }
        None => format!("{}: {message}", file.display()),
    }
}

/// The line of `key = ` in a TOML text, for messages about values that parsed but are wrong.
fn key_span(text: &str, key: &str) -> Option<std::ops::Range<usize>> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        if t.starts_with(key) && t[key.len()..].trim_start().starts_with('=') {
            let start = offset + (line.len() - t.len());
            return Some(start..start + key.len());
        }
        offset += line.len();
    }
    None
}

fn read_dir_toml(dir: &Path) -> Result<Vec<(String, PathBuf, String)>> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => {
            return Err(Error::local(
                dir,
                "cannot read the configuration directory",
                e,
            ));
        }
    };
    for e in entries {
        let e =
            e.map_err(|err| Error::local(dir, "cannot read the configuration directory", err))?;
        let path = e.path();
        if path.extension().and_then(|x| x.to_str()) != Some("toml") {
            continue;
        }
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        let text = std::fs::read_to_string(&path)
            .map_err(|err| Error::local(&path, "cannot read", err))?;
        out.push((name, path, text));
    }
    out.sort();
    Ok(out)
}

impl Config {
    /// Loads `DIR/targets/*.toml` and `DIR/schedules/*.toml`, collecting every problem.
    pub fn load(dir: &Path) -> Result<Config> {
        let mut problems = Vec::new();
        let mut config = Config {
            dir: dir.to_path_buf(),
            ..Config::default()
        };
        // Secrets are reported, then blanked out (keeping line numbers) so that the rest of the
        // file is still checked.
        let mut blank = |files: Vec<(String, PathBuf, String)>| -> Vec<(String, PathBuf, String)> {
            files
                .into_iter()
                .map(|(name, path, text)| {
                    let (found, cleaned) = inline_secrets(&path, &text);
                    problems.extend(found);
                    (name, path, cleaned)
                })
                .collect()
        };
        let targets_files = blank(read_dir_toml(&dir.join("targets"))?);
        let schedule_files = blank(read_dir_toml(&dir.join("schedules"))?);
        for (name, path, text) in targets_files {
            match toml::from_str::<TargetSpec>(&text) {
                Ok(mut t) => {
                    t.name = name.clone();
                    problems.extend(target_problems(&t, &path, &text));
                    config.targets.insert(name, t);
                }
                Err(e) => problems.push(problem(
                    &path,
                    &text,
                    e.span(),
                    &message::without_values(e.message().trim()),
                )),
            }
        }
        for (name, path, text) in schedule_files {
            match toml::from_str::<ScheduleSpec>(&text) {
                Ok(mut s) => {
                    s.name = name.clone();
                    problems.extend(schedule_problems(&mut s, &config.targets, &path, &text));
                    config.schedules.insert(name, s);
                }
                Err(e) => problems.push(problem(
                    &path,
                    &text,
                    e.span(),
                    &message::without_values(e.message().trim()),
                )),
            }
        }
        match crate::config::site::load(dir) {
            Ok(site) => config.site = site,
            Err(found) => problems.extend(found),
        }
        if problems.is_empty() {
            config.resolve_paths();
            Ok(config)
        } else {
            Err(Error::Config(problems))
        }
    }

    /// Makes every relative path of the configuration relative to the configuration directory,
    /// once, so that no later use has to remember to.
    fn resolve_paths(&mut self) {
        let dir = self.dir.clone();
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        };
        for t in self.targets.values_mut() {
            t.path.as_mut().map(resolve);
        }
        for s in self.schedules.values_mut() {
            resolve(&mut s.key_file);
            for source in &mut s.sources {
                resolve(&mut source.path);
            }
            s.alerts.metrics_file.as_mut().map(resolve);
            s.alerts.smtp_ca_file.as_mut().map(resolve);
            if let Some(d) = &mut s.drill {
                d.recovery_key_file.as_mut().map(resolve);
                d.scratch_dir.as_mut().map(resolve);
            }
        }
    }

    /// Resolves a path from a config file against the configuration directory.
    /// A path given on the command line or elsewhere, read as the configuration's own relative
    /// paths are (every path in the configuration files is already resolved at load).
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.dir.join(p)
        }
    }

    /// The key that opens a schedule's repository, from its `key_file`.
    pub fn schedule_key(&self, schedule: &ScheduleSpec) -> Result<crate::format::crypto::Unlock> {
        let path = &schedule.key_file;
        crate::ops::keys::check_private(path)?;
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::WrongKey(format!(
                "key_file {}: cannot read it ({e}); check the schedule's key_file",
                path.display()
            ))
        })?;
        crate::format::crypto::Unlock::parse_identity_file(&text)
            .map_err(|why| Error::WrongKey(format!("key_file {}: {why}", path.display())))
    }

    /// What `config check` warns about without failing: the site.toml fields a restore after a
    /// fire needs, when not filled in.
    pub fn warnings(&self) -> Vec<String> {
        crate::config::site::warnings(&self.dir, self.site.as_ref())
    }

    pub fn schedule(&self, name: &str) -> Result<&ScheduleSpec> {
        self.schedules.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.schedules.keys().map(String::as_str).collect();
            Error::NotFound(format!(
                "there is no schedule \"{name}\" (no {}/schedules/{name}.toml); schedules: {}",
                self.dir.display(),
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ))
        })
    }
}

/// What is wrong with one target file, each problem placed in the file.
fn target_problems(t: &TargetSpec, path: &Path, text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    match t.kind {
        TargetKind::Path if t.path.is_none() => problems.push(problem(
            path,
            text,
            None,
            "key path: a path target needs `path = \"/mnt/nas/firesafe\"`",
        )),
        TargetKind::S3 if t.bucket.is_none() => problems.push(problem(
            path,
            text,
            None,
            "key bucket: an s3 target needs `bucket = \"...\"`",
        )),
        _ => {}
    }
    if t.transfers.is_some_and(|n| !(1..=32).contains(&n)) {
        problems.push(problem(
            path,
            text,
            key_span(text, "transfers"),
            "key transfers: give 1 to 32 objects moved at once, or remove the key for the default (2 for a path, 6 for S3)",
        ));
    }
    match t.object_lock_days {
            Some(_) if t.kind != TargetKind::S3 => problems.push(problem(
                path,
                text,
                key_span(text, "object_lock_days"),
                "key object_lock_days: object lock is an S3 feature; remove it, or make the disk read-only by other means",
            )),
            Some(0) => problems.push(problem(
                path,
                text,
                key_span(text, "object_lock_days"),
                "key object_lock_days: give at least 1 day, or remove the key",
            )),
            _ => {}
        }
    for (key, why) in pool_problems(t, text) {
        problems.push(problem(
            path,
            text,
            key_span(text, key),
            &format!("key {key}: {why}"),
        ));
    }
    problems
}

/// What is wrong with one schedule file, each problem placed in the file; parses the
/// schedule's times on the way.
fn schedule_problems(
    s: &mut ScheduleSpec,
    targets: &BTreeMap<String, TargetSpec>,
    path: &Path,
    text: &str,
) -> Vec<String> {
    let mut problems = Vec::new();
    if let Err(found) = s.parse_times() {
        for (key, why) in found {
            problems.push(problem(path, text, key_span(text, key), &why));
        }
    }
    for t in &s.targets {
        if !targets.contains_key(t) {
            problems.push(problem(
                path,
                text,
                key_span(text, "targets"),
                &format!("key targets: there is no target \"{t}\" (no targets/{t}.toml)"),
            ));
        }
    }
    if s.targets.is_empty() {
        problems.push(problem(
            path,
            text,
            key_span(text, "targets"),
            "key targets: name at least one target",
        ));
    }
    if !s.alerts.email_to.is_empty()
        && (s.alerts.smtp_host.is_none() || s.alerts.email_from.is_none())
    {
        problems.push(problem(
            path,
            text,
            key_span(text, "email_to"),
            "key email_to: email alerts also need smtp_host and email_from",
        ));
    }
    if let Some(expr) = &s.alerts.summary_cron
        && cron_schedule(expr).is_ok()
        && s.alerts.email_to.is_empty()
    {
        problems.push(problem(
            path,
            text,
            key_span(text, "summary_cron"),
            "key summary_cron: the summary is emailed: set email_to, email_from and smtp_host too",
        ));
    }
    if let Some(why) = unsatisfiable(s, targets) {
        problems.push(problem(
            path,
            text,
            key_span(text, "min_copies").or(key_span(text, "targets")),
            &format!("key policy: {why}"),
        ));
    }
    if let Some(v) = &s.verify
        && !(v.read_percent > 0.0 && v.read_percent <= 100.0)
    {
        problems.push(problem(path, text, key_span(text, "read_percent"), "[verify] key read_percent: give a percentage above 0 and at most 100 (5 reads everything in 20 runs)"));
    }
    if let Some(d) = &s.drill {
        if d.kind == crate::store::records::DrillKind::SiteLoss && d.recovery_key_file.is_none() {
            problems.push(problem(path, text, key_span(text, "kind"), "[drill] key recovery_key_file: a site-loss drill needs the recovery key file (kept apart from key_file)"));
        }
        if d.sample_files == 0 {
            problems.push(problem(
                path,
                text,
                key_span(text, "sample_files"),
                "[drill] key sample_files: restore at least 1 file",
            ));
        }
    }
    for (key, why) in s.ransomware.problems() {
        problems.push(problem(path, text, key_span(text, key), &why));
    }
    if s.sources.is_empty() {
        problems.push(problem(
            path,
            text,
            None,
            "key sources: name at least one [[sources]]",
        ));
    }
    problems.extend(
        source_name_problems(&s.sources)
            .into_iter()
            .map(|why| problem(path, text, key_span(text, "name"), &why)),
    );
    problems
}

/// Source names are the labels snapshots are kept, pruned and restored by: two sources of one
/// schedule with the same name would be one share to retention (whose rules would then forget
/// the other's snapshots), and a name is also a directory name in `restore`, so it must be a
/// plain word.
fn source_name_problems(sources: &[SourceSpec]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for source in sources {
        let name = &source.name;
        if !crate::format::snapshot::is_plain_name(name) {
            problems.push(format!(
                "[[sources]] key name: {name:?} is not a plain name; {}",
                crate::format::snapshot::PLAIN_NAME_RULE
            ));
        } else if !seen.insert(name.as_str()) {
            problems.push(format!(
                "[[sources]] key name: two sources are called \"{name}\"; each share needs its own name, or retention would treat them as one and forget the other's snapshots"
            ));
        }
    }
    problems
}

/// Key names that hold secrets; they belong in the environment or a credentials file.
const SECRET_KEYS: &[&str] = &[
    "secret",
    "password",
    "passphrase",
    "access_key",
    "token",
    "identity",
    "private_key",
];

/// Finds secrets written into a configuration file; returns the problems and the text with
/// those lines blanked.
fn inline_secrets(path: &Path, text: &str) -> (Vec<String>, String) {
    let mut out = Vec::new();
    let mut cleaned = String::with_capacity(text.len());
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let mut secret = false;
        let t = line.trim_start();
        if let Some((key, _)) = t.split_once('=')
            && !t.starts_with('#')
        {
            let key = key.trim().to_ascii_lowercase();
            if SECRET_KEYS.iter().any(|s| key.contains(s)) {
                let start = offset + (line.len() - t.len());
                out.push(problem(
                    path,
                    text,
                    Some(start..start + key.len()),
                    &format!(
                        "key {key}: secrets must not be written in configuration files; remove it and use the environment (for S3: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) or a key file"
                    ),
                ));
                secret = true;
            }
        }
        if secret {
            cleaned.push('\n');
        } else {
            cleaned.push_str(line);
        }
        offset += line.len();
    }
    (out, cleaned)
}

/// Problems with a target's disk pool: the key at fault and why.
fn pool_problems(t: &TargetSpec, text: &str) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let has_pool = key_span(text, "pool").is_some();
    if has_pool && t.kind != TargetKind::Path {
        out.push((
            "pool",
            "a disk pool is only for kind = \"path\" targets (disks mounted at path); remove pool"
                .to_string(),
        ));
    } else if has_pool && t.pool.is_empty() {
        out.push((
            "pool",
            "name at least one disk, by label or as \"UUID=...\" (for example pool = [\"FIRESAFE-A\", \"FIRESAFE-B\"])".to_string(),
        ));
    }
    for d in &t.pool {
        let value = d
            .strip_prefix("UUID=")
            .or(d.strip_prefix("LABEL="))
            .unwrap_or(d);
        if value.trim().is_empty() {
            out.push((
                "pool",
                format!("\"{d}\" names no disk; write the disk's filesystem label or UUID=..."),
            ));
        }
    }
    match t.rotate_days {
        Some(0) => out.push((
            "rotate_days",
            "rotate_days must be at least 1 (the days between disks going off site)".to_string(),
        )),
        Some(_) if t.pool.is_empty() => out.push((
            "rotate_days",
            "rotate_days needs a disk pool (pool = [\"FIRESAFE-A\", ...])".to_string(),
        )),
        _ => {}
    }
    out
}

/// Why a schedule's policy can never be met by its own targets, if it cannot.
fn unsatisfiable(s: &ScheduleSpec, targets: &BTreeMap<String, TargetSpec>) -> Option<String> {
    let mine: Vec<&TargetSpec> = s.targets.iter().filter_map(|t| targets.get(t)).collect();
    let live = usize::from(s.policy.live_data_counts);
    let copies = mine.len() + live;
    let mut media: Vec<&str> = mine.iter().map(|t| t.medium.as_str()).collect();
    media.sort_unstable();
    media.dedup();
    let media = media.len() + live;
    let offsite = mine.iter().filter(|t| t.location == Site::Offsite).count();
    if copies < s.policy.min_copies {
        Some(format!(
            "min_copies = {} but the schedule has {}{}; add targets or lower min_copies",
            s.policy.min_copies,
            crate::plan::words::count_s(mine.len() as u64, "target"),
            if live == 1 {
                " plus the live share"
            } else {
                ""
            }
        ))
    } else if media < s.policy.min_media {
        Some(format!(
            "min_media = {} but its targets use {} of media{}",
            s.policy.min_media,
            crate::plan::words::count_s(media as u64, "kind"),
            if live == 1 {
                " counting the live share"
            } else {
                ""
            }
        ))
    } else if offsite < s.policy.min_offsite {
        Some(format!(
            "min_offsite = {} but only {offsite} of its targets has location = \"offsite\"",
            s.policy.min_offsite
        ))
    } else {
        None
    }
}
