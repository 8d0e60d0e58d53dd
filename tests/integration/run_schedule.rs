//! `firesafe run`: the shipped example works as the README says, every target ends up with the
//! same objects, a target that is down makes the run degraded and catches up later, and bad
//! configuration is reported with file, line and key.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::support::*;

fn run(dir: &Path, args: &[&str]) -> Output {
    firesafe()
        .env("FIRESAFE_STATE_DIR", dir.join("state"))
        .arg("run")
        .args(args)
        .arg("--config-dir")
        .arg(dir)
        .output()
        .expect("run firesafe")
}

/// Every object on a local target: key -> bytes.
fn objects(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.insert(
                    p.strip_prefix(root).expect("prefix").display().to_string(),
                    fs::read(&p).expect("read"),
                );
            }
        }
    }
    out
}

#[test]
fn the_shipped_configuration_loads() {
    let config =
        firesafe::config::Config::load(project_root()).expect("shipped configuration is valid");
    let nightly = config.schedule("nightly").expect("nightly");
    assert_eq!(nightly.targets, ["nas", "offsite"]);
    assert_eq!(
        config.targets["offsite"].location,
        firesafe::config::Site::Offsite
    );
}

#[test]
fn the_readme_example_runs_and_replicates_byte_identically() {
    let dir = example();
    let first = run(dir.path(), &["nightly", "--init"]);
    assert_success(&first, "first run");
    let text = String::from_utf8_lossy(&first.stdout);
    assert!(
        text.contains("created key file") && text.contains("run of schedule nightly: complete"),
        "{text}"
    );
    let key = dir.path().join("demo/firesafe.key");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&key).expect("key").permissions().mode() & 0o777,
        0o600
    );

    let nas = objects(&dir.path().join("demo/nas"));
    assert!(nas.keys().any(|k| k.starts_with("snapshots/")));
    assert_eq!(
        nas,
        objects(&dir.path().join("demo/offsite")),
        "the targets differ"
    );

    // Each copy restores on its own.
    for target in ["nas", "offsite"] {
        let repo = dir.path().join("demo").join(target);
        let to = dir.path().join(format!("restored-{target}"));
        let out = firesafe()
            .arg("--repo")
            .arg(&repo)
            .args(["restore", "latest", "--source", "admin", "--to"])
            .arg(&to)
            .env("FIRESAFE_KEY_FILE", &key)
            .output()
            .expect("run");
        assert_success(&out, "restore");
        assert_same_tree(&dir.path().join("demo/shares/admin"), &to.join("admin"));
    }

    // A second run of unchanged shares reads nothing and stores no new data.
    let second = run(dir.path(), &["nightly"]);
    assert_success(&second, "second run");
    let text = String::from_utf8_lossy(&second.stdout);
    assert!(text.contains("0 new, 0 changed"), "{text}");
    let nas2 = objects(&dir.path().join("demo/nas"));
    assert_eq!(
        nas2.keys().filter(|k| k.starts_with("data/")).count(),
        nas.keys().filter(|k| k.starts_with("data/")).count()
    );
    assert_eq!(nas2, objects(&dir.path().join("demo/offsite")));
}

#[test]
fn a_target_that_is_down_degrades_the_run_and_catches_up() {
    let dir = example();
    assert_success(&run(dir.path(), &["nightly", "--init"]), "first run");
    // The offsite copy disappears (an unmounted share).
    let offsite = dir.path().join("demo/offsite");
    fs::rename(&offsite, dir.path().join("offsite-away")).expect("move");
    write(
        &dir.path().join("demo/shares/staff/new policy.docx"),
        &noise(9, 300_000),
    );
    let out = run(dir.path(), &["nightly"]);
    let stderr = assert_exit(&out, 1, "run with offsite down");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("target offsite: NOT UPDATED") && text.contains("degraded"),
        "{text}{stderr}"
    );
    assert!(text.contains("target nas: received the backup"), "{text}");

    // It comes back: the next run copies exactly what it lacks.
    fs::rename(dir.path().join("offsite-away"), &offsite).expect("move back");
    let out = run(dir.path(), &["nightly"]);
    assert_success(&out, "run after offsite returned");
    assert_eq!(objects(&dir.path().join("demo/nas")), objects(&offsite));
}

#[test]
fn bad_configuration_names_file_line_and_key() {
    let dir = example();
    let sched = dir.path().join("schedules/nightly.toml");
    let good = fs::read_to_string(&sched).expect("read");

    let cases = [
        (
            good.replace("cron = \"0 2 * * *\"", "cron = \"0 2 * *\""),
            "key cron",
        ),
        (
            good.replace(
                "timezone = \"Europe/London\"",
                "timezone = \"Europe/Londn\"",
            ),
            "key timezone",
        ),
        (
            good.replace(
                "targets = [\"nas\", \"offsite\"]",
                "targets = [\"nas\", \"cloud\"]",
            ),
            "no target \"cloud\"",
        ),
        (
            format!("{good}\nretension = 3\n"),
            "unknown field `retension`",
        ),
    ];
    for (text, expected) in cases {
        fs::write(&sched, &text).expect("write");
        let out = run(dir.path(), &["nightly"]);
        let err = assert_exit(&out, 2, expected);
        assert!(
            err.contains(expected) && err.contains("nightly.toml:"),
            "expected {expected:?} in: {err}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
    fs::write(&sched, &good).expect("write");
    // Object lock is an S3 feature; a path target that asks for it is named.
    let nas = dir.path().join("targets/nas.toml");
    let nas_good = fs::read_to_string(&nas).expect("read");
    fs::write(&nas, format!("{nas_good}object_lock_days = 30\n")).expect("write");
    let out = run(dir.path(), &["nightly"]);
    let err = assert_exit(&out, 2, "object lock on a path target");
    assert!(
        err.contains("nas.toml:") && err.contains("key object_lock_days"),
        "{err}"
    );
    fs::write(&nas, format!("{nas_good}transfers = 0\n")).expect("write");
    let out = run(dir.path(), &["nightly"]);
    let err = assert_exit(&out, 2, "no transfers at once");
    assert!(
        err.contains("nas.toml:") && err.contains("key transfers: give 1 to 32"),
        "{err}"
    );
    fs::write(&nas, nas_good).expect("write");
    let out = run(dir.path(), &["weekly"]);
    let err = assert_exit(&out, 2, "unknown schedule");
    assert!(
        err.contains("no schedule \"weekly\"") && err.contains("nightly"),
        "{err}"
    );

    // Without --init, a first run says what to do.
    let out = run(dir.path(), &["nightly"]);
    let err = assert_exit(&out, 2, "first run without --init");
    assert!(err.contains("--init"), "{err}");
}

#[test]
fn an_s3_offsite_target_receives_the_same_objects() {
    if !backends().contains(&Backend::S3) {
        return;
    }
    let dir = example();
    let prefix = format!("run-{:016x}", rand::random::<u64>());
    fs::write(
        dir.path().join("targets/offsite.toml"),
        format!(
            "kind = \"s3\"\nlocation = \"offsite\"\nmedium = \"object-storage\"\nbucket = \"{}\"\nprefix = \"{prefix}\"\n",
            std::env::var("AWS_BUCKET").expect("bucket")
        ),
    )
    .expect("write");
    assert_success(
        &run(dir.path(), &["nightly", "--init"]),
        "run with S3 offsite",
    );
    let url = format!(
        "s3://{}/{prefix}",
        std::env::var("AWS_BUCKET").expect("bucket")
    );
    let loc = firesafe::store::target::Location::parse(&url).expect("url");
    let target = firesafe::store::target::Target::open(&url, &loc, &Default::default(), false)
        .expect("open");
    let remote: BTreeMap<String, Vec<u8>> = block_on(async {
        let mut m = BTreeMap::new();
        for l in target.list("").await.expect("list") {
            m.insert(
                l.key.clone(),
                target.get(&l.key).await.expect("get").to_vec(),
            );
        }
        m
    });
    assert_eq!(objects(&dir.path().join("demo/nas")), remote);
    let out = firesafe()
        .args(["--repo", &url, "check", "--read-data"])
        .env("FIRESAFE_KEY_FILE", dir.path().join("demo/firesafe.key"))
        .output()
        .expect("run");
    assert_success(&out, "check --read-data on S3 offsite");
}

/// Two configuration directories on one machine keep separate records by default: each has its
/// own state directory, derived from its path, and `status` says which it read.
#[test]
fn two_configuration_directories_keep_separate_records() {
    let (a, b) = (example(), example());
    let home = tempfile::tempdir().expect("home");
    // As root the default is under /var/lib/firesafe: run as nobody, whose default is in HOME.
    let root = nix::unistd::geteuid().is_root();
    if root {
        for d in [a.path(), b.path(), home.path()] {
            let out = std::process::Command::new("chown")
                .args(["-R", "65534:65534"])
                .arg(d)
                .output()
                .expect("chown");
            assert_success(&out, "chown");
        }
    }
    let firesafe_as_user = |args: &[&str], dir: &Path| -> Output {
        let bin = env!("CARGO_BIN_EXE_firesafe");
        let mut c = if root {
            let mut c = std::process::Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", bin]);
            c
        } else {
            std::process::Command::new(bin)
        };
        c.env_remove("FIRESAFE_STATE_DIR")
            .env("HOME", home.path())
            .args(args)
            .arg("--config-dir")
            .arg(dir)
            .output()
            .expect("run firesafe")
    };
    assert_success(
        &firesafe_as_user(&["run", "nightly", "--init"], a.path()),
        "run A",
    );
    assert_success(
        &firesafe_as_user(&["run", "nightly"], a.path()),
        "run A again",
    );
    assert_success(
        &firesafe_as_user(&["run", "nightly", "--init"], b.path()),
        "run B",
    );
    let base = home.path().join(".local/state/firesafe/configs");
    let mut dirs: Vec<PathBuf> = fs::read_dir(&base)
        .expect("configs")
        .map(|e| e.expect("entry").path())
        .collect();
    dirs.sort();
    assert_eq!(
        dirs.len(),
        2,
        "one state directory per configuration: {dirs:?}"
    );
    let runs = |d: &Path| {
        fs::read_to_string(d.join("history.jsonl"))
            .expect("history")
            .lines()
            .count()
    };
    let mut counts: Vec<usize> = dirs.iter().map(|d| runs(d)).collect();
    counts.sort();
    assert_eq!(counts, [1, 2], "A's two runs and B's one, apart");
    for (dir, expected) in [(a.path(), 2), (b.path(), 1)] {
        let out = firesafe_as_user(&["status"], dir);
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find(|l| l.starts_with("records read from the state directory "))
            .unwrap_or_else(|| panic!("status names its state directory: {text}"));
        let used = PathBuf::from(line.trim_start_matches("records read from the state directory "));
        assert!(used.starts_with(&base), "{line}");
        assert_eq!(runs(&used), expected, "{line}");
    }
}
