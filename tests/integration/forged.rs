//! Objects forged by someone holding the repository key: trees that share subtrees until they
//! expand to 2^40 paths, trees nested 20,000 deep, and zstd bombs in sealed objects and blobs.
//! Every command finishes, quickly, with bounded output or a one-line refusal, never a crash;
//! nothing is written outside the restore directory.

use std::io::Write;
use std::process::Output;
use std::time::{Duration, Instant};

use firesafe::format::crypto::Unlock;
use firesafe::format::pack::{BlobKind, PackWriter};
use firesafe::format::tree::{Name, Node, NodeKind, Tree};
use firesafe::id::Id;
use firesafe::store::repo::Repository;
use firesafe::store::snapshot::{Snapshot, SnapshotStats};

use crate::support::*;

fn node(name: &str, kind: NodeKind, subtree: Option<Id>) -> Node {
    Node {
        name: Name(name.as_bytes().to_vec()),
        kind,
        mode: 0o755,
        uid: 0,
        gid: 0,
        user: None,
        group: None,
        mtime: 0,
        mtime_nsec: 0,
        ctime: 0,
        ctime_nsec: 0,
        inode: 1,
        device: 1,
        links: 1,
        size: 0,
        target: None,
        rdev: None,
        xattrs: vec![],
        content: vec![],
        subtree,
        look: None,
    }
}

/// One blob to forge: its id, stored bytes, the raw length its index entry claims, and whether
/// it is compressed.
struct Forged {
    id: Id,
    stored: Vec<u8>,
    raw_length: usize,
    zstd: bool,
}

fn open(repo: &Repo) -> Repository {
    let key = std::fs::read_to_string(&repo.key).expect("key");
    let unlock = Unlock::parse_identity_file(&key).expect("identity");
    block_on(Repository::open(repo.target(), &unlock)).expect("open")
}

/// Trees built bottom-up by `build`, which is given the repository to compute ids with.
fn trees(r: &Repository, build: impl FnOnce(&mut dyn FnMut(Tree) -> Id)) -> Vec<Forged> {
    let mut out = Vec::new();
    let mut add = |mut t: Tree| {
        let json = t.encode();
        let id = r.key().blob_id(&json);
        out.push(Forged {
            id,
            raw_length: json.len(),
            stored: json,
            zstd: false,
        });
        id
    };
    build(&mut add);
    out
}

/// Stores `blobs` in one pack with its index object, and a snapshot of source `forged` whose
/// root tree is `root`.
fn forge(r: &Repository, blobs: &[Forged], root: Id) {
    let mut w = PackWriter::new(r.key(), BlobKind::Tree, 1 << 20);
    for b in blobs {
        w.add(b.id, &b.stored, b.raw_length, b.zstd).expect("add");
    }
    let pack = w.finish();
    block_on(async {
        r.save_pack(&pack).await.expect("pack");
        firesafe::store::index::save(
            r,
            vec![firesafe::store::index::IndexPack {
                id: pack.id,
                kind: BlobKind::Tree,
                size: pack.bytes.len() as u64,
                blobs: pack.header.blobs.clone(),
            }],
        )
        .await
        .expect("index");
        let now = chrono::Utc::now();
        let snap = Snapshot {
            source: "forged".into(),
            host: "h".into(),
            paths: vec!["/srv/forged".into()],
            tags: vec![],
            start: now,
            end: now,
            program_version: "0".into(),
            parent: None,
            tree: root,
            partial: false,
            warnings: vec![],
            stats: SnapshotStats::default(),
            suspect: None,
        };
        firesafe::store::snapshot::save(r, &snap)
            .await
            .expect("snapshot");
    });
}

/// Runs firesafe, which must finish within `limit` and exit with a code (not a signal).
fn timed(repo: &Repo, args: &[&str], limit: Duration) -> (Output, String) {
    let started = Instant::now();
    let out = repo.run(args);
    let took = started.elapsed();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.code().is_some(),
        "firesafe {args:?} was killed by a signal ({:?}): {err}",
        out.status
    );
    eprintln!("firesafe {args:?}: {took:?}, exit {:?}", out.status.code());
    assert!(took < limit, "firesafe {args:?} took {took:?}");
    (out, err)
}

/// The command was refused with one line naming the forgery.
fn assert_refused(repo: &Repo, args: &[&str], wanted: &str) {
    let (out, err) = timed(repo, args, Duration::from_secs(60));
    assert!(!out.status.success(), "firesafe {args:?} succeeded: {err}");
    assert!(
        err.contains(wanted) && err.contains("forged or damaged"),
        "firesafe {args:?}: {err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
}

/// A repository with one real backup (of a tiny share), to compare forgeries with.
fn with_backup() -> (Repo, String) {
    let repo = Repo::new(Backend::Local);
    let share = repo.path("share");
    write(&share.join("plan.txt"), b"plan");
    let id = repo.backup(&share, "real");
    (repo, id)
}

#[test]
fn a_dag_of_shared_subtrees_is_refused_not_expanded() {
    let (repo, real) = with_backup();
    let r = open(&repo);
    // Tree k lists "a" and "b", both tree k+1: 41 trees, 2^41 paths.
    let mut root = Id([0; 32]);
    let blobs = trees(&r, |add| {
        let mut below = add(Tree::default());
        for _ in 0..40 {
            below = add(Tree {
                entries: vec![
                    node("a", NodeKind::Dir, Some(below)),
                    node("b", NodeKind::Dir, Some(below)),
                ],
            });
        }
        root = below;
    });
    forge(&r, &blobs, root);
    let forged = repo.ok(&["snapshots", "--source", "forged"]);
    assert!(forged.contains("forged"), "{forged}");
    let expands = "expands to more than";
    assert_refused(&repo, &["ls", "latest", "--source", "forged"], expands);
    assert_refused(&repo, &["find", "*"], expands);
    assert_refused(&repo, &["find", "a/b"], expands);
    assert_refused(&repo, &["diff", &real, "forged@now"], expands);
    let to = repo.path("restored");
    let out = repo.run(&[
        "restore",
        "latest",
        "--source",
        "forged",
        "--to",
        to.to_str().expect("utf-8"),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains(expands), "{err}");
    assert!(!repo.path("a").exists() && !repo.path("b").exists());
    // A name that matches nothing is searched once per tree, and found nowhere.
    let (out, err) = timed(&repo, &["find", "nothing-here"], Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(2), "{err}");
    // check reads each tree once: the forgery is structurally sound, and the real data too.
    let (out, err) = timed(&repo, &["check"], Duration::from_secs(60));
    assert!(out.status.success(), "{err}");
    // The real snapshot is unaffected.
    repo.ok(&["ls", &real]);
}

#[test]
fn a_chain_twenty_thousand_trees_deep_is_refused_without_a_crash() {
    let (repo, _) = with_backup();
    let r = open(&repo);
    let mut root = Id([0; 32]);
    let blobs = trees(&r, |add| {
        let mut below = add(Tree::default());
        for _ in 0..20_000 {
            below = add(Tree {
                entries: vec![node("d", NodeKind::Dir, Some(below))],
            });
        }
        root = below;
    });
    forge(&r, &blobs, root);
    let deep = "nest deeper than the 1000 levels";
    assert_refused(&repo, &["ls", "latest", "--source", "forged"], deep);
    assert_refused(&repo, &["find", "*"], deep);
    assert_refused(&repo, &["find", "d/**/x"], deep);
    let to = repo.path("restored");
    let out = repo.run(&[
        "restore",
        "latest",
        "--source",
        "forged",
        "--to",
        to.to_str().expect("utf-8"),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.code().is_some() && err.contains(deep), "{err}");
    assert!(
        !to.join("d").exists(),
        "nothing restored from a refused snapshot"
    );
    // check reports the too-deep tree as a finding of the forged snapshot, and goes on.
    let (out, _) = timed(&repo, &["check"], Duration::from_secs(60));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("nested deeper than the 1000 folders"),
        "{text}"
    );
}

/// zstd frames that decompress to `prefix` followed by at least `size` bytes of `fill`,
/// built from one frame repeated (frames may be concatenated), so the bomb costs nothing to make.
fn bomb(prefix: &[u8], fill: u8, size: usize) -> Vec<u8> {
    let block = vec![fill; 16 << 20];
    let frame = zstd::bulk::compress(&block, 3).expect("zstd");
    let mut out = zstd::bulk::compress(prefix, 3).expect("zstd");
    for _ in 0..size.div_ceil(block.len()) {
        out.write_all(&frame).expect("vec");
    }
    out
}

/// Stores sealed bytes under `dir/ID`, as a forger could.
fn seal_raw(repo: &Repo, r: &Repository, dir: &str, plain: &[u8]) -> String {
    let sealed = r.key().seal(plain);
    let key = format!("{dir}/{}", Id::of_object(&sealed));
    let t = repo.target();
    block_on(t.put_new(&key, sealed.into())).expect("put");
    key
}

#[test]
fn zstd_bombs_in_sealed_objects_are_refused_quickly() {
    let (repo, real) = with_backup();
    let r = open(&repo);
    // 1 GiB of zeros, as a snapshot and as an index object: refused at the first bytes, not
    // decompressed whole. (The 1 GiB bound itself, reached by valid JSON, is tested in
    // format::compress with a smaller limit: parsing a gigabyte takes a while in a debug build.)
    let snapshot = seal_raw(&repo, &r, "snapshots", &bomb(b"", 0, 1 << 30));
    let index = seal_raw(&repo, &r, "index", &bomb(b"", 0, 1 << 30));
    let (out, _) = timed(&repo, &["check"], Duration::from_secs(20));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    for key in [&snapshot, &index] {
        let line = text
            .lines()
            .find(|l| l.contains(key.as_str()))
            .unwrap_or_default();
        assert!(line.contains("not valid JSON"), "{text}");
    }
    // Everything else still reads.
    let (out, err) = timed(&repo, &["ls", &real], Duration::from_secs(60));
    assert!(out.status.success(), "{err}");
}

#[test]
fn zstd_bombs_in_blobs_are_refused_before_they_are_decompressed() {
    let (repo, _) = with_backup();
    let r = open(&repo);
    // A file whose one blob claims 4 GiB, and one whose blob claims 100 bytes but holds 1 GiB.
    let huge = bomb(b"", 0, 1 << 30);
    let claims_4g = Forged {
        id: r.key().blob_id(b"four gigabytes"),
        stored: huge.clone(),
        raw_length: u32::MAX as usize,
        zstd: true,
    };
    let claims_100 = Forged {
        id: r.key().blob_id(b"a hundred bytes"),
        stored: huge,
        raw_length: 100,
        zstd: true,
    };
    let file = |name: &str, blob: &Forged| {
        let mut n = node(name, NodeKind::File, None);
        n.mode = 0o644;
        n.size = blob.raw_length as u64;
        n.content = vec![blob.id];
        n
    };
    let (big, small) = (file("big", &claims_4g), file("small", &claims_100));
    let mut root = Id([0; 32]);
    let mut blobs = trees(&r, |add| {
        let dir = add(Tree {
            entries: vec![big, small],
        });
        root = add(Tree {
            entries: vec![node("forged", NodeKind::Dir, Some(dir))],
        });
    });
    blobs.push(claims_4g);
    blobs.push(claims_100);
    forge(&r, &blobs, root);
    let to = repo.path("restored");
    let (out, err) = timed(
        &repo,
        &[
            "restore",
            "latest",
            "--source",
            "forged",
            "--to",
            to.to_str().expect("utf-8"),
        ],
        Duration::from_secs(60),
    );
    assert!(!out.status.success(), "{err}");
    let all = format!("{}{err}", String::from_utf8_lossy(&out.stdout));
    assert!(
        all.contains("larger than the format allows (16777216 bytes)"),
        "{all}"
    );
    let (out, _) = timed(&repo, &["check", "--read-data"], Duration::from_secs(60));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    // check names the first damaged blob of the pack: either one.
    assert!(
        text.contains("larger than the format allows") || text.contains("buffer is too small"),
        "{text}"
    );
    assert!(
        text.contains("/forged/big") && text.contains("/forged/small"),
        "{text}"
    );
}

#[test]
fn a_tree_claiming_more_than_the_format_allows_is_refused_unread() {
    let (repo, _) = with_backup();
    let r = open(&repo);
    let json = serde_json::to_vec(&Tree::default()).expect("json");
    let root = Forged {
        id: r.key().blob_id(&json),
        stored: zstd::bulk::compress(&json, 3).expect("zstd"),
        raw_length: 3 << 30,
        zstd: true,
    };
    let id = root.id;
    forge(&r, &[root], id);
    assert_refused(
        &repo,
        &["ls", "latest", "--source", "forged"],
        "larger than the format allows (1073741824 bytes)",
    );
}

/// `check --read-data` gathers what the index expects of each pack a batch at a time (as many
/// blobs as an index keeps in memory). A blob whose bytes do not match its id, in a pack read in
/// a later batch (batches of 4 blobs, the real backup's 40 files coming first), is found and
/// named the same, word for word, as when every pack is one batch.
#[test]
fn check_read_data_in_small_batches_finds_the_same_damaged_blob() {
    let repo = Repo::new(Backend::Local);
    let share = repo.path("share");
    for f in 0..40u64 {
        write(
            &share.join(format!("class {}/essay {f}.txt", f % 4)),
            format!("essay {f} ")
                .repeat(3000 + f as usize * 100)
                .as_bytes(),
        );
    }
    repo.backup(&share, "real");
    let r = open(&repo);
    let wrong = Forged {
        id: r.key().blob_id(b"what the index says"),
        stored: b"something else".to_vec(),
        raw_length: 14,
        zstd: false,
    };
    let mut n = node("wrong.txt", NodeKind::File, None);
    n.mode = 0o644;
    n.size = 14;
    n.content = vec![wrong.id];
    let mut root = Id([0; 32]);
    let mut blobs = trees(&r, |add| {
        let dir = add(Tree { entries: vec![n] });
        root = add(Tree {
            entries: vec![node("forged", NodeKind::Dir, Some(dir))],
        });
    });
    blobs.push(wrong);
    forge(&r, &blobs, root);
    let check = |limit: Option<&str>| {
        let mut c = repo.cmd();
        if let Some(l) = limit {
            c.env("FIRESAFE_INDEX_IN_MEMORY", l);
        }
        let out = c
            .args(["check", "--read-data", "--json"])
            .output()
            .expect("run");
        assert_exit(&out, 1, "check --read-data with a damaged blob");
        serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("json")
    };
    // The first check marks the pack damaged, and a later one reads that mark: each of the two
    // starts from the same copy of the repository.
    let (live, kept) = (repo.path("repo"), repo.path("repo as forged"));
    let copy = |from: &std::path::Path, to: &std::path::Path| {
        let done = std::process::Command::new("cp")
            .arg("-a")
            .arg(from)
            .arg(to)
            .status()
            .expect("cp");
        assert!(done.success(), "cp -a {} {}", from.display(), to.display());
    };
    copy(&live, &kept);
    let whole = check(None);
    std::fs::remove_dir_all(&live).expect("rm");
    copy(&kept, &live);
    let text = whole.to_string();
    assert!(whole["blobs"].as_u64().expect("blobs") > 8, "{text}");
    assert!(
        text.contains("1 blob in the pack is damaged (first: its content does not match its id)")
            && text.contains("/forged/wrong.txt"),
        "{text}"
    );
    assert_eq!(whole, check(Some("4")), "batches changed what check found");
}
