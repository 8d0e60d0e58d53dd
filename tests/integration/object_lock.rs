//! S3 Object Lock: a target with `object_lock_days` puts every object it writes under COMPLIANCE
//! retention, which a second S3 client (boto3) confirms by failing to delete any version; prune
//! keeps what is locked and says until when.

use std::fs;
use std::process::Command;

use crate::support::*;

fn python() -> String {
    std::env::var("FIRESAFE_TEST_PYTHON").expect("FIRESAFE_TEST_PYTHON (tests/run.sh sets it)")
}

fn lock_script(args: &[&str]) -> String {
    let out = Command::new(python())
        .arg(project_root().join("tests/scripts/s3-object-lock.py"))
        .args(args)
        .output()
        .expect("run s3-object-lock.py");
    assert_success(&out, "s3-object-lock.py");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn every_object_written_is_locked_and_prune_respects_it() {
    if !backends().contains(&Backend::S3) {
        eprintln!("skipped: needs FIRESAFE_TEST_S3=1 (tests/run.sh)");
        return;
    }
    let bucket = format!("locked-{:08x}", rand::random::<u32>());
    lock_script(&["make-bucket", &bucket]);

    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    fs::create_dir_all(root.join("targets")).expect("mkdir");
    fs::create_dir_all(root.join("schedules")).expect("mkdir");
    fs::write(
        root.join("targets/cloud.toml"),
        format!(
            "kind = \"s3\"\nbucket = \"{bucket}\"\nprefix = \"school\"\nlocation = \"offsite\"\n\
             medium = \"object-storage\"\nobject_lock_days = 2\n"
        ),
    )
    .expect("write target");
    fs::write(
        root.join("schedules/s.toml"),
        "cron = \"0 2 * * *\"\ntimezone = \"Europe/London\"\ntargets = [\"cloud\"]\n\
         key_file = \"s.key\"\n\n[[sources]]\nname = \"share\"\npath = \"share\"\n\n\
         [policy]\nmin_copies = 1\nmin_media = 1\nmin_offsite = 1\n\n[retention]\nkeep_last = 1\n",
    )
    .expect("write schedule");
    write(&root.join("share/plan.docx"), &noise(1, 200_000));
    let run = |args: &[&str]| {
        firesafe()
            .args(args)
            .arg("--config-dir")
            .arg(root)
            .arg("--state-dir")
            .arg(root.join("state"))
            .output()
            .expect("firesafe")
    };
    assert_success(&run(&["run", "s", "--init"]), "first run");
    write(&root.join("share/plan.docx"), &noise(2, 200_000));
    assert_success(&run(&["run", "s"]), "second run");

    // Prune may forget the older snapshot, but it is locked: it stays, and prune says so.
    let out = run(&["prune", "s"]);
    assert_success(&out, "prune");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("could not delete") && text.contains("under object lock"),
        "{text}"
    );

    let soon = chrono::Utc::now() + chrono::Duration::hours(47);
    let report = lock_script(&["inspect", &bucket, "school"]);
    let mut checked = 0;
    for line in report.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("json line");
        let key = v["key"].as_str().expect("key");
        assert_eq!(v["mode"], "COMPLIANCE", "{key} is not locked: {line}");
        let until: chrono::DateTime<chrono::Utc> =
            v["until"].as_str().expect("until").parse().expect("date");
        assert!(until > soon, "{key} is locked only until {until}");
        assert_eq!(
            v["deleted"], false,
            "{key}: a locked version was deleted: {line}"
        );
        if ["config", "keys/", "data/", "index/", "snapshots/"]
            .iter()
            .any(|p| key.starts_with(p))
        {
            checked += 1;
        }
    }
    // config, an envelope and its info, packs, index objects and two snapshots.
    assert!(checked >= 8, "only {checked} objects seen:\n{report}");
    assert_eq!(
        report
            .lines()
            .filter(|l| l.contains("\"snapshots/"))
            .count(),
        2,
        "{report}"
    );
}
