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
