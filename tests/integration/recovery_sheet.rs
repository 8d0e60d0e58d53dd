//! `firesafe recovery-sheet`: the printed sheet is enough to restore every share onto a new
//! machine. The test reads the commands off the PDF (lines starting with `$ `), runs them in an
//! empty directory holding only the key file, and compares what they restore with the shares.
//! The key is on the sheet only when asked for.

use std::fs;
use std::process::Command;

use chrono::{Duration, Utc};

use crate::report::{chromium_dom, example_with_site, fs_in, pdftoppm, pdftotext, renderer};
use crate::support::*;

/// The commands printed on the sheet: each `$ ` line, joined with the lines it continues onto
/// (a trailing ` \`).
fn commands(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(cmd) = line.trim_start().strip_prefix("$ ") else {
            continue;
        };
        let mut cmd = cmd.trim_end().to_string();
        while let Some(head) = cmd.strip_suffix('\\') {
            let next = lines.next().expect("a continued command goes on");
            cmd = format!("{} {}", head.trim_end(), next.trim());
        }
        out.push(cmd);
    }
    out
}

#[test]
fn the_sheet_restores_every_share_on_a_new_machine() {
    let dir = example_with_site();
    let d = dir.path();
    let state = firesafe::store::state::StateDir::open(&d.join("state")).expect("state");
    let now = Utc::now();
    state
        .append_drill(&firesafe::store::records::DrillRecord {
            id: "d1".into(),
            schedule: "nightly".into(),
            kind: firesafe::store::records::DrillKind::Sample,
            source: "curriculum".into(),
            target: "nas".into(),
            snapshot: "0".repeat(64),
            snapshot_taken: now - Duration::minutes(3),
            started: now - Duration::minutes(2),
            finished: now - Duration::minutes(1),
            seed: Some(7),
            files: 20,
            bytes: 1000,
            restore_seconds: 1.0,
            bytes_per_second: 1000.0,
            share_bytes: 5000,
            estimated_recovery_seconds: 5.0,
            rto_hours: None,
            mismatches: Vec::new(),
            changed_since: 0,
            live_identical: 20,
            key: "schedule key".into(),
            result: "pass".parse().unwrap(),
            reason: String::new(),
        })
        .expect("drill");
    let out_dir = d.join("out");
    fs::create_dir(&out_dir).expect("mkdir");
    let out = fs_in(
        d,
        &[
            "recovery-sheet",
            "nightly",
            "--out",
            out_dir.join("sheet").to_str().expect("utf-8"),
        ],
    );
    assert_success(&out, "recovery-sheet");
    let pdf = out_dir.join("sheet.pdf");
    let html = fs::read_to_string(out_dir.join("sheet.html")).expect("html");
    let key_text = fs::read_to_string(d.join("demo/firesafe.key")).expect("key");
    let public = key_text
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .expect("public key comment");
    let repo_id: serde_json::Value =
        serde_json::from_slice(&fs::read(d.join("demo/nas/config")).expect("config"))
            .expect("json");
    let repo_id = repo_id["id"].as_str().expect("id").to_string();

    // The text to follow: from the printed PDF when poppler is there, else from the HTML.
    let text = if renderer("pdftotext") && renderer("pdftoppm") {
        let pages = pdftoppm(&pdf, &out_dir.join("png"));
        assert!((1..=2).contains(&pages.len()), "{} pages", pages.len());
        pdftotext(&pdf, None)
    } else {
        html.replace("&quot;", "\"")
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
    };
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    for want in [
        "Hollybank Primary School",
        "Sam Okafor",
        "01632 960 123",
        "is NOT on this sheet",
        public,
        &repo_id,
        "offsite",
        &d.join("demo/offsite").display().to_string(),
        "NONE RECORDED",
        // In the middle of an incident: the technician's steps, in order.
        "If you suspect ransomware",
        "1. Delete nothing: no files, no backups, no firesafe prune.",
        "2. firesafe status, then firesafe suspect list",
        "3. firesafe diff SHARE@clean latest --schedule nightly.",
        "4. firesafe restore SHARE@clean --schedule nightly --to restored-SHARE: a new folder, never over the share.",
        "5. firesafe suspect confirm ID --note \"...\" (an attack) or accept ID --note \"...\" (a false alarm).",
        "6. Report the breach as the school's policy says",
    ] {
        assert!(flat.contains(want), "the sheet lacks {want:?}:\n{text}");
    }
    assert!(!text.contains("AGE-SECRET-KEY") && !html.contains("AGE-SECRET-KEY"));
    // They are run on the server, not typed on the new machine: none is a `$ ` command.
    assert!(
        !commands(&text).iter().any(|c| c.contains("suspect")),
        "{text}"
    );

    // Follow it: a new machine with only the key file.
    let cmds = commands(&text);
    assert!(
        cmds.iter()
            .any(|c| c.contains(" restore latest --source staff ")),
        "{cmds:?}"
    );
    let fresh = tempfile::tempdir().expect("tempdir");
    fs::copy(
        d.join("demo/firesafe.key"),
        fresh.path().join("firesafe.key"),
    )
    .expect("copy key");
    let bin = env!("CARGO_BIN_EXE_firesafe");
    let script: Vec<String> = std::iter::once("set -eu".to_string())
        .chain(cmds.iter().map(|c| match c.strip_prefix("firesafe ") {
            Some(rest) => format!("{bin} {rest}"),
            None => c.clone(),
        }))
        .collect();
    let out = Command::new("bash")
        .arg("-c")
        .arg(script.join("\n"))
        .current_dir(fresh.path())
        .env_remove("FIRESAFE_KEY_FILE")
        .env_remove("FIRESAFE_REPO")
        .env_remove("FIRESAFE_PASSPHRASE")
        .output()
        .expect("bash");
    assert_success(
        &out,
        &format!("the sheet's commands:\n{}", script.join("\n")),
    );
    for share in ["curriculum", "admin", "staff"] {
        assert_same_tree(
            &d.join("demo/shares").join(share),
            &fresh.path().join("restored").join(share).join(share),
        );
    }

    if renderer("chromium") {
        let dom = chromium_dom(&out_dir.join("sheet.html"));
        assert!(dom.contains("restore latest --source curriculum"), "{dom}");
    }

    // Asked for deliberately, the key is printed, as text and as a QR code.
    let out = fs_in(
        d,
        &[
            "recovery-sheet",
            "--out",
            out_dir.join("with-key.pdf").to_str().expect("utf-8"),
            "--include-key",
            d.join("demo/firesafe.key").to_str().expect("utf-8"),
        ],
    );
    assert_success(&out, "recovery-sheet --include-key");
    let secret = key_text
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .expect("secret line");
    let html = fs::read_to_string(out_dir.join("with-key.html")).expect("html");
    assert!(html.contains(secret) && html.contains("class=\"qr\"") && html.contains("<svg"));
    assert!(
        html.contains("this key opens the repository of schedule nightly"),
        "{html}"
    );
    if renderer("pdftotext") {
        let text = pdftotext(&out_dir.join("with-key.pdf"), None);
        assert!(text.contains(secret), "{text}");
        assert!(!text.contains("NOT on this sheet"));
    }
}

#[test]
fn commands_are_read_across_continued_lines() {
    let text = "Steps\n$ firesafe --version\n$ firesafe --repo /a/b \\\n    restore latest --source x \\\n    --to restored/x\nafter\n";
    assert_eq!(
        commands(text),
        [
            "firesafe --version",
            "firesafe --repo /a/b restore latest --source x --to restored/x"
        ]
    );
}

/// Runs the sheet's commands with bash in `dir` (the binary in place of `firesafe`, each
/// `(printed, typed)` word replaced as the person following the sheet would), with no firesafe
/// or storage variables from the test's environment: only what the commands set.
fn follow(cmds: &[String], dir: &std::path::Path, typed: &[(&str, &str)]) {
    let bin = env!("CARGO_BIN_EXE_firesafe");
    let script: Vec<String> = std::iter::once("set -eu".to_string())
        .chain(cmds.iter().map(|c| {
            let c = typed
                .iter()
                .fold(c.clone(), |c, (printed, typed)| c.replace(printed, typed));
            match c.strip_prefix("firesafe ") {
                Some(rest) => format!("{bin} {rest}"),
                None => c,
            }
        }))
        .collect();
    let out = Command::new("bash")
        .arg("-c")
        .arg(script.join("\n"))
        .current_dir(dir)
        .env_remove("FIRESAFE_KEY_FILE")
        .env_remove("FIRESAFE_REPO")
        .env_remove("FIRESAFE_PASSPHRASE")
        .env_remove("FIRESAFE_CONFIG_DIR")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT")
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_ALLOW_HTTP")
        .output()
        .expect("bash");
    assert_success(
        &out,
        &format!("the sheet's commands:\n{}", script.join("\n")),
    );
}

/// After a fire: the offsite copy did not answer when the sheet was printed, yet the sheet names
/// it (marked NOT CHECKED, in red), lists every key, says what site.toml does not say, and its
/// commands restore every share from a copy of the offsite target and the recovery key alone,
/// with everything else (the NAS, the schedule's key, the shares) gone.
#[test]
fn after_a_fire_the_sheet_restores_from_the_offsite_copy_even_when_it_did_not_answer() {
    let dir = example_with_site();
    let d = dir.path();
    // A recovery key, added to the repository and copied to the offsite target by a run.
    let recovery = d.join("recovery.key");
    let out = firesafe()
        .args(["--repo"])
        .arg(d.join("demo/nas"))
        .args([
            "key",
            "add",
            "--label",
            "recovery key (fire safe)",
            "--generate",
        ])
        .arg(&recovery)
        .env("FIRESAFE_KEY_FILE", d.join("demo/firesafe.key"))
        .output()
        .expect("key add");
    assert_success(&out, "key add --generate");
    assert_success(&fs_in(d, &["run", "nightly"]), "second run");
    let recovery_public = fs::read_to_string(&recovery)
        .expect("recovery key")
        .lines()
        .find_map(|l| l.strip_prefix("# public key: ").map(String::from))
        .expect("public key comment");
    let schedule_public = fs::read_to_string(d.join("demo/firesafe.key"))
        .expect("key")
        .lines()
        .find_map(|l| l.strip_prefix("# public key: ").map(String::from))
        .expect("public key comment");

    // Printed while the offsite copy does not answer.
    let offsite = d.join("demo/offsite");
    fs::rename(&offsite, d.join("offsite-away")).expect("rename");
    let out_dir = d.join("out");
    fs::create_dir(&out_dir).expect("mkdir");
    let out = fs_in(
        d,
        &[
            "recovery-sheet",
            "--out",
            out_dir.join("sheet").to_str().expect("utf-8"),
        ],
    );
    assert_success(&out, "recovery-sheet with the offsite copy away");
    fs::rename(d.join("offsite-away"), &offsite).expect("rename back");

    let html = fs::read_to_string(out_dir.join("sheet.html")).expect("html");
    let text = if renderer("pdftotext") && renderer("pdftoppm") {
        let pages = pdftoppm(&out_dir.join("sheet.pdf"), &out_dir.join("png"));
        assert!((1..=2).contains(&pages.len()), "{} pages", pages.len());
        pdftotext(&out_dir.join("sheet.pdf"), None)
    } else {
        html.replace("&quot;", "\"").replace("&amp;", "&")
    };
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let offsite_place = offsite.display().to_string();
    for want in [
        "After a fire: restoring onto a new machine from offsite, the offsite copy",
        "NOT CHECKED: could not be reached when this sheet was printed",
        &format!("offsite ({offsite_place}) is still the copy to restore from"),
        "recovery key (fire safe)",
        &recovery_public,
        "schedule nightly",
        &schedule_public,
        "Not filled in: where the recovery key is kept (set recovery_key_kept in site.toml)",
        "Not filled in: where the storage credentials are kept (set credentials_kept in site.toml)",
        "Not filled in: where to get firesafe (set firesafe_source in site.toml)",
        "docs/FORMAT.md",
    ] {
        assert!(flat.contains(want), "the sheet lacks {want:?}:\n{text}");
    }
    let red = html.find("status red").expect("a red status in the HTML");
    assert!(
        html[red..].contains("NOT CHECKED: could not be reached"),
        "{html}"
    );
    let cmds = commands(&text);
    let restores: Vec<&String> = cmds.iter().filter(|c| c.contains(" restore ")).collect();
    assert_eq!(restores.len(), 3, "{cmds:?}");
    let nas = d.join("demo/nas").display().to_string();
    for c in &cmds {
        assert!(!c.contains(&nas), "a site-loss command uses the NAS: {c}");
        if c.contains("--repo") {
            assert!(c.contains(&format!("--repo {offsite_place} ")), "{c}");
        }
    }

    // The fire: everything in demo/ (the NAS, the schedule's key, the shares) is gone; a new
    // machine has an empty folder, the recovery key and a copy of the offsite target.
    let burnt = d.join("burnt");
    fs::rename(d.join("demo"), &burnt).expect("burn");
    let fresh = tempfile::tempdir().expect("tempdir");
    let copy = tempfile::tempdir().expect("tempdir");
    let status = Command::new("cp")
        .arg("-a")
        .arg(burnt.join("offsite"))
        .arg(copy.path().join("offsite"))
        .status()
        .expect("cp");
    assert!(status.success());
    fs::copy(&recovery, fresh.path().join("firesafe.key")).expect("copy key");
    let copy = copy.path().join("offsite");
    follow(
        &cmds,
        fresh.path(),
        &[(&offsite_place, copy.to_str().expect("utf-8"))],
    );
    for share in ["curriculum", "admin", "staff"] {
        assert_same_tree(
            &burnt.join("shares").join(share),
            &fresh.path().join("restored").join(share).join(share),
        );
    }
}

/// Filled in, site.toml's answers are on the sheet; `config check` warns until they are.
#[test]
fn the_sheet_says_where_the_credentials_key_and_firesafe_are_kept() {
    let dir = example_with_site();
    let d = dir.path();
    let check = firesafe()
        .args(["config", "check", "--config-dir"])
        .arg(d)
        .output()
        .expect("config check");
    assert_success(&check, "config check without the kept fields");
    let said = String::from_utf8_lossy(&check.stdout);
    for field in ["credentials_kept", "recovery_key_kept", "firesafe_source"] {
        assert!(
            said.contains(&format!("warning: {field} is not set")),
            "{said}"
        );
    }
    // The shipped site.toml's commented lines, uncommented.
    let site = fs::read_to_string(d.join("site.toml"))
        .expect("site")
        .replace("# credentials_kept = ", "credentials_kept = ")
        .replace("# recovery_key_kept = ", "recovery_key_kept = ")
        .replace("# firesafe_source = ", "firesafe_source = ");
    fs::write(d.join("site.toml"), site).expect("write");
    let check = firesafe()
        .args(["config", "check", "--config-dir"])
        .arg(d)
        .output()
        .expect("config check");
    assert_success(&check, "config check with the kept fields");
    assert!(!String::from_utf8_lossy(&check.stdout).contains("warning"));
    let out_dir = d.join("out");
    fs::create_dir(&out_dir).expect("mkdir");
    let out = fs_in(
        d,
        &[
            "recovery-sheet",
            "--out",
            out_dir.join("sheet").to_str().expect("utf-8"),
        ],
    );
    assert_success(&out, "recovery-sheet");
    let html = fs::read_to_string(out_dir.join("sheet.html")).expect("html");
    for want in [
        "Sealed envelope in the fire safe: NAS login and storage access key",
        "It is kept: Encrypted USB stick in the fire safe, labelled FIRESAFE RECOVERY KEY",
        "The same USB stick: firesafe's source and a built copy",
    ] {
        assert!(html.contains(want), "the sheet lacks {want:?}:\n{html}");
    }
    assert!(!html.contains("Not filled in"), "{html}");
    assert!(!html.contains("NOT CHECKED"), "{html}");
}

/// The same on S3: the offsite copy refuses the printing machine's credentials, yet the sheet
/// gives its endpoint, region, bucket and prefix and the credential variables' names (never
/// their values), and its commands, with the access key typed in, restore every share.
#[test]
fn after_a_fire_the_sheet_restores_from_an_s3_copy_it_could_not_check() {
    if !backends().contains(&Backend::S3) {
        return;
    }
    let dir = example_with_site();
    let d = dir.path();
    let env = |v: &str| std::env::var(v).unwrap_or_else(|_| panic!("{v} is not set"));
    let (bucket, endpoint) = (env("AWS_BUCKET"), env("AWS_ENDPOINT_URL"));
    let (key_id, secret) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"));
    let region = env("AWS_REGION");
    let prefix = format!("sheet-{:016x}", rand::random::<u64>());
    fs::write(
        d.join("targets/offsite.toml"),
        format!(
            "kind = \"s3\"\nlocation = \"offsite\"\nmedium = \"object-storage\"\nbucket = \"{bucket}\"\nprefix = \"{prefix}\"\n"
        ),
    )
    .expect("write");
    assert_success(&fs_in(d, &["run", "nightly", "--init"]), "run to S3");
    let recovery = d.join("recovery.key");
    let out = firesafe()
        .args(["--repo"])
        .arg(d.join("demo/nas"))
        .args([
            "key",
            "add",
            "--label",
            "recovery key (fire safe)",
            "--generate",
        ])
        .arg(&recovery)
        .env("FIRESAFE_KEY_FILE", d.join("demo/firesafe.key"))
        .output()
        .expect("key add");
    assert_success(&out, "key add --generate");
    assert_success(&fs_in(d, &["run", "nightly"]), "second run");

    let out_dir = d.join("out");
    fs::create_dir(&out_dir).expect("mkdir");
    let out = firesafe()
        .args(["recovery-sheet", "--out"])
        .arg(out_dir.join("sheet"))
        .arg("--config-dir")
        .arg(d)
        .arg("--state-dir")
        .arg(d.join("state"))
        .env("AWS_SECRET_ACCESS_KEY", "not-the-secret")
        .output()
        .expect("recovery-sheet");
    assert_success(&out, "recovery-sheet with the S3 copy refusing");
    let html = fs::read_to_string(out_dir.join("sheet.html")).expect("html");
    let text = if renderer("pdftotext") && renderer("pdftoppm") {
        let pages = pdftoppm(&out_dir.join("sheet.pdf"), &out_dir.join("png"));
        assert!((1..=2).contains(&pages.len()), "{} pages", pages.len());
        pdftotext(&out_dir.join("sheet.pdf"), None)
    } else {
        html.replace("&quot;", "\"").replace("&amp;", "&")
    };
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    // pdftotext may interleave the lines of two table cells side by side; the HTML holds the
    // same words in reading order, so a line is found in either.
    let mut html_text = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                html_text.push(' ');
            }
            c if !in_tag => html_text.push(c),
            _ => {}
        }
    }
    let html_flat = html_text
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let place = format!("s3://{bucket}/{prefix}");
    for want in [
        "After a fire: restoring onto a new machine from offsite, the offsite copy",
        "NOT CHECKED: could not be reached when this sheet was printed",
        &format!("{place}: endpoint {endpoint}, region {region}, bucket {bucket}, prefix {prefix}"),
        "access key in AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY",
    ] {
        assert!(
            flat.contains(want) || html_flat.contains(want),
            "the sheet lacks {want:?}:\n{text}"
        );
    }
    for credential in [secret.as_str(), key_id.as_str(), "not-the-secret"] {
        assert!(
            !text.contains(credential) && !html.contains(credential),
            "a credential is on the sheet"
        );
    }
    let cmds = commands(&text);
    assert!(
        cmds.iter()
            .all(|c| !c.contains("--repo") || c.contains(&format!("--repo {place} "))),
        "{cmds:?}"
    );

    // The fire: demo/ is gone; the new machine has the recovery key and the sheet.
    let burnt = d.join("burnt");
    fs::rename(d.join("demo"), &burnt).expect("burn");
    let fresh = tempfile::tempdir().expect("tempdir");
    fs::copy(&recovery, fresh.path().join("firesafe.key")).expect("copy key");
    follow(
        &cmds,
        fresh.path(),
        &[
            ("YOUR-ACCESS-KEY-ID", key_id.as_str()),
            ("YOUR-SECRET-ACCESS-KEY", secret.as_str()),
        ],
    );
    for share in ["curriculum", "admin", "staff"] {
        assert_same_tree(
            &burnt.join("shares").join(share),
            &fresh.path().join("restored").join(share).join(share),
        );
    }
}
