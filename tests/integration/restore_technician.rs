//! Restores as a technician does them under pressure: back in place without destroying what is
//! there, from the best copy among a schedule's targets, resumed after being killed, and
//! recorded in the audit log.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A live share at an absolute path, backed up once: `a.txt`, `sub/b.txt`, `sub/c.txt`.
fn live_share(repo: &Repo) -> PathBuf {
    let share = repo.path("live/curriculum");
    write(&share.join("a.txt"), b"the snapshot's a\n");
    write(&share.join("sub/b.txt"), &noise(1, 300_000));
    write(&share.join("sub/c.txt"), b"the snapshot's c\n");
    repo.backup(&share, "curriculum");
    share
}

fn kept_copies(dir: &Path, name: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{name}.firesafe-")))
        })
        .collect();
    v.sort();
    v
}

#[test]
fn in_place_never_destroys_a_differing_file_without_overwrite() {
    let repo = Repo::new(Backend::Local);
    let share = live_share(&repo);
    write(&share.join("a.txt"), b"edited on the live share\n");
    fs::remove_file(share.join("sub/b.txt")).expect("rm");
    let c_inode = fs::metadata(share.join("sub/c.txt")).expect("stat").ino();

    // A dry run lists what would happen and writes nothing.
    let before = scan(&share);
    let out = repo.run(&["restore", "latest:curriculum", "--in-place", "--dry-run"]);
    let all = text(&out);
    assert_exit(&out, 0, "dry run");
    assert_eq!(scan(&share), before, "a dry run changed the share");
    let a = share.join("a.txt");
    let b = share.join("sub/b.txt");
    let c = share.join("sub/c.txt");
    assert!(
        all.contains(&format!("would write {}", b.display())),
        "{all}"
    );
    assert!(
        all.contains(&format!("would skip {}", a.display())),
        "{all}"
    );
    assert!(
        all.contains(&format!(
            "would leave {} (already as in the snapshot)",
            c.display()
        )),
        "{all}"
    );
    let out = repo.run(&[
        "restore",
        "latest:curriculum",
        "--in-place",
        "--dry-run",
        "--overwrite",
    ]);
    let all = text(&out);
    assert!(
        all.contains(&format!("would replace {}", a.display()))
            && all.contains("keeping the old file as")
            && all.contains("a.txt.firesafe-"),
        "{all}"
    );
    assert_eq!(scan(&share), before, "a dry run changed the share");

    // Without --overwrite: the missing file comes back, the edited one stays, exit 1.
    let out = repo.run(&["restore", "latest:curriculum", "--in-place"]);
    let all = text(&out);
    assert_exit(&out, 1, "in place without --overwrite");
    assert!(all.contains("left alone") && all.contains("a.txt"), "{all}");
    assert_eq!(fs::read(&a).expect("read"), b"edited on the live share\n");
    assert_eq!(fs::read(&b).expect("read"), noise(1, 300_000));
    assert_eq!(
        fs::metadata(&c).expect("stat").ino(),
        c_inode,
        "an identical file was rewritten"
    );
    assert!(kept_copies(&share, "a.txt").is_empty());

    // With --overwrite: replaced, and the edited file kept beside it.
    let out = repo.run(&[
        "restore",
        "latest:curriculum/a.txt",
        "--in-place",
        "--overwrite",
    ]);
    assert_success(&out, "in place --overwrite");
    assert_eq!(fs::read(&a).expect("read"), b"the snapshot's a\n");
    let kept = kept_copies(&share, "a.txt");
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(
        fs::read(&kept[0]).expect("read"),
        b"edited on the live share\n"
    );
    let name = kept[0].file_name().unwrap().to_string_lossy().into_owned();
    let stamp = name.trim_start_matches("a.txt.firesafe-");
    assert!(
        stamp.len() == 15 && stamp.as_bytes()[8] == b'-',
        "kept as {name}"
    );
    assert!(text(&out).contains("kept the old"), "{}", text(&out));

    // With --no-keep: replaced, nothing kept.
    write(&a, b"edited again\n");
    let out = repo.run(&[
        "restore",
        "latest:curriculum/a.txt",
        "--in-place",
        "--overwrite",
        "--no-keep",
    ]);
    assert_success(&out, "in place --overwrite --no-keep");
    assert_eq!(fs::read(&a).expect("read"), b"the snapshot's a\n");
    assert_eq!(kept_copies(&share, "a.txt").len(), 1);
    assert_eq!(fs::metadata(&c).expect("stat").ino(), c_inode);
}

fn run_schedule(dir: &Path, args: &[&str]) -> Output {
    firesafe()
        .env("FIRESAFE_STATE_DIR", dir.join("state"))
        .args(args)
        .arg("--config-dir")
        .arg(dir)
        .output()
        .expect("run firesafe")
}

fn packs(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for d in fs::read_dir(root.join("data")).expect("read_dir") {
        let d = d.expect("entry").path();
        for f in fs::read_dir(&d).expect("read_dir") {
            let f = f.expect("entry").path();
            out.push(f.strip_prefix(root).unwrap().display().to_string());
        }
    }
    out.sort();
    out
}

#[test]
fn a_schedule_restore_reads_lost_packs_from_the_offsite_copy() {
    let dir = example();
    let d = dir.path();
    assert_success(&run_schedule(d, &["run", "nightly", "--init"]), "first run");
    let nas = d.join("demo/nas");
    let all = packs(&nas);
    assert!(all.len() >= 3, "{all:?}");
    let lost = all[0].clone();
    let damaged = all[all.len() - 1].clone();
    fs::remove_file(nas.join(&lost)).expect("delete a pack");
    let mut bytes = fs::read(nas.join(&damaged)).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    fs::remove_file(nas.join(&damaged)).expect("rm");
    fs::write(nas.join(&damaged), bytes).expect("write");

    let mut said = String::new();
    for source in ["curriculum", "admin", "staff"] {
        let to = d.join(format!("restored-{source}"));
        let out = run_schedule(
            d,
            &[
                "restore",
                "--schedule",
                "nightly",
                "latest",
                "--source",
                source,
                "--to",
                to.to_str().unwrap(),
            ],
        );
        assert_success(&out, &format!("restore {source} via the schedule"));
        assert_same_tree(&d.join("demo/shares").join(source), &to.join(source));
        said.push_str(&String::from_utf8_lossy(&out.stdout));
    }
    assert!(said.contains("from offsite"), "{said}");
    assert!(said.contains("missing or damaged on nas"), "{said}");
    assert!(said.contains(&lost) && said.contains(&damaged), "{said}");
    let line = said
        .lines()
        .find(|l| l.contains(&lost))
        .expect("the line naming the lost pack");
    assert!(
        line.starts_with("read ") && line.contains("from nas"),
        "{line}"
    );

    // The audit trail names the copies, in the state directory and in both repositories.
    let out = run_schedule(d, &["audit", "--json"]);
    assert_success(&out, "audit");
    let records: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(records.len(), 3);
    assert!(records.iter().any(|r| {
        r["copies"]["fallbacks"]
            .as_array()
            .is_some_and(|f| !f.is_empty())
    }));
    let out = run_schedule(d, &["audit", "--schedule", "nightly", "--json"]);
    assert_success(&out, "audit from the repository");
    let stored: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(stored, records);
    let audit_objects = |t: &str| {
        fs::read_dir(d.join("demo").join(t).join("audit"))
            .map(|r| r.count())
            .unwrap_or(0)
    };
    assert_eq!(audit_objects("nas"), 3);
    assert_eq!(audit_objects("offsite"), 3);
}

#[test]
fn a_killed_restore_resumes_without_rewriting_finished_files() {
    let repo = Repo::new(Backend::Local);
    let share = repo.path("share");
    for i in 0..60u64 {
        write(
            &share.join(format!("video {i:02}.mp4")),
            &noise(900 + i, 2_000_000),
        );
    }
    repo.backup(&share, "share");
    let to = repo.path("restored");
    let finished = |dir: &Path| -> BTreeMap<PathBuf, (u64, i64, i64)> {
        let mut out = BTreeMap::new();
        if let Ok(rd) = fs::read_dir(dir.join("share")) {
            for e in rd {
                let p = e.expect("entry").path();
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                if !name.starts_with(".firesafe-partial") {
                    let m = fs::metadata(&p).expect("stat");
                    out.insert(p, (m.ino(), m.mtime(), m.mtime_nsec()));
                }
            }
        }
        out
    };

    let mut child = repo
        .cmd()
        .args(["restore", "latest", "--to"])
        .arg(&to)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let start = Instant::now();
    while finished(&to).len() < 5 && start.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let still_running = child.try_wait().expect("wait").is_none();
    child.kill().expect("kill");
    let _ = child.wait();
    assert!(
        still_running,
        "the restore finished before it could be killed"
    );
    let done_before = finished(&to);
    assert!(
        done_before.len() >= 5 && done_before.len() < 60,
        "{} files complete at the kill",
        done_before.len()
    );

    // Run again exactly as it was: the marker the killed restore left makes it resume.
    assert!(to.join(".firesafe-restore-in-progress").exists());
    let out = repo.restore("latest", &to);
    assert_success(&out, "rerun of the interrupted restore");
    assert!(!to.join(".firesafe-restore-in-progress").exists());
    assert_same_tree(&share, &to.join("share"));
    let after = finished(&to);
    for (p, seen) in &done_before {
        assert_eq!(after.get(p), Some(seen), "{} was rewritten", p.display());
    }
    let leftovers: Vec<_> = scan(&to)
        .into_keys()
        .filter(|p| p.to_string_lossy().contains(".firesafe-partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn every_restore_is_in_the_audit_log_and_the_repository() {
    let repo = Repo::new(Backend::Local);
    let share = live_share(&repo);
    let to = repo.path("out");
    assert_success(&repo.restore("latest:curriculum/sub", &to), "restore");
    fs::remove_file(share.join("a.txt")).expect("rm");
    assert_success(
        &repo.run(&["restore", "latest:curriculum/a.txt", "--in-place"]),
        "restore in place",
    );
    // A dry run writes nothing, the audit log included.
    assert_success(
        &repo.run(&["restore", "latest:curriculum", "--in-place", "--dry-run"]),
        "dry run",
    );

    let out = repo
        .cmd()
        .env_remove("FIRESAFE_REPO")
        .args(["audit", "--json"])
        .output()
        .expect("run");
    // `Repo::cmd` passes --repo: this reads the repository's records.
    assert_success(&out, "audit --json from the repository");
    let stored: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("JSON");
    let local = firesafe()
        .env("FIRESAFE_STATE_DIR", repo.path("state"))
        .args(["audit", "--json"])
        .output()
        .expect("run");
    assert_success(&local, "audit --json from the state directory");
    let records: Vec<serde_json::Value> = serde_json::from_slice(&local.stdout).expect("JSON");
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(stored, records);

    let user = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_default();
    let first = &records[0];
    if !user.is_empty() {
        assert_eq!(first["user"], user.as_str());
    }
    assert_eq!(first["uid"], nix::unistd::getuid().as_raw());
    assert_eq!(first["host"], firesafe::store::repo::hostname().as_str());
    assert_eq!(first["paths"], serde_json::json!(["curriculum/sub"]));
    assert_eq!(first["to"], serde_json::json!([to.display().to_string()]));
    assert_eq!(first["files"], 2);
    assert_eq!(first["bytes"], 300_000 + 17);
    assert_eq!(first["result"], "complete");
    assert_eq!(first["in_place"], false);
    assert_eq!(first["source"], "curriculum");
    assert_eq!(first["snapshot"].as_str().map(str::len), Some(64));
    assert_eq!(first["copies"]["packs"][0]["target"], repo.url.as_str());
    let second = &records[1];
    assert_eq!(second["in_place"], true);
    assert_eq!(second["files"], 1);
    assert_eq!(
        second["to"],
        serde_json::json!([share.display().to_string()])
    );

    // The table, and --since.
    let table = firesafe()
        .env("FIRESAFE_STATE_DIR", repo.path("state"))
        .arg("audit")
        .output()
        .expect("run");
    let t = String::from_utf8_lossy(&table.stdout);
    assert!(
        t.contains("curriculum/sub") && t.contains("in place") && t.contains("2 restores"),
        "{t}"
    );
    let future = firesafe()
        .env("FIRESAFE_STATE_DIR", repo.path("state"))
        .args(["audit", "--since", "2999-01-01", "--json"])
        .output()
        .expect("run");
    assert_eq!(String::from_utf8_lossy(&future.stdout).trim(), "[]");
}

#[test]
fn bad_restore_requests_say_what_is_wrong() {
    let repo = Repo::new(Backend::Local);
    let share = live_share(&repo);

    let out = repo.restore("latest:curriculum/no such folder", &repo.path("x"));
    let err = assert_exit(&out, 2, "unknown path");
    assert!(
        err.contains("no such folder")
            && err.contains("is not in snapshot")
            && err.lines().count() == 1,
        "{err}"
    );

    // Nothing to do: the live share already matches.
    let out = repo.run(&["restore", "latest:curriculum", "--in-place", "--dry-run"]);
    assert_exit(&out, 0, "dry run with nothing to do");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("nothing to restore"),
        "{}",
        text(&out)
    );

    // --in-place where the share's folder is gone (an unmounted share).
    fs::remove_dir_all(repo.path("live")).expect("rm");
    let out = repo.run(&["restore", "latest:curriculum", "--in-place"]);
    let err = assert_exit(&out, 2, "in place with the original folder gone");
    assert!(
        err.contains("cannot restore in place")
            && err.contains(&share.parent().unwrap().display().to_string())
            && err.contains("--to"),
        "{err}"
    );
    // --in-place and --to together, and --no-keep without --overwrite.
    let out = repo.run(&["restore", "latest", "--in-place", "--to", "/tmp/x"]);
    assert_exit(&out, 2, "--in-place with --to");
    let out = repo.run(&["restore", "latest", "--to", "/tmp/x", "--no-keep"]);
    assert_exit(&out, 2, "--no-keep without --overwrite");
}

#[test]
fn mount_shows_snapshots_read_only_by_source_and_date() {
    let repo = Repo::new(Backend::Local);
    let share = live_share(&repo);

    // Without fusermount on the PATH: one clear line, exit 2.
    let out = repo
        .cmd()
        .env("PATH", "/nonexistent")
        .args(["mount", "curriculum"])
        .arg(repo.path("mnt"))
        .output()
        .expect("run");
    let err = assert_exit(&out, 2, "mount without fusermount");
    assert!(
        err.contains("fusermount") && err.lines().count() == 1,
        "{err}"
    );

    let fuse_here = Path::new("/dev/fuse").exists()
        && [
            "/bin/fusermount",
            "/usr/bin/fusermount",
            "/usr/bin/fusermount3",
        ]
        .iter()
        .any(|p| Path::new(p).exists());
    if !fuse_here {
        eprintln!("no /dev/fuse or fusermount here: the mount itself is not exercised");
        return;
    }
    let mnt = repo.path("mnt");
    fs::create_dir_all(&mnt).expect("mkdir");
    let mut child = repo
        .cmd()
        .args(["mount", "curriculum"])
        .arg(&mnt)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let source = mnt.join("curriculum");
    let start = Instant::now();
    while !source.exists() && start.elapsed() < Duration::from_secs(30) {
        if let Some(status) = child.try_wait().expect("wait") {
            panic!("mount exited early: {status:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let snapshots: Vec<PathBuf> = fs::read_dir(&source)
        .expect("list the source")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(snapshots.len(), 1, "{snapshots:?}");
    let name = snapshots[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(
        name.len() == 15 && name.as_bytes()[10] == b'T',
        "snapshot folder {name}"
    );
    let root = snapshots[0].join("curriculum");
    assert_eq!(
        fs::read(root.join("sub/b.txt")).expect("read through the mount"),
        fs::read(share.join("sub/b.txt")).expect("read")
    );
    let mut names: Vec<String> = fs::read_dir(root.join("sub"))
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["b.txt", "c.txt"]);
    assert!(
        fs::write(root.join("new.txt"), b"x").is_err(),
        "the view is writable"
    );

    let un = std::process::Command::new("fusermount")
        .arg("-u")
        .arg(&mnt)
        .output()
        .expect("fusermount");
    assert_success(&un, "fusermount -u");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "mount did not exit after the unmount"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status:?}");
}

#[test]
fn without_root_owners_are_not_restored_and_one_warning_says_so() {
    let setpriv = Path::new("/usr/bin/setpriv");
    if !nix::unistd::geteuid().is_root() || !setpriv.exists() {
        eprintln!("needs root and setpriv to run a restore as another user: not exercised");
        return;
    }
    let repo = Repo::new(Backend::Local);
    let share = repo.path("share");
    write(&share.join("report.txt"), b"owned by someone else");
    nix::unistd::chown(
        &share.join("report.txt"),
        Some(nix::unistd::Uid::from_raw(1234)),
        Some(nix::unistd::Gid::from_raw(1234)),
    )
    .expect("chown");
    repo.backup(&share, "staff");
    // Let an unprivileged user read the repository and key, and write the destination.
    let chmod = std::process::Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(repo.dir.path())
        .output()
        .expect("chmod");
    assert_success(&chmod, "chmod");
    // The key is that user's own, private to them (firesafe refuses a key others can read).
    nix::unistd::chown(
        &repo.key,
        Some(nix::unistd::Uid::from_raw(65534)),
        Some(nix::unistd::Gid::from_raw(65534)),
    )
    .expect("chown key");
    fs::set_permissions(
        &repo.key,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .expect("chmod key");
    let out_dir = repo.path("out");
    fs::create_dir(&out_dir).expect("mkdir");
    fs::set_permissions(
        &out_dir,
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .expect("chmod");

    let out = std::process::Command::new(setpriv)
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_firesafe"))
        .arg("--repo")
        .arg(&repo.url)
        .args(["restore", "latest", "--to"])
        .arg(out_dir.join("r"))
        .env("FIRESAFE_KEY_FILE", &repo.key)
        .env("FIRESAFE_STATE_DIR", out_dir.join("state"))
        .output()
        .expect("run");
    let err = assert_exit(&out, 0, "restore as an unprivileged user");
    let warnings: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("ownership not restored"))
        .collect();
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(
        warnings[0].contains("run as root to restore owners (2 files)"),
        "{err}"
    );
    assert_eq!(
        fs::read(out_dir.join("r/share/report.txt")).expect("read"),
        b"owned by someone else"
    );
}
