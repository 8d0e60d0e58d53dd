//! A restore runs as root in folders local users write, and a user may swap any directory of it
//! for a link to a directory of their choosing, before the restore or while it runs. Nothing is
//! ever written, chmodded or stamped through the link: the files below it are refused and named
//! (exit 1), and the rest is restored.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::{Backend, Repo, write};

/// Runs firesafe with `args` under `timeout`, so that a hang fails the test with exit 124.
fn bounded(repo: &Repo, seconds: u32, args: &[&str]) -> (Option<i32>, String) {
    let out = std::process::Command::new("timeout")
        .arg(seconds.to_string())
        .arg(env!("CARGO_BIN_EXE_firesafe"))
        .arg("--repo")
        .arg(&repo.url)
        .env("FIRESAFE_KEY_FILE", &repo.key)
        .env("FIRESAFE_STATE_DIR", repo.dir.path().join("state"))
        .args(args)
        .output()
        .expect("run timeout");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

/// The directory the user wants written into, private to root, with a private file in it; and
/// what it holds (path, mode, mtime), to compare after the restore.
fn sentinel(repo: &Repo) -> (PathBuf, Vec<(String, u32, i64)>) {
    let sentinel = repo.path("sentinel");
    fs::create_dir(&sentinel).expect("mkdir");
    fs::set_permissions(&sentinel, fs::Permissions::from_mode(0o700)).expect("chmod");
    fs::write(sentinel.join("private.txt"), b"secret").expect("write");
    fs::set_permissions(
        sentinel.join("private.txt"),
        fs::Permissions::from_mode(0o600),
    )
    .expect("chmod");
    let before = scan_modes(&sentinel);
    (sentinel, before)
}

/// Everything below `dir` with its mode and modification time, sorted.
fn scan_modes(dir: &Path) -> Vec<(String, u32, i64)> {
    fn walk(dir: &Path, out: &mut Vec<(String, u32, i64)>) {
        let m = fs::symlink_metadata(dir).expect("meta");
        out.push((dir.display().to_string(), m.mode(), m.mtime()));
        if m.is_dir() {
            for e in fs::read_dir(dir).expect("read_dir") {
                walk(&e.expect("entry").path(), out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort();
    out
}

/// Nothing in the sentinel changed, and the restore named the refused files (exit 1).
fn assert_refused(code: Option<i32>, text: &str, sentinel: &Path, before: &[(String, u32, i64)]) {
    assert_eq!(
        scan_modes(sentinel),
        before,
        "nothing changed through the link: {text}"
    );
    assert_eq!(
        fs::metadata(sentinel).expect("sentinel").mode() & 0o777,
        0o700,
        "the linked directory's mode is untouched"
    );
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("is a symbolic link or not a directory")
            && text.contains("nothing is written through it"),
        "{text}"
    );
}

/// A live share `live/sh` backed up: `alice/work` with `files` files (then deleted from the
/// share, so that the in-place restore writes them again), owned by `owner`, and `bob`'s and
/// `carol`'s files.
fn live_share(repo: &Repo, files: usize, owner: u32) -> PathBuf {
    let live = repo.path("live");
    let work = live.join("sh/alice/work");
    for i in 0..files {
        write(&work.join(format!("w-{i:04}.txt")), &[b'x'; 700]);
    }
    write(&live.join("sh/bob/b.txt"), b"bob's");
    write(&live.join("sh/carol/c.txt"), b"carol's");
    for d in [live.join("sh/alice"), work.clone()] {
        std::os::unix::fs::chown(&d, Some(owner), Some(owner)).expect("chown");
    }
    repo.backup(&live.join("sh"), "sh");
    for i in 0..files {
        fs::remove_file(work.join(format!("w-{i:04}.txt"))).expect("rm");
    }
    live
}

/// A directory made by the restore is swapped for a link to the sentinel as soon as it appears.
#[test]
fn a_directory_swapped_for_a_link_mid_restore_is_not_followed() {
    let repo = Repo::new(Backend::Local);
    let share = repo.path("share");
    for i in 0..400 {
        write(&share.join(format!("pupil/work-{i:03}.txt")), &[b'x'; 700]);
    }
    write(&share.join("office/register.csv"), b"kept");
    fs::set_permissions(share.join("pupil"), fs::Permissions::from_mode(0o777)).expect("chmod");
    repo.backup(&share, "share");
    let (sentinel, before) = sentinel(&repo);

    let to = repo.path("restored");
    let pupil = to.join("share/pupil");
    let swapper = {
        let (pupil, sentinel) = (pupil.clone(), sentinel.clone());
        std::thread::spawn(move || {
            let until = Instant::now() + Duration::from_secs(30);
            while Instant::now() < until {
                if fs::symlink_metadata(&pupil).is_ok_and(|m| m.is_dir()) {
                    let aside = pupil.with_file_name("pupil.moved");
                    if fs::rename(&pupil, &aside).is_ok() {
                        std::os::unix::fs::symlink(&sentinel, &pupil).expect("symlink");
                        return true;
                    }
                }
                std::thread::yield_now();
            }
            false
        })
    };
    let to_arg = to.to_str().unwrap();
    let args = ["restore", "latest", "--source", "share", "--to", to_arg];
    let (code, text) = bounded(&repo, 120, &args);
    assert!(
        swapper.join().expect("swapper"),
        "swapped during the restore"
    );
    assert_refused(code, &text, &sentinel, &before);
    assert_eq!(
        fs::read(to.join("share/office/register.csv")).expect("the rest restored"),
        b"kept"
    );
}

/// An in-place restore: one pupil's folder was a link before the restore started, and another
/// pupil's folder is swapped for one as soon as the restore writes into it.
#[test]
fn an_in_place_restore_racing_a_swap_is_not_followed() {
    let repo = Repo::new(Backend::Local);
    let live = live_share(&repo, 1000, 0);
    let (sentinel, before) = sentinel(&repo);
    fs::remove_dir_all(live.join("sh/carol")).expect("rm");
    std::os::unix::fs::symlink(&sentinel, live.join("sh/carol")).expect("plant");
    fs::remove_file(live.join("sh/bob/b.txt")).expect("rm");

    let work = live.join("sh/alice/work");
    let swapper = {
        let (work, sentinel) = (work.clone(), sentinel.clone());
        std::thread::spawn(move || {
            let until = Instant::now() + Duration::from_secs(30);
            while Instant::now() < until {
                if fs::read_dir(&work).is_ok_and(|mut d| d.next().is_some()) {
                    fs::rename(&work, work.with_file_name("work.moved")).expect("move");
                    std::os::unix::fs::symlink(&sentinel, &work).expect("symlink");
                    return true;
                }
                std::thread::yield_now();
            }
            false
        })
    };
    let (code, text) = bounded(&repo, 120, &["restore", "latest", "--in-place"]);
    assert!(
        swapper.join().expect("swapper"),
        "swapped during the restore"
    );
    assert_refused(code, &text, &sentinel, &before);
    assert!(text.contains("not restored: sh/carol/c.txt: "), "{text}");
    assert!(text.contains("not restored: sh/alice/work/w-"), "{text}");
    assert_eq!(
        fs::read(live.join("sh/bob/b.txt")).expect("the rest restored"),
        b"bob's"
    );
}

/// The swap done by the pupil themselves (a second user, `nobody`), in the folder they own,
/// while an in-place restore run by root writes into it.
#[test]
fn a_swap_by_another_user_during_an_in_place_restore_is_not_followed() {
    let nobody = 65534;
    let repo = Repo::new(Backend::Local);
    // The pupil must be able to reach their folder.
    fs::set_permissions(repo.dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
    let live = live_share(&repo, 1000, nobody);
    fs::remove_file(live.join("sh/bob/b.txt")).expect("rm");
    let (sentinel, before) = sentinel(&repo);

    // Waits (without forking) until anything appears in work, then moves it aside and links.
    let script = r#"
        cd "$1" || exit 2
        i=0
        while [ $i -lt 3000000 ]; do
            for f in work/.firesafe-partial-* work/*; do
                if [ -e "$f" ]; then
                    mv work work.moved && ln -s "$2" work && exit 0
                    exit 3
                fi
            done
            i=$((i + 1))
        done
        exit 1
    "#;
    let mut swapper = {
        use std::os::unix::process::CommandExt;
        std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("swapper")
            .arg(live.join("sh/alice"))
            .arg(&sentinel)
            .uid(nobody)
            .gid(nobody)
            .spawn()
            .expect("spawn the swapper")
    };
    // Give the swapper time to start waiting.
    std::thread::sleep(Duration::from_millis(200));
    let (code, text) = bounded(&repo, 120, &["restore", "latest", "--in-place"]);
    let _ = swapper.kill();
    let status = swapper.wait().expect("swapper");
    assert_eq!(status.code(), Some(0), "swapped during the restore: {text}");
    assert_refused(code, &text, &sentinel, &before);
    assert!(text.contains("not restored: sh/alice/work/w-"), "{text}");
    assert_eq!(
        fs::read(live.join("sh/bob/b.txt")).expect("the rest restored"),
        b"bob's"
    );
}

/// A pupil replaces their own file with a named pipe before an in-place restore: what is at a
/// file's place is read without blocking and without following a link, so the pipe is a file
/// that differs (left alone, or with `--overwrite` kept aside and replaced, as any other), and
/// the restore finishes in seconds instead of waiting for a writer for ever.
#[test]
fn a_named_pipe_in_place_of_a_file_does_not_hang_an_in_place_restore() {
    let repo = Repo::new(Backend::Local);
    let live = live_share(&repo, 3, 0);
    let b = live.join("sh/bob/b.txt");
    fs::remove_file(&b).expect("rm");
    nix::unistd::mkfifo(&b, nix::sys::stat::Mode::from_bits_truncate(0o666)).expect("mkfifo");
    let is_pipe = |p: &Path| {
        std::os::unix::fs::FileTypeExt::is_fifo(
            &fs::symlink_metadata(p).expect("b.txt").file_type(),
        )
    };
    let (code, text) = bounded(&repo, 60, &["restore", "latest", "--in-place"]);
    assert_eq!(code, Some(1), "left alone, not hung (124): {text}");
    assert!(
        text.contains("bob/b.txt differs from the snapshot"),
        "{text}"
    );
    assert!(is_pipe(&b), "the pipe is left alone: {text}");
    for i in 0..3 {
        assert_eq!(
            fs::read(live.join(format!("sh/alice/work/w-{i:04}.txt"))).expect("restored"),
            vec![b'x'; 700],
            "{text}"
        );
    }
    let (code, text) = bounded(
        &repo,
        60,
        &["restore", "latest", "--in-place", "--overwrite"],
    );
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(fs::read(&b).expect("b.txt"), b"bob's", "{text}");
    let kept: Vec<PathBuf> = fs::read_dir(live.join("sh/bob"))
        .expect("bob")
        .map(|e| e.expect("entry").path())
        .filter(|p| p != &b)
        .collect();
    assert!(
        kept.len() == 1 && is_pipe(&kept[0]),
        "the pipe kept beside it: {kept:?} {text}"
    );
}
