//! A snapshot that tries to escape the restore directory is refused, and nothing is written
//! outside it.

use std::path::Path;

use firesafe::format::crypto::Unlock;
use firesafe::format::pack::{BlobKind, PackWriter};
use firesafe::format::tree::{Name, Node, NodeKind, Tree};
use firesafe::store::repo::Repository;
use firesafe::store::snapshot::{Snapshot, SnapshotStats};

use crate::support::*;

fn node(name: &[u8], kind: NodeKind) -> Node {
    Node {
        name: Name(name.to_vec()),
        kind,
        mode: 0o644,
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
        subtree: None,
        look: None,
    }
}

/// Writes a snapshot whose root tree holds `entries`, encoded without sorting or checks, as a
/// hostile writer could.
fn forge(repo: &Repo, entries: Vec<Node>) {
    let key = std::fs::read_to_string(&repo.key).expect("key");
    let unlock = Unlock::parse_identity_file(&key).expect("identity");
    block_on(async {
        let r = Repository::open(repo.target(), &unlock)
            .await
            .expect("open");
        let json = serde_json::to_vec(&Tree { entries }).expect("json");
        let id = r.key().blob_id(&json);
        let mut w = PackWriter::new(r.key(), BlobKind::Tree, 1024);
        w.add(id, &json, json.len(), false).expect("add");
        let pack = w.finish();
        r.save_pack(&pack).await.expect("pack");
        firesafe::store::index::save(
            &r,
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
            source: "evil".into(),
            host: "h".into(),
            paths: vec![],
            tags: vec![],
            start: now,
            end: now,
            program_version: "0".into(),
            parent: None,
            tree: id,
            partial: false,
            warnings: vec![],
            stats: SnapshotStats::default(),
            suspect: None,
        };
        firesafe::store::snapshot::save(&r, &snap)
            .await
            .expect("snapshot");
    });
}

fn assert_refused(repo: &Repo, outside: &Path) {
    let to = repo.path("restore-here");
    let out = repo.restore("latest", &to);
    let err = assert_exit(&out, 2, "restore of a hostile snapshot");
    assert!(
        err.contains("unsafe entry name") || err.contains("twice") || err.contains("not sorted"),
        "{err}"
    );
    assert!(
        !outside.exists(),
        "something was written outside the restore directory"
    );
}

#[test]
fn dot_dot_and_slashes_are_refused() {
    for bad in [
        &b".."[..],
        b"../escaped",
        b"/etc/escaped",
        b"a/../../escaped",
    ] {
        let repo = Repo::new(Backend::Local);
        let mut n = node(bad, NodeKind::File);
        n.size = 0;
        forge(&repo, vec![n]);
        assert_refused(&repo, &repo.path("escaped"));
    }
}

#[test]
fn a_symlink_and_a_directory_of_the_same_name_are_refused() {
    let repo = Repo::new(Backend::Local);
    let mut link = node(b"a", NodeKind::Symlink);
    link.target = Some(Name(
        repo.path("outside").into_os_string().into_encoded_bytes(),
    ));
    let dir = node(b"a", NodeKind::File);
    forge(&repo, vec![link, dir]);
    assert_refused(&repo, &repo.path("outside"));
}

/// A folder of the destination that is a symlink before the restore starts is refused with
/// everything below it, named, and nothing is written through it; the rest is restored (exit 1).
#[test]
fn restore_will_not_write_through_an_existing_symlink() {
    let repo = Repo::new(Backend::Local);
    let share = repo.path("curriculum");
    write(&share.join("plan.txt"), b"plan");
    write(&share.join("staff/notes.txt"), b"notes");
    repo.backup(&share, "c");
    let outside = repo.path("outside");
    std::fs::create_dir(&outside).expect("mkdir");
    let to = repo.path("to");
    std::fs::create_dir_all(to.join("curriculum")).expect("mkdir");
    std::os::unix::fs::symlink(&outside, to.join("curriculum/staff")).expect("symlink");
    let out = repo
        .cmd()
        .args(["restore", "latest", "--overwrite", "--to"])
        .arg(&to)
        .output()
        .expect("run");
    let err = assert_exit(&out, 1, "restore through a symlink");
    assert!(
        err.contains("not restored: curriculum/staff/notes.txt:")
            && err.contains("is a symbolic link or not a directory")
            && err.contains("nothing is written through it"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(&outside).expect("read_dir").count(),
        0,
        "wrote through the symlink"
    );
    assert_eq!(
        std::fs::read(to.join("curriculum/plan.txt")).expect("the rest restored"),
        b"plan"
    );
}

/// Everything in `dir`, recursively (empty if it is empty).
fn everything_in(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read_dir") {
        let p = e.expect("entry").path();
        if std::fs::symlink_metadata(&p).expect("meta").is_dir() {
            out.extend(everything_in(&p));
        }
        out.push(p);
    }
    out
}

/// Someone who can write the NAS plants the repository's `tmp`, then its `data/XX` folders,
/// then `snapshots`, as links to a folder of theirs: the backup (root, in a school) refuses,
/// naming the link, and writes nothing there.
#[test]
fn a_backup_writes_nothing_through_a_planted_link() {
    let repo = Repo::new(Backend::Local);
    let share = repo.path("share");
    write(&share.join("a.txt"), b"first");
    let sentinel = repo.path("sentinel");
    std::fs::create_dir_all(&sentinel).expect("mkdir");
    let root = Path::new(&repo.url).to_path_buf();
    let refused = |what: &str, link: &Path| {
        let out = repo
            .cmd()
            .arg("backup")
            .arg(&share)
            .args(["--source", "s"])
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "{what}: {err}");
        assert!(err.contains("symbolic link"), "{what}: {err}");
        assert!(
            err.contains(&link.strip_prefix(&root).unwrap().display().to_string()),
            "{what} named: {err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "{what}: one line: {err}");
        assert!(everything_in(&sentinel).is_empty(), "{what}: written there");
    };

    let _ = std::fs::remove_dir_all(root.join("tmp"));
    std::os::unix::fs::symlink(&sentinel, root.join("tmp")).expect("plant tmp");
    refused("tmp", &root.join("tmp"));
    std::fs::remove_file(root.join("tmp")).expect("unplant");

    // Every data/XX, so that the pack's is one of them.
    std::fs::create_dir_all(root.join("data")).expect("mkdir");
    for xx in 0..=255u8 {
        let dir = root.join(format!("data/{xx:02x}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::os::unix::fs::symlink(&sentinel, &dir).expect("plant data/XX");
    }
    refused("data/XX", &root.join("data"));
    for xx in 0..=255u8 {
        std::fs::remove_file(root.join(format!("data/{xx:02x}"))).expect("unplant");
    }

    repo.backup(&share, "s");
    let snapshots = root.join("snapshots");
    std::fs::remove_dir_all(&snapshots).expect("rm snapshots");
    std::os::unix::fs::symlink(&sentinel, &snapshots).expect("plant snapshots");
    refused("snapshots", &snapshots);
}
