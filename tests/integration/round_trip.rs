//! Backup then restore is byte-identical, metadata included, on every backend.

use std::fs;
use std::os::unix::fs::MetadataExt;

use crate::support::*;

fn round_trip(backend: Backend) {
    let repo = Repo::new(backend);
    let share = repo.path("curriculum");
    make_share(&share);
    let id = repo.backup(&share, "curriculum");

    // Whole snapshot.
    let out = repo.path("restored");
    let r = repo.restore(&id, &out);
    assert_success(&r, "restore");
    assert_same_tree(&share, &out.join("curriculum"));

    // Sparse files stay sparse: the 8 MiB image with a 3-byte tail takes far less than 8 MiB.
    let img = fs::metadata(out.join("curriculum/disk.img")).expect("stat");
    assert_eq!(img.len(), 8 << 20);
    assert!(
        img.blocks() * 512 < 1 << 20,
        "disk.img is not sparse: {} blocks",
        img.blocks()
    );

    // A sub-directory and a single file, by `latest`.
    let sub = repo.path("sub");
    assert_success(
        &repo.restore("latest:curriculum/año escolar", &sub),
        "restore sub-path",
    );
    assert_same_tree(&share.join("año escolar"), &sub.join("año escolar"));
    let one = repo.path("one");
    assert_success(
        &repo.restore("latest:curriculum/exports/pupils.csv", &one),
        "restore one file",
    );
    assert_eq!(
        fs::read(one.join("pupils.csv")).expect("read"),
        fs::read(share.join("exports/pupils.csv")).expect("read")
    );

    // Restoring again into the same, now non-empty, directory is refused; nothing is touched.
    let before = scan(&one);
    let again = repo.restore("latest:curriculum/exports/pupils.csv", &one);
    let err = assert_exit(&again, 2, "restore into non-empty dir");
    assert!(
        err.contains("not empty") && err.contains("--overwrite"),
        "{err}"
    );
    assert_eq!(scan(&one), before);

    // With --overwrite, a changed file is replaced by the snapshot's version.
    write(&one.join("pupils.csv"), b"changed locally");
    let o = repo
        .cmd()
        .args([
            "restore",
            "latest:curriculum/exports/pupils.csv",
            "--overwrite",
            "--to",
        ])
        .arg(&one)
        .output()
        .expect("run");
    assert_success(&o, "restore --overwrite");
    assert_eq!(
        fs::read(one.join("pupils.csv")).expect("read"),
        fs::read(share.join("exports/pupils.csv")).expect("read")
    );

    // No temporary files are left behind.
    let leftovers = scan(&out)
        .keys()
        .filter(|p| p.to_string_lossy().contains(".firesafe-partial"))
        .count();
    assert_eq!(leftovers, 0);

    // ls shows names, including the UTF-8 and non-UTF-8 ones, in text and JSON.
    let text = repo.ok(&["ls", "latest"]);
    assert!(
        text.contains("/curriculum/año escolar/notes – draft ✓.txt"),
        "{text}"
    );
    assert!(
        text.contains("/curriculum/media/link to csv -> ../exports/pupils.csv"),
        "{text}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&repo.ok(&["ls", "latest", "curriculum/year7", "--json"]))
            .expect("json");
    let paths: Vec<&str> = json
        .as_array()
        .expect("array")
        .iter()
        .map(|e| e["path"].as_str().expect("path"))
        .collect();
    assert!(
        paths.contains(&"/curriculum/year7/worksheet 000.txt"),
        "{paths:?}"
    );
    assert!(
        paths.iter().all(|p| p.starts_with("/curriculum/year7")),
        "{paths:?}"
    );

    // check passes, with and without reading the data.
    repo.ok(&["check"]);
    let c = repo.ok(&["check", "--read-data"]);
    assert!(c.contains("no problems found"), "{c}");
}

#[test]
fn round_trip_on_every_backend() {
    for b in backends() {
        round_trip(b);
    }
}

/// A restore made a few files at a time (as a big one is, 20,000 at a time) comes out the same:
/// folders' times set after everything in them, hard links to files of an earlier part,
/// symlinks, empty folders and special files.
#[test]
fn a_restore_in_many_parts_is_the_same_as_in_one() {
    use firesafe::format::crypto::Unlock;
    use firesafe::ops::restore::{RestoreOptions, restore_snapshot};
    use firesafe::store::blobs::{Copies, load_all};
    use firesafe::store::repo::Repository;
    let repo = Repo::new(Backend::Local);
    let share = repo.path("share");
    make_share(&share);
    repo.backup(&share, "curriculum");
    let key = fs::read_to_string(&repo.key).expect("key");
    let unlock = Unlock::parse_identity_file(&key).expect("identity");
    for part_files in [1, 2, 7] {
        let to = repo.path(&format!("restored-{part_files}"));
        let report = block_on(async {
            let r = Repository::open(repo.target(), &unlock)
                .await
                .expect("open");
            let repos = vec![r];
            let (catalog, index) = load_all(&repos).await.expect("load");
            let snap = catalog.resolve("latest", None).expect("latest");
            let copies = Copies::new(repos.iter().collect()).expect("a copy");
            let mut options = RestoreOptions::new(&to);
            options.part_files = part_files;
            restore_snapshot(&copies, &index, snap, None, &options)
                .await
                .expect("restore")
        });
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        assert!(report.files > 7, "{}", report.files);
        assert_same_tree(&share, &to.join("share"));
        assert!(!to.join(firesafe::ops::restore::IN_PROGRESS).exists());
    }
}

#[test]
fn snapshots_record_what_and_when() {
    let repo = Repo::new(Backend::Local);
    let share = repo.path("admin");
    write(&share.join("budget.xlsx"), &noise(3, 10_000));
    let first = repo.backup(&share, "admin");
    let out = repo
        .cmd()
        .arg("backup")
        .arg(&share)
        .args(["--source", "admin", "--tag", "end-of-term"])
        .output()
        .expect("run");
    assert_success(&out, "backup with tag");
    let staff = repo.path("staff");
    write(&staff.join("rota.docx"), b"rota");
    repo.backup(&staff, "staff");

    let json: serde_json::Value =
        serde_json::from_str(&repo.ok(&["snapshots", "--json"])).expect("json");
    let list = json.as_array().expect("array");
    assert_eq!(list.len(), 3);
    let tagged = &list[1];
    assert_eq!(tagged["source"], "admin");
    assert_eq!(tagged["tags"][0], "end-of-term");
    assert_eq!(tagged["parent"].as_str().expect("parent")[..8], first[..]);
    assert_eq!(tagged["paths"][0], share.display().to_string());
    assert_eq!(tagged["program_version"], env!("CARGO_PKG_VERSION"));
    assert!(tagged["start"].as_str().is_some() && tagged["end"].as_str().is_some());
    assert_eq!(tagged["stats"]["files"], 1);
    assert_eq!(tagged["stats"]["files_unchanged"], 1);
    assert_eq!(tagged["partial"], false);

    let only_staff: serde_json::Value =
        serde_json::from_str(&repo.ok(&["snapshots", "--source", "staff", "--json"]))
            .expect("json");
    assert_eq!(only_staff.as_array().expect("array").len(), 1);
    let table = repo.ok(&["snapshots"]);
    assert!(
        table.contains("admin") && table.contains("staff") && table.contains("end-of-term"),
        "{table}"
    );

    // `latest --source` picks the newest snapshot of that source.
    let r = repo.path("r");
    let o = repo
        .cmd()
        .args(["restore", "latest", "--source", "admin", "--to"])
        .arg(&r)
        .output()
        .expect("run");
    assert_success(&o, "restore latest --source");
    assert!(r.join("admin/budget.xlsx").exists());
}

/// A file the backup cannot read becomes a warning; the snapshot completes, marked partial, and
/// the exit status is 1.
#[test]
fn unreadable_files_make_a_partial_snapshot() {
    let repo = Repo::new(Backend::Local);
    let share = repo.path("staff");
    write(&share.join("ok.txt"), b"readable");
    write(&share.join("locked.txt"), b"not readable");
    fs::set_permissions(
        share.join("locked.txt"),
        std::os::unix::fs::PermissionsExt::from_mode(0o000),
    )
    .expect("chmod");

    let mut cmd = repo.cmd();
    cmd.arg("backup").arg(&share).args(["--source", "staff"]);
    if nix::unistd::geteuid().is_root() {
        // root reads anything; run the backup as nobody to get a real permission error.
        let nobody = 65534;
        for p in [
            repo.dir.path().to_path_buf(),
            share.clone(),
            share.join("ok.txt"),
            repo.key.clone(),
        ] {
            std::os::unix::fs::chown(&p, Some(nobody), Some(nobody)).expect("chown");
        }
        chown_tree(&repo.path("repo"), nobody);
        use std::os::unix::process::CommandExt;
        cmd.uid(nobody).gid(nobody);
    }
    let out = cmd.output().expect("run");
    let stderr = assert_exit(&out, 1, "partial backup");
    assert!(
        stderr.contains("locked.txt") && stderr.contains("permission denied"),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("(partial)"), "{stdout}");

    let json: serde_json::Value =
        serde_json::from_str(&repo.ok(&["snapshots", "--json"])).expect("json");
    let snap = &json[0];
    assert_eq!(snap["partial"], true);
    assert!(
        snap["warnings"][0]["path"]
            .as_str()
            .expect("path")
            .ends_with("locked.txt")
    );
    assert_eq!(snap["stats"]["files"], 1);
}

fn chown_tree(root: &std::path::Path, uid: u32) {
    std::os::unix::fs::chown(root, Some(uid), Some(uid)).expect("chown");
    if root.is_dir() {
        for e in fs::read_dir(root).expect("read_dir") {
            chown_tree(&e.expect("entry").path(), uid);
        }
    }
}
