//! Fixtures shared by the tests: repositories on each backend, generated source trees, and a
//! tree comparison that includes metadata.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

/// Where a test repository lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Local,
    S3,
}

/// The backends to run on: always the local filesystem; S3 when FIRESAFE_TEST_S3=1. Under CI,
/// a missing S3 server is an error, not a skip.
pub fn backends() -> Vec<Backend> {
    let mut out = vec![Backend::Local];
    if std::env::var("FIRESAFE_TEST_S3").is_ok_and(|v| v == "1") {
        assert!(
            std::env::var("AWS_ENDPOINT_URL").is_ok() && std::env::var("AWS_BUCKET").is_ok(),
            "FIRESAFE_TEST_S3=1 needs AWS_ENDPOINT_URL and AWS_BUCKET (tests/run.sh sets them)"
        );
        out.push(Backend::S3);
    } else if std::env::var_os("CI").is_some() {
        panic!(
            "CI runs must test S3 too: run the suite through tests/run.sh, which starts the server"
        );
    }
    out
}

/// A repository with its own key, and a scratch directory.
pub struct Repo {
    pub url: String,
    pub key: PathBuf,
    pub backend: Backend,
    pub dir: TempDir,
}

/// Small chunks and packs, so that small test trees exercise many chunks and several packs.
pub const SMALL: &[&str] = &["--chunk-avg", "64", "--pack-size", "1"];

impl Repo {
    pub fn new(backend: Backend) -> Repo {
        Self::with_args(backend, SMALL)
    }

    pub fn with_args(backend: Backend, init_args: &[&str]) -> Repo {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = match backend {
            Backend::Local => dir.path().join("repo").display().to_string(),
            Backend::S3 => format!(
                "s3://{}/test-{:016x}",
                std::env::var("AWS_BUCKET").expect("AWS_BUCKET"),
                rand::random::<u64>()
            ),
        };
        let key = dir.path().join("test.key");
        let repo = Repo {
            url,
            key,
            backend,
            dir,
        };
        let out = repo
            .cmd()
            .args(["init", "--generate-key"])
            .arg(&repo.key)
            .args(init_args)
            .env_remove("FIRESAFE_KEY_FILE")
            .output()
            .expect("run firesafe");
        assert_success(&out, "init");
        repo
    }

    /// `firesafe --repo URL` with this repository's key.
    pub fn cmd(&self) -> Command {
        let mut c = firesafe();
        c.arg("--repo")
            .arg(&self.url)
            .env("FIRESAFE_KEY_FILE", &self.key)
            .env("FIRESAFE_STATE_DIR", self.dir.path().join("state"));
        c
    }

    /// Adds a passphrase key ("correct horse battery", label "head").
    pub fn add_passphrase(&self) {
        let out = self
            .cmd()
            .env("FIRESAFE_NEW_PASSPHRASE", "correct horse battery")
            .args(["key", "add", "--passphrase", "--label", "head"])
            .output()
            .expect("run");
        assert_success(&out, "key add --passphrase");
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("run firesafe")
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_success(&out, &args.join(" "));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn backup(&self, path: &Path, source: &str) -> String {
        let out = self
            .cmd()
            .arg("backup")
            .arg(path)
            .args(["--source", source])
            .output()
            .expect("run");
        assert_success(&out, "backup");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.split_whitespace()
            .nth(1)
            .expect("snapshot id in summary")
            .to_string()
    }

    pub fn restore(&self, what: &str, to: &Path) -> Output {
        self.cmd()
            .args(["restore", what, "--to"])
            .arg(to)
            .output()
            .expect("run")
    }

    /// A scratch path inside the fixture's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The target through the library, for inspecting and damaging objects.
    pub fn target(&self) -> firesafe::store::target::Target {
        let loc = firesafe::store::target::Location::parse(&self.url).expect("location");
        firesafe::store::target::Target::open(&self.url, &loc, &Default::default(), false)
            .expect("open target")
    }

    /// Every stored object: key and bytes.
    pub fn objects(&self) -> Vec<(String, Vec<u8>)> {
        let t = self.target();
        block_on(async {
            let mut out = Vec::new();
            for l in t.list("").await.expect("list") {
                let b = t.get(&l.key).await.expect("get");
                out.push((l.key, b.to_vec()));
            }
            out.sort();
            out
        })
    }

    /// Total stored bytes.
    pub fn size(&self) -> u64 {
        let t = self.target();
        block_on(async { t.list("").await.expect("list").iter().map(|l| l.size).sum() })
    }

    pub fn keys_under(&self, dir: &str) -> Vec<String> {
        let t = self.target();
        let mut v: Vec<String> = block_on(async { t.list(dir).await.expect("list") })
            .into_iter()
            .map(|l| l.key)
            .collect();
        v.sort();
        v
    }

    /// Replaces an object's bytes (delete, then write anew).
    pub fn replace(&self, key: &str, bytes: Vec<u8>) {
        let t = self.target();
        block_on(async {
            t.delete(key).await.expect("delete");
            t.put_new(key, bytes.into()).await.expect("put");
        });
    }

    pub fn delete(&self, key: &str) {
        let t = self.target();
        block_on(async { t.delete(key).await.expect("delete") });
    }

    pub fn get(&self, key: &str) -> Vec<u8> {
        let t = self.target();
        block_on(async { t.get(key).await.expect("get").to_vec() })
    }
}

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

pub fn firesafe() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_firesafe"));
    c.env_remove("FIRESAFE_KEY_FILE")
        .env_remove("FIRESAFE_PASSPHRASE")
        .env_remove("FIRESAFE_REPO");
    c
}

pub fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({:?}):\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Asserts exit status `code`, no panic, and returns stderr.
pub fn assert_exit(out: &Output, code: i32, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: expected exit {code}\nstdout: {}\nstderr: {stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!stderr.contains("panicked"), "{what} panicked: {stderr}");
    stderr
}

/// Deterministic pseudo-random bytes.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

pub fn write(path: &Path, bytes: &[u8]) {
    if let Some(p) = path.parent() {
        fs::create_dir_all(p).expect("mkdir");
    }
    fs::File::create(path)
        .and_then(|mut f| f.write_all(bytes))
        .expect("write file");
}

/// Sets a file's modification time (seconds, nanoseconds).
pub fn set_mtime(path: &Path, secs: i64, nsec: u32) {
    filetime::set_symlink_file_times(
        path,
        filetime::FileTime::from_unix_time(secs, nsec),
        filetime::FileTime::from_unix_time(secs, nsec),
    )
    .expect("set mtime");
}

/// A share with the awkward cases: many small files, large and empty files, empty directories,
/// symlinks, unusual names, sparse and zero-filled files, hard links, modes, xattrs and a fifo.
pub fn make_share(root: &Path) {
    for i in 0..120 {
        let dir = root.join(format!("year{}", i % 6 + 7));
        write(
            &dir.join(format!("worksheet {i:03}.txt")),
            format!("worksheet {i}\n").repeat(i + 1).as_bytes(),
        );
    }
    write(&root.join("media/assembly.mov"), &noise(1, 3_000_000));
    write(
        &root.join("exports/pupils.csv"),
        "id,name,form\n1,Ada,7B\n".repeat(20_000).as_bytes(),
    );
    write(&root.join("empty.txt"), b"");
    fs::create_dir_all(root.join("empty dir/nested empty")).expect("mkdir");
    write(
        &root.join("año escolar/notes – draft ✓.txt"),
        "naïve café\n".as_bytes(),
    );
    write(
        &root.join("spaces in name/  leading and trailing  "),
        b"odd",
    );
    write(
        &root.join(OsStr::from_bytes(b"legacy-\xff\xfe-name.txt")),
        b"latin-1 name",
    );
    std::os::unix::fs::symlink("../exports/pupils.csv", root.join("media/link to csv"))
        .expect("symlink");
    std::os::unix::fs::symlink("/nonexistent/target", root.join("dangling")).expect("symlink");
    // Sparse: a hole of 8 MiB then a few bytes.
    let sparse = fs::File::create(root.join("disk.img")).expect("create");
    sparse.set_len(8 << 20).expect("set_len");
    use std::os::unix::fs::FileExt;
    sparse.write_all_at(b"end", (8 << 20) - 3).expect("write");
    drop(sparse);
    write(&root.join("zeros.bin"), &vec![0u8; 2_000_000]);
    fs::hard_link(
        root.join("exports/pupils.csv"),
        root.join("exports/pupils (link).csv"),
    )
    .expect("hard link");
    write(&root.join("private.txt"), b"secret");
    fs::set_permissions(root.join("private.txt"), fs::Permissions::from_mode(0o600))
        .expect("chmod");
    write(&root.join("run.sh"), b"#!/bin/sh\necho hi\n");
    fs::set_permissions(root.join("run.sh"), fs::Permissions::from_mode(0o755)).expect("chmod");
    fs::set_permissions(root.join("empty dir"), fs::Permissions::from_mode(0o750)).expect("chmod");
    let _ = xattr::set(root.join("private.txt"), "user.firesafe-test", b"tagged");
    nix::unistd::mkfifo(
        &root.join("pipe"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .expect("mkfifo");
    set_mtime(
        &root.join("year7/worksheet 000.txt"),
        1_600_000_000,
        123_456_789,
    );
    set_mtime(&root.join("empty dir/nested empty"), 1_500_000_000, 5);
}

/// One entry's comparable state.
#[derive(Debug, PartialEq, Eq)]
pub struct Seen {
    kind: &'static str,
    mode: u32,
    mtime: (i64, i64),
    content: Option<Vec<u8>>,
    link: Option<PathBuf>,
    xattrs: BTreeMap<String, Vec<u8>>,
    /// Names of other entries sharing this entry's inode (hard links).
    links: Vec<PathBuf>,
}

pub fn scan(root: &Path) -> BTreeMap<PathBuf, Seen> {
    let mut out = BTreeMap::new();
    let mut inodes: HashMap<(u64, u64), Vec<PathBuf>> = HashMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for e in fs::read_dir(&dir).expect("read_dir") {
            let e = e.expect("entry");
            let p = e.path();
            let rel = p.strip_prefix(root).expect("prefix").to_path_buf();
            let m = fs::symlink_metadata(&p).expect("lstat");
            let ft = m.file_type();
            let kind = if ft.is_dir() {
                "dir"
            } else if ft.is_symlink() {
                "symlink"
            } else if ft.is_file() {
                "file"
            } else {
                "other"
            };
            if ft.is_dir() {
                todo.push(p.clone());
            }
            if ft.is_file() && m.nlink() > 1 {
                inodes
                    .entry((m.dev(), m.ino()))
                    .or_default()
                    .push(rel.clone());
            }
            let mut xattrs = BTreeMap::new();
            if !ft.is_symlink()
                && let Ok(names) = xattr::list(&p)
            {
                for n in names {
                    if let Ok(Some(v)) = xattr::get(&p, &n) {
                        xattrs.insert(n.to_string_lossy().into_owned(), v);
                    }
                }
            }
            out.insert(
                rel,
                Seen {
                    kind,
                    mode: if ft.is_symlink() {
                        0
                    } else {
                        m.mode() & 0o7777
                    },
                    mtime: if ft.is_symlink() {
                        (0, 0)
                    } else {
                        (m.mtime(), m.mtime_nsec())
                    },
                    content: ft.is_file().then(|| fs::read(&p).expect("read")),
                    link: ft
                        .is_symlink()
                        .then(|| fs::read_link(&p).expect("readlink")),
                    xattrs,
                    links: Vec::new(),
                },
            );
        }
    }
    for group in inodes.values() {
        for p in group {
            let mut others: Vec<PathBuf> = group.iter().filter(|o| *o != p).cloned().collect();
            others.sort();
            out.get_mut(p).expect("entry").links = others;
        }
    }
    out
}

/// Asserts two trees are identical: names, kinds, contents, modes, mtimes, symlinks, hard links
/// and extended attributes.
pub fn assert_same_tree(expected: &Path, actual: &Path) {
    let a = scan(expected);
    let b = scan(actual);
    let names_a: Vec<_> = a.keys().collect();
    let names_b: Vec<_> = b.keys().collect();
    assert_eq!(names_a, names_b, "restored tree has different entries");
    for (k, va) in &a {
        let vb = &b[k];
        assert_eq!(va.kind, vb.kind, "{k:?}: kind");
        assert_eq!(va.content, vb.content, "{k:?}: content differs");
        assert_eq!(va.mode, vb.mode, "{k:?}: mode");
        assert_eq!(va.mtime, vb.mtime, "{k:?}: mtime");
        assert_eq!(va.link, vb.link, "{k:?}: symlink target");
        assert_eq!(va.xattrs, vb.xattrs, "{k:?}: xattrs");
        assert_eq!(va.links, vb.links, "{k:?}: hard links");
    }
}

/// The project's own directory (for the shipped configuration and scripts).
pub fn project_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A copy of the shipped targets/ and schedules/ in a scratch directory, with the demo shares.
pub fn example() -> TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for sub in ["targets", "schedules"] {
        fs::create_dir(dir.path().join(sub)).expect("mkdir");
        for e in fs::read_dir(project_root().join(sub)).expect("read_dir") {
            let e = e.expect("entry");
            fs::copy(e.path(), dir.path().join(sub).join(e.file_name())).expect("copy");
        }
    }
    let out = Command::new(project_root().join("tests/scripts/demo-share.sh"))
        .arg(dir.path().join("demo/shares"))
        .output()
        .expect("demo-share.sh");
    assert_success(&out, "demo-share.sh");
    dir
}
