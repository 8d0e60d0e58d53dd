//! `firesafe status`, `sync` and `config check`: the 3-2-1 verdict comes from what is on each
//! target, a target that falls behind is explained and healed, and bad configuration is named.

use std::fs;
use std::path::Path;

use crate::support::*;

/// The shipped example, plus a third target: S3 when the tests have a server, otherwise a third
/// local directory.
fn three_targets() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    for sub in ["targets", "schedules"] {
        fs::create_dir(dir.path().join(sub)).expect("mkdir");
        for e in fs::read_dir(project_root().join(sub)).expect("read_dir") {
            let e = e.expect("entry");
            fs::copy(e.path(), dir.path().join(sub).join(e.file_name())).expect("copy");
        }
    }
    let third = if backends().contains(&Backend::S3) {
        format!(
            "kind = \"s3\"\nlocation = \"offsite\"\nmedium = \"object-storage\"\nbucket = \"{}\"\nprefix = \"status-{:016x}\"\n",
            std::env::var("AWS_BUCKET").expect("bucket"),
            rand::random::<u64>()
        )
    } else {
        "kind = \"path\"\nlocation = \"offsite\"\nmedium = \"removable-disk\"\npath = \"demo/usb\"\nrequire_mount = false\n".to_string()
    };
    fs::write(dir.path().join("targets/cloud.toml"), &third).expect("write");
    let sched = dir.path().join("schedules/nightly.toml");
    // Three backup copies, the live share not counted: every target matters.
    let text = fs::read_to_string(&sched)
        .expect("read")
        .replace(
            "targets = [\"nas\", \"offsite\"]",
            "targets = [\"nas\", \"offsite\", \"cloud\"]",
        )
        .replace("live_data_counts = true", "live_data_counts = false");
    fs::write(&sched, text).expect("write");
    let out = std::process::Command::new(project_root().join("tests/scripts/demo-share.sh"))
        .arg(dir.path().join("demo/shares"))
        .output()
        .expect("demo-share.sh");
    assert_success(&out, "demo-share.sh");
    (dir, third)
}

fn fs_in(dir: &Path, args: &[&str]) -> std::process::Output {
    firesafe()
        .env("FIRESAFE_STATE_DIR", dir.join("state"))
        .args(args)
        .arg("--config-dir")
        .arg(dir)
        .output()
        .expect("run firesafe")
}

fn status_json(dir: &Path) -> (i32, serde_json::Value) {
    let out = fs_in(dir, &["status", "nightly", "--json"]);
    let code = out.status.code().expect("code");
    (
        code,
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr))),
    )
}

#[test]
fn status_follows_reality_through_an_outage() {
    let (dir, third) = three_targets();
    assert_success(
        &fs_in(dir.path(), &["run", "nightly", "--init"]),
        "first run",
    );
    let (code, json) = status_json(dir.path());
    assert_eq!(code, 0, "{json:#}");
    for src in json[0]["sources"].as_array().expect("sources") {
        assert_eq!(src["evaluation"]["verdict"], "OK", "{src:#}");
        assert_eq!(src["copies"].as_array().expect("copies").len(), 3);
    }
    let text = String::from_utf8_lossy(&fs_in(dir.path(), &["status"]).stdout).into_owned();
    assert!(
        text.contains("the live share does not count as a copy") && text.contains("curriculum: OK"),
        "{text}"
    );

    // The third target goes down (its endpoint or path stops answering).
    let down = if third.contains("s3") {
        format!("{third}endpoint = \"http://127.0.0.1:9\"\n")
    } else {
        third.replace("demo/usb", "demo/usb-unplugged")
    };
    fs::write(dir.path().join("targets/cloud.toml"), &down).expect("write");
    write(
        &dir.path().join("demo/shares/admin/new-letter.docx"),
        &noise(77, 100_000),
    );
    let out = fs_in(dir.path(), &["run", "nightly"]);
    assert_exit(&out, 1, "run with a target down");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("target cloud: NOT UPDATED") && text.contains("degraded"),
        "{text}"
    );

    // The other targets have the new snapshot; status explains the gap.
    let (code, json) = status_json(dir.path());
    assert_eq!(code, 1);
    let admin = json[0]["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .find(|s| s["source"] == "admin")
        .expect("admin");
    let copies = admin["copies"].as_array().expect("copies");
    assert_eq!(copies[0]["snapshot"], copies[1]["snapshot"]);
    assert!(copies[2]["error"].is_string(), "{admin:#}");
    assert_eq!(admin["evaluation"]["verdict"], "VIOLATED", "{admin:#}");
    let reasons = admin["evaluation"]["reasons"].to_string();
    assert!(reasons.contains("cloud could not be read"), "{reasons}");

    // It comes back; sync heals it without a backup, and status is OK again.
    fs::write(dir.path().join("targets/cloud.toml"), &third).expect("write");
    let out = fs_in(dir.path(), &["sync", "nightly"]);
    assert_success(&out, "sync");
    assert!(String::from_utf8_lossy(&out.stdout).contains("target cloud: up to date"));
    let (code, json) = status_json(dir.path());
    assert_eq!(code, 0, "{json:#}");
    let admin = json[0]["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .find(|s| s["source"] == "admin")
        .expect("admin");
    let copies = admin["copies"].as_array().expect("copies");
    assert_eq!(copies[0]["snapshot"], copies[2]["snapshot"]);
}

#[test]
fn stale_copies_degrade_and_missing_copies_violate() {
    let (dir, _) = three_targets();
    assert_success(
        &fs_in(dir.path(), &["run", "nightly", "--init"]),
        "first run",
    );
    let config = firesafe::config::Config::load(dir.path()).expect("config");
    let schedule = config.schedule("nightly").expect("nightly");
    // Three days on, with no run since: every copy is stale.
    let later = chrono::Utc::now() + chrono::Duration::days(3);
    let status =
        block_on(firesafe::schedule::status::status(&config, schedule, later)).expect("status");
    let e = &status.sources[0].evaluation;
    assert_eq!(e.verdict, firesafe::plan::policy::Verdict::Degraded);
    assert!(
        e.reasons
            .iter()
            .any(|r| r.contains("is 3 days old; the policy allows 26 hours")),
        "{:?}",
        e.reasons
    );
    // Delete every snapshot on the offsite target: two copies are left where three are needed,
    // so the policy is violated, and the reasons say where.
    fs::remove_dir_all(dir.path().join("demo/offsite/snapshots")).expect("rm");
    fs::create_dir(dir.path().join("demo/offsite/snapshots")).expect("mkdir");
    let status = block_on(firesafe::schedule::status::status(
        &config,
        schedule,
        chrono::Utc::now(),
    ))
    .expect("status");
    let e = &status.sources[0].evaluation;
    assert_eq!(e.verdict, firesafe::plan::policy::Verdict::Violated);
    assert!(
        e.reasons
            .iter()
            .any(|r| r.contains("offsite (offsite) holds no complete snapshot")),
        "{:?}",
        e.reasons
    );
    assert!(
        e.reasons.iter().any(|r| r
            .contains("2 up-to-date copies (not counting the live share); the policy asks for 3")),
        "{:?}",
        e.reasons
    );
}

#[test]
fn config_check_names_each_problem() {
    let (dir, _) = three_targets();
    let out = fs_in(dir.path(), &["config", "check"]);
    assert_success(&out, "config check of the example");

    fs::write(
        dir.path().join("targets/cloud.toml"),
        "kind = \"s3\"\nlocation = \"offsite\"\nmedium = \"object-storage\"\nbucket = \"b\"\nsecret_access_key = \"wJalrXUtnFEMI\"\n",
    )
    .expect("write");
    let sched = dir.path().join("schedules/nightly.toml");
    let text = fs::read_to_string(&sched).expect("read");
    fs::write(&sched, text.replace("min_offsite = 1", "min_offsite = 3")).expect("write");
    let out = fs_in(dir.path(), &["config", "check"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("cloud.toml:5:1: key secret_access_key: secrets must not be written"),
        "{stdout}"
    );
    assert!(
        stdout.contains("nightly.toml:") && stdout.contains("min_offsite = 3 but only"),
        "{stdout}"
    );
    assert!(!stdout.contains("wJalrXUtnFEMI"), "the secret was printed");
}
