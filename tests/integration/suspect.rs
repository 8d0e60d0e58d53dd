//! Ransomware response: a snapshot marked suspect (forged here through the library, since the
//! detection is written elsewhere) is kept, shown as SUSPECT, makes `status` SUSPECT (exit 1),
//! holds its source from pruning on every target until a technician decides, and `SOURCE@clean`
//! names the state before the attack for ls, diff and restore.

use std::fs;
use std::path::Path;
use std::process::Output;

use firesafe::format::crypto::Unlock;
use firesafe::format::snapshot::{Signal, Suspect};
use firesafe::store::repo::Repository;
use firesafe::store::snapshot::Catalog;
use firesafe::store::target::{Location, Target};
use tempfile::TempDir;

use crate::support::*;

fn in_dir(dir: &Path, args: &[&str]) -> Output {
    let mut c = firesafe();
    c.args(args).arg("--config-dir").arg(dir);
    // `suspect` and the browsing commands keep nothing in the state directory.
    if !["suspect", "ls", "diff", "snapshots"].contains(&args[0]) {
        c.arg("--state-dir").arg(dir.join("state"));
    }
    c.output().expect("firesafe")
}

fn on_copy(dir: &Path, copy: &str, args: &[&str]) -> Output {
    firesafe()
        .arg("--repo")
        .arg(dir.join("demo").join(copy))
        .args(args)
        .env("FIRESAFE_KEY_FILE", dir.join("demo/firesafe.key"))
        .env("FIRESAFE_STATE_DIR", dir.join("state"))
        .output()
        .expect("firesafe")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn open(dir: &Path, copy: &str) -> Repository {
    let url = dir.join("demo").join(copy).display().to_string();
    let loc = Location::parse(&url).expect("location");
    let target = Target::open(&url, &loc, &Default::default(), false).expect("target");
    let key = fs::read_to_string(dir.join("demo/firesafe.key")).expect("key");
    let unlock = Unlock::parse_identity_file(&key).expect("identity");
    block_on(Repository::open(target, &unlock)).expect("open")
}

/// Rewrites the newest snapshot of `source` on the NAS as suspect (a new object, the old one
/// removed from every copy); returns the new short id.
fn forge_suspect(dir: &Path, source: &str) -> String {
    let nas = open(dir, "nas");
    let catalog = block_on(Catalog::load(&nas)).expect("catalog");
    let newest = catalog.resolve("latest", Some(source)).expect("newest");
    let mut snapshot = newest.snapshot.clone();
    snapshot.suspect = Some(Suspect {
        score: 91,
        threshold: 60,
        headline: "4,312 of 9,870 files changed, 2,105 renamed to .locked".into(),
        signals: vec![Signal {
            kind: "ransom-extension".into(),
            reason: "2,105 files were renamed to the extension .locked".into(),
            count: 2105,
            examples: vec![format!("/{source}/letters.docx.locked")],
        }],
    });
    let id = block_on(firesafe::store::snapshot::save(&nas, &snapshot)).expect("save");
    for copy in ["nas", "offsite"] {
        let old = dir
            .join("demo")
            .join(copy)
            .join("snapshots")
            .join(newest.id.to_hex());
        fs::remove_file(&old).expect("remove the unforged snapshot");
    }
    id.short()
}

/// The shipped example keeping one snapshot per share: a clean run, then an "attack" on the
/// admin share (files encrypted and renamed) backed up and marked suspect, then another run.
/// Returns the directory, a copy of the admin share before the attack, and the suspect id.
fn attacked() -> (TempDir, std::path::PathBuf, String) {
    let dir = example();
    let sched = dir.path().join("schedules/nightly.toml");
    let toml = fs::read_to_string(&sched).expect("read");
    fs::write(
        &sched,
        toml.replace("keep_daily = 14", "keep_last = 1\nkeep_daily = 0"),
    )
    .expect("write");
    assert_success(
        &in_dir(dir.path(), &["run", "nightly", "--init"]),
        "first run",
    );
    let admin = dir.path().join("demo/shares/admin");
    let before = dir.path().join("admin-before");
    let cp = std::process::Command::new("cp")
        .arg("-a")
        .arg(&admin)
        .arg(&before)
        .output()
        .expect("cp");
    assert_success(&cp, "cp -a");
    // The second run's snapshot of admin is clean; the attack comes after it.
    assert_success(&in_dir(dir.path(), &["run", "nightly"]), "second run");
    let mut attacked = 0;
    for e in walk(&admin) {
        if e.is_file() {
            let locked = e.with_extension(format!(
                "{}.locked",
                e.extension().and_then(|x| x.to_str()).unwrap_or("")
            ));
            fs::write(&locked, noise(attacked, 2000)).expect("encrypt");
            fs::remove_file(&e).expect("remove");
            attacked += 1;
        }
    }
    assert!(attacked > 0);
    // The backup itself sees the attack: the run ends degraded and says so.
    let run = in_dir(dir.path(), &["run", "nightly"]);
    let err = assert_exit(&run, 1, "the attack's run");
    assert!(err.contains("admin: POSSIBLE RANSOMWARE"), "{err}");
    let id = forge_suspect(dir.path(), "admin");
    (dir, before, id)
}

fn walk(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(root).expect("read_dir") {
        let p = e.expect("entry").path();
        if p.is_dir() && !p.is_symlink() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn admin_snapshots(dir: &Path, copy: &str) -> usize {
    let out = on_copy(dir, copy, &["snapshots", "--source", "admin"]);
    assert_success(&out, "snapshots");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(" admin "))
        .count()
}

#[test]
fn a_suspect_snapshot_is_shown_holds_prune_and_clean_restores_the_state_before() {
    let (dir, before, id) = attacked();
    let d = dir.path();
    // The next run brings the forged snapshot to the offsite copy (adding is safe).
    assert_success(&in_dir(d, &["run", "nightly"]), "run after the attack");

    let snaps = text(&on_copy(d, "offsite", &["snapshots", "--source", "admin"]));
    assert!(
        snaps
            .lines()
            .any(|l| l.starts_with(&id) && l.contains("SUSPECT")),
        "{snaps}"
    );
    let ls = on_copy(d, "nas", &["ls", &id]);
    assert_success(&ls, "ls of the suspect snapshot");
    assert!(text(&ls).contains("SUSPECT"), "{}", text(&ls));

    let status = in_dir(d, &["status", "nightly"]);
    let st = assert_exit(&status, 1, "status while suspect");
    let st = format!("{st}{}", text(&status));
    assert!(st.contains("admin: SUSPECT"), "{st}");
    assert!(st.contains("4,312 of 9,870 files changed"), "{st}");
    assert!(
        st.contains(&format!("firesafe suspect accept {id}")),
        "{st}"
    );
    let json = in_dir(d, &["status", "nightly", "--json"]);
    assert!(String::from_utf8_lossy(&json.stdout).contains("\"suspect\""));

    let list = in_dir(d, &["suspect", "list", "--schedule", "nightly"]);
    assert_exit(&list, 1, "suspect list while undecided");
    assert!(
        text(&list).contains("2,105 files were renamed"),
        "{}",
        text(&list)
    );

    // What the attack changed, and the state before it, byte for byte.
    let diff = on_copy(d, "nas", &["diff", "admin@clean", "latest"]);
    assert_success(&diff, "diff admin@clean latest");
    let changes = String::from_utf8_lossy(&diff.stdout).into_owned();
    assert!(
        changes.contains(".locked") && changes.contains("- "),
        "{changes}"
    );
    // The same from the schedule's copies, as status advises, with the NAS copy gone.
    let nas = d.join("demo/nas");
    fs::rename(&nas, d.join("nas-away")).expect("take the NAS away");
    let diff = in_dir(
        d,
        &["diff", "admin@clean", "latest", "--schedule", "nightly"],
    );
    assert_success(&diff, "diff --schedule with the NAS away");
    let offsite = on_copy(d, "offsite", &["diff", "admin@clean", "latest"]);
    assert_eq!(diff.stdout, offsite.stdout);
    assert!(text(&diff).contains(".locked"), "{}", text(&diff));
    let ls = in_dir(d, &["ls", &id, "--schedule", "nightly"]);
    assert_success(&ls, "ls --schedule");
    assert!(text(&ls).contains("SUSPECT"), "{}", text(&ls));
    let snaps = in_dir(
        d,
        &["snapshots", "--schedule", "nightly", "--source", "admin"],
    );
    assert!(text(&snaps).contains("SUSPECT"), "{}", text(&snaps));
    fs::rename(d.join("nas-away"), &nas).expect("bring the NAS back");
    let out = d.join("restored");
    let restore = in_dir(
        d,
        &[
            "restore",
            "--schedule",
            "nightly",
            "admin@clean",
            "--to",
            out.to_str().expect("utf-8"),
        ],
    );
    assert_success(&restore, "restore admin@clean");
    assert_same_tree(&before, &out.join("admin"));

    // Prune forgets nothing of admin, on either copy, and says why; the other shares are pruned.
    let (nas_before, off_before) = (admin_snapshots(d, "nas"), admin_snapshots(d, "offsite"));
    assert!(nas_before >= 4, "{nas_before}");
    let prune = in_dir(d, &["prune", "nightly"]);
    assert_success(&prune, "prune while suspect");
    assert!(
        text(&prune).contains(&format!(
            "admin: nothing forgotten: snapshot {id} is suspect (possible ransomware); decide with `firesafe suspect accept|confirm {id}`"
        )),
        "{}",
        text(&prune)
    );
    assert_eq!(admin_snapshots(d, "nas"), nas_before);
    assert_eq!(admin_snapshots(d, "offsite"), off_before);

    // A note is required; then the accepted snapshot is clean again, on both copies.
    let no_note = in_dir(
        d,
        &[
            "suspect",
            "accept",
            &id,
            "--schedule",
            "nightly",
            "--note",
            " ",
        ],
    );
    assert_exit(&no_note, 2, "accept without a note");
    let accept = in_dir(
        d,
        &[
            "suspect",
            "accept",
            &id,
            "--schedule",
            "nightly",
            "--note",
            "bursar renamed the archive",
        ],
    );
    assert_success(&accept, "accept");
    assert!(text(&accept).contains("nas, offsite"), "{}", text(&accept));
    for copy in ["nas", "offsite"] {
        assert_eq!(
            fs::read_dir(d.join("demo").join(copy).join("decisions"))
                .expect("decisions")
                .count(),
            1
        );
    }
    let st = text(&in_dir(d, &["status", "nightly"]));
    assert!(!st.contains("SUSPECT"), "{st}");
    let prune = in_dir(d, &["prune", "nightly"]);
    assert_success(&prune, "prune after accept");
    assert!(
        !text(&prune).contains("nothing forgotten"),
        "{}",
        text(&prune)
    );
    assert!(admin_snapshots(d, "nas") < nas_before);
    assert_eq!(admin_snapshots(d, "nas"), admin_snapshots(d, "offsite"));
}

#[test]
fn a_confirmed_attack_holds_prune_until_lifted_and_runs_carry_decisions_offsite() {
    let (dir, _, id) = attacked();
    let d = dir.path();
    // Refusals: nothing to lift before a confirmation, nothing to accept on a clean snapshot.
    let lift = on_copy(d, "nas", &["suspect", "lift", &id, "--note", "too early"]);
    assert_exit(&lift, 2, "lift before confirm");
    let clean = text(&on_copy(d, "nas", &["snapshots", "--source", "curriculum"]));
    let clean_id = clean
        .lines()
        .nth(1)
        .expect("a row")
        .split_whitespace()
        .next()
        .expect("id");
    let accept = on_copy(d, "nas", &["suspect", "accept", clean_id, "--note", "x"]);
    assert_exit(&accept, 2, "accept of a clean snapshot");

    // Confirmed on the NAS only; the next run carries the decision to the offsite copy.
    let confirm = on_copy(
        d,
        "nas",
        &[
            "suspect",
            "confirm",
            &id,
            "--note",
            "ransom note on the office PC",
        ],
    );
    assert_success(&confirm, "confirm");
    assert_success(&in_dir(d, &["run", "nightly"]), "run after confirm");
    assert_eq!(
        fs::read_dir(d.join("demo/offsite/decisions"))
            .expect("decisions")
            .count(),
        1
    );
    let list = text(&in_dir(d, &["suspect", "list", "--schedule", "nightly"]));
    assert!(
        list.contains("CONFIRMED") && list.contains("ransom note on the office PC"),
        "{list}"
    );
    let st = text(&in_dir(d, &["status", "nightly"]));
    assert!(
        st.contains("admin: SUSPECT") && st.contains("confirmed attack"),
        "{st}"
    );

    let held = admin_snapshots(d, "nas");
    let prune = in_dir(d, &["prune", "nightly"]);
    assert_success(&prune, "prune while confirmed");
    assert!(
        text(&prune).contains(&format!("snapshot {id} is a confirmed attack")),
        "{}",
        text(&prune)
    );
    assert_eq!(admin_snapshots(d, "nas"), held);

    // admin@clean stays before the attack even though later snapshots are not flagged.
    let ls = on_copy(d, "nas", &["ls", "admin@clean", "admin"]);
    assert_success(&ls, "ls admin@clean");
    assert!(!text(&ls).contains(".locked"), "{}", text(&ls));

    let lift = in_dir(
        d,
        &[
            "suspect",
            "lift",
            &id,
            "--schedule",
            "nightly",
            "--note",
            "restored",
        ],
    );
    assert_success(&lift, "lift");
    let st = text(&in_dir(d, &["status", "nightly"]));
    assert!(!st.contains("SUSPECT"), "{st}");
    assert_success(&in_dir(d, &["prune", "nightly"]), "prune after lift");
    assert!(admin_snapshots(d, "nas") < held);

    // Pruned after the lift (keep_last = 1), what is left is the encrypted share's last night:
    // never a restore point, although the suspect snapshot itself is forgotten.
    let ls = in_dir(d, &["ls", "admin@clean", "admin", "--schedule", "nightly"]);
    let err = assert_exit(&ls, 2, "admin@clean with only the attack's nights left");
    assert!(
        err.contains("no clean snapshot of source \"admin\""),
        "{err}"
    );
    // The share restored and backed up again: admin@clean is that night's snapshot.
    let admin = d.join("demo/shares/admin");
    fs::remove_dir_all(&admin).expect("remove the encrypted share");
    let cp = std::process::Command::new("cp")
        .arg("-a")
        .arg(d.join("admin-before"))
        .arg(&admin)
        .output()
        .expect("cp");
    assert_success(&cp, "cp -a");
    fs::write(
        admin.join("after.txt"),
        b"the first note after the incident",
    )
    .expect("write");
    // Putting the whole share back is itself a mass change: the run marks it suspect, and the
    // technician accepts it as the restore it is.
    let run = in_dir(d, &["run", "nightly"]);
    let err = assert_exit(&run, 1, "the run after the share was put back");
    assert!(err.contains("admin: POSSIBLE RANSOMWARE"), "{err}");
    let restored = in_dir(
        d,
        &["snapshots", "--schedule", "nightly", "--source", "admin"],
    );
    let restored = text(&restored)
        .lines()
        .rfind(|l| l.contains(" admin "))
        .and_then(|l| l.split_whitespace().next())
        .expect("the newest admin snapshot")
        .to_string();
    let ls = in_dir(d, &["ls", "admin@clean", "admin", "--schedule", "nightly"]);
    assert_exit(&ls, 2, "admin@clean before the restore is accepted");
    let accept = in_dir(
        d,
        &[
            "suspect",
            "accept",
            &restored,
            "--schedule",
            "nightly",
            "--note",
            "share put back from admin@clean",
        ],
    );
    assert_success(&accept, "accept the restore");
    let ls = in_dir(d, &["ls", "admin@clean", "admin", "--schedule", "nightly"]);
    assert_success(&ls, "ls admin@clean after the lift");
    assert!(text(&ls).contains("admin/after.txt"), "{}", text(&ls));
}
