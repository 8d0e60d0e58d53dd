//! The corruption matrix: each kind of damage gives a precise finding or a clear error, never a
//! panic, and never a wrong file.

use std::fs;

use crate::support::*;

/// A repository with two snapshots of a small share, and the share.
fn fixture(backend: Backend) -> (Repo, std::path::PathBuf) {
    let repo = Repo::new(backend);
    let share = repo.path("admin");
    write(&share.join("finance/budget 2026.xlsx"), &noise(11, 700_000));
    write(
        &share.join("finance/notes.txt"),
        "budget notes\n".repeat(1000).as_bytes(),
    );
    write(&share.join("letters/parents.docx"), &noise(12, 200_000));
    repo.backup(&share, "admin");
    write(&share.join("letters/new.docx"), &noise(13, 50_000));
    repo.backup(&share, "admin");
    (repo, share)
}

/// The data pack holding the start of budget 2026.xlsx (the largest data pack, as the file is
/// most of the data).
fn a_data_pack(repo: &Repo) -> String {
    let mut packs: Vec<(usize, String)> = repo
        .objects()
        .into_iter()
        .filter(|(k, _)| k.starts_with("data/"))
        .map(|(k, b)| (b.len(), k))
        .collect();
    packs.sort();
    packs.last().expect("a pack").1.clone()
}

fn check(repo: &Repo, read_data: bool) -> (i32, String) {
    let mut args = vec!["check"];
    if read_data {
        args.push("--read-data");
    }
    let out = repo.run(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    (
        out.status.code().expect("exit code"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn matrix(backend: Backend) {
    // A flipped byte: the structure check cannot see it; reading the data finds it, names the
    // pack and the files, and a restore of the affected file fails rather than writing bad data.
    {
        let (repo, _) = fixture(backend);
        let pack = a_data_pack(&repo);
        let mut bytes = repo.get(&pack);
        let n = bytes.len() / 2;
        bytes[n] ^= 0x40;
        repo.replace(&pack, bytes);
        assert_eq!(check(&repo, false).0, 0);
        let (code, out) = check(&repo, true);
        assert_eq!(code, 1, "{out}");
        assert!(out.contains(&format!("finding: {pack}")), "{out}");
        assert!(out.contains("does not match its name"), "{out}");
        assert!(out.contains("/admin/finance/budget 2026.xlsx"), "{out}");
        assert!(out.contains("affects snapshot"), "{out}");
        let to = repo.path("r1");
        let r = repo.restore("latest", &to);
        let err = assert_exit(&r, 1, "restore from a damaged pack");
        assert!(err.contains("budget 2026.xlsx"), "{err}");
        assert!(
            !to.join("admin/finance/budget 2026.xlsx").exists(),
            "a damaged file was restored"
        );
        assert!(to.join("admin/letters/parents.docx").exists() || err.contains("parents.docx"));
    }
    // A truncated pack: the structure check sees the size.
    {
        let (repo, _) = fixture(backend);
        let pack = a_data_pack(&repo);
        let mut bytes = repo.get(&pack);
        bytes.truncate(bytes.len() - 1000);
        repo.replace(&pack, bytes);
        let (code, out) = check(&repo, false);
        assert_eq!(code, 1, "{out}");
        assert!(out.contains(&pack) && out.contains("truncated"), "{out}");
        assert!(out.contains("budget 2026.xlsx"), "{out}");
    }
    // A deleted pack.
    {
        let (repo, _) = fixture(backend);
        let pack = a_data_pack(&repo);
        repo.delete(&pack);
        let (code, out) = check(&repo, false);
        assert_eq!(code, 1, "{out}");
        assert!(
            out.contains(&format!("finding: {pack}: the pack is missing")),
            "{out}"
        );
        assert!(out.contains("budget 2026.xlsx"), "{out}");
    }
    // A deleted index object: snapshots reference blobs no index lists.
    {
        let (repo, _) = fixture(backend);
        let first_index = repo
            .keys_under("index")
            .into_iter()
            .next()
            .expect("an index object");
        repo.delete(&first_index);
        let (code, out) = check(&repo, false);
        assert_eq!(code, 1, "{out}");
        assert!(
            out.contains("no index object lists it") || out.contains("finding: blob"),
            "{out}"
        );
        assert!(out.contains("listed by no index object"), "{out}");
    }
    // A damaged index object is named.
    {
        let (repo, _) = fixture(backend);
        let idx = repo
            .keys_under("index")
            .into_iter()
            .next()
            .expect("an index object");
        let mut bytes = repo.get(&idx);
        let n = bytes.len() - 10;
        bytes[n] ^= 1;
        repo.replace(&idx, bytes);
        let (code, out) = check(&repo, false);
        assert_eq!(code, 1, "{out}");
        assert!(out.contains(&format!("finding: {idx}")), "{out}");
    }
    // A damaged snapshot object is named, and the other snapshot still lists.
    {
        let (repo, _) = fixture(backend);
        let snap = repo
            .keys_under("snapshots")
            .into_iter()
            .next()
            .expect("a snapshot");
        let mut bytes = repo.get(&snap);
        let n = bytes.len() - 5;
        bytes[n] ^= 1;
        repo.replace(&snap, bytes);
        let (code, out) = check(&repo, false);
        assert_eq!(code, 1, "{out}");
        assert!(out.contains(&format!("finding: {snap}")), "{out}");
        let listed = repo.run(&["snapshots"]);
        assert_exit(&listed, 0, "snapshots with one damaged");
        assert!(
            String::from_utf8_lossy(&listed.stdout)
                .lines()
                .any(|l| l == "1 snapshot")
        );
    }
}

#[test]
fn corruption_matrix_on_every_backend() {
    for b in backends() {
        matrix(b);
    }
}

#[test]
fn a_damaged_tree_names_the_directory() {
    let (repo, _) = fixture(Backend::Local);
    // Tree packs are the small ones; damage every one of them.
    let objects = repo.objects();
    let mut trees = 0;
    for (k, bytes) in objects.iter().filter(|(k, _)| k.starts_with("data/")) {
        if bytes.len() < 20_000 {
            let mut b = bytes.clone();
            let n = b.len() - 20;
            b[n] ^= 1;
            repo.replace(k, b);
            trees += 1;
        }
    }
    assert!(trees > 0);
    let (code, out) = check(&repo, false);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("(directory listing)"), "{out}");
    let r = repo.restore("latest", &repo.path("r"));
    let err = assert_exit(&r, 2, "restore with damaged trees");
    assert!(err.contains("damaged") && err.lines().count() == 1, "{err}");
}

#[test]
fn wrong_key_and_wrong_passphrase_are_clear_errors() {
    let (repo, _) = fixture(Backend::Local);
    let other = repo.path("other.key");
    let (text, _) = firesafe::format::crypto::generate_identity_file();
    fs::write(&other, text).expect("write key");
    fs::set_permissions(&other, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod key");

    let out = repo
        .cmd()
        .env("FIRESAFE_KEY_FILE", &other)
        .args(["snapshots"])
        .output()
        .expect("run");
    let err = assert_exit(&out, 2, "wrong key");
    assert!(
        err.contains("wrong key") && err.lines().count() == 1,
        "{err}"
    );

    let out = firesafe()
        .args(["--repo", &repo.url, "snapshots"])
        .env("FIRESAFE_PASSPHRASE", "not the passphrase")
        .output()
        .expect("run");
    let err = assert_exit(&out, 2, "wrong passphrase");
    assert!(
        err.contains("wrong key") && err.contains("FIRESAFE_PASSPHRASE"),
        "{err}"
    );

    fs::write(&other, "not a key\n").expect("write");
    let out = repo
        .cmd()
        .env("FIRESAFE_KEY_FILE", &other)
        .args(["snapshots"])
        .output()
        .expect("run");
    let err = assert_exit(&out, 2, "malformed key file");
    assert!(err.contains("not an age X25519 identity"), "{err}");

    let out = firesafe()
        .args(["--repo", &repo.url, "snapshots"])
        .output()
        .expect("run");
    let err = assert_exit(&out, 2, "no key");
    assert!(err.contains("FIRESAFE_KEY_FILE"), "{err}");
}

/// A lost pack is not trusted by later backups: its data is read and stored again, and the new
/// snapshot restores byte for byte.
#[test]
fn a_backup_after_a_lost_pack_stores_the_data_again() {
    let (repo, share) = fixture(Backend::Local);
    let pack = a_data_pack(&repo);
    let lost = repo.get(&pack).len() as u64;
    repo.delete(&pack);
    let out = repo
        .cmd()
        .arg("backup")
        .arg(&share)
        .args(["--source", "admin"])
        .output()
        .expect("run");
    assert_success(&out, "backup after a lost pack");
    let json: serde_json::Value =
        serde_json::from_str(&repo.ok(&["snapshots", "--json"])).expect("json");
    let last = json
        .as_array()
        .expect("array")
        .last()
        .expect("snapshot")
        .clone();
    // Everything the lost pack held is needed by the share, so about as much is stored again.
    let stored = last["stats"]["bytes_stored"].as_u64().expect("stored");
    assert!(
        stored * 10 >= lost * 9,
        "lost {lost} bytes, stored {stored} again: {last:#}"
    );
    let to = repo.path("healed");
    assert_success(&repo.restore("latest", &to), "restore after healing");
    assert_same_tree(&share, &to.join("admin"));
    // The lost pack is still a finding (the old snapshots need it), named with what it affects.
    let out = repo.run(&["check"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("finding: {pack}: the pack is missing")),
        "{text}"
    );
    assert!(
        !text.contains(&format!(
            "affects snapshot {}",
            last["short_id"].as_str().expect("id")
        )),
        "{text}"
    );
}
