//! S3 credentials from the AWS shared credentials file, never printed.

use crate::support::*;

#[test]
fn s3_credentials_from_a_credentials_file() {
    if !backends().contains(&Backend::S3) {
        return;
    }
    let repo = Repo::new(Backend::S3);
    let access = std::env::var("AWS_ACCESS_KEY_ID").expect("key id");
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY").expect("secret");
    let file = repo.path("credentials");
    std::fs::write(
        &file,
        format!("[default]\naws_access_key_id = wrong\naws_secret_access_key = wrong\n\n[school]\naws_access_key_id = {access}\naws_secret_access_key = {secret}\n"),
    )
    .expect("write");
    let with_file = |profile: &str| {
        repo.cmd()
            .arg("snapshots")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env("AWS_SHARED_CREDENTIALS_FILE", &file)
            .env("AWS_PROFILE", profile)
            .output()
            .expect("run")
    };
    assert_success(
        &with_file("school"),
        "snapshots with credentials from the file",
    );

    let out = with_file("office");
    let err = assert_exit(&out, 2, "missing profile");
    assert!(err.contains("no [office] profile"), "{err}");

    let out = with_file("default");
    let err = assert_exit(&out, 2, "wrong keys in the file");
    assert!(
        err.contains("credentials were refused")
            || err.contains("InvalidAccessKeyId")
            || err.contains("403"),
        "{err}"
    );
    assert!(!err.contains(&secret), "the secret was printed");
}
