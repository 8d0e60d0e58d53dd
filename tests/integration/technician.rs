//! A technician's tool that never surprises: listings piped into `head` end quietly, and what
//! killed processes leave on a target (lock objects, scratch files) is noted by `check` and
//! removed by `prune`.

use std::fs;
use std::path::Path;
use std::process::Output;

use crate::support::*;

fn fs_in(dir: &Path, args: &[&str]) -> Output {
    firesafe()
        .env("FIRESAFE_STATE_DIR", dir.join("state"))
        .args(args)
        .arg("--config-dir")
        .arg(dir)
        .output()
        .expect("run firesafe")
}

/// Each listing command, its output far larger than a pipe holds, piped into `head -1`: one
/// line, status 0, nothing on standard error.
#[test]
fn listings_piped_into_head_end_quietly() {
    let repo = Repo::new(Backend::Local);
    let share = repo.path("share");
    for i in 0..3000 {
        write(
            &share.join(format!("class-{:02}/pupil-{i:05}.txt", i % 30)),
            b"work",
        );
    }
    let first = repo.backup(&share, "share");
    for i in 0..3000 {
        write(
            &share.join(format!("class-{:02}/pupil-{i:05}.txt", i % 30)),
            b"new work",
        );
    }
    let second = repo.backup(&share, "share");
    for i in 0..20 {
        repo.backup(&share, &format!("s{i}"));
    }
    let commands: Vec<Vec<String>> = vec![
        vec![
            "ls".into(),
            "latest".into(),
            "--source".into(),
            "share".into(),
        ],
        vec![
            "find".into(),
            "pupil-*".into(),
            "--source".into(),
            "share".into(),
        ],
        vec!["diff".into(), first.clone(), second.clone()],
        vec!["snapshots".into()],
    ];
    for args in commands {
        let line = format!(
            "set -o pipefail; {} --repo {} {} | head -1",
            env!("CARGO_BIN_EXE_firesafe"),
            repo.url,
            args.iter()
                .map(|a| format!("'{a}'"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        let out = std::process::Command::new("bash")
            .args(["-c", &line])
            .env("FIRESAFE_KEY_FILE", &repo.key)
            .env("RUST_BACKTRACE", "1")
            .output()
            .expect("bash");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).lines().count(),
            1,
            "{args:?}"
        );
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
}

/// A lock object of a process that is gone and a scratch file two days old, as a killed backup
/// leaves them: `check` notes both, `prune` removes both and says so.
#[test]
fn what_killed_processes_leave_is_noted_and_removed() {
    let dir = example();
    let d = dir.path();
    assert_success(&fs_in(d, &["run", "nightly", "--init"]), "first run");
    let nas = d.join("demo/nas");
    let host = firesafe::store::repo::hostname();
    let lock = serde_json::json!({
        "kind": "shared",
        "operation": "backup curriculum",
        "host": host,
        "pid": 4_000_000u32,
        "started": "2026-11-01T02:00:00Z",
        "refreshed": "2026-11-01T02:10:00Z",
    });
    let lock_key = nas.join("locks").join("ab".repeat(32));
    fs::create_dir_all(lock_key.parent().unwrap()).expect("mkdir");
    fs::write(&lock_key, lock.to_string()).expect("lock");
    let scratch = nas.join("tmp/pack-7.tmp");
    fs::create_dir_all(scratch.parent().unwrap()).expect("mkdir");
    fs::write(&scratch, vec![0u8; 4096]).expect("scratch");
    let two_days_ago = chrono::Utc::now().timestamp() - 2 * 86_400;
    set_mtime(&scratch, two_days_ago, 0);
    let fresh = nas.join("tmp/pack-8.tmp");
    fs::write(&fresh, b"a backup writing now").expect("fresh");

    let check = firesafe()
        .env("FIRESAFE_KEY_FILE", d.join("demo/firesafe.key"))
        .arg("--repo")
        .arg(&nas)
        .arg("check")
        .output()
        .expect("check");
    assert_success(&check, "check");
    let text = String::from_utf8_lossy(&check.stdout);
    assert!(
        text.contains("1 lock object left by processes that are gone"),
        "{text}"
    );
    assert!(
        text.contains("1 scratch file in tmp/ older than a day"),
        "{text}"
    );

    let prune = fs_in(d, &["prune", "nightly"]);
    assert_success(&prune, "prune");
    let text = String::from_utf8_lossy(&prune.stdout);
    assert!(text.contains("removed 1 lock object"), "{text}");
    assert!(text.contains("removed 1 scratch file"), "{text}");
    assert!(!lock_key.exists() && !scratch.exists(), "both removed");
    assert!(fresh.exists(), "a young scratch file stays");
}

/// Progress: drawn on a terminal (a pseudo-terminal made by `script`), with the share's name and
/// the parent's file count; off a terminal, plain progress lines at the set interval, with no
/// control characters.
#[test]
fn long_steps_show_progress_on_a_terminal_and_in_the_log() {
    let repo = Repo::new(Backend::Local);
    let share = repo.path("share");
    for i in 0..30 {
        write(&share.join(format!("video-{i}.bin")), &noise(i, 10_000_000));
    }
    repo.backup(&share, "media");
    for i in 0..30 {
        write(
            &share.join(format!("video-{i}.bin")),
            &noise(i + 100, 10_000_000),
        );
    }
    // Off a terminal, a line every 50 ms of the second backup, which reads every file again.
    let out = repo
        .cmd()
        .env("FIRESAFE_PROGRESS_SECONDS", "0.05")
        .arg("backup")
        .arg(&share)
        .args(["--source", "media"])
        .output()
        .expect("backup");
    assert_success(&out, "backup");
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("firesafe: progress: "))
        .collect();
    assert!(!lines.is_empty(), "progress lines off a terminal: {err}");
    assert!(
        lines
            .iter()
            .all(|l| l.contains("of 30 (") && l.contains("media:")),
        "{err}"
    );
    assert!(
        !err.contains('\x1b') && !err.contains('\r'),
        "no control characters: {err:?}"
    );
    // On a pseudo-terminal: drawn, with the share and the count from the parent snapshot.
    let line = format!(
        "FIRESAFE_KEY_FILE={} {} --repo {} backup {} --source media",
        repo.key.display(),
        env!("CARGO_BIN_EXE_firesafe"),
        repo.url,
        share.display()
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .output()
        .expect("script");
    assert_success(&out, "backup on a terminal");
    let drawn = String::from_utf8_lossy(&out.stdout);
    assert!(drawn.contains("/30 files, media:"), "{drawn}");
}

/// A long target name keeps the status table in line.
#[test]
fn status_columns_fit_long_target_names() {
    let dir = example();
    let d = dir.path();
    let long = "offsite-object-storage-london";
    fs::rename(
        d.join("targets/offsite.toml"),
        d.join(format!("targets/{long}.toml")),
    )
    .expect("rename");
    let schedule = d.join("schedules/nightly.toml");
    let text = fs::read_to_string(&schedule).expect("schedule");
    fs::write(
        &schedule,
        text.replace(
            "targets = [\"nas\", \"offsite\"]",
            &format!("targets = [\"nas\", \"{long}\"]"),
        ),
    )
    .expect("write");
    assert_success(&fs_in(d, &["run", "nightly", "--init"]), "first run");
    let out = fs_in(d, &["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("    nas ") || l.starts_with(&format!("    {long} ")))
        .collect();
    assert!(rows.len() >= 2, "{text}");
    // Where the second column (the site) starts: after the name and the spaces that follow it.
    let column = |row: &str| {
        let name_end = 4 + row[4..].find(' ').expect("a name");
        name_end + row[name_end..].find(|c: char| c != ' ').expect("a site")
    };
    let first = column(rows[0]);
    assert!(
        rows.iter().all(|r| column(r) == first),
        "columns in line:\n{text}"
    );
}

/// A run while the NAS was away went to the offsite copy; the sync that follows says that the
/// NAS received what it lacked from offsite, under the NAS's name.
#[test]
fn sync_names_the_target_that_received_the_copy() {
    let dir = example();
    let d = dir.path();
    assert_success(&fs_in(d, &["run", "nightly", "--init"]), "first run");
    fs::rename(d.join("demo/nas"), d.join("nas-away")).expect("away");
    write(
        &d.join("demo/shares/admin/new-policy.docx"),
        &noise(5, 300_000),
    );
    let out = fs_in(d, &["run", "nightly"]);
    assert_exit(&out, 1, "run with the NAS away");
    fs::rename(d.join("nas-away"), d.join("demo/nas")).expect("back");
    let out = fs_in(d, &["sync", "nightly"]);
    assert_success(&out, "sync");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("target nas: received from offsite what it lacked ("),
        "{text}"
    );
    assert!(text.contains("target offsite: up to date ("), "{text}");
}

/// In a repository of three shares, `latest` without `--source` is refused (exit 2) with the
/// shares named, and nothing is written; `restore --all-sources` restores every share's newest
/// snapshot, each into DIR/SOURCE, from the schedule's copies.
#[test]
fn no_silent_choice_of_share_and_every_share_at_once() {
    let dir = example();
    let d = dir.path();
    assert_success(&fs_in(d, &["run", "nightly", "--init"]), "first run");
    let in_nas = |args: &[&str]| {
        firesafe()
            .env("FIRESAFE_KEY_FILE", d.join("demo/firesafe.key"))
            .env("FIRESAFE_STATE_DIR", d.join("state"))
            .arg("--repo")
            .arg(d.join("demo/nas"))
            .args(args)
            .output()
            .expect("run firesafe")
    };
    let err = assert_exit(&in_nas(&["ls", "latest"]), 2, "ls latest with three shares");
    assert!(
        err.contains("admin, curriculum, staff") && err.contains("--source"),
        "{err}"
    );
    let to = d.join("restored");
    let to_s = to.to_str().expect("utf-8");
    let err = assert_exit(
        &in_nas(&["restore", "latest", "--to", to_s]),
        2,
        "restore latest with three shares",
    );
    assert!(err.contains("--all-sources"), "{err}");
    assert!(!to.exists(), "nothing written");
    let err = assert_exit(&in_nas(&["ls", "@yesterday"]), 2, "a date without a share");
    assert!(err.contains("--source"), "{err}");
    assert_success(
        &in_nas(&["ls", "latest", "--source", "admin"]),
        "ls latest --source admin",
    );

    let out = fs_in(
        d,
        &[
            "restore",
            "--schedule",
            "nightly",
            "--all-sources",
            "--to",
            to_s,
        ],
    );
    assert_success(&out, "restore --all-sources");
    for share in ["admin", "curriculum", "staff"] {
        assert_same_tree(
            &d.join("demo/shares").join(share),
            &to.join(share).join(share),
        );
    }
}
