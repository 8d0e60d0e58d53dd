//! Verification, repair and restore drills on the shipped example (a NAS directory and an
//! offsite directory): rotating read-back reads every pack exactly once per cycle, damage on one
//! copy is found and healed from the other, damage on every copy names the files it affects,
//! and drills pass, fail and tell a changed live file from a bad backup as they should.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use tempfile::TempDir;

use crate::support::*;

fn cmd(dir: &Path, args: &[&str]) -> Output {
    firesafe()
        .args(args)
        .arg("--config-dir")
        .arg(dir)
        .arg("--state-dir")
        .arg(dir.join("state"))
        .output()
        .expect("run firesafe")
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The example, backed up once to both targets.
fn backed_up() -> TempDir {
    let dir = example();
    assert_success(&cmd(dir.path(), &["run", "nightly", "--init"]), "first run");
    dir
}

/// The packs of a local target, largest first.
fn packs(repo: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for d in fs::read_dir(repo.join("data")).expect("data") {
        for f in fs::read_dir(d.expect("dir").path()).expect("dir") {
            out.push(f.expect("entry").path());
        }
    }
    out.sort_by_key(|p| std::cmp::Reverse(fs::metadata(p).expect("stat").len()));
    out
}

/// Flips one byte in the middle of a file.
fn damage(path: &Path) {
    let mut bytes = fs::read(path).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    fs::write(path, bytes).expect("write");
}

fn key_of(repo: &Path, path: &Path) -> String {
    path.strip_prefix(repo)
        .expect("inside")
        .display()
        .to_string()
}

fn record_for<'a>(records: &'a Value, target: &str) -> &'a Value {
    records
        .as_array()
        .expect("array")
        .iter()
        .find(|r| r["target"] == target)
        .unwrap_or_else(|| panic!("no record for {target}: {records}"))
}

#[test]
fn rotating_verification_reads_every_pack_once_per_cycle() {
    let dir = backed_up();
    let mut read = 0u64;
    let mut total = 0u64;
    // 25% a run: a cycle is four runs.
    for run in 1..=4 {
        let out = cmd(
            dir.path(),
            &["verify", "nightly", "--read-percent", "25", "--json"],
        );
        assert_success(&out, &format!("verify run {run}"));
        let records = json(&out);
        let nas = record_for(&records, "nas");
        assert_eq!(nas["result"], "pass", "{nas}");
        total = nas["bytes_total"].as_u64().expect("bytes_total");
        read += nas["bytes_read"].as_u64().expect("bytes_read");
        let coverage = nas["coverage_30d"].as_f64().expect("coverage");
        if run < 4 {
            assert!(read <= total, "run {run}: a pack was read twice");
            assert!(
                (coverage - read as f64 / total as f64).abs() < 1e-6,
                "run {run}: coverage {coverage}, read {read} of {total}"
            );
            if read < total {
                assert!(nas["last_complete_read"].is_null(), "{nas}");
            }
        } else {
            assert!((coverage - 1.0).abs() < 1e-9, "{nas}");
            assert!(!nas["last_complete_read"].is_null(), "{nas}");
        }
    }
    // Every pack exactly once: the bytes read add up to the target's bytes.
    assert_eq!(read, total);
    // The next cycle starts reading again.
    let out = cmd(
        dir.path(),
        &["verify", "nightly", "--read-percent", "25", "--json"],
    );
    assert_success(&out, "verify run 5");
    assert!(record_for(&json(&out), "nas")["bytes_read"].as_u64() > Some(0));
    // Status shows each target's coverage and its last complete read.
    let out = cmd(dir.path(), &["status", "nightly", "--json"]);
    let status = json(&out);
    let v = &status[0]["verification"];
    let nas = record_for(v, "nas");
    assert!(nas["coverage_90d"].as_f64() > Some(0.999), "{nas}");
    assert!(!nas["last_complete_read"].is_null(), "{nas}");
    // Recorded in the state directory: four runs of two targets.
    let lines = fs::read_to_string(dir.path().join("state/verify.jsonl")).expect("verify.jsonl");
    assert_eq!(lines.lines().count(), 10);
}

#[test]
fn damage_on_the_nas_is_found_and_repaired_from_the_offsite_copy() {
    let dir = backed_up();
    let nas = dir.path().join("demo/nas");
    let pack = packs(&nas)[0].clone();
    let key = key_of(&nas, &pack);
    // Verification finds; repair is asked for separately here.
    let schedule = dir.path().join("schedules/nightly.toml");
    let text = fs::read_to_string(&schedule).expect("read");
    fs::write(&schedule, text.replace("repair = true", "repair = false")).expect("write");
    damage(&pack);
    // A snapshot object goes missing too.
    let snapshot = fs::read_dir(nas.join("snapshots"))
        .expect("snapshots")
        .next()
        .expect("one")
        .expect("entry")
        .path();
    let snapshot_key = key_of(&nas, &snapshot);
    fs::remove_file(&snapshot).expect("remove");

    let out = cmd(dir.path(), &["verify", "nightly", "--read-all", "--json"]);
    assert_exit(&out, 1, "verify finds the damage");
    let records = json(&out);
    let found = record_for(&records, "nas");
    assert_eq!(found["result"], "fail");
    let objects: Vec<&str> = found["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| f["object"].as_str().expect("object"))
        .collect();
    assert!(objects.contains(&key.as_str()), "{found}");
    assert!(objects.contains(&snapshot_key.as_str()), "{found}");
    assert_eq!(record_for(&records, "offsite")["result"], "pass");

    // A dry run changes nothing.
    let before = fs::read(&pack).expect("read");
    let out = cmd(
        dir.path(),
        &["repair", "nightly", "--read-data", "--dry-run"],
    );
    assert_exit(&out, 1, "repair --dry-run");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("would be repaired from offsite"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(fs::read(&pack).expect("read"), before);
    assert!(!snapshot.exists());

    let out = cmd(dir.path(), &["repair", "nightly", "--read-data"]);
    assert_success(&out, "repair");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("repaired from offsite"), "{text}");
    assert!(snapshot.exists());
    let out = firesafe()
        .args([
            "--repo",
            nas.to_str().expect("utf-8"),
            "check",
            "--read-data",
        ])
        .env("FIRESAFE_KEY_FILE", dir.path().join("demo/firesafe.key"))
        .output()
        .expect("check");
    assert_success(&out, "check after repair");
    let to = dir.path().join("restored");
    let out = firesafe()
        .args([
            "--repo",
            nas.to_str().expect("utf-8"),
            "restore",
            "latest",
            "--source",
            "curriculum",
            "--to",
        ])
        .arg(&to)
        .env("FIRESAFE_KEY_FILE", dir.path().join("demo/firesafe.key"))
        .output()
        .expect("restore");
    assert_success(&out, "restore after repair");
    assert_same_tree(
        &dir.path().join("demo/shares/curriculum"),
        &to.join("curriculum"),
    );
}

#[test]
fn damage_on_every_copy_names_the_files_it_affects() {
    let dir = backed_up();
    let nas = dir.path().join("demo/nas");
    let pack = packs(&nas)[0].clone();
    let key = key_of(&nas, &pack);
    damage(&pack);
    damage(&dir.path().join("demo/offsite").join(&key));
    let out = cmd(dir.path(), &["repair", "nightly", "--read-data", "--json"]);
    assert_exit(&out, 1, "repair with no healthy copy");
    let records = json(&out);
    for target in ["nas", "offsite"] {
        let r = record_for(&records, target);
        let f = r["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .find(|f| f["object"] == key.as_str())
            .unwrap_or_else(|| panic!("{r}"));
        assert!(
            f["repair"]
                .as_str()
                .expect("repair")
                .contains("no healthy copy"),
            "{f}"
        );
        let affects = f["affects"].to_string();
        assert!(
            affects.contains("snapshot ") && affects.contains('/'),
            "the finding does not name files: {f}"
        );
    }
}

#[test]
fn a_lost_index_is_rebuilt_from_the_packs() {
    let dir = backed_up();
    for target in ["nas", "offsite"] {
        let index = dir.path().join("demo").join(target).join("index");
        for e in fs::read_dir(&index).expect("index") {
            fs::remove_file(e.expect("entry").path()).expect("remove");
        }
    }
    let out = cmd(dir.path(), &["repair", "nightly"]);
    assert_success(&out, "repair re-indexes");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("indexed"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    for target in ["nas", "offsite"] {
        let out = firesafe()
            .args(["--repo"])
            .arg(dir.path().join("demo").join(target))
            .args(["check", "--read-data"])
            .env("FIRESAFE_KEY_FILE", dir.path().join("demo/firesafe.key"))
            .output()
            .expect("check");
        assert_success(&out, &format!("check {target} after re-indexing"));
    }
}

#[test]
fn drills_pass_fail_and_tell_a_changed_share_from_a_bad_backup() {
    let dir = backed_up();
    // A sample drill on a good repository passes, with a recorded seed.
    let out = cmd(dir.path(), &["drill", "nightly", "--json"]);
    assert_success(&out, "sample drill");
    let records = json(&out);
    let records = records.as_array().expect("array");
    assert_eq!(records.len(), 6, "3 shares x 2 targets");
    for r in records {
        assert_eq!(r["result"], "pass", "{r}");
        assert_eq!(r["kind"], "sample");
        assert!(r["seed"].is_u64());
        assert!(r["files"].as_u64().expect("files") > 0);
        assert_eq!(r["changed_since"], 0, "{r}");
    }
    // Recorded in the state directory and in each repository.
    let lines = fs::read_to_string(dir.path().join("state/drills.jsonl")).expect("drills.jsonl");
    assert_eq!(lines.lines().count(), 6);
    for target in ["nas", "offsite"] {
        let n = fs::read_dir(dir.path().join("demo").join(target).join("drills"))
            .expect("drills/")
            .count();
        assert_eq!(n, 3, "{target}");
    }

    // A file changed on the live share since the backup: not a failure, but counted.
    let plan = dir.path().join("demo/shares/staff");
    let changed = fs::read_dir(&plan)
        .expect("staff")
        .map(|e| e.expect("entry").path())
        .find(|p| p.is_file())
        .expect("a staff file");
    write(&changed, b"rewritten after the backup");
    let out = cmd(
        dir.path(),
        &[
            "drill", "nightly", "--target", "nas", "--files", "1000", "--json",
        ],
    );
    assert_success(&out, "drill with a changed live file");
    let records = json(&out);
    let staff = records
        .as_array()
        .expect("array")
        .iter()
        .find(|r| r["source"] == "staff")
        .expect("staff");
    assert_eq!(staff["result"], "pass", "{staff}");
    assert_eq!(staff["changed_since"], 1, "{staff}");

    // A tampered pack on the NAS: the drill fails and names the files.
    let nas = dir.path().join("demo/nas");
    for p in packs(&nas).iter().take(3) {
        damage(p);
    }
    let out = cmd(
        dir.path(),
        &[
            "drill", "nightly", "--target", "nas", "--files", "1000", "--json",
        ],
    );
    assert_exit(&out, 1, "drill of a tampered repository");
    let records = json(&out);
    let failed: Vec<&Value> = records
        .as_array()
        .expect("array")
        .iter()
        .filter(|r| r["result"] == "fail")
        .collect();
    assert!(!failed.is_empty(), "{records}");
    for r in failed {
        assert!(
            !r["mismatches"].as_array().expect("mismatches").is_empty(),
            "{r}"
        );
    }
    // The offsite copy is still good.
    let out = cmd(dir.path(), &["drill", "nightly", "--target", "offsite"]);
    assert_success(&out, "drill of the offsite copy");
}

#[test]
fn a_site_loss_drill_uses_only_the_offsite_copy_and_the_recovery_key() {
    let dir = backed_up();
    let recovery = dir.path().join("fire-safe/recovery.key");
    fs::create_dir_all(recovery.parent().expect("parent")).expect("mkdir");
    let out = firesafe()
        .arg("--repo")
        .arg(dir.path().join("demo/nas"))
        .args(["key", "add", "--generate"])
        .arg(&recovery)
        .args(["--label", "recovery key (fire safe)"])
        .env("FIRESAFE_KEY_FILE", dir.path().join("demo/firesafe.key"))
        .output()
        .expect("key add");
    assert_success(&out, "key add");
    // The next run copies the new envelope to the offsite target.
    assert_success(&cmd(dir.path(), &["run", "nightly"]), "run");

    let nightly = dir.path().join("demo/firesafe.key");
    let out = cmd(
        dir.path(),
        &[
            "drill",
            "nightly",
            "--site-loss",
            "--key",
            nightly.to_str().expect("utf-8"),
        ],
    );
    let err = assert_exit(&out, 2, "site-loss drill with the nightly key");
    assert!(err.contains("recovery key"), "{err}");

    // The NAS is gone.
    fs::rename(dir.path().join("demo/nas"), dir.path().join("nas-burnt")).expect("move");
    let out = cmd(
        dir.path(),
        &[
            "drill",
            "nightly",
            "--site-loss",
            "--key",
            recovery.to_str().expect("utf-8"),
            "--json",
        ],
    );
    assert_success(&out, "site-loss drill");
    let records = json(&out);
    let records = records.as_array().expect("array");
    assert_eq!(records.len(), 3, "{records:?}");
    for r in records {
        assert_eq!(r["target"], "offsite");
        assert_eq!(r["kind"], "site-loss");
        assert_eq!(r["result"], "pass", "{r}");
        assert!(r["key"].as_str().expect("key").starts_with("recovery key"));
        assert_eq!(r["bytes"].as_u64(), r["share_bytes"].as_u64(), "{r}");
    }
}

#[test]
fn drills_never_restore_into_a_share() {
    let dir = backed_up();
    let inside = dir.path().join("demo/shares/admin/scratch");
    let out = cmd(
        dir.path(),
        &[
            "drill",
            "nightly",
            "--scratch",
            inside.to_str().expect("utf-8"),
        ],
    );
    let err = assert_exit(&out, 2, "scratch inside a share");
    assert!(err.contains("inside the share admin"), "{err}");
    assert!(!inside.exists(), "the drill wrote into the share");
}

#[test]
fn the_governors_report_reads_real_drills_and_verifications() {
    let dir = backed_up();
    let report = |name: &str| -> String {
        let pdf = dir.path().join(format!("{name}.pdf"));
        let out = cmd(
            dir.path(),
            &["report", "nightly", "--out", pdf.to_str().expect("utf-8")],
        );
        assert_success(&out, "report");
        let html = fs::read_to_string(dir.path().join(format!("{name}.html"))).expect("html");
        html.split_whitespace().collect::<Vec<_>>().join(" ")
    };
    // Nothing measured yet: the report says so.
    let before = report("before");
    assert!(
        before.contains("No restore drill was recorded between"),
        "{before}"
    );

    assert_success(
        &cmd(dir.path(), &["verify", "nightly", "--read-all"]),
        "verify",
    );
    assert_success(&cmd(dir.path(), &["drill", "nightly"]), "sample drill");
    assert_success(
        &cmd(dir.path(), &["drill", "nightly", "--full"]),
        "full drill",
    );
    let after = report("after");
    for want in [
        "A restore of every share was tested and passed",
        "Every share could be recovered within the target time",
        "Every copy's data was read back and checked in the last 90 days",
    ] {
        assert!(after.contains(want), "the report lacks {want:?}: {after}");
    }
    assert!(!after.contains("No restore drill was recorded"), "{after}");
}
