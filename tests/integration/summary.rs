//! The weekly summary: the last 7 days of runs and the 3-2-1 verdicts now, printed by
//! `firesafe summary` and emailed with `--send` through a real SMTP server.

use std::fs;

use crate::alerts::{SmtpServer, smtp_python, smtp_server};
use crate::support::*;

/// A message's headers with folded lines joined, then its body.
fn unfold(email: &str) -> String {
    email
        .replace("\r\n", "\n")
        .replace("\n ", " ")
        .replace("\n\t", " ")
}

#[test]
fn the_weekly_summary_arrives_with_the_week_and_the_verdicts() {
    let Some(python) = smtp_python() else {
        eprintln!("skipped: aiosmtpd is not installed (tests/run.sh installs it)");
        return;
    };
    let dir = example();
    let SmtpServer {
        port,
        cert,
        mail,
        child: mut server,
    } = smtp_server(dir.path(), python);
    let sched = dir.path().join("schedules/nightly.toml");
    let mut text = fs::read_to_string(&sched).expect("read");
    text.push_str(&format!(
        "\n[alerts]\nsummary_cron = \"0 8 * * 1\"\nemail_to = [\"it-support@school.example\"]\nemail_from = \"firesafe@school.example\"\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {port}\nsmtp_user = \"firesafe\"\nsmtp_ca_file = \"{}\"\n",
        cert.display()
    ));
    fs::write(&sched, text).expect("write");
    let fs_in = |args: &[&str]| {
        firesafe()
            .args(args)
            .arg("--config-dir")
            .arg(dir.path())
            .env("FIRESAFE_STATE_DIR", dir.path().join("state"))
            .env("FIRESAFE_SMTP_PASSWORD", "s3cret-smtp-pass")
            .output()
            .expect("run")
    };
    assert_success(&fs_in(&["config", "check"]), "config check");
    assert_success(&fs_in(&["run", "nightly", "--init"]), "first run");
    // The offsite copy goes missing: a degraded run, and an alert.
    fs::rename(dir.path().join("demo/offsite"), dir.path().join("away")).expect("move");
    assert_exit(&fs_in(&["run", "nightly"]), 1, "degraded run");

    // Printed without sending.
    let out = fs_in(&["summary", "nightly"]);
    assert_success(&out, "summary");
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        printed.contains(
            "Runs in the last 7 days: 2 (1 complete, 1 degraded, 0 failed, 0 interrupted)."
        ) && printed.contains("Last complete run:")
            && printed.contains("curriculum: VIOLATED"),
        "{printed}"
    );
    let count = || fs::read_dir(&mail).map(|d| d.count()).unwrap_or(0);
    assert_eq!(count(), 1, "only the alert should have been sent so far");

    // Sent.
    let out = fs_in(&["summary", "nightly", "--send"]);
    assert_success(&out, "summary --send");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let messages = crate::alerts::stop_and_read(&mut server, &mail);
    assert_eq!(messages.len(), 2, "stderr: {stderr}");
    let email = unfold(&messages[1]);
    assert!(
        email.contains("weekly summary of schedule nightly: 3-2-1 VIOLATED, 1 of 2 runs complete"),
        "{email}"
    );
    assert!(email.contains("To: it-support@school.example"), "{email}");
    assert!(
        email.contains("Runs in the last 7 days: 2 (1 complete, 1 degraded")
            && email.contains("offsite could not be read"),
        "{email}"
    );
    for text in [&email, &printed, &stderr] {
        assert!(!text.contains("s3cret-smtp-pass"), "the password leaked");
    }

    // Bad input is named.
    let stderr = assert_exit(&fs_in(&["summary", "weekly"]), 2, "unknown schedule");
    assert!(
        stderr.contains("there is no schedule \"weekly\""),
        "{stderr}"
    );
    let text = fs::read_to_string(&sched)
        .expect("read")
        .replace("summary_cron = \"0 8 * * 1\"", "summary_cron = \"mondays\"");
    fs::write(&sched, text).expect("write");
    let out = fs_in(&["config", "check"]);
    assert_exit(&out, 1, "bad summary_cron");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("key summary_cron: \"mondays\" has 1 fields"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
