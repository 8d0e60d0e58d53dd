//! firesafe runs as root among files others write: configurations that could lose data, paths a
//! local user can plant in the shared temporary directory, and a daemon that must never look
//! finished when it has nothing to run.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::support::{Backend, Repo, assert_exit, backends, example, firesafe, make_share};

fn config_check(dir: &Path) -> (i32, String) {
    let out = firesafe()
        .args(["config", "check", "--config-dir"])
        .arg(dir)
        .output()
        .expect("run");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// Runs firesafe on the example configuration in `d`, with its state in `d/state`.
fn in_example(d: &Path, args: &[&str]) -> std::process::Output {
    firesafe()
        .args(args)
        .arg("--config-dir")
        .arg(d)
        .arg("--state-dir")
        .arg(d.join("state"))
        .output()
        .expect("run")
}

fn edit_schedule(dir: &Path, edit: impl FnOnce(String) -> String) {
    let path = dir.join("schedules/nightly.toml");
    let text = fs::read_to_string(&path).expect("schedule");
    fs::write(&path, edit(text)).expect("write schedule");
}

#[test]
fn two_sources_with_one_name_are_refused() {
    let dir = example();
    edit_schedule(dir.path(), |t| {
        t.replace(
            "name = \"admin\"\npath = \"demo/shares/admin\"",
            "name = \"curriculum\"\npath = \"demo/shares/admin\"",
        )
    });
    let (code, text) = config_check(dir.path());
    assert_ne!(code, 0, "{text}");
    assert!(
        text.contains("two sources are called \"curriculum\""),
        "{text}"
    );
    // And nothing that reads the configuration goes on with it: prune would have judged the
    // two shares' snapshots as one.
    let out = firesafe()
        .args(["prune", "nightly", "--dry-run", "--config-dir"])
        .arg(dir.path())
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .output()
        .expect("run");
    assert_exit(&out, 2, "prune with duplicate sources");
}

#[test]
fn source_names_with_control_characters_are_refused() {
    let dir = example();
    edit_schedule(dir.path(), |t| {
        t.replace(
            "name = \"staff\"",
            "name = \"staff\\nfiresafe: error: fake\"",
        )
    });
    let (code, text) = config_check(dir.path());
    assert_ne!(code, 0, "{text}");
    assert!(text.contains("is not a plain name"), "{text}");
    // The name is shown escaped: no line of the output starts with the planted text.
    assert!(
        !text.lines().any(|l| l.starts_with("firesafe: error: fake")),
        "{text}"
    );
}

/// `backup --source` holds a name to the rule the configuration holds its sources to: one
/// line naming the rule, exit 2, and nothing stored.
#[test]
fn backup_source_names_that_are_not_plain_are_refused() {
    let repo = Repo::new(Backend::Local);
    let share = repo.path("share");
    fs::create_dir_all(&share).expect("mkdir");
    fs::write(share.join("a.txt"), b"a").expect("write");
    for bad in [
        "share\nfiresafe: error: all backups deleted",
        "share\x1b[2J",
        "../share",
        "share\u{202e}",
        "",
    ] {
        let out = repo
            .cmd()
            .arg("backup")
            .arg(&share)
            .args(["--source", bad])
            .output()
            .expect("run");
        let err = assert_exit(&out, 2, &format!("backup --source {bad:?}"));
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(
            err.contains("is not a plain name") || err.contains("must name the share"),
            "{err}"
        );
        assert!(!err.contains('\x1b'), "{err:?}");
    }
    let err = String::from_utf8_lossy(
        &repo
            .cmd()
            .arg("backup")
            .arg(&share)
            .args(["--source", "share\tx"])
            .output()
            .expect("run")
            .stderr,
    )
    .into_owned();
    assert!(
        err.contains("use letters, digits, '-', '_' and '.'"),
        "{err}"
    );
    let snapshots = repo.ok(&["snapshots", "--json"]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&snapshots).expect("json"),
        serde_json::json!([]),
        "{snapshots}"
    );
}

#[test]
fn a_cron_time_that_never_comes_is_refused() {
    for (edit, what) in [
        (
            ("cron = \"0 2 * * *\"", "cron = \"0 2 30 2 *\""),
            "key cron: \"0 2 30 2 *\" does not come",
        ),
        (
            ("cron = \"30 4 * * *\"", "cron = \"30 4 31 4 *\""),
            "[verify] key cron: \"30 4 31 4 *\" does not come",
        ),
        (
            ("cron = \"0 6 * * 0\"", "cron = \"0 6 31 11 *\""),
            "[drill] key cron: \"0 6 31 11 *\" does not come",
        ),
    ] {
        let dir = example();
        edit_schedule(dir.path(), |t| t.replace(edit.0, edit.1));
        let (code, text) = config_check(dir.path());
        assert_ne!(code, 0, "{text}");
        assert!(text.contains(what), "{what}: {text}");
    }
}

#[test]
fn the_daemon_fails_when_it_has_nothing_to_run() {
    let empty = tempfile::tempdir().expect("tempdir");
    for config_dir in [empty.path().to_path_buf(), empty.path().join("missing")] {
        let out = firesafe()
            .args(["daemon", "--config-dir"])
            .arg(&config_dir)
            .arg("--state-dir")
            .arg(empty.path().join("state"))
            .output()
            .expect("run");
        let text = assert_exit(&out, 2, "daemon without schedules");
        assert!(text.contains("no schedules in"), "{text}");
    }
}

/// A local user plants `firesafe-packs` (the old fixed name) as a link to a directory of
/// numbered folders, and a stale-looking scratch directory of their own: a root backup to S3
/// must touch neither, and leave no scratch directory behind.
#[test]
fn planted_temporary_paths_are_left_alone() {
    let backend = backends().into_iter().find(|b| *b == Backend::S3);
    let Some(backend) = backend else {
        return; // Only remote targets build packs in the temporary directory.
    };
    let repo = Repo::new(backend);
    let tmp = tempfile::tempdir().expect("tempdir");
    let sentinel = tempfile::tempdir().expect("tempdir");
    for n in ["1001", "1002", "2000"] {
        fs::create_dir(sentinel.path().join(n)).expect("mkdir");
        fs::write(sentinel.path().join(n).join("work.docx"), b"pupil work").expect("write");
    }
    std::os::unix::fs::symlink(sentinel.path(), tmp.path().join("firesafe-packs"))
        .expect("symlink");
    std::os::unix::fs::symlink(sentinel.path(), tmp.path().join("firesafe-packs-1-planted"))
        .expect("symlink");
    let other = tmp.path().join("firesafe-packs-2-others");
    fs::create_dir(&other).expect("mkdir");
    fs::write(other.join("keep"), b"not ours").expect("write");
    // Owned by another user (nobody), as a pupil's would be.
    let _ = nix::unistd::chown(&other, Some(nix::unistd::Uid::from_raw(65534)), None);

    let share = repo.path("share");
    make_share(&share);
    let out = repo
        .cmd()
        .env("TMPDIR", tmp.path())
        .args(["backup"])
        .arg(&share)
        .args(["--source", "share"])
        .output()
        .expect("run");
    assert_exit(&out, 0, "backup to S3");

    for n in ["1001", "1002", "2000"] {
        assert_eq!(
            fs::read(sentinel.path().join(n).join("work.docx")).expect("sentinel kept"),
            b"pupil work"
        );
    }
    assert!(fs::symlink_metadata(tmp.path().join("firesafe-packs")).is_ok());
    assert!(fs::symlink_metadata(tmp.path().join("firesafe-packs-1-planted")).is_ok());
    if nix::unistd::geteuid().is_root() {
        assert!(other.join("keep").exists(), "another user's directory kept");
    }
    let left: Vec<String> = fs::read_dir(tmp.path())
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.starts_with("firesafe-packs-") && !n.ends_with("-planted") && !n.ends_with("-others")
        })
        .collect();
    assert!(left.is_empty(), "scratch left behind: {left:?}");
}

/// A scratch directory is private to its process.
#[test]
fn remote_scratch_is_private() {
    let Some(backend) = backends().into_iter().find(|b| *b == Backend::S3) else {
        return;
    };
    let repo = Repo::new(backend);
    let target = repo.target();
    let dir = target.scratch_dir().expect("scratch").path().to_path_buf();
    let mode = fs::metadata(&dir)
        .expect("scratch exists")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700, "{}", dir.display());
    assert!(
        dir.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(&format!("firesafe-packs-{}-", std::process::id()))),
        "{}",
        dir.display()
    );
    drop(target);
    assert!(!dir.exists(), "removed with the target");
}

/// Runs firesafe with `args` under `timeout`, so that a hang fails the test with exit 124.
fn bounded(repo: &Repo, seconds: u32, args: &[&str]) -> std::process::Output {
    let mut c = std::process::Command::new("timeout");
    c.arg(seconds.to_string())
        .arg(env!("CARGO_BIN_EXE_firesafe"));
    c.arg("--repo").arg(&repo.url);
    c.env("FIRESAFE_KEY_FILE", &repo.key)
        .env("FIRESAFE_STATE_DIR", repo.dir.path().join("state"));
    c.args(args).output().expect("run timeout")
}

/// Objects of a local target that are not plain files (a FIFO planted where a pack was) are
/// damage, named, never opened for reading: no command hangs on them.
#[test]
fn a_fifo_planted_in_data_is_damage_not_a_hang() {
    let repo = Repo::new(Backend::Local);
    let share = repo.path("share");
    make_share(&share);
    repo.backup(&share, "share");
    let packs = repo.keys_under("data");
    assert!(!packs.is_empty());
    for key in &packs {
        let path = Path::new(&repo.url).join(key);
        fs::remove_file(&path).expect("remove pack");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .expect("mkfifo");
    }
    let to = repo.path("restored");
    for args in [
        vec!["ls", "latest", "--source", "share"],
        vec![
            "restore",
            "latest",
            "--source",
            "share",
            "--to",
            to.to_str().unwrap(),
        ],
        vec!["check", "--read-data"],
        vec!["backup", share.to_str().unwrap(), "--source", "share"],
    ] {
        let out = bounded(&repo, 30, &args);
        let code = out.status.code().unwrap_or(-1);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_ne!(code, 124, "{args:?} hung: {text}");
        if args[0] == "check" {
            // The listing of a local target has plain files only: the packs are not there.
            assert_eq!(code, 1, "{args:?}: {text}");
            assert!(text.contains(&format!("finding: {}", packs[0])), "{text}");
        } else if args[0] != "backup" {
            assert_ne!(code, 0, "{args:?}: {text}");
            assert!(text.contains("not a plain file"), "{args:?}: {text}");
        }
    }
    // The FIFOs are still FIFOs: nothing opened them for writing either.
    for key in &packs {
        let meta = fs::symlink_metadata(Path::new(&repo.url).join(key)).expect("still there");
        assert!(std::os::unix::fs::FileTypeExt::is_fifo(&meta.file_type()));
    }
}

/// An S3 endpoint that accepts connections and never answers is named within seconds.
#[test]
fn a_silent_s3_endpoint_fails_in_seconds() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let held = std::thread::spawn(move || {
        // Accept and hold connections open, saying nothing, until the test ends.
        let mut open = Vec::new();
        listener.set_nonblocking(true).expect("nonblocking");
        let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::time::Instant::now() < until {
            if let Ok((s, _)) = listener.accept() {
                open.push(s);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    });
    let started = std::time::Instant::now();
    let out = std::process::Command::new("timeout")
        .arg("55")
        .arg(env!("CARGO_BIN_EXE_firesafe"))
        .args(["--repo", "s3://silent/school", "snapshots"])
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"))
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("FIRESAFE_PASSPHRASE", "unused")
        .output()
        .expect("run");
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("no answer within"), "{text}");
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        took < std::time::Duration::from_secs(40),
        "took {took:?}: {text}"
    );
    drop(held);
}

/// With no credentials anywhere, an S3 target is named and nothing asks the cloud's metadata
/// address for some.
#[test]
fn s3_without_credentials_does_not_probe_instance_metadata() {
    let home = tempfile::tempdir().expect("tempdir");
    let mut c = std::process::Command::new("timeout");
    c.arg("30").arg(env!("CARGO_BIN_EXE_firesafe"));
    c.args(["--repo", "s3://bucket/school", "snapshots"])
        .env("HOME", home.path())
        .env("FIRESAFE_PASSPHRASE", "unused");
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") {
            c.env_remove(k);
        }
    }
    c.env("AWS_ENDPOINT_URL", "http://127.0.0.1:9");
    let out = c.output().expect("run");
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("no S3 credentials"), "{text}");
}

/// Every file the state directory holds is private to its owner (the history and the audit log
/// name files, which is personal data), in directories others cannot list; only the metrics,
/// which name no file, are readable by the collector running as another user.
#[test]
fn state_files_are_private_and_metrics_readable() {
    let dir = example();
    let state = dir.path().join("state");
    // A state directory made by an older version, open to all, is tightened.
    fs::create_dir_all(&state).expect("mkdir");
    fs::set_permissions(&state, fs::Permissions::from_mode(0o755)).expect("chmod");
    check_state_modes(dir.path(), &state, "022");
}

/// Under the systemd unit's `UMask=0077` the modes are the same: the state directory (and the
/// parents firesafe makes for it) 0711, `metrics/` 0755 and its files 0644, the rest private.
#[test]
fn state_modes_hold_under_a_strict_umask() {
    use std::os::unix::fs::MetadataExt;
    let dir = example();
    let state = dir.path().join("lib/configs/state");
    check_state_modes(dir.path(), &state, "077");
    let parent = fs::metadata(dir.path().join("lib/configs")).expect("configs");
    assert_eq!(parent.mode() & 0o777, 0o711, "a parent made for the state");
}

/// Runs a backup, a verify, a drill and a restore on the example in `d` with its state in
/// `state`, under `umask`, and checks the mode of everything in the state directory.
fn check_state_modes(d: &Path, state: &Path, umask: &str) {
    use std::os::unix::fs::MetadataExt;
    let fs_in = |args: &[&str]| {
        let mut c = std::process::Command::new("sh");
        c.arg("-c")
            .arg(format!("umask {umask}; exec \"$0\" \"$@\""))
            .arg(env!("CARGO_BIN_EXE_firesafe"))
            .args(args)
            .arg("--config-dir")
            .arg(d)
            .arg("--state-dir")
            .arg(state)
            .env_remove("FIRESAFE_KEY_FILE")
            .env_remove("FIRESAFE_PASSPHRASE")
            .env_remove("FIRESAFE_REPO");
        c.output().expect("run")
    };
    assert_exit(&fs_in(&["run", "nightly", "--init"]), 0, "first run");
    assert_exit(&fs_in(&["verify", "nightly"]), 0, "verify");
    assert_exit(&fs_in(&["drill", "nightly"]), 0, "drill");
    let to = d.join("restored");
    let out = fs_in(&[
        "restore",
        "--schedule",
        "nightly",
        "latest",
        "--source",
        "admin",
        "--to",
        to.to_str().unwrap(),
    ]);
    assert_exit(&out, 0, "restore via the schedule");

    let mut seen = Vec::new();
    let mut wrong = Vec::new();
    for entry in walk(state) {
        let meta = fs::symlink_metadata(&entry).expect("meta");
        let mode = meta.mode() & 0o777;
        let rel = entry.strip_prefix(state).unwrap().to_path_buf();
        let in_metrics = rel.starts_with("metrics");
        let want = match (meta.is_dir(), in_metrics) {
            (true, true) => 0o755,
            (false, true) => 0o644,
            (true, false) => 0o700,
            (false, false) => 0o600,
        };
        if mode != want {
            wrong.push(format!("{} is {mode:o}, not {want:o}", rel.display()));
        }
        seen.push(rel);
    }
    let root_mode = fs::metadata(state).expect("state").mode() & 0o777;
    assert_eq!(
        root_mode, 0o711,
        "the state directory itself (umask {umask})"
    );
    assert!(wrong.is_empty(), "umask {umask}: {wrong:#?}");
    for expected in [
        "history.jsonl",
        "audit.jsonl",
        "drills.jsonl",
        "verify.jsonl",
    ] {
        assert!(
            seen.iter().any(|p| p == Path::new(expected)),
            "{expected} written: {seen:?}"
        );
    }
    assert!(
        seen.iter()
            .any(|p| p.starts_with("metrics") && p.extension().is_some())
    );
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).expect("read_dir") {
        let p = e.expect("entry").path();
        if fs::symlink_metadata(&p).expect("meta").is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

/// A schedule's key file that others can read is refused, with the `chmod` to run.
#[test]
fn a_key_file_others_can_read_is_refused() {
    let dir = example();
    let d = dir.path();
    let fs_in = |args: &[&str]| in_example(d, args);
    assert_exit(&fs_in(&["run", "nightly", "--init"]), 0, "first run");
    let key = d.join("demo/firesafe.key");
    assert_eq!(
        fs::metadata(&key).expect("key").permissions().mode() & 0o777,
        0o600,
        "made private"
    );
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).expect("chmod");
    for args in [
        &["run", "nightly"][..],
        &["status", "nightly"],
        &["drill", "nightly"],
    ] {
        let out = fs_in(args);
        let text = assert_exit(&out, 2, &args.join(" "));
        assert!(text.contains("can be read by others (mode 0644)"), "{text}");
        assert!(
            text.contains(&format!("chmod 600 {}", key.display())),
            "{text}"
        );
    }
}

/// The governors' report and a recovery sheet printing the key refuse a key file others can
/// read, with the `chmod` to run, and write nothing; a sheet without the key is written, says
/// why the key's fingerprint is missing, and gives the same advice.
#[test]
fn report_and_recovery_sheet_refuse_a_key_file_others_can_read() {
    let dir = example();
    let d = dir.path();
    let fs_in = |args: &[&str]| in_example(d, args);
    assert_exit(&fs_in(&["run", "nightly", "--init"]), 0, "first run");
    let key = d.join("demo/firesafe.key");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).expect("chmod");
    let chmod = format!("chmod 600 {}", key.display());
    let report = d.join("report.pdf");
    let sheet = d.join("sheet.pdf");
    let (report_s, sheet_s, key_s) = (
        report.to_str().unwrap(),
        sheet.to_str().unwrap(),
        key.to_str().unwrap(),
    );
    for args in [
        &["report", "--out", report_s][..],
        &["recovery-sheet", "--out", sheet_s, "--include-key", key_s],
    ] {
        let text = assert_exit(&fs_in(args), 2, &args.join(" "));
        assert!(text.contains("can be read by others (mode 0644)"), "{text}");
        assert!(text.contains(&chmod), "{text}");
        assert_eq!(text.trim_end().lines().count(), 1, "{text}");
    }
    assert!(!report.exists() && !sheet.exists(), "nothing written");
    let out = fs_in(&["recovery-sheet", "--out", sheet_s]);
    let text = assert_exit(&out, 0, "recovery-sheet without the key");
    assert!(
        text.contains("fingerprint is not on the sheet") && text.contains(&chmod),
        "{text}"
    );
    let html = fs::read_to_string(d.join("sheet.html")).expect("html");
    assert!(html.contains("chmod 600"), "the sheet says why too");
}

/// A folder 2,000 levels deep, which any pupil can make with `mkdir -p`: the backup records the
/// share down to the stated limit, warns about the rest (exit 1, a partial snapshot), and
/// neither it nor the restore of that snapshot crashes.
#[test]
fn a_share_two_thousand_folders_deep_is_backed_up_with_a_warning() {
    let repo = Repo::new(Backend::Local);
    let share = repo.path("share");
    fs::create_dir_all(&share).expect("mkdir");
    fs::write(share.join("register.csv"), b"top of the share").expect("write");
    let mut deep = share.clone();
    for _ in 0..2000 {
        deep.push("d");
    }
    fs::create_dir_all(&deep).expect("mkdir -p 2000 levels");
    fs::write(deep.join("bottom.txt"), b"too deep").expect("write");

    let out = bounded(
        &repo,
        120,
        &["backup", share.to_str().unwrap(), "--source", "share"],
    );
    let text = assert_exit(&out, 1, "backup of a 2,000-deep share");
    assert!(text.contains("deeper than 1000 folders"), "{text}");

    let to = repo.path("restored");
    let out = bounded(
        &repo,
        120,
        &[
            "restore",
            "latest",
            "--source",
            "share",
            "--to",
            to.to_str().unwrap(),
        ],
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(matches!(out.status.code(), Some(0 | 1)), "{text}");
    assert_eq!(
        fs::read(to.join("share/register.csv")).expect("top file restored"),
        b"top of the share"
    );
    let mut restored_deep = to.join("share");
    for _ in 0..1000 {
        restored_deep.push("d");
    }
    assert!(restored_deep.is_dir(), "restored down to the limit");
}

/// A recovery sheet that prints the key is readable by its owner only, also when it replaces
/// an older sheet; one without the key stays readable by others.
#[test]
fn a_recovery_sheet_with_the_key_is_private() {
    use std::os::unix::fs::MetadataExt;
    let dir = example();
    let d = dir.path();
    let fs_in = |args: &[&str]| in_example(d, args);
    assert_exit(&fs_in(&["run", "nightly", "--init"]), 0, "first run");
    let with_key = d.join("with-key.pdf");
    fs::write(&with_key, b"an older sheet").expect("write");
    fs::set_permissions(&with_key, fs::Permissions::from_mode(0o644)).expect("chmod");
    let key = d.join("demo/firesafe.key");
    let out = fs_in(&[
        "recovery-sheet",
        "--out",
        with_key.to_str().unwrap(),
        "--include-key",
        key.to_str().unwrap(),
    ]);
    assert_exit(&out, 0, "recovery-sheet --include-key");
    for f in ["with-key.pdf", "with-key.html"] {
        let mode = fs::metadata(d.join(f)).expect(f).mode() & 0o777;
        assert_eq!(mode, 0o600, "{f}");
    }
    let out = fs_in(&[
        "recovery-sheet",
        "--out",
        d.join("plain.pdf").to_str().unwrap(),
    ]);
    assert_exit(&out, 0, "recovery-sheet");
    for f in ["plain.pdf", "plain.html"] {
        let mode = fs::metadata(d.join(f)).expect(f).mode() & 0o777;
        assert_eq!(mode, 0o644, "{f}");
    }
}

/// A file name a pupil could choose: a newline, a forged error line and an escape sequence.
const PLANTED: &str = "work\nfiresafe: error: all backups deleted\x1b[2J.txt";

/// The command exited with `code` and showed the planted name escaped on stdout, and no line of
/// its output is forged and no escape sequence reaches the terminal.
fn assert_shown_escaped(out: &std::process::Output, code: i32, what: &str) {
    assert_exit(out, code, what);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("work\\nfiresafe"),
        "{what}: the name is shown, escaped: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    for text in [&out.stdout, &out.stderr] {
        let text = String::from_utf8_lossy(text);
        assert!(
            !text
                .lines()
                .any(|l| l.starts_with("firesafe: error: all backups")),
            "{what}: a forged line: {text}"
        );
        assert!(!text.contains('\x1b'), "{what}: a raw escape: {text:?}");
    }
}

/// File names with newlines and escape sequences are shown escaped by every command that
/// prints names (the affected files of `check` and `verify`, and the restores `audit` lists,
/// included), so no line of the output can be forged; `--json` stays exact.
#[test]
fn names_with_newlines_and_escapes_are_printed_escaped() {
    let repo = Repo::new(Backend::Local);
    let share = repo.path("share");
    fs::create_dir_all(&share).expect("mkdir");
    fs::write(share.join(PLANTED), b"v1").expect("write");
    let first = repo.backup(&share, "share");
    fs::write(share.join(PLANTED), b"version two").expect("write");
    let second = repo.backup(&share, "share");
    // A tag is printed by `snapshots`.
    let tagged = repo
        .cmd()
        .arg("backup")
        .arg(&share)
        .args(["--source", "share", "--tag", PLANTED])
        .output()
        .expect("run");
    assert_exit(&tagged, 0, "backup with a planted tag");
    let to = repo.path("restored");
    let to_s = to.to_str().unwrap().to_string();
    let in_share = format!("share/{PLANTED}");
    let outputs = [
        repo.run(&["snapshots"]),
        repo.run(&["ls", "latest", "--source", "share"]),
        repo.run(&["diff", &first, &second]),
        repo.run(&["find", "work*", "--source", "share"]),
        repo.run(&["versions", &in_share, "--source", "share"]),
        repo.run(&[
            "restore",
            "latest",
            "--source",
            "share",
            "--to",
            &to_s,
            "--dry-run",
        ]),
    ];
    for out in &outputs {
        assert_shown_escaped(out, 0, "a command that prints names");
    }
    let ls = String::from_utf8_lossy(&outputs[1].stdout);
    assert!(
        ls.contains("work\\nfiresafe: error: all backups deleted\\u{1b}[2J.txt"),
        "{ls}"
    );
    // --json keeps the name exact.
    let json = repo.ok(&["ls", "latest", "--source", "share", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert!(
        json.contains("\\u001b") || v.to_string().contains(PLANTED),
        "{json}"
    );

    // A restore of the file into a folder with a planted name of its own: the audit log shows
    // both escaped, and its JSON keeps them exact.
    let into = repo.path("into\nfiresafe: error: all backups gone\x1b[2J");
    let restore = repo
        .cmd()
        .args(["restore", &format!("latest:{in_share}"), "--to"])
        .arg(&into)
        .output()
        .expect("run");
    assert_exit(&restore, 0, "restore of the planted file");
    let audit = repo.run(&["audit"]);
    assert_shown_escaped(&audit, 0, "audit");
    assert!(
        String::from_utf8_lossy(&audit.stdout).contains("into\\nfiresafe"),
        "{}",
        String::from_utf8_lossy(&audit.stdout)
    );
    let json = repo.ok(&["audit", "--json"]);
    let records: Vec<serde_json::Value> = serde_json::from_str(&json).expect("json");
    assert_eq!(records[0]["paths"][0], in_share.as_str());
    assert_eq!(records[0]["to"][0], into.to_str().unwrap());

    // Every data pack damaged: `check --read-data` names the affected file, escaped.
    for pack in crate::damage::packs_of(&repo, firesafe::format::pack::BlobKind::Data) {
        let mut bytes = repo.get(&pack);
        crate::damage::flip(&mut bytes);
        repo.replace(&pack, bytes);
    }
    assert_shown_escaped(&repo.run(&["check", "--read-data"]), 1, "check --read-data");
    let json = repo.run(&["check", "--read-data", "--json"]);
    assert!(
        String::from_utf8_lossy(&json.stdout)
            .contains("work\\nfiresafe: error: all backups deleted\\u001b[2J.txt"),
        "{}",
        String::from_utf8_lossy(&json.stdout)
    );
}

/// `verify` names the files a damaged pack affects, escaped, like `check`.
#[test]
fn verify_prints_affected_names_escaped() {
    let dir = example();
    let d = dir.path();
    edit_schedule(d, |t| {
        let start = t.find("[[sources]]").expect("sources");
        let end = t.find("# The 3-2-1 rule").expect("policy");
        format!(
            "{}[[sources]]\nname = \"pupils\"\npath = \"demo/pupils\"\n\n{}",
            &t[..start],
            &t[end..]
        )
    });
    crate::support::write(
        &d.join("demo/pupils").join(PLANTED),
        &crate::support::noise(5, 300_000),
    );
    assert_exit(
        &in_example(d, &["run", "nightly", "--init"]),
        0,
        "first run",
    );
    // The file's data is the largest pack on each target: damaged on both, nothing repairs it.
    for target in ["nas", "offsite"] {
        let pack = crate::damage::local_packs(&d.join("demo").join(target))[0].clone();
        let mut bytes = fs::read(&pack).expect("read");
        crate::damage::flip(&mut bytes);
        fs::write(&pack, bytes).expect("write");
    }
    let verify = in_example(d, &["verify", "nightly", "--read-all"]);
    assert_shown_escaped(&verify, 1, "verify --read-all");
}

/// A value given under the wrong key or of the wrong type may be a secret: configuration
/// errors name the key and the problem, never the value.
#[test]
fn configuration_errors_do_not_echo_values() {
    let dir = example();
    edit_schedule(dir.path(), |t| {
        t.replace("max_age_hours = 26", "max_age_hours = \"hunter2-s3cr3t\"")
    });
    let (code, text) = config_check(dir.path());
    assert_ne!(code, 0, "{text}");
    assert!(text.contains("nightly.toml"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

/// A planted passphrase envelope with a huge scrypt work factor is never tried (it would cost
/// 8 GiB on every passphrase open), `key list` names it, and the real passphrase still opens.
#[test]
fn a_planted_costly_envelope_is_not_tried() {
    let repo = Repo::new(Backend::Local);
    repo.add_passphrase();
    let keys = Path::new(&repo.url).join("keys");
    let mut forged = None;
    for e in fs::read_dir(&keys).expect("keys") {
        let bytes = fs::read(e.expect("entry").path()).expect("read");
        if firesafe::format::crypto::scrypt_log_n(&bytes).is_some() {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let n = firesafe::format::crypto::SCRYPT_LOG_N;
            forged = Some(text.replacen(&format!(" {n}\n"), " 23\n", 1).into_bytes());
        }
    }
    let forged = forged.expect("a passphrase envelope");
    let id = firesafe::id::Id::of_object(&forged);
    fs::write(keys.join(id.to_string()), &forged).expect("plant");

    let list = repo.ok(&["key", "list"]);
    assert!(
        list.contains("never tried: scrypt work factor 2^23, above the maximum 2^20"),
        "{list}"
    );
    let started = std::time::Instant::now();
    let out = repo
        .cmd()
        .env_remove("FIRESAFE_KEY_FILE")
        .env("FIRESAFE_PASSPHRASE", "correct horse battery")
        .arg("snapshots")
        .output()
        .expect("run");
    assert_exit(&out, 0, "open with the passphrase");
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}
