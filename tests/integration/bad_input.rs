//! Bad input gets a clear one-line error and exit status 2, and changes nothing.

use std::time::{Duration, Instant};

use crate::support::*;

fn one_line(err: &str) {
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "error is not one line: {err}"
    );
    assert!(err.starts_with("firesafe: error: "), "{err}");
}

#[test]
fn missing_source_path() {
    let repo = Repo::new(Backend::Local);
    let out = repo.run(&["backup", "/no/such/share", "--source", "x"]);
    let err = assert_exit(&out, 2, "missing source");
    one_line(&err);
    assert!(
        err.contains("/no/such/share") && err.contains("does not exist"),
        "{err}"
    );
    assert!(repo.keys_under("snapshots").is_empty());
}

#[test]
fn unknown_snapshot_id() {
    let repo = Repo::new(Backend::Local);
    let share = repo.path("s");
    write(&share.join("a"), b"a");
    repo.backup(&share, "s");
    for spec in ["deadbeef", "latest --source nope", "not-hex!"] {
        let mut args = vec!["restore"];
        args.extend(spec.split(' '));
        let to = repo.path("to");
        let to_s = to.to_str().expect("utf8");
        args.extend(["--to", to_s]);
        let err = assert_exit(&repo.run(&args), 2, spec);
        one_line(&err);
        assert!(err.contains("snapshot"), "{err}");
    }
    let err = assert_exit(
        &repo.run(&["ls", "latest", "no/such/path"]),
        2,
        "unknown path",
    );
    one_line(&err);
    assert!(err.contains("no/such/path is not in snapshot"), "{err}");
}

#[test]
fn repository_that_does_not_exist() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("k");
    std::fs::write(&key, firesafe::format::crypto::generate_identity_file().0).expect("key");
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod key");
    let missing = dir.path().join("nowhere");
    let out = firesafe()
        .arg("--repo")
        .arg(&missing)
        .arg("snapshots")
        .env("FIRESAFE_KEY_FILE", &key)
        .output()
        .expect("run");
    let err = assert_exit(&out, 2, "missing repo dir");
    one_line(&err);
    assert!(err.contains("does not exist"), "{err}");
    assert!(
        !missing.exists(),
        "a read command created the repository directory"
    );

    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    let out = firesafe()
        .arg("--repo")
        .arg(&empty)
        .arg("snapshots")
        .env("FIRESAFE_KEY_FILE", &key)
        .output()
        .expect("run");
    let err = assert_exit(&out, 2, "empty dir");
    one_line(&err);
    assert!(
        err.contains("holds no firesafe repository") && err.contains("init"),
        "{err}"
    );

    let out = firesafe().arg("snapshots").output().expect("run");
    let err = assert_exit(&out, 2, "no --repo");
    assert!(err.contains("--repo"), "{err}");
}

#[test]
fn init_twice_changes_nothing() {
    let repo = Repo::new(Backend::Local);
    let before = repo.objects();
    let out = repo
        .cmd()
        .args(["init", "--generate-key"])
        .arg(repo.path("second.key"))
        .output()
        .expect("run");
    let err = assert_exit(&out, 2, "second init");
    one_line(&err);
    assert!(err.contains("already holds a firesafe repository"), "{err}");
    assert_eq!(repo.objects(), before);
    assert!(
        !repo.path("second.key").exists(),
        "a key file was generated for nothing"
    );

    // An existing key file is never overwritten.
    let other = Repo::new(Backend::Local);
    let key_before = std::fs::read(&repo.key).expect("read");
    let fresh = other.path("fresh");
    let out = firesafe()
        .arg("--repo")
        .arg(&fresh)
        .args(["init", "--generate-key"])
        .arg(&repo.key)
        .output()
        .expect("run");
    let err = assert_exit(&out, 2, "init over an existing key file");
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(std::fs::read(&repo.key).expect("read"), key_before);
}

#[test]
fn unreachable_endpoint_names_the_target() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("k");
    std::fs::write(&key, firesafe::format::crypto::generate_identity_file().0).expect("key");
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod key");
    let t = Instant::now();
    let out = firesafe()
        .args(["--repo", "s3://school-dr/firesafe", "snapshots"])
        .env("FIRESAFE_KEY_FILE", &key)
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env_remove("AWS_ENDPOINT")
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env(
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        )
        .output()
        .expect("run");
    let err = assert_exit(&out, 2, "unreachable endpoint");
    one_line(&err);
    assert!(
        err.contains("target \"s3://school-dr/firesafe\": cannot reach http://127.0.0.1:9 (connection refused)")
            && err.contains("check the endpoint"),
        "what failed and what to do come first: {err}"
    );
    assert!(
        !err.contains("wJalrXUtnFEMI"),
        "the secret key was printed: {err}"
    );
    assert!(
        t.elapsed() < Duration::from_secs(60),
        "gave up only after {:?}",
        t.elapsed()
    );
}

#[test]
fn bad_arguments() {
    let out = firesafe()
        .args(["--repo", "ftp://x/y", "snapshots"])
        .output()
        .expect("run");
    let err = assert_exit(&out, 2, "bad scheme");
    assert!(err.contains("only local paths and s3://"), "{err}");
    let out = firesafe()
        .args(["--repo", "/tmp/x", "backup", "/tmp"])
        .output()
        .expect("run");
    assert_exit(&out, 2, "backup without --source");
    let out = firesafe().args(["frobnicate"]).output().expect("run");
    assert_exit(&out, 2, "unknown command");
}
