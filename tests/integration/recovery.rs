//! Recovery without firesafe: `tests/scripts/recover.py`, which uses only Python's standard
//! library and the `age` and `zstd` command-line tools, rebuilds a backed-up tree byte for byte
//! from a repository written by the real binary. This is the proof that docs/FORMAT.md is enough
//! to get files back if firesafe itself is gone.
//!
//! Needs `python3`, `age` and `zstd` on PATH (Debian packages `python3`, `age`, `zstd`). A missing
//! tool fails the test rather than skipping it: a recovery path nobody has run is not one.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use assert_cmd::Command;
use tempfile::TempDir;

const TOOLS: &str = "install them with `apt-get install -y python3 age zstd` (Debian/Ubuntu)";

/// Fails, with what to install, unless python3, age and zstd all run.
fn require_tools() {
    for tool in ["python3", "age", "zstd"] {
        let runs = StdCommand::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            runs,
            "the recovery test needs the `{tool}` command-line tool, which is not on PATH: {TOOLS}"
        );
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts/recover.py")
}

fn firesafe(repo: &Path, key: &Path) -> Command {
    let mut cmd = Command::cargo_bin("firesafe").expect("the firesafe binary is built");
    cmd.arg("--repo").arg(repo).env("FIRESAFE_KEY_FILE", key);
    cmd.env_remove("FIRESAFE_PASSPHRASE")
        .env_remove("FIRESAFE_REPO");
    cmd
}

fn init(repo: &Path, key: &Path) {
    Command::cargo_bin("firesafe")
        .expect("the firesafe binary is built")
        .arg("--repo")
        .arg(repo)
        .args(["init", "--chunk-avg", "64", "--generate-key"])
        .arg(key)
        .env_remove("FIRESAFE_KEY_FILE")
        .env_remove("FIRESAFE_PASSPHRASE")
        .assert()
        .success();
}

fn backup(repo: &Path, key: &Path, src: &Path) {
    firesafe(repo, key)
        .arg("backup")
        .arg(src)
        .args(["--source", "staff"])
        .assert()
        .success();
}

/// Runs recover.py; returns (success, stdout + stderr).
fn recover(repo: &Path, key: &Path, out: &Path, snapshot: Option<&str>) -> (bool, String) {
    let mut cmd = StdCommand::new("python3");
    cmd.arg(script()).arg(repo).arg(key).arg(out);
    if let Some(prefix) = snapshot {
        cmd.args(["--snapshot", prefix]);
    }
    let o = cmd.output().expect("python3 runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.success(), text)
}

fn recover_ok(repo: &Path, key: &Path, out: &Path, snapshot: Option<&str>) -> String {
    let (ok, text) = recover(repo, key, out, snapshot);
    assert!(ok, "recover.py failed:\n{text}");
    text
}

/// Deterministic pseudo-random bytes (xorshift64*), incompressible like a photo.
fn random_bytes(len: usize, mut seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        out.extend_from_slice(&seed.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A small share: text files, UTF-8 names with spaces, a name that is not UTF-8, an empty file,
/// an empty directory, a symlink, a 3 MB random file and a compressible 600 KB text file (both
/// many chunks at a 64 KiB average).
fn build_source(root: &Path) {
    fs::create_dir_all(root.join("Year 7/maths")).unwrap();
    fs::create_dir_all(root.join("empty dir")).unwrap();
    fs::write(root.join("readme.txt"), "Staff share.\n").unwrap();
    fs::write(
        root.join("Year 7/maths/fractions — week 3.txt"),
        "½ + ¼ = ¾\n",
    )
    .unwrap();
    fs::write(
        root.join("Year 7/café notes.md"),
        "# Notes\n\nBring a pen.\n",
    )
    .unwrap();
    fs::write(root.join("Year 7/empty.txt"), "").unwrap();
    fs::write(
        root.join(OsStr::from_bytes(b"latin1 caf\xe9.txt")),
        "named in Latin-1\n",
    )
    .unwrap();
    fs::write(root.join("photo.raw"), random_bytes(3 * 1024 * 1024, 7)).unwrap();
    let log: String = (0..20_000)
        .map(|i| {
            format!(
                "{i:06} pupil {} signed in at {:02}:{:02}\n",
                i % 31,
                i % 24,
                i % 60
            )
        })
        .collect();
    fs::write(root.join("Year 7/register.log"), log).unwrap();
    std::os::unix::fs::symlink("maths/fractions — week 3.txt", root.join("Year 7/latest")).unwrap();
    fs::set_permissions(root.join("readme.txt"), fs::Permissions::from_mode(0o640)).unwrap();
}

/// What a tree holds, for comparison: relative path -> (kind, mode, mtime, content or target).
type Listing = BTreeMap<Vec<u8>, (char, u32, (i64, i64), Vec<u8>)>;

fn listing(root: &Path) -> Listing {
    fn walk(root: &Path, dir: &Path, out: &mut Listing) {
        let mut entries: Vec<_> = fs::read_dir(dir).unwrap().map(|e| e.unwrap()).collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let path = e.path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .as_os_str()
                .as_bytes()
                .to_vec();
            let m = fs::symlink_metadata(&path).unwrap();
            let mode = m.mode() & 0o7777;
            let mtime = (m.mtime(), m.mtime_nsec());
            if m.file_type().is_symlink() {
                let target = fs::read_link(&path)
                    .unwrap()
                    .as_os_str()
                    .as_bytes()
                    .to_vec();
                out.insert(rel, ('l', 0, (0, 0), target));
            } else if m.is_dir() {
                out.insert(rel, ('d', mode, mtime, Vec::new()));
                walk(root, &path, out);
            } else {
                out.insert(rel, ('f', mode, mtime, fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = Listing::new();
    walk(root, root, &mut out);
    out
}

/// Asserts two trees hold the same names, kinds, modes, modification times and bytes.
fn assert_same_tree(expected: &Path, actual: &Path) {
    let (want, got) = (listing(expected), listing(actual));
    let show = |l: &Listing| {
        l.keys()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        show(&want),
        show(&got),
        "recovered paths differ from {}",
        expected.display()
    );
    for (path, w) in &want {
        let g = &got[path];
        let name = String::from_utf8_lossy(path);
        assert_eq!(w.0, g.0, "{name}: kind differs");
        assert!(
            w.3 == g.3,
            "{name}: content differs ({} vs {} bytes)",
            w.3.len(),
            g.3.len()
        );
        assert_eq!(w.1, g.1, "{name}: mode differs");
        assert_eq!(w.2, g.2, "{name}: modification time differs");
    }
}

/// The id of the only snapshot in the repository that is not in `known`.
fn new_snapshot(repo: &Path, known: &[String]) -> String {
    let ids: Vec<String> = fs::read_dir(repo.join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|id| !known.contains(id))
        .collect();
    assert_eq!(ids.len(), 1, "expected one new snapshot, found {ids:?}");
    ids[0].clone()
}

#[test]
fn recover_py_rebuilds_snapshots_without_firesafe() {
    require_tools();
    let dir = TempDir::new().unwrap();
    let (src, repo, key) = (
        dir.path().join("staff share"),
        dir.path().join("repo"),
        dir.path().join("school.key"),
    );
    build_source(&src);
    init(&repo, &key);
    backup(&repo, &key, &src);
    let first = new_snapshot(&repo, &[]);

    // The newest (only) snapshot, under the source directory's name.
    let out1 = dir.path().join("out1");
    let text = recover_ok(&repo, &key, &out1, None);
    assert_same_tree(&src, &out1.join("staff share"));
    let blobs: usize = text
        .split_once(" blobs")
        .and_then(|(before, _)| before.rsplit(['(', ' ']).next()?.parse().ok())
        .unwrap_or_else(|| panic!("recover.py did not say how many blobs it read:\n{text}"));
    assert!(
        blobs > 10,
        "expected the big files to span many chunks; read {blobs} blobs"
    );

    // Change the share and back it up again: an edit inside the big file, a new file, one gone.
    let mut photo = fs::read(src.join("photo.raw")).unwrap();
    photo[1_500_000..1_500_010].copy_from_slice(b"0123456789");
    fs::write(src.join("photo.raw"), &photo).unwrap();
    fs::write(src.join("Year 7/new.txt"), "added after the first backup\n").unwrap();
    fs::remove_file(src.join("readme.txt")).unwrap();
    backup(&repo, &key, &src);
    new_snapshot(&repo, std::slice::from_ref(&first));

    // Newest by default; the first one by id prefix.
    let out2 = dir.path().join("out2");
    recover_ok(&repo, &key, &out2, None);
    assert_same_tree(&src, &out2.join("staff share"));
    let out3 = dir.path().join("out3");
    recover_ok(&repo, &key, &out3, Some(&first[..10]));
    assert_same_tree(&out1, &out3);
}

#[test]
fn recover_py_refuses_a_key_the_repository_does_not_know() {
    require_tools();
    let dir = TempDir::new().unwrap();
    let (src, repo, key) = (
        dir.path().join("src"),
        dir.path().join("repo"),
        dir.path().join("school.key"),
    );
    fs::create_dir(&src).unwrap();
    fs::write(src.join("a.txt"), "a\n").unwrap();
    init(&repo, &key);
    backup(&repo, &key, &src);
    let other_key = dir.path().join("other.key");
    init(&dir.path().join("other-repo"), &other_key);

    let out = dir.path().join("out");
    let (ok, text) = recover(&repo, &other_key, &out, None);
    assert!(!ok, "recover.py succeeded with the wrong key:\n{text}");
    assert!(text.contains("opens none of the 1 key envelope"), "{text}");
    assert!(
        fs::read_dir(&out).map_or(true, |mut d| d.next().is_none()),
        "recover.py wrote files with the wrong key"
    );
}
