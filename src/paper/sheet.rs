//! The recovery sheet: the "hard copy of key information" the schools' policies ask for, to be
//! printed and kept in the fire safe. It says where every copy lives, which repository and key
//! open it, how to restore each share onto a new machine (commands to type, one per `$ ` line),
//! when a restore was last proven, and whom to call.
//!
//! The key itself is printed (as text and as a QR code) only when asked for with a deliberate
//! option; otherwise the sheet says where the key is kept and that it is not on the sheet. No
//! storage credential is ever printed: the commands name the variables to set, not their values.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::config::site::Contact;
use crate::config::{Config, ScheduleSpec, Site};
use crate::error::{Error, Result};
use crate::format::crypto::Unlock;
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
    /// The repository id it holds, or why it could not be read.
    pub repo_id: std::result::Result<String, String>,
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
}

fn read_unlock(path: &Path) -> std::result::Result<(Unlock, String), String> {
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
    })
}

/// Reads the key file to print, and tries it on each schedule's repository (on its targets in
/// order, until one opens or refuses the key).
async fn printed_key(
    config: &Config,
    schedules: &[&ScheduleSpec],
    path: &Path,
) -> Result<PrintedKey> {
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
            repo_id,
        });
    }
    let key_file = crate::paper::report::absolute(&config.resolve(&s.key_file));
    SheetSchedule {
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

/// The copy to restore from after a disaster: the first offsite copy that answered now, else
/// any that answered, else the first offsite one.
fn preferred(s: &SheetSchedule) -> Option<&SheetTarget> {
    let offsite = |t: &&SheetTarget| t.info.location == Site::Offsite;
    s.targets
        .iter()
        .filter(|t| t.repo_id.is_ok())
        .find(offsite)
        .or_else(|| s.targets.iter().find(|t| t.repo_id.is_ok()))
        .or_else(|| s.targets.iter().find(offsite))
        .or(s.targets.first())
}

/// The restore commands for one schedule, from `from`.
pub fn commands(s: &SheetSchedule, from: &TargetInfo) -> Vec<String> {
    let mut out = vec![
        "firesafe --version".to_string(),
        "export FIRESAFE_KEY_FILE=\"$PWD/firesafe.key\"".to_string(),
    ];
    if from.is_s3() {
        out.push(format!(
            "export AWS_ENDPOINT_URL={} AWS_REGION={}",
            shell_quote(
                from.endpoint
                    .as_deref()
                    .unwrap_or("https://YOUR-S3-ENDPOINT")
            ),
            shell_quote(from.region.as_deref().unwrap_or("YOUR-REGION"))
        ));
        out.push(
            "export AWS_ACCESS_KEY_ID='YOUR-ACCESS-KEY-ID' AWS_SECRET_ACCESS_KEY='YOUR-SECRET-ACCESS-KEY'"
                .to_string(),
        );
    }
    let repo = shell_quote(&from.place);
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
    key(&mut b, d.key.as_ref());
    for s in &d.schedules {
        schedule(&mut b, s, d.timezone);
    }
    Doc {
        title: format!("{school}: backup recovery sheet"),
        footer: format!("{school} · recovery sheet · keep in the fire safe"),
        blocks: b,
    }
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

/// The key: printed (as text and as a QR code, with whether it opened each repository) when
/// asked for, otherwise a warning that it is not on the sheet.
fn key(b: &mut Vec<Block>, k: Option<&PrintedKey>) {
    let Some(k) = k else {
        b.push(Block::Subheading("The key".into()));
        b.push(Block::Para(
            "The key that unlocks the backups is NOT on this sheet. Without it the backups cannot be read. Its location is given for each schedule below; a copy should be kept apart from the server (for example on an encrypted USB stick in this fire safe).".into(),
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

/// One schedule's part: its repository and key, where its copies are, its last good drills and
/// how to restore it onto a new machine.
fn schedule(b: &mut Vec<Block>, s: &SheetSchedule, tz: chrono_tz::Tz) {
    b.push(Block::Heading(format!(
        "Schedule {}: {}",
        s.name, s.description
    )));
    b.push(identity(s));
    b.push(Block::Subheading("Where the copies are".into()));
    b.push(copies(s));
    b.push(Block::Subheading("Last restore drill that passed".into()));
    b.push(last_drills(s, tz));
    if let Some(from) = preferred(s) {
        restore_steps(b, s, from);
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
                "Key fingerprint (public key)".into(),
                match &s.fingerprint {
                    Ok(r) => r.join(", "),
                    Err(e) => format!("unknown: {e}"),
                },
            ],
            vec![
                "Key file on the server".into(),
                s.key_file.display().to_string(),
            ],
            vec!["Shares".into(), s.sources.join(", ")],
        ],
    }
}

/// Every target: where it is, on what, and whether it answered when the sheet was printed.
fn copies(s: &SheetSchedule) -> Block {
    Block::Table {
        widths: vec![0.13, 0.1, 0.15, 0.4, 0.22],
        header: vec![
            "Target".into(),
            "Where".into(),
            "Medium".into(),
            "Location".into(),
            "When printed".into(),
        ],
        rows: s
            .targets
            .iter()
            .map(|t| {
                let mut place = t.info.place.clone();
                if let Some(e) = &t.info.endpoint {
                    place.push_str(&format!(" at {e}"));
                }
                if let Some(r) = &t.info.region {
                    place.push_str(&format!(", region {r}"));
                }
                if !t.info.description.is_empty() {
                    place.push_str(&format!(" ({})", t.info.description));
                }
                vec![
                    t.info.name.clone(),
                    match t.info.location {
                        Site::Onsite => "on site".into(),
                        Site::Offsite => "off site".into(),
                    },
                    t.info.medium.clone(),
                    place,
                    match &t.repo_id {
                        Ok(_) => "answered".into(),
                        Err(_) => "did not answer".into(),
                    },
                ]
            })
            .collect(),
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

/// Numbered steps for restoring onto a new machine from `from`, then the commands to type.
fn restore_steps(b: &mut Vec<Block>, s: &SheetSchedule, from: &SheetTarget) {
    b.push(Block::Subheading(format!(
        "Restoring onto a new machine, from {} ({})",
        from.info.name,
        match from.info.location {
            Site::Onsite => "on site",
            Site::Offsite => "off site",
        }
    )));
    let mut steps = vec![
        format!(
            "Install firesafe {} or newer on the new machine, and make an empty folder to work in.",
            crate::VERSION
        ),
        "Put the key file in that folder, named firesafe.key.".to_string(),
    ];
    if from.info.is_s3() {
        steps.push("Get the storage access key from the storage provider's account (it is not on this sheet) and put it in place of the YOUR-... words.".into());
    }
    steps.push("In that folder, type each line below that starts with $, without the $. Each share comes back in restored/SHARE/SHARE (restored/curriculum/curriculum, ...).".into());
    steps.push(
        "If this copy cannot be reached, use another copy from the table above: put its location after --repo.".into(),
    );
    for (i, t) in steps.into_iter().enumerate() {
        b.push(Block::Para(format!("{}. {t}", i + 1)));
    }
    b.push(Block::Commands(commands(s, &from.info)));
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
}
