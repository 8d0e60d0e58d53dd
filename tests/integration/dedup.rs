//! Deduplication: unchanged data costs almost nothing; repeated data is stored once.

use std::fs;

use crate::support::*;

#[test]
fn unchanged_data_adds_almost_nothing() {
    for backend in backends() {
        let repo = Repo::new(backend);
        let share = repo.path("share");
        make_share(&share);
        repo.backup(&share, "curriculum");
        let after_first = repo.size();
        let packs = repo.keys_under("data").len();

        repo.backup(&share, "curriculum");
        let added = repo.size() - after_first;
        assert!(added < 4096, "a no-change backup added {added} bytes");
        assert_eq!(
            repo.keys_under("data").len(),
            packs,
            "a no-change backup wrote packs"
        );

        // Reading every file again finds every chunk already stored.
        let out = repo
            .cmd()
            .arg("backup")
            .arg(&share)
            .args(["--source", "curriculum", "--force-read"])
            .output()
            .expect("run");
        assert_success(&out, "backup --force-read");
        assert_eq!(
            repo.keys_under("data").len(),
            packs,
            "--force-read stored chunks again"
        );

        // The same data under another source name is not stored again either.
        repo.backup(&share, "copy-of-curriculum");
        assert_eq!(
            repo.keys_under("data").len(),
            packs,
            "another source stored the same chunks"
        );
    }
}

#[test]
fn thirty_copies_of_a_folder_are_stored_once() {
    let repo = Repo::new(Backend::Local);
    let share = repo.path("share");
    let mut one = 0;
    for f in 0..8 {
        let data = noise(f + 100, 150_000);
        one += data.len();
        for class in 0..30 {
            write(
                &share.join(format!("class {class:02}/curriculum/unit {f}.pdf")),
                &data,
            );
        }
    }
    repo.backup(&share, "classes");
    let size = repo.size() as usize;
    assert!(
        size < one + one / 5 + 64 * 1024,
        "30 copies of {one} bytes took {size} bytes"
    );
    let out = repo.path("out");
    assert_success(&repo.restore("latest", &out), "restore");
    assert_same_tree(&share, &out.join("share"));
}

#[test]
fn an_insertion_early_in_a_large_file_stores_little() {
    let repo = Repo::new(Backend::Local);
    let share = repo.path("share");
    let data = noise(7, 6_000_000);
    write(&share.join("big.bin"), &data);
    repo.backup(&share, "s");
    let before = repo.size();

    let mut edited = data[..1000].to_vec();
    edited.extend_from_slice(b"an insertion near the start");
    edited.extend_from_slice(&data[1000..]);
    fs::write(share.join("big.bin"), &edited).expect("write");
    repo.backup(&share, "s");
    let added = repo.size() - before;
    assert!(
        added < 600_000,
        "an insertion in a 6 MB file stored {added} bytes"
    );

    let out = repo.path("out");
    assert_success(&repo.restore("latest", &out), "restore");
    assert_eq!(fs::read(out.join("share/big.bin")).expect("read"), edited);
}

/// Past the number of blobs it keeps in memory, the index (and a backup's set of new blobs)
/// moves to an unnamed scratch file: backups, restores and checks give the same results, a
/// lost pack is still stored again, and nothing is left in the temporary directory.
#[test]
fn an_index_past_its_memory_limit_gives_the_same_results() {
    let repo = Repo::new(Backend::Local);
    let share = repo.path("share");
    for f in 0..120u64 {
        write(
            &share.join(format!("pupil {:03}/work {f}.txt", f % 40)),
            &noise(f, 300 + f as usize * 7),
        );
    }
    // A folder copied twice: its blobs are met again within the same backup.
    for copy in ["a", "b"] {
        for f in 0..30u64 {
            write(
                &share.join(format!("copies/{copy}/sheet {f}.doc")),
                &noise(1000 + f, 2000),
            );
        }
    }
    let tmp = repo.path("tmp");
    fs::create_dir_all(&tmp).expect("mkdir");
    let cmd = |args: &[&str]| {
        let mut c = repo.cmd();
        c.env("FIRESAFE_INDEX_IN_MEMORY", "16")
            .env("TMPDIR", &tmp)
            .args(args);
        c
    };
    let ok = |args: &[&str], what: &str| {
        assert_success(&cmd(args).output().expect("run"), what);
    };
    let s = share.display().to_string();
    ok(&["backup", &s, "--source", "pupils"], "backup");
    let packs = repo.keys_under("data");

    // The same share without the limit stores the same number of blobs.
    let plain = Repo::new(Backend::Local);
    plain.backup(&share, "pupils");
    let blobs = |mut c: std::process::Command| {
        let out = c.args(["check", "--json"]).output().expect("run");
        assert_success(&out, "check");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        v["blobs"].as_u64().expect("blobs")
    };
    let spilled = blobs(cmd(&[]));
    assert!(spilled > 150, "{spilled} blobs: the limit of 16 was passed");
    assert_eq!(spilled, blobs(plain.cmd()));

    // No change: nothing stored.
    ok(&["backup", &s, "--source", "pupils"], "no-change backup");
    assert_eq!(
        repo.keys_under("data"),
        packs,
        "a no-change backup wrote packs"
    );

    let out = repo.path("out");
    let o = out.display().to_string();
    ok(&["restore", "latest", "--to", &o], "restore");
    assert_same_tree(&share, &out.join("share"));
    ok(&["check", "--read-data"], "check --read-data");

    // A lost pack: the next backup stores its blobs again, and the restore reads them there.
    let lost = &packs[0];
    fs::remove_file(repo.path("repo").join(lost)).expect("remove pack");
    ok(&["backup", &s, "--source", "pupils"], "backup after a loss");
    let again = repo.path("again");
    let a = again.display().to_string();
    ok(&["restore", "latest", "--to", &a], "restore after a loss");
    assert_same_tree(&share, &again.join("share"));

    // Where no scratch file can be made, the index cannot be held and the command says so.
    let out = repo
        .cmd()
        .env("FIRESAFE_INDEX_IN_MEMORY", "16")
        .env("TMPDIR", repo.path("no such dir"))
        .arg("check")
        .output()
        .expect("run");
    let err = assert_exit(&out, 2, "check without a temporary directory");
    assert!(
        err.contains("cannot write the index's scratch file"),
        "{err}"
    );

    let left: Vec<_> = fs::read_dir(&tmp).expect("read tmp").collect();
    assert!(left.is_empty(), "left in TMPDIR: {left:?}");
}
