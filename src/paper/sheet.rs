//! The recovery sheet: the "hard copy of key information" the schools' policies ask for, to be
//! printed and kept in the fire safe. It says where every copy lives (a path; for S3 the
//! endpoint, region, bucket and prefix), which repository and which keys open it (every key
//! envelope, by label, kind and fingerprint), where the storage credentials, the recovery key and
//! firesafe itself are kept (from site.toml, saying plainly what is not filled in), how to
//! restore each share onto a new machine after a fire (commands to type, one per `$ ` line,
//! always from an offsite copy, named even when it did not answer when printed), when a restore
//! was last proven, whom to call, and what to do if ransomware is suspected.
//!
//! The key itself is printed (as text and as a QR code) only when asked for with a deliberate
//! option; otherwise the sheet says where the key is kept and that it is not on the sheet. No
//! storage credential is ever printed: the commands name the variables to set, not their values.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::config::site::{Contact, KEPT_FIELDS};
use crate::config::{Config, ScheduleSpec, Site};
use crate::error::{Error, Result};
use crate::format::crypto::Unlock;
use crate::ops::keys::KeyEntry;
use crate::paper::doc::{Block, Doc};
use crate::paper::report::TargetInfo;
use crate::store::records::DrillRecord;
use crate::store::repo::Repository;
use crate::store::state::StateDir;

/// What to put on the sheet.
#[derive(Clone, Debug)]
pub struct SheetOptions {
    /// Schedule names; empty means every schedule.
    pub schedules: Vec<String>,
    /// Print this key file's key on the sheet (text and QR code).
    pub include_key: Option<PathBuf>,
    pub now: DateTime<Utc>,
}

/// One target, and what it answered now.
#[derive(Clone, Debug)]
pub struct SheetTarget {
    pub info: TargetInfo,
    /// For an S3 target, its full location.
    pub s3: Option<S3Place>,
    /// The repository id it holds, or why it could not be read.
    pub repo_id: std::result::Result<String, String>,
}

/// An S3 target's full location. The endpoint and region come from the target file, else from
/// `AWS_ENDPOINT_URL` and `AWS_REGION` as they were when the sheet was printed (neither is a
/// secret; the credentials are never read).
#[derive(Clone, Debug)]
pub struct S3Place {
    pub bucket: String,
    pub prefix: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// The target uses a cloud server's instance role rather than an access key.
    pub instance_credentials: bool,
}

/// What site.toml says about where the things a restore after a fire needs are kept.
#[derive(Clone, Debug, Default)]
pub struct Kept {
    pub credentials: Option<String>,
    pub recovery_key: Option<String>,
    pub firesafe: Option<String>,
}

/// One schedule's part of the sheet.
#[derive(Clone, Debug)]
pub struct SheetSchedule {
    pub name: String,
    pub description: String,
    pub sources: Vec<String>,
    pub targets: Vec<SheetTarget>,
    /// The schedule's key file and its public age recipient(s) (the fingerprint).
    pub key_file: PathBuf,
    pub fingerprint: std::result::Result<Vec<String>, String>,
    /// The last drill of each share that passed, from any time.
    pub last_drill: Vec<(String, Option<DrillRecord>)>,
    /// Every key envelope of the repository and the target it was read from (opened with the
    /// schedule's key), or why it could not be read.
    pub keys: std::result::Result<(String, Vec<KeyEntry>), String>,
}

/// The key printed on the sheet, when asked for.
#[derive(Clone, Debug)]
pub struct PrintedKey {
    pub file: PathBuf,
    /// The identity lines (`AGE-SECRET-KEY-1...`), comments dropped.
    pub secret: Vec<String>,
    pub recipients: Vec<String>,
    /// Whether it opened each schedule's repository when the sheet was made.
    pub opens: Vec<(String, std::result::Result<(), String>)>,
}

/// Everything on the sheet.
#[derive(Clone, Debug)]
pub struct SheetData {
    pub school: Option<String>,
    pub contacts: Vec<Contact>,
    pub generated: DateTime<Utc>,
    pub timezone: chrono_tz::Tz,
    pub schedules: Vec<SheetSchedule>,
    pub key: Option<PrintedKey>,
    pub kept: Kept,
}

/// Reads a key file that only its owner can read (one others can read is refused with the
/// `chmod` to run, as everywhere a key is read).
fn read_unlock(path: &Path) -> std::result::Result<(Unlock, String), String> {
    crate::ops::keys::check_private(path).map_err(|e| e.to_string())?;
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read it ({e})", path.display()))?;
    let unlock =
        Unlock::parse_identity_file(&text).map_err(|why| format!("{}: {why}", path.display()))?;
    Ok((unlock, text))
}

fn recipients(unlock: &Unlock) -> Vec<String> {
    unlock
        .recipients()
        .iter()
        .filter_map(|r| r.public())
        .collect()
}

/// Collects the sheet's facts: each target is asked for its repository id (no key needed), the
/// key files are read for their public half, and the drill records for the last good drill.
pub async fn gather(config: &Config, state: &StateDir, o: &SheetOptions) -> Result<SheetData> {
    let schedules: Vec<&ScheduleSpec> = if o.schedules.is_empty() {
        config.schedules.values().collect()
    } else {
        o.schedules
            .iter()
            .map(|s| config.schedule(s))
            .collect::<Result<_>>()?
    };
    if schedules.is_empty() {
        return Err(Error::NotFound(format!(
            "there are no schedules in {}/schedules; nothing to put on the sheet",
            config.dir.display()
        )));
    }
    let key = match &o.include_key {
        Some(path) => Some(printed_key(config, &schedules, path).await?),
        None => None,
    };
    let drills = state.drill_records()?;
    let mut out = Vec::new();
    for s in &schedules {
        out.push(sheet_schedule(config, s, &drills).await);
    }
    Ok(SheetData {
        school: config.site.as_ref().map(|s| s.school.clone()),
        contacts: config
            .site
            .as_ref()
            .map(|s| s.contacts.clone())
            .unwrap_or_default(),
        generated: o.now,
        timezone: schedules[0].times().timezone,
        schedules: out,
        key,
        kept: config.site.as_ref().map_or_else(Kept::default, |s| Kept {
            credentials: s.kept("credentials_kept").map(String::from),
            recovery_key: s.kept("recovery_key_kept").map(String::from),
            firesafe: s.kept("firesafe_source").map(String::from),
        }),
    })
}

/// Reads the key file to print, and tries it on each schedule's repository (on its targets in
/// order, until one opens or refuses the key).
async fn printed_key(
    config: &Config,
    schedules: &[&ScheduleSpec],
    path: &Path,
) -> Result<PrintedKey> {
    crate::ops::keys::check_private(path)?;
    let (unlock, text) = read_unlock(path)
        .map_err(|why| Error::Usage(format!("--include-key {why}; give the key file to print")))?;
    let mut opens = Vec::new();
    for s in schedules {
        let mut result = Err("no target could be read".to_string());
        for t in &s.targets {
            let attempt = async {
                let target = crate::config::targets::open_target(config, t, false)?;
                Repository::open(target, &unlock).await.map(|_| ())
            }
            .await;
            match attempt {
                Ok(()) => {
                    result = Ok(());
                    break;
                }
                Err(e @ Error::WrongKey(_)) => {
                    result = Err(e.to_string());
                    break;
                }
                Err(e) => result = Err(e.to_string()),
            }
        }
        opens.push((s.name.clone(), result));
    }
    Ok(PrintedKey {
        file: path.to_path_buf(),
        secret: text
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("AGE-SECRET-KEY-"))
            .map(String::from)
            .collect(),
        recipients: recipients(&unlock),
        opens,
    })
}

/// One schedule's facts: the repository id each target answers with now, the key file's
/// public half, and each share's last drill that passed.
async fn sheet_schedule(
    config: &Config,
    s: &ScheduleSpec,
    drills: &[DrillRecord],
) -> SheetSchedule {
    let mut targets = Vec::new();
    for t in &s.targets {
        let repo_id = async {
            let target = crate::config::targets::open_target(config, t, false)?;
            Repository::read_config(&target).await
        }
        .await
        .map(|c| c.id.to_hex())
        .map_err(|e| e.to_string());
        targets.push(SheetTarget {
            info: TargetInfo::of(config, t),
            s3: s3_place(config, t),
            repo_id,
        });
    }
    let key_file = crate::paper::report::absolute(&config.resolve(&s.key_file));
    let keys = key_list(config, s, &targets).await;
    SheetSchedule {
        keys,
        name: s.name.clone(),
        description: s.description.clone(),
        sources: s.sources.iter().map(|x| x.name.clone()).collect(),
        targets,
        fingerprint: read_unlock(&key_file).map(|(u, _)| recipients(&u)),
        key_file,
        last_drill: s
            .sources
            .iter()
            .map(|src| {
                (
                    src.name.clone(),
                    drills
                        .iter()
                        .rev()
                        .find(|d| {
                            d.schedule == s.name
                                && d.source == src.name
                                && d.result == crate::store::records::CheckOutcome::Pass
                        })
                        .cloned(),
                )
            })
            .collect(),
    }
}

/// An S3 target's bucket, prefix, endpoint and region; `None` for a path.
fn s3_place(config: &Config, name: &str) -> Option<S3Place> {
    let spec = &config.targets[name];
    let env = |var: &str| std::env::var(var).ok().filter(|v| !v.trim().is_empty());
    (spec.kind == crate::config::TargetKind::S3).then(|| S3Place {
        bucket: spec.bucket.clone().unwrap_or_default(),
        prefix: spec.prefix.trim_matches('/').to_string(),
        endpoint: spec.endpoint.clone().or_else(|| env("AWS_ENDPOINT_URL")),
        region: spec.region.clone().or_else(|| env("AWS_REGION")),
        instance_credentials: spec.instance_credentials,
    })
}

/// Every key envelope of a schedule's repository, read with the schedule's key from the first
/// target that answered.
async fn key_list(
    config: &Config,
    s: &ScheduleSpec,
    targets: &[SheetTarget],
) -> std::result::Result<(String, Vec<KeyEntry>), String> {
    let unlock = config.schedule_key(s).map_err(|e| e.to_string())?;
    let mut why = Vec::new();
    for t in targets.iter().filter(|t| t.repo_id.is_ok()) {
        let attempt = async {
            let target = crate::config::targets::open_target(config, &t.info.name, false)?;
            let repo = Repository::open(target, &unlock).await?;
            crate::ops::keys::list(&repo).await
        }
        .await;
        match attempt {
            Ok(list) => return Ok((t.info.name.clone(), list)),
            Err(e) => why.push(format!("{}: {e}", t.info.name)),
        }
    }
    if why.is_empty() {
        why.push("no copy answered".into());
    }
    Err(why.join("; "))
}

/// Quotes a word for a POSIX shell when it needs it.
pub fn shell_quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-:@%+=,".contains(&b))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// The copy to restore from after a fire: the first offsite copy that answered now, else the
/// first offsite copy (which the sheet then marks as not checked). Never an onsite copy: it burns
/// with the building. `None` when the schedule has no offsite copy.
fn site_loss_copy(s: &SheetSchedule) -> Option<&SheetTarget> {
    let offsite = |t: &&SheetTarget| t.info.location == Site::Offsite;
    s.targets
        .iter()
        .filter(offsite)
        .find(|t| t.repo_id.is_ok())
        .or_else(|| s.targets.iter().find(offsite))
}

/// What site.toml says about one of [`KEPT_FIELDS`], or that it is not filled in.
fn kept_or_not(value: Option<&String>, field: &str) -> String {
    match value {
        Some(v) => v.clone(),
        None => {
            let what = KEPT_FIELDS
                .iter()
                .find(|(k, ..)| *k == field)
                .map_or(field, |(_, w, _)| *w);
            format!("Not filled in: {what} (set {field} in site.toml)")
        }
    }
}

/// An error as the sheet prints it: its first line, at most about two printed lines (a storage
/// server's whole XML answer does not belong on paper; `firesafe status` shows it all).
fn brief(why: &str) -> String {
    let line = why.lines().next().unwrap_or_default().trim();
    match line.char_indices().nth(160) {
        None => line.to_string(),
        Some((cut, _)) => {
            let head = &line[..cut];
            let head = head.rfind(' ').map_or(head, |i| &head[..i]);
            format!("{head} ...")
        }
    }
}

/// "It is kept: ..." or "Not filled in: ...", for a sentence of the steps.
fn kept_at(value: Option<&String>, field: &str) -> String {
    match value {
        Some(v) => format!("It is kept: {}", v.trim_end_matches('.')),
        None => kept_or_not(None, field),
    }
}

/// The restore commands for one schedule, from `from`.
pub fn commands(s: &SheetSchedule, from: &SheetTarget) -> Vec<String> {
    let mut out = vec![
        "firesafe --version".to_string(),
        "export FIRESAFE_KEY_FILE=\"$PWD/firesafe.key\"".to_string(),
    ];
    if let Some(s3) = &from.s3 {
        let endpoint = s3.endpoint.as_deref().unwrap_or("https://YOUR-S3-ENDPOINT");
        out.push(format!(
            "export AWS_ENDPOINT_URL={} AWS_REGION={}{}",
            shell_quote(endpoint),
            shell_quote(s3.region.as_deref().unwrap_or("YOUR-REGION")),
            if endpoint.starts_with("http://") {
                " AWS_ALLOW_HTTP=true"
            } else {
                ""
            }
        ));
        out.push(
            "export AWS_ACCESS_KEY_ID='YOUR-ACCESS-KEY-ID' AWS_SECRET_ACCESS_KEY='YOUR-SECRET-ACCESS-KEY'"
                .to_string(),
        );
    }
    let repo = shell_quote(&from.info.place);
    out.push(format!("firesafe --repo {repo} snapshots"));
    for src in &s.sources {
        out.push(format!(
            "firesafe --repo {repo} restore latest --source {} --to {}",
            shell_quote(src),
            shell_quote(&format!("restored/{src}"))
        ));
    }
    out
}

/// Builds the sheet.
pub fn build(d: &SheetData) -> Doc {
    let school = d.school.clone().unwrap_or_else(|| "The school".into());
    let mut b = vec![Block::Title {
        title: format!("{school}: backup recovery sheet"),
        subtitle: format!(
            "Printed {} by firesafe {}. Keep in the fire safe. Print a new one after any change of storage, keys or contacts.",
            printed(d.timezone, d.generated),
            crate::VERSION
        ),
    }];
    contacts(&mut b, &d.contacts);
    ransomware(&mut b, d);
    needs(&mut b, &d.kept);
    key(&mut b, d.key.as_ref());
    for s in &d.schedules {
        schedule(&mut b, s, d);
    }
    Doc {
        title: format!("{school}: backup recovery sheet"),
        footer: format!("{school} · recovery sheet · keep in the fire safe"),
        blocks: b,
    }
}

/// "If you suspect ransomware": what the technician does, in order, in the middle of an incident
/// (the same steps as docs/RANSOMWARE-INCIDENT.md). Plain paragraphs, not `$ ` commands: they
/// are run on the backup server with its configuration, not typed on a new machine.
fn ransomware(b: &mut Vec<Block>, d: &SheetData) {
    let schedule = match d.schedules.as_slice() {
        [one] => one.name.clone(),
        _ => "SCHEDULE".into(),
    };
    b.push(Block::Subheading("If you suspect ransomware".into()));
    // One paragraph: the sheet must stay on two pages.
    b.push(Block::Para(format!(
        "On the backup server, in this order (SHARE is the share's name): 1. Delete nothing: no files, no backups, no firesafe prune. 2. firesafe status, then firesafe suspect list (each suspect backup's ID). 3. firesafe diff SHARE@clean latest --schedule {schedule}. 4. firesafe restore SHARE@clean --schedule {schedule} --to restored-SHARE: a new folder, never over the share. 5. firesafe suspect confirm ID --note \"...\" (an attack) or accept ID --note \"...\" (a false alarm). 6. Report the breach as the school's policy says."
    )));
}

/// A time as the sheet prints it, in the schedule's time zone.
fn printed(tz: chrono_tz::Tz, t: DateTime<Utc>) -> String {
    t.with_timezone(&tz).format("%-d %b %Y %H:%M").to_string()
}

/// "Whom to call": the contacts from site.toml.
fn contacts(b: &mut Vec<Block>, contacts: &[Contact]) {
    b.push(Block::Subheading("Whom to call".into()));
    if contacts.is_empty() {
        b.push(Block::Para(
            "No contacts are recorded: add them to site.toml and print this sheet again.".into(),
        ));
        return;
    }
    b.push(Block::Table {
        widths: vec![0.25, 0.25, 0.2, 0.3],
        header: vec!["Name".into(), "Role".into(), "Phone".into(), "Email".into()],
        rows: contacts
            .iter()
            .map(|c| {
                vec![
                    c.name.clone(),
                    c.role.clone(),
                    c.phone.clone(),
                    c.email.clone(),
                ]
            })
            .collect(),
    });
}

/// "What a restore after a fire needs": where the recovery key, the storage credentials and
/// firesafe are kept (site.toml), and that the format is documented for recovery without it.
fn needs(b: &mut Vec<Block>, k: &Kept) {
    b.push(Block::Subheading(
        "What a restore after a fire needs".into(),
    ));
    b.push(Block::Table {
        widths: vec![0.3, 0.7],
        header: vec!["What".into(), "Where it is kept".into()],
        rows: vec![
            vec![
                "The recovery key".into(),
                kept_or_not(k.recovery_key.as_ref(), "recovery_key_kept"),
            ],
            vec![
                "Storage credentials (NAS login, object storage access key)".into(),
                kept_or_not(k.credentials.as_ref(), "credentials_kept"),
            ],
            vec![
                format!("firesafe {} or newer", crate::VERSION),
                kept_or_not(k.firesafe.as_ref(), "firesafe_source"),
            ],
            vec![
                "Without firesafe".into(),
                "docs/FORMAT.md, in firesafe's source, describes the repository byte for byte; its last section recovers the files with the age and zstd tools, without firesafe.".into(),
            ],
        ],
    });
}

/// The key: printed (as text and as a QR code, with whether it opened each repository) when
/// asked for, otherwise a warning that it is not on the sheet.
fn key(b: &mut Vec<Block>, k: Option<&PrintedKey>) {
    let Some(k) = k else {
        b.push(Block::Para(
            "The key that unlocks the backups is NOT on this sheet. Without it (or another key listed below) the backups cannot be read. The key file on the server is named for each schedule below; a copy should be kept apart from the server (for example on an encrypted USB stick in this fire safe).".into(),
        ));
        return;
    };
    b.push(Block::Subheading("The recovery key (SECRET)".into()));
    b.push(Block::Para(format!(
        "This sheet holds the key that unlocks every backup. Anyone with it can read them: keep the sheet locked in the fire safe. Type it, or scan the code, into a file named firesafe.key (from {}).",
        k.file.display()
    )));
    b.push(Block::Mono(k.secret.clone()));
    b.push(Block::Qr {
        text: k.secret.join("\n"),
        caption: format!(
            "The same key as a QR code. Its public half: {}.",
            k.recipients.join(", ")
        ),
    });
    for (s, r) in &k.opens {
        b.push(Block::Note(match r {
            Ok(()) => {
                format!("Checked when printed: this key opens the repository of schedule {s}.")
            }
            Err(e) => format!(
                "WARNING: when printed, this key could not be shown to open schedule {s}: {e}"
            ),
        }));
    }
}

/// One schedule's part: its repository and keys, where its copies are, its last good drills and
/// how to restore it onto a new machine after a fire.
fn schedule(b: &mut Vec<Block>, s: &SheetSchedule, d: &SheetData) {
    b.push(Block::Heading(format!(
        "Schedule {}: {}",
        s.name, s.description
    )));
    b.push(identity(s));
    b.push(Block::Subheading("Where the copies are".into()));
    b.push(copies(s));
    keys(b, s);
    b.push(Block::Subheading("Last restore drill that passed".into()));
    b.push(last_drills(s, d.timezone));
    match site_loss_copy(s) {
        Some(from) => restore_steps(b, s, from, d),
        None => {
            b.push(Block::Status {
                light: crate::paper::doc::Light::Red,
                headline: "NO OFFSITE COPY: a fire would destroy every copy".into(),
                detail: format!(
                    "Schedule {} has no target with location = \"offsite\". Add one and print this sheet again. Until then, a restore onto a new machine can only come from the copies above.",
                    s.name
                ),
            });
            if let Some(from) = s.targets.first() {
                restore_steps(b, s, from, d);
            }
        }
    }
}

/// The repository id, the key's fingerprint and file, and the shares.
fn identity(s: &SheetSchedule) -> Block {
    let ids: Vec<&String> = s
        .targets
        .iter()
        .filter_map(|t| t.repo_id.as_ref().ok())
        .collect();
    Block::Table {
        widths: vec![0.3, 0.7],
        header: vec!["Item".into(), "Value".into()],
        rows: vec![
            vec![
                "Repository id".into(),
                ids.first()
                    .map_or("not readable when printed".into(), |i| i.to_string()),
            ],
            vec![
                "Schedule key fingerprint (public key)".into(),
                match &s.fingerprint {
                    Ok(r) => r.join(", "),
                    Err(e) => format!("unknown: {e}"),
                },
            ],
            vec![
                "Schedule key file on the server".into(),
                s.key_file.display().to_string(),
            ],
            vec!["Shares".into(), s.sources.join(", ")],
        ],
    }
}

/// A copy's full location: the path, or for S3 the endpoint, region, bucket and prefix.
fn location(t: &SheetTarget) -> String {
    let mut place = match &t.s3 {
        None => t.info.place.clone(),
        Some(s3) => format!(
            "{}: endpoint {}, region {}, bucket {}, prefix {}; access key in AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY{}",
            t.info.place,
            s3.endpoint.as_deref().unwrap_or(
                "NOT RECORDED (set endpoint in the target file, or AWS_ENDPOINT_URL when printing)"
            ),
            s3.region
                .as_deref()
                .unwrap_or("NOT RECORDED (set region in the target file)"),
            s3.bucket,
            if s3.prefix.is_empty() {
                "(none)"
            } else {
                &s3.prefix
            },
            if s3.instance_credentials {
                " (on the cloud server: its instance role)"
            } else {
                ""
            }
        ),
    };
    if !t.info.description.is_empty() {
        place.push_str(&format!(" ({})", t.info.description));
    }
    place
}

/// Every target: where it is, on what, and whether it answered when the sheet was printed.
fn copies(s: &SheetSchedule) -> Block {
    Block::Table {
        widths: vec![0.12, 0.09, 0.14, 0.47, 0.18],
        header: vec![
            "Target".into(),
            "Where".into(),
            "Medium".into(),
            "Location".into(),
            "When this sheet was printed".into(),
        ],
        rows: s
            .targets
            .iter()
            .map(|t| {
                vec![
                    t.info.name.clone(),
                    match t.info.location {
                        Site::Onsite => "on site".into(),
                        Site::Offsite => "off site".into(),
                    },
                    t.info.medium.clone(),
                    location(t),
                    match &t.repo_id {
                        Ok(_) => "reached, repository read".into(),
                        Err(_) => "NOT CHECKED: did not answer".into(),
                    },
                ]
            })
            .collect(),
    }
}

/// Every key envelope that opens the repository, by label, kind and fingerprint (the public
/// recipient of an age key; the envelope id of a passphrase), or in red that they could not be
/// read.
fn keys(b: &mut Vec<Block>, s: &SheetSchedule) {
    b.push(Block::Subheading("Keys that open the repository".into()));
    match &s.keys {
        Ok((from, list)) => {
            b.push(Block::Table {
                widths: vec![0.2, 0.12, 0.68],
                header: vec!["Label".into(), "Kind".into(), "Fingerprint".into()],
                rows: list
                    .iter()
                    .map(|k| {
                        vec![
                            if k.label.is_empty() {
                                "(no label)".into()
                            } else {
                                crate::format::tree::printable(&k.label).into_owned()
                            },
                            match k.kind.as_str() {
                                "x25519" => "age key (X25519)".into(),
                                other => other.to_string(),
                            },
                            match &k.recipient {
                                Some(r) => format!("{r} (envelope {})", k.id.short()),
                                None => format!("envelope {}", k.id.short()),
                            },
                        ]
                    })
                    .collect(),
            });
            b.push(Block::Note(format!(
                "Read from {from} when printed. Any one of these keys opens the repository; `firesafe key list` shows the same."
            )));
        }
        Err(why) => b.push(Block::Status {
            light: crate::paper::doc::Light::Red,
            headline: "NOT CHECKED: the keys could not be read when this sheet was printed".into(),
            detail: brief(why),
        }),
    }
}

/// Each share's last drill that passed, or that none is recorded.
fn last_drills(s: &SheetSchedule, tz: chrono_tz::Tz) -> Block {
    Block::Table {
        widths: vec![0.25, 0.75],
        header: vec!["Share".into(), "Drill".into()],
        rows: s
            .last_drill
            .iter()
            .map(|(share, dr)| {
                vec![
                    share.clone(),
                    match dr {
                        Some(x) => format!(
                            "{} from {} ({} files restored and checked)",
                            printed(tz, x.finished),
                            x.target,
                            x.files
                        ),
                        None => "NONE RECORDED: no restore of this share has been proven".into(),
                    },
                ]
            })
            .collect(),
    }
}

/// Numbered steps for restoring onto a new machine from `from` (after a fire, an offsite copy,
/// marked in red when it did not answer when printed), then the commands to type.
fn restore_steps(b: &mut Vec<Block>, s: &SheetSchedule, from: &SheetTarget, d: &SheetData) {
    let offsite = from.info.location == Site::Offsite;
    b.push(Block::Subheading(if offsite {
        format!(
            "After a fire: restoring onto a new machine from {}, the offsite copy",
            from.info.name
        )
    } else {
        format!(
            "Restoring onto a new machine from {} (on site: lost in a fire)",
            from.info.name
        )
    }));
    if let Err(why) = &from.repo_id {
        b.push(Block::Status {
            light: crate::paper::doc::Light::Red,
            headline: "NOT CHECKED: could not be reached when this sheet was printed".into(),
            detail: format!(
                "{} ({}) is still the copy to restore from; check it answers as soon as you can. What it said when the sheet was printed: {}",
                from.info.name,
                from.info.place,
                brief(why)
            ),
        });
    }
    let mut steps = vec![
        format!(
            "Install firesafe {} or newer on the new machine (where to get it is above), and make an empty folder to work in.",
            crate::VERSION
        ),
        format!(
            "Put the recovery key{} in that folder, named firesafe.key. {}.",
            if d.key.is_some() {
                " (printed on this sheet)"
            } else {
                ""
            },
            kept_at(d.kept.recovery_key.as_ref(), "recovery_key_kept")
        ),
    ];
    let credentials = kept_at(d.kept.credentials.as_ref(), "credentials_kept");
    if from.s3.is_some() {
        steps.push(format!("Get the storage access key (it is not on this sheet; {credentials}) and put it in place of the YOUR-... words."));
    } else {
        steps.push(format!("Make {} reachable from the new machine (for its storage login: {credentials}); if it is at another place, put that place after --repo.", from.info.place));
    }
    steps.push("In that folder, type each line below that starts with $, without the $. Each share comes back in restored/SHARE/SHARE (restored/curriculum/curriculum, ...).".into());
    steps.push(
        "If this copy cannot be reached, use another offsite copy from the table above: put its location after --repo.".into(),
    );
    for (i, t) in steps.into_iter().enumerate() {
        b.push(Block::Para(format!("{}. {t}", i + 1)));
    }
    b.push(Block::Commands(commands(s, from)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_only_when_they_must_be() {
        assert_eq!(shell_quote("/mnt/nas/firesafe"), "/mnt/nas/firesafe");
        assert_eq!(shell_quote("s3://school-dr/fs"), "s3://school-dr/fs");
        assert_eq!(shell_quote("/mnt/my nas"), "'/mnt/my nas'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }

    #[test]
    fn errors_are_cut_short_for_paper() {
        assert_eq!(brief("refused\n<xml/>"), "refused");
        let long = "word ".repeat(60);
        let cut = brief(&long);
        assert!(cut.len() <= 165 && cut.ends_with("word ..."), "{cut}");
    }

    fn target(name: &str, location: Site, place: &str, answered: bool) -> SheetTarget {
        SheetTarget {
            info: TargetInfo {
                name: name.into(),
                description: String::new(),
                location,
                medium: "nas".into(),
                place: place.into(),
                endpoint: None,
                region: None,
            },
            s3: None,
            repo_id: if answered {
                Ok("ab".repeat(32))
            } else {
                Err("connection refused".into())
            },
        }
    }

    fn data(
        targets: Vec<SheetTarget>,
        keys: std::result::Result<(String, Vec<KeyEntry>), String>,
    ) -> SheetData {
        SheetData {
            school: Some("A School".into()),
            contacts: Vec::new(),
            generated: Utc::now(),
            timezone: chrono_tz::Europe::London,
            schedules: vec![SheetSchedule {
                name: "nightly".into(),
                description: "Nightly".into(),
                sources: vec!["admin".into()],
                targets,
                key_file: PathBuf::from("/etc/firesafe/school.key"),
                fingerprint: Ok(vec!["age1schedule".into()]),
                last_drill: vec![("admin".into(), None)],
                keys,
            }],
            key: None,
            kept: Kept::default(),
        }
    }

    /// The site-loss commands after a fire use the S3 copy that did not answer, never the NAS
    /// that did, and give its endpoint, region, bucket, prefix and the credential variables.
    #[test]
    fn an_unanswering_s3_copy_is_still_the_one_to_restore_from() {
        let mut cloud = target("cloud", Site::Offsite, "s3://school-dr/firesafe", false);
        cloud.s3 = Some(S3Place {
            bucket: "school-dr".into(),
            prefix: "firesafe".into(),
            endpoint: Some("https://s3.example.net".into()),
            region: Some("eu-west-2".into()),
            instance_credentials: false,
        });
        let d = data(
            vec![
                target("nas", Site::Onsite, "/mnt/nas/firesafe", true),
                cloud,
            ],
            Ok((
                "nas".into(),
                vec![KeyEntry {
                    id: crate::id::Id([7; 32]),
                    kind: "passphrase".into(),
                    label: "headteacher".into(),
                    recipient: None,
                    created: None,
                    host: None,
                    current: false,
                    scrypt_log_n: Some(18),
                }],
            )),
        );
        let text = build(&d).text();
        for want in [
            "After a fire: restoring onto a new machine from cloud, the offsite copy",
            "NOT CHECKED: could not be reached when this sheet was printed",
            "endpoint https://s3.example.net, region eu-west-2, bucket school-dr, prefix firesafe",
            "access key in AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY",
            "$ export AWS_ENDPOINT_URL=https://s3.example.net AWS_REGION=eu-west-2\n",
            "$ firesafe --repo s3://school-dr/firesafe restore latest --source admin --to restored/admin\n",
            "| headteacher | passphrase | envelope 07070707 |",
            "Not filled in: where the storage credentials are kept (set credentials_kept in site.toml)",
        ] {
            assert!(text.contains(want), "lacks {want:?}:\n{text}");
        }
        assert!(!text.contains("--repo /mnt/nas"), "{text}");
    }

    /// With no offsite copy the sheet says, in red, that a fire would destroy every copy; keys
    /// that could not be read are said to be not checked.
    #[test]
    fn no_offsite_copy_is_said_in_red() {
        let d = data(
            vec![target("nas", Site::Onsite, "/mnt/nas/firesafe", true)],
            Err("nas: wrong key".into()),
        );
        let text = build(&d).text();
        for want in [
            "[ACTION NEEDED] NO OFFSITE COPY: a fire would destroy every copy",
            "Restoring onto a new machine from nas (on site: lost in a fire)",
            "[ACTION NEEDED] NOT CHECKED: the keys could not be read when this sheet was printed",
        ] {
            assert!(text.contains(want), "lacks {want:?}:\n{text}");
        }
    }
}
