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
    ] {
        assert!(flat.contains(want), "the sheet lacks {want:?}:\n{text}");
    }
    assert!(!text.contains("AGE-SECRET-KEY") && !html.contains("AGE-SECRET-KEY"));

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
