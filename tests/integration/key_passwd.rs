//! `key passwd`: a passphrase envelope made with an older, costlier scrypt work factor (2^18,
//! as firesafe made them before 2^17) is listed with its factor and still opens, and `key
//! passwd` moves it to the current factor without ever losing access, on one copy or on every
//! copy of a schedule.

use std::path::Path;

use firesafe::format::crypto::SCRYPT_LOG_N;
use firesafe::id::Id;

use crate::support::*;

const OLD: &str = "old horse battery staple";
const NEW: &str = "new horse battery staple";

/// The passphrase envelope `envelope` (for `passphrase`) encrypted again with scrypt work
/// factor `log_n`: the same secrets, as a firesafe of another work factor would have made it.
fn at_work_factor(envelope: &[u8], passphrase: &str, log_n: u8) -> Vec<u8> {
    use std::io::{Read, Write};
    let secret = age::secrecy::SecretString::from(passphrase.to_string());
    let identity = age::scrypt::Identity::new(secret.clone());
    let mut plaintext = Vec::new();
    age::Decryptor::new_buffered(envelope)
        .expect("an age file")
        .decrypt(std::iter::once(&identity as &dyn age::Identity))
        .expect("the passphrase opens it")
        .read_to_end(&mut plaintext)
        .expect("read");
    let mut recipient = age::scrypt::Recipient::new(secret);
    recipient.set_work_factor(log_n);
    let mut out = Vec::new();
    let mut w = age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
        .expect("one recipient")
        .wrap_output(&mut out)
        .expect("wrap");
    w.write_all(&plaintext).expect("write");
    w.finish().expect("finish");
    out
}

/// Replaces the one passphrase envelope in each of `copies` (`keys/` directories holding the
/// same envelope) by the same envelope at work factor 2^18, with the same info. Returns its id.
fn make_it_old(copies: &[&Path]) -> Id {
    let keys = copies[0];
    let (id, bytes) = std::fs::read_dir(keys)
        .expect("keys")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_none())
        .map(|p| (p.clone(), std::fs::read(&p).expect("read")))
        .find(|(_, b)| firesafe::format::crypto::scrypt_log_n(b).is_some())
        .expect("a passphrase envelope");
    let name = id.file_name().expect("name").to_string_lossy().into_owned();
    let old = at_work_factor(&bytes, OLD, 18);
    assert_eq!(firesafe::format::crypto::scrypt_log_n(&old), Some(18));
    let old_id = Id::of_object(&old);
    for keys in copies {
        let info = std::fs::read(keys.join(format!("{name}.info"))).expect("info");
        std::fs::write(keys.join(old_id.to_string()), &old).expect("write");
        std::fs::write(keys.join(format!("{old_id}.info")), info).expect("write info");
        std::fs::remove_file(keys.join(&name)).expect("rm");
        std::fs::remove_file(keys.join(format!("{name}.info"))).expect("rm info");
    }
    old_id
}

/// `snapshots` on `repo` with passphrase `passphrase` and no key file: whether it opens.
fn opens_with(repo: &Path, passphrase: &str) -> bool {
    firesafe()
        .arg("--repo")
        .arg(repo)
        .arg("snapshots")
        .env("FIRESAFE_PASSPHRASE", passphrase)
        .output()
        .expect("run")
        .status
        .success()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `key list --json` of one copy.
fn listed(repo: &Repo) -> Vec<serde_json::Value> {
    let json: serde_json::Value =
        serde_json::from_str(&repo.ok(&["key", "list", "--json"])).expect("json");
    json.as_array().expect("array").clone()
}

#[test]
fn key_passwd_moves_an_old_passphrase_envelope_to_the_current_work_factor() {
    assert_eq!(SCRYPT_LOG_N, 17);
    let repo = Repo::new(Backend::Local);
    let out = repo
        .cmd()
        .args(["key", "add", "--passphrase", "--label", "head"])
        .env("FIRESAFE_NEW_PASSPHRASE", OLD)
        .output()
        .expect("run");
    assert_success(&out, "key add --passphrase");
    let keys = Path::new(&repo.url).join("keys");
    let old = make_it_old(&[&keys]);
    let short = &old.to_string()[..8];

    // Listed with its factor and what to do; it still opens.
    let list = repo.ok(&["key", "list"]);
    let line = list.lines().find(|l| l.contains("head")).expect("listed");
    assert!(
        line.contains(&format!(
            "scrypt 2^18 (256 MiB to open; `firesafe key passwd {short}` moves it to 2^17)"
        )),
        "{list}"
    );
    let entry = listed(&repo)
        .into_iter()
        .find(|k| k["label"] == "head")
        .expect("head");
    assert_eq!(entry["scrypt_log_n"], 18);
    let url = Path::new(&repo.url);
    assert!(opens_with(url, OLD), "the 2^18 envelope does not open");

    // A key file's envelope is refused, on one line, changing nothing.
    let x25519 = listed(&repo)
        .into_iter()
        .find(|k| k["kind"] == "x25519")
        .expect("the key file's envelope");
    let x_id = x25519["id"].as_str().expect("id")[..8].to_string();
    let out = repo
        .cmd()
        .args(["key", "passwd", &x_id])
        .env("FIRESAFE_NEW_PASSPHRASE", NEW)
        .output()
        .expect("run");
    let err = assert_exit(&out, 2, "key passwd of an x25519 key");
    assert!(
        err.contains("is not a passphrase")
            && err.contains("key remove")
            && err.lines().count() == 1,
        "{err}"
    );
    // A variable named but not set is refused too.
    let out = repo
        .cmd()
        .args([
            "key",
            "passwd",
            short,
            "--new-passphrase-env",
            "NO_SUCH_VAR",
        ])
        .env_remove("NO_SUCH_VAR")
        .output()
        .expect("run");
    let err = assert_exit(&out, 2, "key passwd with an unset variable");
    assert!(err.contains("NO_SUCH_VAR is not set"), "{err}");
    assert_eq!(listed(&repo).len(), 2, "a refused passwd changed the keys");

    // Opened with the old passphrase alone, moved to a new one.
    let out = firesafe()
        .arg("--repo")
        .arg(url)
        .args(["key", "passwd", short, "--new-passphrase-env", "NEWPASS"])
        .env("FIRESAFE_PASSPHRASE", OLD)
        .env("NEWPASS", NEW)
        .output()
        .expect("run");
    assert_success(&out, "key passwd");
    assert!(
        stdout(&out).contains(&format!(
            "moved passphrase key {short} from scrypt 2^18 to 2^17"
        )),
        "{}",
        stdout(&out)
    );
    let keys_now = listed(&repo);
    assert_eq!(keys_now.len(), 2, "{keys_now:?}");
    assert!(
        keys_now.iter().all(|k| k["id"] != old.to_string()),
        "the old envelope is still listed: {keys_now:?}"
    );
    let moved = keys_now
        .iter()
        .find(|k| k["kind"] == "passphrase")
        .expect("the new passphrase envelope");
    assert_eq!(moved["scrypt_log_n"], 17);
    assert_eq!(moved["label"], "head");
    assert!(url.join(format!("keys-removed/{old}")).exists());
    assert!(!keys.join(old.to_string()).exists());
    assert!(opens_with(url, NEW), "the new passphrase does not open");
    assert!(!opens_with(url, OLD), "the old passphrase still opens");
    let list = repo.ok(&["key", "list"]);
    let line = list.lines().find(|l| l.contains("head")).expect("listed");
    assert!(line.ends_with("  scrypt 2^17"), "{list}");

    // The same passphrase kept: a new envelope again, still opened by it.
    let new_id = moved["id"].as_str().expect("id").to_string();
    let out = firesafe()
        .arg("--repo")
        .arg(url)
        .args(["key", "passwd", &new_id[..8]])
        .args(["--new-passphrase-env", "FIRESAFE_PASSPHRASE"])
        .env("FIRESAFE_PASSPHRASE", NEW)
        .output()
        .expect("run");
    assert_success(&out, "key passwd keeping the passphrase");
    assert!(listed(&repo).iter().all(|k| k["id"] != new_id.as_str()));
    assert!(opens_with(url, NEW), "the kept passphrase does not open");
}

#[test]
fn key_passwd_with_a_schedule_moves_every_copy() {
    let dir = example();
    let d = dir.path();
    let in_example = |args: &[&str], env: &[(&str, &str)]| {
        let mut c = firesafe();
        c.env("FIRESAFE_STATE_DIR", d.join("state"))
            .args(args)
            .arg("--config-dir")
            .arg(d);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().expect("run firesafe")
    };
    assert_success(&in_example(&["run", "nightly", "--init"], &[]), "first run");
    let add = ["key", "add", "--schedule", "nightly", "--passphrase"];
    let out = in_example(
        &[&add[..], &["--label", "head"]].concat(),
        &[("FIRESAFE_NEW_PASSPHRASE", OLD)],
    );
    assert_success(&out, "key add --passphrase --schedule");
    let copies = [d.join("demo/nas"), d.join("demo/offsite")];
    let old = make_it_old(&[&copies[0].join("keys"), &copies[1].join("keys")]);
    let short = &old.to_string()[..8];
    let list = stdout(&in_example(&["key", "list", "--schedule", "nightly"], &[]));
    let line = list.lines().find(|l| l.contains("head")).expect("listed");
    assert!(
        line.contains("nas, offsite")
            && line.contains(&format!(
                "scrypt 2^18 (256 MiB to open; `firesafe key passwd --schedule nightly {short}` moves it to 2^17)"
            )),
        "{list}"
    );
    for copy in &copies {
        assert!(
            opens_with(copy, OLD),
            "2^18 does not open {}",
            copy.display()
        );
    }

    // status advises moving it, without changing a verdict.
    let status = |what: &str| {
        let out = in_example(&["status", "nightly", "--json"], &[]);
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect(what);
        json[0]["key_notices"].clone()
    };
    let notices = status("status before key passwd");
    assert_eq!(
        notices,
        serde_json::json!([format!(
            "key {short} (\"head\", passphrase) has scrypt work factor 2^18 (256 MiB and longer to open than the 2^17 new keys get): `firesafe key passwd --schedule nightly {short}` moves it"
        )]),
        "status before key passwd"
    );
    let text = stdout(&in_example(&["status", "nightly"], &[]));
    assert!(text.contains(&format!("  key: key {short} (")), "{text}");

    let out = in_example(
        &["key", "passwd", "--schedule", "nightly", short],
        &[("FIRESAFE_NEW_PASSPHRASE", NEW)],
    );
    assert_success(&out, "key passwd --schedule");
    assert_eq!(status("status after key passwd"), serde_json::json!([]));
    assert!(
        stdout(&out).contains("from scrypt 2^18 to 2^17")
            && stdout(&out).contains("on nas, offsite"),
        "{}",
        stdout(&out)
    );
    let out = in_example(&["key", "list", "--schedule", "nightly", "--json"], &[]);
    assert_success(&out, "key list --schedule --json");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let keys = json["keys"].as_array().expect("keys");
    assert!(keys.iter().all(|k| k["id"] != old.to_string()), "{json}");
    let moved = keys
        .iter()
        .find(|k| k["kind"] == "passphrase")
        .expect("the new passphrase envelope");
    assert_eq!(moved["scrypt_log_n"], 17, "{json}");
    assert_eq!(
        moved["copies"],
        serde_json::json!(["nas", "offsite"]),
        "{json}"
    );
    for copy in &copies {
        assert!(
            opens_with(copy, NEW),
            "the new passphrase does not open {}",
            copy.display()
        );
        assert!(
            !opens_with(copy, OLD),
            "the old passphrase still opens {}",
            copy.display()
        );
        assert!(copy.join(format!("keys-removed/{old}")).exists());
    }
    let status = in_example(&["status", "nightly", "--json"], &[]);
    assert!(
        !stdout(&status).contains("keys differ"),
        "{}",
        stdout(&status)
    );
    assert_eq!(status.status.code(), Some(0), "{}", stdout(&status));
}

#[test]
fn key_passwd_help_names_the_current_work_factor() {
    let out = firesafe()
        .args(["key", "passwd", "--help"])
        .output()
        .expect("run");
    assert_success(&out, "key passwd --help");
    let text = stdout(&out);
    assert!(
        text.contains(&format!("scrypt work factor 2^{SCRYPT_LOG_N} (128 MiB")),
        "{text}"
    );
    let out = firesafe().args(["key", "--help"]).output().expect("run");
    assert!(
        stdout(&out).contains("firesafe key passwd"),
        "{}",
        stdout(&out)
    );
}
