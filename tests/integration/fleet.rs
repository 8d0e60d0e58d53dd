//! The trust's view: schools write signed, encrypted status beacons after their runs, and
//! `fleet status` believes only what is signed, fresh and confirmed by the store.

use std::fs;
use std::path::Path;
use std::process::Output;

use crate::report::fs_in;
use crate::support::*;

/// A school: the shipped example with a site.toml naming the trust, after a first run.
fn school(name: &str, trust_recipient: Option<&str>) -> tempfile::TempDir {
    let dir = example();
    let mut site = format!("school = \"{name}\"\n");
    if let Some(r) = trust_recipient {
        site.push_str(&format!("trust_recipient = \"{r}\"\n"));
    }
    fs::write(dir.path().join("site.toml"), site).expect("site.toml");
    assert_success(
        &fs_in(dir.path(), &["run", "nightly", "--init"]),
        &format!("first run of {name}"),
    );
    dir
}

fn public_key(dir: &Path) -> String {
    let out = firesafe()
        .args(["beacon", "key", "--config-dir"])
        .arg(dir)
        .output()
        .expect("firesafe");
    assert_success(&out, "beacon key");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn fleet_status(fleet: &Path, json: bool) -> Output {
    let mut c = firesafe();
    c.args(["fleet", "status", "--fleet"]).arg(fleet);
    if json {
        c.arg("--json");
    }
    c.output().expect("firesafe")
}

#[test]
fn the_trust_believes_only_signed_fresh_beacons_the_store_confirms() {
    let work = tempfile::tempdir().expect("tempdir");
    let keygen = || {
        firesafe()
            .args(["fleet", "keygen", "--out"])
            .arg(work.path().join("trust.key"))
            .output()
            .expect("firesafe")
    };
    let out = keygen();
    assert_success(&out, "fleet keygen");
    let recipient = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(recipient.starts_with("age1"), "{recipient}");
    // An existing key is never replaced.
    assert_exit(&keygen(), 2, "a second keygen over the key");
    let text = fs::read_to_string(work.path().join("trust.key")).expect("trust key");
    let trust: age::x25519::Identity = text
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .expect("an identity")
        .parse()
        .expect("identity");
    assert_eq!(trust.to_public().to_string(), recipient);

    let names = [
        "Oak Primary",
        "Elm Academy",
        "Ash Juniors",
        "Birch High",
        "Yew Infants",
    ];
    let schools: Vec<tempfile::TempDir> = names
        .iter()
        .map(|n| school(n, (*n != "Yew Infants").then_some(recipient.as_str())))
        .collect();
    let mut fleet = String::from("trust = \"Riverside Academy Trust\"\nkey_file = \"trust.key\"\n");
    for (n, d) in names.iter().zip(&schools) {
        fleet.push_str(&format!(
            "\n[[school]]\nname = \"{n}\"\npublic_key = \"{}\"\n[school.targets.offsite]\nkind = \"path\"\npath = \"{}\"\n",
            public_key(d.path()),
            d.path().join("demo/offsite").display()
        ));
    }
    let fleet_file = work.path().join("fleet.toml");
    fs::write(&fleet_file, fleet).expect("fleet.toml");

    // Elm: the offsite copy's newest snapshot object is gone after the beacon was written.
    let elm = schools[1].path().join("demo/offsite/snapshots");
    for e in fs::read_dir(&elm).expect("snapshots") {
        fs::remove_file(e.expect("entry").path()).expect("remove");
    }
    // Ash: a beacon written by someone with write access to the bucket but not the school's
    // key: all green, signed with another key.
    let ash = schools[2].path().join("demo/offsite/beacon/nightly");
    let good = fs::read(&ash).expect("Ash's beacon");
    let forged = forge(&good, &trust, &recipient, None);
    fs::write(&ash, forged).expect("write forged beacon");
    // Birch: its own, signed beacon, but written 3 days ago and never renewed.
    let birch = schools[3].path();
    let key = firesafe::schedule::beacon::signing_key(&birch.join("beacon-signing.key"), false)
        .expect("Birch's key");
    let old_path = birch.join("demo/offsite/beacon/nightly");
    let old = forge(
        &fs::read(&old_path).expect("beacon"),
        &trust,
        &recipient,
        Some(&key),
    );
    fs::write(&old_path, old).expect("write stale beacon");

    let out = fleet_status(&fleet_file, false);
    let table = assert_exit(&out, 1, "fleet status with schools needing attention");
    let table = format!("{}{table}", String::from_utf8_lossy(&out.stdout));
    let line = |school: &str| {
        table
            .lines()
            .find(|l| l.starts_with(school))
            .unwrap_or_else(|| panic!("no line for {school}: {table}"))
            .to_string()
    };
    assert!(line("Oak Primary").contains("  OK  "), "{table}");
    let elm = line("Elm Academy");
    assert!(
        elm.contains("ACTION NEEDED") && elm.contains("contradicted by the store"),
        "{table}"
    );
    let ash = line("Ash Juniors");
    assert!(
        ash.contains("ACTION NEEDED") && ash.contains("not signed by the school's key"),
        "{table}"
    );
    let birch = line("Birch High");
    assert!(
        birch.contains("ACTION NEEDED")
            && birch.contains("its beacon is stale: written 3 days ago"),
        "{table}"
    );
    let yew = line("Yew Infants");
    assert!(
        yew.contains("ACTION NEEDED") && yew.contains("no status beacon"),
        "{table}"
    );
    assert!(table.contains("4 of 5 schools need attention"), "{table}");

    let json: serde_json::Value =
        serde_json::from_slice(&fleet_status(&fleet_file, true).stdout).expect("JSON");
    let lights: Vec<&str> = json
        .as_array()
        .expect("array")
        .iter()
        .map(|s| s["light"].as_str().expect("light"))
        .collect();
    assert_eq!(
        lights,
        [
            "OK",
            "ACTION-NEEDED",
            "ACTION-NEEDED",
            "ACTION-NEEDED",
            "ACTION-NEEDED"
        ]
    );
    // The board's report: every school on page one, then a page for each that needs attention.
    let out = firesafe()
        .args(["fleet", "report", "--fleet"])
        .arg(&fleet_file)
        .arg("--out")
        .arg(work.path().join("trust"))
        .output()
        .expect("firesafe");
    assert_success(&out, "fleet report");
    let pdf = work.path().join("trust.pdf");
    let page1 = crate::report::pdftotext(&pdf, Some((1, 1)));
    assert!(page1.contains("4 of 5 schools need attention"), "{page1}");
    for n in names {
        assert!(page1.contains(n), "{n} missing from page 1: {page1}");
    }
    let all = crate::report::pdftotext(&pdf, None);
    assert!(
        all.contains("Birch High") && all.contains("its beacon is stale"),
        "{all}"
    );
    let html = fs::read_to_string(work.path().join("trust.html")).expect("html");
    assert!(html.contains("Elm Academy"), "{html}");
    if crate::report::renderer("chromium") {
        let dom = crate::report::chromium_dom(&work.path().join("trust.html"));
        assert!(
            dom.contains("4 of 5 schools need attention") && dom.contains("Yew Infants"),
            "{dom}"
        );
    }
    // Metrics for the trust's monitoring.
    let metrics = work.path().join("fleet.prom");
    let out = firesafe()
        .args(["fleet", "status", "--fleet"])
        .arg(&fleet_file)
        .arg("--metrics")
        .arg(&metrics)
        .output()
        .expect("firesafe");
    assert_exit(&out, 1, "fleet status with metrics");
    let m = fs::read_to_string(&metrics).expect("metrics");
    assert!(
        m.contains("firesafe_fleet_school_ok{school=\"Oak Primary\"} 1")
            && m.contains("firesafe_fleet_school_ok{school=\"Ash Juniors\"} 0")
            && m.contains("firesafe_fleet_beacon_age_seconds{school=\"Birch High\"} 259"),
        "{m}"
    );

    // The beacon names no file of the shares.
    let oak = &json[0]["beacon"];
    assert_eq!(oak["school"], "Oak Primary");
    assert!(!oak.to_string().contains(".docx") && !oak.to_string().contains(".txt"));

    weekly_email(work.path(), &fleet_file);

    // The trust's key file, readable by others, is refused with the `chmod` to run.
    use std::os::unix::fs::PermissionsExt;
    let trust_key = work.path().join("trust.key");
    fs::set_permissions(&trust_key, fs::Permissions::from_mode(0o644)).expect("chmod");
    let text = assert_exit(
        &fleet_status(&fleet_file, false),
        2,
        "fleet status, key open",
    );
    assert!(
        text.contains(&format!("chmod 600 {}", trust_key.display())),
        "{text}"
    );
}

/// `fleet email`: the trust's IT team hears which schools need attention and why, through a
/// real SMTP server.
fn weekly_email(work: &Path, fleet_file: &Path) {
    let email = |args: &[&str]| {
        firesafe()
            .args(["fleet", "email", "--fleet"])
            .arg(fleet_file)
            .args(args)
            .env("FIRESAFE_SMTP_PASSWORD", "s3cret-smtp-pass")
            .output()
            .expect("firesafe")
    };
    let out = email(&[]);
    let err = assert_exit(&out, 2, "fleet email without [email]");
    assert!(err.contains("has no [email] section"), "{err}");
    let out = email(&["--dry-run"]);
    assert_success(&out, "fleet email --dry-run");
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        printed.starts_with(
            "Subject: Riverside Academy Trust backups: 4 of 5 schools need attention: "
        ) && printed.contains(", 1 more\n")
            && printed.contains("1 school is OK: Oak Primary."),
        "{printed}"
    );
    let Some(python) = crate::alerts::smtp_python() else {
        eprintln!("skipped the sent email: aiosmtpd is not installed (tests/run.sh installs it)");
        return;
    };
    let crate::alerts::SmtpServer {
        port,
        cert,
        mail,
        child: mut server,
    } = crate::alerts::smtp_server(work, python);
    let mut text = fs::read_to_string(fleet_file).expect("fleet.toml");
    text = text.replacen(
        "\n[[school]]",
        &format!(
            "\n[email]\nto = [\"trust-it@trust.example\"]\nfrom = \"firesafe@trust.example\"\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {port}\nsmtp_user = \"firesafe\"\nsmtp_ca_file = \"{}\"\n\n[[school]]",
            cert.display()
        ),
        1,
    );
    fs::write(fleet_file, text).expect("fleet.toml");
    let out = email(&[]);
    assert_success(&out, "fleet email");
    let messages = crate::alerts::stop_and_read(&mut server, &mail);
    assert_eq!(messages.len(), 1, "one email");
    let sent = &messages[0];
    let body = sent.replace("=\r\n", "").replace("=\n", "");
    assert!(sent.contains("To: trust-it@trust.example"), "{sent}");
    assert!(body.contains("4 of 5 schools need attention:"), "{body}");
    for (school, why) in [
        ("Elm Academy: ACTION NEEDED", "contradicted by the store"),
        (
            "Ash Juniors: ACTION NEEDED",
            "not signed by the school's key",
        ),
        ("Birch High: ACTION NEEDED", "its beacon is stale"),
        ("Yew Infants: ACTION NEEDED", "no status beacon"),
    ] {
        let at = body
            .find(school)
            .unwrap_or_else(|| panic!("{school} missing: {body}"));
        let next = body[at..].find("\n\n").map_or(body.len(), |n| at + n);
        assert!(
            body[at..next].contains(why),
            "{school}: no \"{why}\" in {}",
            &body[at..next]
        );
    }
    assert!(!sent.contains("s3cret-smtp-pass"), "the password leaked");
}

/// A beacon made from `good`'s content: signed with `key` (another key when `None`) and, with
/// the school's own key, dated three days back.
fn forge(
    good: &[u8],
    trust: &age::x25519::Identity,
    recipient: &str,
    key: Option<&ed25519_dalek::SigningKey>,
) -> Vec<u8> {
    use std::io::Read;
    let decryptor = age::Decryptor::new(good).expect("age");
    let mut plain = Vec::new();
    decryptor
        .decrypt(std::iter::once(trust as &dyn age::Identity))
        .expect("decrypt")
        .read_to_end(&mut plain)
        .expect("read");
    let signed: serde_json::Value = serde_json::from_slice(&plain).expect("signed");
    let mut beacon: firesafe::schedule::beacon::Beacon =
        serde_json::from_str(signed["payload"].as_str().expect("payload")).expect("beacon");
    let other = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let key = match key {
        Some(k) => {
            beacon.written -= chrono::Duration::days(3);
            k
        }
        None => {
            for s in &mut beacon.shares {
                s.verdict = "OK".into();
                s.reasons.clear();
            }
            &other
        }
    };
    firesafe::schedule::beacon::seal(&beacon, key, recipient).expect("seal")
}
