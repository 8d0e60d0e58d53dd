//! `firesafe report`: the governors' report is built from real history (runs of the shipped
//! example, one of them with the offsite copy missing, and drill and verification records), says
//! plainly what was not measured, renders as PDF (checked with poppler) and as HTML (checked in
//! headless Chromium), and reads the same as the snapshot in tests/snapshots/report.txt.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use chrono::{Duration, Utc};
use firesafe::store::records::{DrillKind, DrillRecord, VerifyRecord};

use crate::support::*;

/// Whether an external renderer is installed; under CI a missing one is a failure.
pub fn renderer(tool: &str) -> bool {
    let found = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success() || !o.stderr.is_empty() || !o.stdout.is_empty());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{tool} is not installed: tests/run.sh installs it (poppler-utils, chromium)"
        );
        eprintln!("skipping the {tool} checks: {tool} is not installed");
    }
    found
}

pub fn fs_in(dir: &Path, args: &[&str]) -> Output {
    firesafe()
        .args(args)
        .arg("--config-dir")
        .arg(dir)
        .arg("--state-dir")
        .arg(dir.join("state"))
        .output()
        .expect("run firesafe")
}

/// The shipped example with its site.toml, after a first run.
pub fn example_with_site() -> tempfile::TempDir {
    let dir = example();
    fs::copy(
        project_root().join("site.toml"),
        dir.path().join("site.toml"),
    )
    .expect("copy");
    assert_success(
        &fs_in(dir.path(), &["run", "nightly", "--init"]),
        "first run",
    );
    dir
}

/// Text of a PDF, or of some of its pages.
pub fn pdftotext(pdf: &Path, pages: Option<(u32, u32)>) -> String {
    let mut c = Command::new("pdftotext");
    if let Some((f, l)) = pages {
        c.args(["-f", &f.to_string(), "-l", &l.to_string()]);
    }
    let out = c.arg(pdf).arg("-").output().expect("pdftotext");
    assert_success(&out, "pdftotext");
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Renders every page to PNG with pdftoppm; returns the images.
pub fn pdftoppm(pdf: &Path, dir: &Path) -> Vec<PathBuf> {
    fs::create_dir_all(dir).expect("mkdir");
    let out = Command::new("pdftoppm")
        .args(["-png", "-r", "70"])
        .arg(pdf)
        .arg(dir.join("page"))
        .output()
        .expect("pdftoppm");
    assert_success(&out, "pdftoppm");
    assert!(
        out.stderr.is_empty(),
        "pdftoppm: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut pages: Vec<PathBuf> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    pages.sort();
    pages
}

/// The DOM of an HTML file after headless Chromium has loaded it.
pub fn chromium_dom(html: &Path) -> String {
    let profile = tempfile::tempdir().expect("tempdir");
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", html.display()))
        .output()
        .expect("chromium");
    assert_success(&out, "chromium --dump-dom");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn drill(source: &str, kind: DrillKind, result: &str, seconds: f64) -> DrillRecord {
    let now = Utc::now();
    DrillRecord {
        id: format!("{:016x}", rand::random::<u64>()),
        schedule: "nightly".into(),
        kind,
        source: source.into(),
        target: "offsite".into(),
        snapshot: "0".repeat(64),
        snapshot_taken: now - Duration::minutes(5),
        started: now - Duration::minutes(2),
        finished: now - Duration::minutes(1),
        seed: None,
        files: 40,
        bytes: 4_000_000,
        restore_seconds: 2.0,
        bytes_per_second: 2_000_000.0,
        share_bytes: 8_000_000,
        estimated_recovery_seconds: seconds,
        rto_hours: Some(8.0),
        mismatches: Vec::new(),
        changed_since: 0,
        live_identical: 40,
        key: "schedule key".into(),
        result: result.parse().unwrap(),
        reason: if result == "pass" {
            String::new()
        } else {
            "2 restored files differ from the snapshot".into()
        },
    }
}

fn verify(target: &str, coverage: f64) -> VerifyRecord {
    let now = Utc::now();
    VerifyRecord {
        schedule: "nightly".into(),
        target: target.into(),
        started: now - Duration::minutes(3),
        finished: now - Duration::minutes(2),
        structure_checked: true,
        packs_read: 3,
        bytes_read: 3_000_000,
        packs_total: 10,
        bytes_total: 10_000_000,
        coverage_30d: coverage,
        coverage_90d: coverage,
        last_complete_read: None,
        compared: 10,
        findings: Vec::new(),
        result: "pass".parse().unwrap(),
        error: String::new(),
    }
}

/// Lines with what changes from run to run (dates, times, ids, sizes, durations, the scratch
/// directory) replaced by placeholders.
fn redact(text: &str, dir: &Path) -> String {
    const MONTHS: &[&str] = &[
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
        "Jan",
        "Feb",
        "Mar",
        "Apr",
        "Jun",
        "Jul",
        "Aug",
        "Sep",
        "Oct",
        "Nov",
        "Dec",
    ];
    const UNITS: &[&str] = &[
        "second", "seconds", "minute", "minutes", "hour", "hours", "day", "days", "B", "KiB",
        "MiB", "GiB", "kB", "MB", "GB",
    ];
    let text = text.replace(&dir.display().to_string(), "DIR");
    let mut out = String::new();
    for line in text.lines() {
        let mut words = Vec::new();
        for word in line.split(' ') {
            let core = word.trim_matches(|c: char| ",.;:()/".contains(c));
            let has_digit = core.chars().any(|c| c.is_ascii_digit());
            let w = if core.starts_with("age1") {
                word.replace(core, "PUBLICKEY")
            } else if MONTHS.contains(&core) {
                word.replace(core, "MON")
            } else if has_digit && core.len() >= 8 && core.chars().all(|c| c.is_ascii_hexdigit()) {
                word.replace(core, "ID")
            } else if has_digit {
                let mut s = String::new();
                let mut last_digit = false;
                for c in word.chars() {
                    if c.is_ascii_digit() || (last_digit && c == '.') {
                        if !last_digit {
                            s.push('N');
                        }
                        last_digit = true;
                    } else {
                        s.push(c);
                        last_digit = false;
                    }
                }
                s
            } else {
                word.to_string()
            };
            if UNITS.contains(&core) && words.last().is_some_and(|p: &String| p.ends_with('N')) {
                words.push(word.replace(core, "UNIT"));
            } else {
                words.push(w);
            }
        }
        out.push_str(&words.join(" "));
        out.push('\n');
    }
    out
}

/// Compares with tests/snapshots/NAME, or writes it when FIRESAFE_UPDATE_SNAPSHOTS=1 (or when
/// it does not exist yet, outside CI).
pub fn assert_snapshot(name: &str, actual: &str) {
    let path = project_root().join("tests/snapshots").join(name);
    let update = std::env::var("FIRESAFE_UPDATE_SNAPSHOTS").is_ok_and(|v| v == "1");
    if update || (!path.exists() && std::env::var_os("CI").is_none()) {
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(&path, actual).expect("write snapshot");
        return;
    }
    let expected = fs::read_to_string(&path).expect("snapshot file");
    if expected != actual {
        let diff: Vec<String> = expected
            .lines()
            .zip(actual.lines())
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .take(10)
            .map(|(i, (a, b))| format!("line {}:\n  expected: {a}\n  actual:   {b}", i + 1))
            .collect();
        panic!(
            "{name} differs from {} (FIRESAFE_UPDATE_SNAPSHOTS=1 rewrites it):\n{}\n({} vs {} lines)",
            path.display(),
            diff.join("\n"),
            expected.lines().count(),
            actual.lines().count()
        );
    }
}

#[test]
fn the_report_says_what_was_measured_and_renders() {
    let dir = example_with_site();
    let d = dir.path();
    let out_dir = d.join("out");
    fs::create_dir(&out_dir).expect("mkdir");

    // Before any drill or verification: the report must say so, in red, not assume.
    let out = fs_in(
        d,
        &[
            "report",
            "nightly",
            "--out",
            out_dir.join("first").to_str().expect("utf-8"),
        ],
    );
    assert_success(&out, "report");
    let first = out_dir.join("first.pdf");
    assert!(out_dir.join("first.html").is_file());
    let poppler = renderer("pdftotext") && renderer("pdftoppm");
    let html = fs::read_to_string(out_dir.join("first.html")).expect("html");
    for text in [html.clone()]
        .into_iter()
        .chain(poppler.then(|| pdftotext(&first, None)))
    {
        let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            flat.contains("No restore drill was recorded between"),
            "{flat}"
        );
        assert!(flat.contains("ACTION NEEDED"), "{flat}");
        assert!(
            flat.contains("No copy") && flat.contains("was read back"),
            "{flat}"
        );
    }

    // More history: an unchanged night, a night with the offsite copy missing, a catch-up.
    write(
        &d.join("demo/shares/admin/letters/new.docx"),
        &noise(5, 300_000),
    );
    assert_success(&fs_in(d, &["run", "nightly"]), "second run");
    fs::rename(d.join("demo/offsite"), d.join("offsite-away")).expect("move");
    write(
        &d.join("demo/shares/staff/plans/week2.docx"),
        &noise(6, 200_000),
    );
    assert_exit(
        &fs_in(d, &["run", "nightly"]),
        1,
        "run with the offsite copy missing",
    );
    fs::rename(d.join("offsite-away"), d.join("demo/offsite")).expect("move back");
    assert_success(&fs_in(d, &["run", "nightly"]), "catch-up run");

    // Drills of two shares (one too slow for the target), none of staff; verification of
    // both targets, the offsite one only partly read back so far.
    let state = firesafe::store::state::StateDir::open(&d.join("state")).expect("state");
    state
        .append_drill(&drill("curriculum", DrillKind::Full, "pass", 1_200.0))
        .expect("drill");
    state
        .append_drill(&drill("admin", DrillKind::Full, "pass", 40_000.0))
        .expect("drill");
    state.append_verify(&verify("nas", 1.0)).expect("verify");
    state
        .append_verify(&verify("offsite", 0.4))
        .expect("verify");

    let pdf = out_dir.join("governors.pdf");
    let out = fs_in(d, &["report", "--out", pdf.to_str().expect("utf-8")]);
    assert_success(&out, "report");
    let html_path = out_dir.join("governors.html");
    let html = fs::read_to_string(&html_path).expect("html");
    assert!(
        ["<script", "<link", "src=", "href=", "url(", "@import"]
            .iter()
            .all(|w| !html.contains(w)),
        "the HTML must be self-contained"
    );

    if poppler {
        let pages = pdftoppm(&pdf, &out_dir.join("png"));
        assert!((5..=12).contains(&pages.len()), "{} pages", pages.len());
        let page1 = pdftotext(&pdf, Some((1, 1)));
        let flat1 = page1.split_whitespace().collect::<Vec<_>>().join(" ");
        for want in [
            "Hollybank Primary School",
            "Overall",
            "ACTION NEEDED",
            "OK",
            "curriculum",
            "admin",
            "staff",
            "No restore drill of staff was recorded between",
            "Recovery would take longer than the target",
            // The records begin today, well after the 90-day period starts.
            "records begin on",
            "nothing before that date can be shown",
            // The shipped example's copies are folders the server writes to: nothing is out of
            // its reach, and page 1 says what to do.
            "Could ransomware or a break-in destroy every copy? Yes: the server could delete every copy. nas and offsite are folders the server writes to.",
            "lock the offsite bucket (Object Lock) or rotate a USB disk off site",
        ] {
            assert!(flat1.contains(want), "page 1 lacks {want:?}:\n{page1}");
        }
        // About two minutes' reading; 480 since the seventh question (ransomware) was added.
        assert!(
            page1.split_whitespace().count() < 480,
            "page 1 is too long to read in two minutes:\n{page1}"
        );
        let all = pdftotext(&pdf, None);
        let flat = all.split_whitespace().collect::<Vec<_>>().join(" ");
        for want in [
            "Incidents and open risks",
            // The degraded run, in plain words, resolved by the catch-up run after it...
            "The offsite copy could not be updated on",
            "a complete backup followed on",
            // ...and the technician's words for it in the appendix.
            "does not exist",
            "Only 40% of the data on offsite was read back",
            "Storage growth of curriculum",
            "Glossary",
            "3-2-1 rule",
            "RPO (recovery point objective)",
            "Headteacher",
            "Chair of Governors",
            "Signature",
            "Technician's appendix",
        ] {
            assert!(flat.contains(want), "the report lacks {want:?}:\n{all}");
        }
    }

    if renderer("chromium") {
        let dom = chromium_dom(&html_path);
        assert!(dom.contains("Hollybank Primary School"), "{dom}");
        assert!(dom.matches("<svg").count() >= 3, "charts missing:\n{dom}");
        assert!(dom.contains("<polyline"), "no chart lines:\n{dom}");
    }

    // The text, with what changes between runs redacted, reads as recorded.
    let config = firesafe::config::Config::load(d).expect("config");
    let now = Utc::now();
    let data = block_on(firesafe::paper::report::gather(
        &config,
        &state,
        &firesafe::paper::report::ReportOptions {
            schedules: vec!["nightly".into()],
            from: now - Duration::days(90),
            to: now,
            now,
        },
    ))
    .expect("gather");
    assert_snapshot(
        "report.txt",
        &redact(&firesafe::paper::report::build(&data).text(), d),
    );
}

#[test]
fn bad_report_arguments_are_one_line_errors() {
    let dir = example();
    let d = dir.path();
    fs::create_dir_all(d.join("state")).expect("mkdir");
    let out = d.join("r").display().to_string();
    for (args, says) in [
        (
            vec![
                "report",
                "--from",
                "2026-10-01",
                "--to",
                "2026-09-01",
                "--out",
                &out,
            ],
            "is before --from",
        ),
        (
            vec!["report", "termly", "--out", &out],
            "no schedule \"termly\"",
        ),
        (
            vec!["report", "--from", "the day after never", "--out", &out],
            "not a date",
        ),
        (
            vec!["report", "--out", "/nonexistent/folder/report"],
            "does not exist",
        ),
        (
            vec!["recovery-sheet", "--out", "/nonexistent/folder/sheet"],
            "does not exist",
        ),
        (
            vec!["recovery-sheet", "termly", "--out", &out],
            "no schedule \"termly\"",
        ),
    ] {
        let o = fs_in(d, &args);
        let stderr = assert_exit(&o, 2, &args.join(" "));
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    // A file where the folder should be.
    write(&d.join("afile"), b"x");
    let o = fs_in(
        d,
        &[
            "report",
            "--out",
            d.join("afile/report").to_str().expect("utf-8"),
        ],
    );
    assert_exit(&o, 2, "report into a file");
}

#[test]
fn config_check_reads_site_toml() {
    let dir = example();
    let d = dir.path();
    fs::copy(project_root().join("site.toml"), d.join("site.toml")).expect("copy");
    let out = firesafe()
        .args(["config", "check", "--config-dir"])
        .arg(d)
        .output()
        .expect("run");
    assert_success(&out, "config check with the shipped site.toml");
    let text = fs::read_to_string(d.join("site.toml"))
        .expect("read")
        .replace(
            "role = \"Headteacher\"",
            "role = \"Headteacher\"\nmobile = \"07700 900000\"",
        );
    fs::write(d.join("site.toml"), text).expect("write");
    let out = firesafe()
        .args(["config", "check", "--config-dir"])
        .arg(d)
        .output()
        .expect("run");
    assert_exit(&out, 1, "config check with an unknown key");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("site.toml:15:1") && stdout.contains("mobile"),
        "{stdout}"
    );
}
