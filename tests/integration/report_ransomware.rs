//! Ransomware in the governors' report. Page 1's "Could ransomware or a break-in destroy every
//! copy?" is answered from what is read back now: the shipped example (folders only) is ACTION
//! NEEDED with what to do; a disk of a pool recorded off site within rotate_days is OK; an S3
//! bucket whose newest objects carry Object Lock retention is OK with the date read back, and a
//! bucket without retention is named as not out of reach (FIRESAFE_TEST_S3=1). Suspect
//! snapshots, forged into the repository with its key, are incidents: open until a decision
//! object is written, resolved by an accepted false alarm, or by a restore from the clean
//! snapshot before a confirmed attack.

use std::fs;
use std::path::Path;
use std::process::Command;

use chrono::{DateTime, Duration, Utc};
use firesafe::format::crypto::Unlock;
use firesafe::format::snapshot::{Decision, Signal, Suspect, Verdict};
use firesafe::id::Id;
use firesafe::store::repo::{DECISIONS, Repository, SNAPSHOTS};
use firesafe::store::snapshot::Catalog;
use firesafe::store::state::StateDir;

use crate::report::{example_with_site, fs_in};
use crate::support::*;

/// The report of schedule `nightly` for the last 30 days, as text.
fn report_text(dir: &Path, now: DateTime<Utc>) -> String {
    let config = firesafe::config::Config::load(dir).expect("config");
    let state = StateDir::open(&dir.join("state")).expect("state");
    let data = block_on(firesafe::paper::report::gather(
        &config,
        &state,
        &firesafe::paper::report::ReportOptions {
            schedules: vec!["nightly".into()],
            from: now - Duration::days(30),
            to: now,
            now,
        },
    ))
    .expect("gather");
    firesafe::paper::report::build(&data).text()
}

/// Page 1's answer to the ransomware question (its line and the next).
fn answer(text: &str) -> String {
    let q = "Could ransomware or a break-in destroy every copy?";
    let at = text
        .find(q)
        .unwrap_or_else(|| panic!("no question:\n{text}"));
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let end = text[at..].find("\n[").map_or(text.len(), |i| at + i);
    let end = text[at..end].find("\n--").map_or(end, |i| at + i);
    text[start..end].to_string()
}

#[test]
fn the_shipped_example_has_no_copy_out_of_the_servers_reach() {
    let dir = example_with_site();
    let text = report_text(dir.path(), Utc::now());
    let a = answer(&text);
    assert!(a.starts_with("[ACTION NEEDED]"), "{a}");
    assert!(
        a.contains("Yes: the server could delete every copy. nas and offsite are folders the server writes to."),
        "{a}"
    );
    assert!(
        a.contains("The technician should lock the offsite bucket (Object Lock) or rotate a USB disk off site."),
        "{a}"
    );
}

#[test]
fn a_pool_disk_recorded_off_site_within_rotate_days_is_out_of_reach() {
    let dir = example_with_site();
    let root = dir.path();
    fs::create_dir(root.join("usb")).expect("mount point");
    fs::write(
        root.join("targets/usb-rotation.toml"),
        "description = \"Rotated USB disks\"\nkind = \"path\"\nlocation = \"offsite\"\nmedium = \"removable-disk\"\npath = \"usb\"\npool = [\"FIRESAFE-A\", \"FIRESAFE-B\"]\nrotate_days = 7\n",
    )
    .expect("write");
    let sched = root.join("schedules/nightly.toml");
    let text = fs::read_to_string(&sched).expect("read").replace(
        "targets = [\"nas\", \"offsite\"]",
        "targets = [\"nas\", \"offsite\", \"usb-rotation\"]",
    );
    fs::write(&sched, text).expect("write");
    // The records a run and `firesafe media offsite` leave: disk A written ten days ago and
    // taken off site nine days ago (beyond rotate_days), disk B written and taken off site
    // two days ago. No disk is plugged in now.
    let state = StateDir::open(&root.join("state")).expect("state");
    let now = Utc::now();
    let held = |at: DateTime<Utc>| {
        vec![firesafe::schedule::media::Held {
            source: "admin".into(),
            snapshot: "0123abcd".into(),
            taken: at,
        }]
    };
    let moved = |disk: &str, at: DateTime<Utc>| firesafe::schedule::media::Move {
        target: "usb-rotation".into(),
        disk: disk.into(),
        to: firesafe::config::Site::Offsite,
        at,
        recorded: at,
        who: "technician".into(),
        host: "server".into(),
        note: None,
    };
    let (a, b) = (now - Duration::days(10), now - Duration::days(2));
    firesafe::schedule::media::record_written(&state, "usb-rotation", "FIRESAFE-A", held(a), a)
        .expect("record");
    firesafe::schedule::media::record_move(&state, &moved("FIRESAFE-A", a + Duration::days(1)))
        .expect("move");
    // Only A, out of date: not out of reach by the policy's rotation.
    let text = report_text(root, now);
    let ans = answer(&text);
    assert!(ans.starts_with("[ACTION NEEDED]"), "{ans}");
    assert!(
        ans.contains("usb-rotation: no disk of the pool is recorded off site within the last 7 days (rotate_days)"),
        "{ans}"
    );
    firesafe::schedule::media::record_written(&state, "usb-rotation", "FIRESAFE-B", held(b), b)
        .expect("record");
    firesafe::schedule::media::record_move(&state, &moved("FIRESAFE-B", b + Duration::hours(1)))
        .expect("move");
    let text = report_text(root, now);
    let ans = answer(&text);
    assert!(ans.starts_with("[OK]"), "{ans}");
    let since = (b + Duration::hours(1))
        .with_timezone(&chrono_tz::Europe::London)
        .format("%-d %B %Y")
        .to_string();
    assert!(
        ans.contains(&format!(
            "No: disk FIRESAFE-B of usb-rotation has been off site, out of the server's reach, since {since}."
        )),
        "{ans}"
    );
    assert!(
        text.contains("yes: disk FIRESAFE-B recorded off site since"),
        "{text}"
    );
}

/// Opens the example's repository on the NAS with its key.
async fn open_nas(dir: &Path) -> Repository {
    let config = firesafe::config::Config::load(dir).expect("config");
    let s = config.schedule("nightly").expect("schedule");
    let key = fs::read_to_string(config.resolve(&s.key_file)).expect("key");
    let unlock = Unlock::parse_identity_file(&key).expect("identity");
    let target = firesafe::config::targets::open_target(&config, "nas", false).expect("nas");
    Repository::open(target, &unlock).await.expect("open")
}

/// Writes, beside each named share's snapshot, a copy taken just after it and marked suspect,
/// as a backup that saw signs of ransomware would; returns (share, forged id, clean id).
fn forge_suspects(dir: &Path, shares: &[&str]) -> Vec<(String, Id, Id)> {
    block_on(async {
        let repo = open_nas(dir).await;
        let catalog = Catalog::load(&repo).await.expect("catalog");
        let mut out = Vec::new();
        for share in shares {
            let clean = catalog
                .snapshots
                .iter()
                .rfind(|l| l.snapshot.source == *share)
                .expect("a snapshot of the share");
            let mut s = clean.snapshot.clone();
            s.start = clean.snapshot.end + Duration::milliseconds(1);
            s.end = s.start + Duration::milliseconds(1);
            s.parent = Some(clean.id);
            s.suspect = Some(Suspect {
                score: 87,
                threshold: 60,
                headline: "4,312 of 9,870 files changed, 2,105 renamed to .locked".into(),
                signals: vec![Signal {
                    kind: "ransom-extension".into(),
                    reason: "2,105 files were renamed to the extension .locked".into(),
                    count: 2105,
                    examples: vec![format!("/{share}/minutes.docx.locked")],
                }],
            });
            let id = repo
                .save_sealed(SNAPSHOTS, &s)
                .await
                .expect("save snapshot");
            out.push((share.to_string(), id, clean.id));
        }
        out
    })
}

fn decide(dir: &Path, snapshot: Id, source: &str, verdict: Verdict, note: &str) {
    block_on(async {
        let repo = open_nas(dir).await;
        repo.save_sealed(
            DECISIONS,
            &Decision {
                snapshot,
                source: source.into(),
                verdict,
                who: "jo.tech".into(),
                host: "server".into(),
                time: Utc::now(),
                note: note.into(),
                taken: None,
            },
        )
        .await
        .expect("save decision");
    });
}

/// The "Incidents and open risks" section's text.
fn incidents(text: &str) -> &str {
    let start = text
        .find("== Incidents and open risks ==")
        .expect("incidents");
    let end = text[start..]
        .find("== Each share in detail ==")
        .map_or(text.len(), |i| start + i);
    &text[start..end]
}

#[test]
fn suspect_snapshots_are_incidents_found_decided_and_restored() {
    let dir = example_with_site();
    let root = dir.path();
    let forged = forge_suspects(root, &["curriculum", "admin", "staff"]);
    // Found, nobody has decided: every one is open.
    let text = report_text(root, Utc::now());
    let risks = incidents(&text);
    for share in ["curriculum", "admin", "staff"] {
        let line =
            format!("[ACTION NEEDED] Possible ransomware on the {share} share: the backup of ");
        assert!(risks.contains(&line), "{line}\n{risks}");
    }
    assert!(
        risks.contains("found 4,312 of 9,870 files changed, 2,105 renamed to .locked (alarm score 87 of 100; the alarm is at 60). Nobody has decided yet whether it was an attack, so it is open."),
        "{risks}"
    );
    assert!(
        risks.contains("record the decision with firesafe suspect confirm or accept"),
        "{risks}"
    );
    // The raw signals stay in the appendix.
    assert!(!risks.contains("ransom-extension"), "{risks}");
    assert!(
        text.contains("[ransom-extension] 2,105 files were renamed to the extension .locked (2105): /admin/minutes.docx.locked."),
        "{text}"
    );

    // curriculum: a false alarm. admin: an attack, restored from the clean snapshot before it.
    // staff: an attack, not restored yet.
    let (_, curriculum, _) = &forged[0];
    let (_, admin, admin_clean) = &forged[1];
    let (_, staff, _) = &forged[2];
    decide(
        root,
        *curriculum,
        "curriculum",
        Verdict::Accepted,
        "the end-of-term export",
    );
    decide(
        root,
        *admin,
        "admin",
        Verdict::Confirmed,
        "ransom note in the admin share",
    );
    decide(root, *staff, "staff", Verdict::Confirmed, "same attack");
    let to = root.join("restored-admin");
    assert_success(
        &fs_in(
            root,
            &[
                "restore",
                &admin_clean.to_hex(),
                "--schedule",
                "nightly",
                "--to",
                to.to_str().expect("utf-8"),
            ],
        ),
        "restore from the clean snapshot",
    );
    let text = report_text(root, Utc::now());
    let risks = incidents(&text);
    let line = |share: &str| {
        risks
            .lines()
            .find(|l| l.contains(&format!("ransomware on the {share} share")))
            .unwrap_or_else(|| panic!("{share}:\n{risks}"))
            .to_string()
    };
    let c = line("curriculum");
    assert!(c.starts_with("[OK]"), "{c}");
    assert!(
        c.contains(
            "jo.tech accepted it as a false alarm: \"the end-of-term export\". Nothing to do."
        ),
        "{c}"
    );
    let a = line("admin");
    assert!(a.starts_with("[OK]"), "{a}");
    assert!(
        a.contains("jo.tech confirmed it as an attack: \"ransom note in the admin share\".")
            && a.contains("restored the share from the backup of")
            && a.contains("taken before the attack, to ")
            && a.contains("restored-admin")
            && a.contains("it should be reported as the policy says"),
        "{a}"
    );
    let s = line("staff");
    assert!(s.starts_with("[ATTENTION]"), "{s}");
    assert!(
        s.contains("No restore from the last clean backup is recorded since.")
            && s.contains("restore the share from staff@clean"),
        "{s}"
    );
    assert!(
        text.contains("Decision Confirmed by jo.tech on server"),
        "{text}"
    );
}

fn python() -> String {
    std::env::var("FIRESAFE_TEST_PYTHON").expect("FIRESAFE_TEST_PYTHON (tests/run.sh sets it)")
}

#[test]
fn a_bucket_whose_newest_objects_are_locked_is_out_of_reach_with_the_date_read_back() {
    if !backends().contains(&Backend::S3) {
        eprintln!("skipped: needs FIRESAFE_TEST_S3=1 (tests/run.sh)");
        return;
    }
    let locked = format!("locked-{:08x}", rand::random::<u32>());
    let out = Command::new(python())
        .arg(project_root().join("tests/scripts/s3-object-lock.py"))
        .args(["make-bucket", &locked])
        .output()
        .expect("run s3-object-lock.py");
    assert_success(&out, "make-bucket");
    let plain = std::env::var("AWS_BUCKET").expect("AWS_BUCKET");
    let prefix = format!("govern-{:08x}", rand::random::<u32>());

    let dir = example_with_site();
    let root = dir.path();
    // The locked bucket, first written without object_lock_days.
    let cloud = |extra: &str| {
        fs::write(
            root.join("targets/cloud.toml"),
            format!(
                "kind = \"s3\"\nbucket = \"{locked}\"\nprefix = \"school\"\nlocation = \"offsite\"\nmedium = \"object-storage\"\n{extra}"
            ),
        )
        .expect("write target");
    };
    cloud("");
    // A bucket without Object Lock.
    fs::write(
        root.join("targets/cloud2.toml"),
        format!(
            "kind = \"s3\"\nbucket = \"{plain}\"\nprefix = \"{prefix}\"\nlocation = \"offsite\"\nmedium = \"object-storage\"\n"
        ),
    )
    .expect("write target");
    let sched = root.join("schedules/nightly.toml");
    let text = fs::read_to_string(&sched).expect("read").replace(
        "targets = [\"nas\", \"offsite\"]",
        "targets = [\"nas\", \"offsite\", \"cloud2\", \"cloud\"]",
    );
    fs::write(&sched, text).expect("write");
    assert_success(
        &fs_in(root, &["run", "nightly", "--init"]),
        "run to the buckets",
    );
    let text = report_text(root, Utc::now());
    let ans = answer(&text);
    assert!(ans.starts_with("[ACTION NEEDED]"), "{ans}");
    assert!(
        ans.contains("cloud2: its newest snapshot object carries no Object Lock retention, so the server could delete it; cloud: its newest snapshot object carries no Object Lock retention"),
        "{ans}"
    );

    // The setting alone is not enough: what is stored is read back.
    cloud("object_lock_days = 30\n");
    let text = report_text(root, Utc::now());
    let ans = answer(&text);
    assert!(ans.starts_with("[ACTION NEEDED]"), "{ans}");
    assert!(
        ans.contains("cloud: object_lock_days = 30 is set, but its newest snapshot object carries no Object Lock retention, so the server could delete it."),
        "{ans}"
    );

    // The next run (with a change, so that it writes an index object too) locks what it writes.
    // Listing times have whole seconds, and objects written in the same second as unlocked ones
    // are judged with them: the locked run starts in a later second, as a next night would.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    write(&root.join("demo/shares/admin/governors.txt"), b"minutes");
    assert_success(&fs_in(root, &["run", "nightly"]), "run with object lock");
    let now = Utc::now();
    let text = report_text(root, now);
    let ans = answer(&text);
    assert!(ans.starts_with("[OK]"), "{ans}");
    // COMPLIANCE retention of 30 days from the run, read back by the report.
    let until = (now + Duration::days(30))
        .with_timezone(&chrono_tz::Europe::London)
        .format("%-d %B %Y")
        .to_string();
    assert!(
        ans.contains(&format!(
            "No: the offsite copy on cloud cannot be deleted before {until} (Object Lock, read back on "
        )),
        "{ans}"
    );
    assert!(
        text.contains("yes: newest snapshot and index objects retained (COMPLIANCE) until"),
        "{text}"
    );
    assert!(
        text.contains("no: its newest snapshot object carries no Object Lock retention"),
        "{text}"
    );
}
