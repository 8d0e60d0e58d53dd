//! Ransomware detection on a generated school share (tests/scripts/school-share.py, 4,000
//! files): each attack is flagged in the first backup that sees 5% of the share affected, and a
//! normal term of 60 nights raises no alarm.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::support::{Backend, Repo, assert_success, project_root};

const FILES: &str = "4000";

fn script(args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg(project_root().join("tests/scripts/school-share.py"))
        .args(args)
        .output()
        .expect("python3");
    assert_success(&out, &format!("school-share.py {}", args.join(" ")));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A share, its repository, and the backups made of it so far.
struct School {
    repo: Repo,
    share: PathBuf,
}

impl School {
    /// A generated share, its first backup, and `nights` normal nights backed up.
    fn new(nights: u32) -> School {
        let repo = Repo::with_args(Backend::Local, &[]);
        let share = repo.dir.path().join("share");
        script(&["generate", share.to_str().unwrap(), "--files", FILES]);
        let school = School { repo, share };
        assert_eq!(school.backup(), None, "the first backup");
        for n in 0..nights {
            school.night(n);
            assert_eq!(school.backup(), None, "normal night {n}");
        }
        school
    }

    fn dir(&self) -> &str {
        self.share.to_str().unwrap()
    }

    fn night(&self, n: u32) {
        script(&["night", self.dir(), "--night", &n.to_string()]);
    }

    /// Backs up the share; the new snapshot's `suspect` field, if any.
    fn backup(&self) -> Option<Value> {
        self.repo.backup(&self.share, "curriculum");
        last_suspect(&self.repo)
    }
}

fn last_suspect(repo: &Repo) -> Option<Value> {
    let text = repo.ok(&["snapshots", "--json"]);
    let list: Vec<Value> = serde_json::from_str(&text).expect("snapshots --json");
    let last = list.last().expect("a snapshot");
    last.get("suspect").filter(|s| !s.is_null()).cloned()
}

fn kinds(suspect: &Value) -> Vec<String> {
    suspect["signals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap().to_string())
        .collect()
}

fn assert_flagged(suspect: Option<Value>, kind: &str, what: &str) -> Value {
    let s = suspect.unwrap_or_else(|| panic!("{what}: not flagged"));
    assert!(s["score"].as_u64().unwrap() >= s["threshold"].as_u64().unwrap());
    assert!(kinds(&s).contains(&kind.to_string()), "{what}: {s:#}");
    let first = &s["signals"][0];
    assert!(first["count"].as_u64().unwrap() > 0, "{s:#}");
    assert!(
        first["examples"][0]
            .as_str()
            .unwrap()
            .starts_with("/share/"),
        "{s:#}"
    );
    eprintln!("{what}: score {} - {}", s["score"], s["headline"]);
    s
}

#[test]
fn files_encrypted_in_place_are_flagged() {
    let school = School::new(5);
    script(&["attack", school.dir(), "a", "--fraction", "0.05"]);
    assert_flagged(school.backup(), "content-changed-character", "attack a");
}

/// `--force-read` reads every file again but still compares with the parent: a normal night is
/// no alarm (files read again with the same content are unchanged), an attack is.
#[test]
fn a_force_read_backup_still_compares_and_flags_an_attack() {
    let school = School::new(5);
    let force = |school: &School| {
        let out = school
            .repo
            .cmd()
            .arg("backup")
            .arg(&school.share)
            .args(["--source", "curriculum", "--force-read"])
            .output()
            .expect("run");
        assert_success(&out, "backup --force-read");
        last_suspect(&school.repo)
    };
    school.night(20);
    assert_eq!(force(&school), None, "a normal night read in full");
    script(&["attack", school.dir(), "a", "--fraction", "0.05"]);
    assert_flagged(
        force(&school),
        "content-changed-character",
        "attack a, --force-read",
    );
}

#[test]
fn files_encrypted_renamed_with_ransom_notes_are_flagged() {
    let school = School::new(5);
    script(&["attack", school.dir(), "b", "--fraction", "0.05"]);
    let s = assert_flagged(school.backup(), "ransom-note", "attack b");
    let kinds = kinds(&s);
    // The renamed files are paired with their old versions in the folder.
    assert!(
        kinds.contains(&"content-changed-character".to_string()),
        "{s:#}"
    );
    assert!(kinds.contains(&"new-extensions".to_string()), "{s:#}");
}

#[test]
fn files_encrypted_in_their_first_mebibyte_are_flagged() {
    let school = School::new(5);
    script(&["attack", school.dir(), "c", "--fraction", "0.05"]);
    assert_flagged(school.backup(), "content-changed-character", "attack c");
}

#[test]
fn a_slow_attack_over_a_week_is_flagged() {
    let school = School::new(5);
    let mut flagged = Vec::new();
    for night in 0..7u32 {
        school.night(10 + night);
        script(&["attack", school.dir(), "d", "--night", &night.to_string()]);
        if let Some(s) = school.backup() {
            eprintln!("attack d, night {}: {}", night + 1, s["headline"]);
            flagged.push(night + 1);
        }
    }
    // 3% a night: 6% affected from the second night on.
    eprintln!("attack d flagged on nights {flagged:?}");
    assert!((2..=7).all(|n| flagged.contains(&n)), "{flagged:?}");
}

#[test]
fn a_normal_term_raises_no_alarm() {
    let school = School::new(0);
    for night in 0..60u32 {
        school.night(night);
        match night {
            10 => drop(script(&[
                "event",
                school.dir(),
                "newyear",
                "--count",
                "1000",
            ])),
            20 => drop(script(&["event", school.dir(), "move", "--count", "2500"])),
            30 => drop(script(&["event", school.dir(), "delete"])),
            40 => drop(script(&["event", school.dir(), "photos", "--count", "300"])),
            _ => {}
        }
        // Listed once at the end: listing after every backup would double the test's time.
        school.repo.backup(&school.share, "curriculum");
    }
    let text = school.repo.ok(&["snapshots", "--json"]);
    let list: Vec<Value> = serde_json::from_str(&text).expect("snapshots --json");
    assert_eq!(list.len(), 61);
    let alarms: Vec<(usize, String)> = list
        .iter()
        .enumerate()
        .filter(|(_, s)| s.get("suspect").is_some_and(|v| !v.is_null()))
        .map(|(i, s)| (i, s["suspect"]["headline"].to_string()))
        .collect();
    eprintln!(
        "normal term of 60 nights: {} false alarm(s) {alarms:?}",
        alarms.len()
    );
    assert!(alarms.is_empty(), "{alarms:?}");
}
