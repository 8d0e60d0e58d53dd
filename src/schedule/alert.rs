//! After a run: a Prometheus text-format metrics file, and a healthchecks-style ping.
//!
//! An email goes to the technician when a run fails, ends degraded, a 3-2-1 verdict is not OK or
//! a source is SUSPECT (possible ransomware: the subject is then the backup's headline)
//! (SMTP with STARTTLS or TLS, and authentication; the password comes from the environment).
//!
//! The metrics file is written whole to a temporary name and renamed, so a collector (such as
//! node_exporter's textfile collector) never reads half a file. The ping is a GET of the
//! schedule's `ping_url` on success, and of `ping_url/fail` when the run failed, ended degraded,
//! a 3-2-1 verdict is not OK or a source is SUSPECT; it carries nothing but the URL, so no
//! secret leaves the machine.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::format::tree::printable;
use crate::plan::policy::Verdict;
use crate::plan::words;
use crate::schedule::run::RunReport;
use crate::schedule::status::ScheduleStatus;
use crate::store::state::{RunOutcome, RunRecord};

fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', " ")
}

/// The metrics for one run, in Prometheus text format.
pub fn metrics(
    run: &RunRecord,
    report: Option<&RunReport>,
    status: Option<&ScheduleStatus>,
) -> String {
    let s = label(&run.schedule);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP firesafe_run_finished_timestamp_seconds When the last run of the schedule finished."
    );
    let _ = writeln!(out, "# TYPE firesafe_run_finished_timestamp_seconds gauge");
    let _ = writeln!(
        out,
        "firesafe_run_finished_timestamp_seconds{{schedule=\"{s}\"}} {}",
        run.finished.timestamp()
    );
    let _ = writeln!(
        out,
        "# HELP firesafe_run_duration_seconds How long the last run took."
    );
    let _ = writeln!(out, "# TYPE firesafe_run_duration_seconds gauge");
    let secs = (run.finished - run.started).num_milliseconds() as f64 / 1000.0;
    let _ = writeln!(
        out,
        "firesafe_run_duration_seconds{{schedule=\"{s}\"}} {secs}"
    );
    let _ = writeln!(
        out,
        "# HELP firesafe_run_outcome 1 for the outcome of the last run, 0 for the others."
    );
    let _ = writeln!(out, "# TYPE firesafe_run_outcome gauge");
    for o in RunOutcome::ALL {
        let _ = writeln!(
            out,
            "firesafe_run_outcome{{schedule=\"{s}\",outcome=\"{o}\"}} {}",
            u8::from(run.outcome == o)
        );
    }
    if let Some(r) = report {
        let _ = writeln!(
            out,
            "# HELP firesafe_backup_bytes_added Bytes of new data the last run added, per source."
        );
        let _ = writeln!(out, "# TYPE firesafe_backup_bytes_added gauge");
        for (source, b) in &r.backups {
            if let Ok(b) = b {
                let _ = writeln!(
                    out,
                    "firesafe_backup_bytes_added{{schedule=\"{s}\",source=\"{}\"}} {}",
                    label(source),
                    b.snapshot.stats.bytes_added
                );
            }
        }
    }
    if let Some(st) = status {
        let _ = writeln!(
            out,
            "# HELP firesafe_copy_newest_timestamp_seconds When the newest complete snapshot of a source on a target was taken (absent: none)."
        );
        let _ = writeln!(out, "# TYPE firesafe_copy_newest_timestamp_seconds gauge");
        for src in &st.sources {
            // A rotated disk's copy as recorded is not read now: the metric is what targets hold.
            for c in src.copies.iter().filter(|c| !c.as_recorded) {
                if let Some(t) = c.taken {
                    let _ = writeln!(
                        out,
                        "firesafe_copy_newest_timestamp_seconds{{schedule=\"{s}\",source=\"{}\",target=\"{}\"}} {}",
                        label(&src.source),
                        label(&c.target),
                        t.timestamp()
                    );
                }
            }
        }
        let _ = writeln!(
            out,
            "# HELP firesafe_verdict The 3-2-1 verdict per source: 0 OK, 1 DEGRADED, 2 VIOLATED."
        );
        let _ = writeln!(out, "# TYPE firesafe_verdict gauge");
        for src in &st.sources {
            let v = match src.evaluation.verdict {
                Verdict::Ok => 0,
                Verdict::Degraded => 1,
                Verdict::Violated => 2,
            };
            let _ = writeln!(
                out,
                "firesafe_verdict{{schedule=\"{s}\",source=\"{}\"}} {v}",
                label(&src.source)
            );
        }
        let _ = writeln!(
            out,
            "# HELP firesafe_suspect_snapshots Snapshots of a source that are suspect (possible ransomware) and not accepted, or confirmed and not lifted."
        );
        let _ = writeln!(out, "# TYPE firesafe_suspect_snapshots gauge");
        for src in &st.sources {
            let _ = writeln!(
                out,
                "firesafe_suspect_snapshots{{schedule=\"{s}\",source=\"{}\"}} {}",
                label(&src.source),
                src.suspect.as_ref().map_or(0, |n| n.snapshots)
            );
        }
    }
    out
}

/// Writes a metrics file atomically: a new file with a random name beside it (created with
/// `O_EXCL | O_NOFOLLOW`, so a name planted in the directory, a link above all, is never written
/// through), given mode 0644 on its handle, then renamed over the old one. Metrics hold no file
/// names, and the collector (node_exporter) runs as another user: the file is readable by all,
/// whatever the service's umask. A missing directory is made, mode 0755.
pub fn write_metrics(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .and_then(|_| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)))
            .map_err(|e| Error::local(dir, "cannot create the metrics directory", e))?;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{:016x}.tmp", rand::random::<u64>()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(&tmp)
        .and_then(|mut f| {
            f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
            f.write_all(text.as_bytes())
        })
        .and_then(|_| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(|e| Error::local(path, "cannot write the metrics file", e))
}

/// Pings `url` (success) or `url/fail`. Returns why it failed, if it did.
pub async fn ping(url: &str, ok: bool) -> std::result::Result<(), String> {
    let url = if ok {
        url.to_string()
    } else {
        format!("{}/fail", url.trim_end_matches('/'))
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .map_err(|e| e.to_string())?;
    // The URL is left out of messages: it identifies the check and may be all its secret.
    let response = client
        .get(&url)
        .send()
        .await
        .map_err(|e| format!("the monitoring ping failed: {}", e.without_url()))?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!(
            "the monitoring ping answered HTTP {}",
            response.status()
        ))
    }
}

/// The email about a run that needs attention: subject and plain-text body.
pub fn email_text(
    run: &RunRecord,
    status: Option<&ScheduleStatus>,
    host: &str,
) -> (String, String) {
    let worst = status
        .iter()
        .flat_map(|s| s.sources.iter().map(|src| src.evaluation.verdict))
        .max_by_key(|v| match v {
            Verdict::Ok => 0,
            Verdict::Degraded => 1,
            Verdict::Violated => 2,
        });
    if let Some(subject) = status.and_then(|st| ransomware_subject(st, host)) {
        return (subject, email_body(run, status, host));
    }
    let subject = format!(
        "firesafe on {host}: schedule {} {}{}",
        run.schedule,
        run.outcome.as_str().to_uppercase(),
        match worst {
            Some(v) if v != Verdict::Ok => format!(", 3-2-1 {v}"),
            _ => String::new(),
        }
    );
    (subject, email_body(run, status, host))
}

/// The subject when a source is suspect: "Possible ransomware on the admin share: 4,312 of
/// 9,870 files changed, 2,105 renamed to .locked (firesafe on HOST)", the backup's headline.
pub fn ransomware_subject(status: &ScheduleStatus, host: &str) -> Option<String> {
    let suspect: Vec<_> = status
        .sources
        .iter()
        .filter_map(|s| s.suspect.as_ref().map(|n| (s, n)))
        .collect();
    let (src, notice) = suspect.first()?;
    let what = if notice.confirmed {
        "Confirmed ransomware"
    } else {
        "Possible ransomware"
    };
    let headline = if notice.headline.is_empty() {
        format!("snapshot {}", notice.snapshot)
    } else {
        printable(&notice.headline).to_string()
    };
    let more = match suspect.len() {
        1 => String::new(),
        n => format!(" (and {} more)", words::count_s(n as u64 - 1, "share")),
    };
    Some(format!(
        "{what} on the {} share: {headline}{more} (firesafe on {host})",
        printable(&src.source)
    ))
}

/// One problem of the run or of the 3-2-1 check, and the shares it affects (none: the run as a
/// whole).
struct Problem {
    text: String,
    shares: Vec<String>,
}

/// Every distinct problem once: the run's own first, then the 3-2-1 check's, each with the
/// shares it affects. A target that could not be read is one problem, not one per share.
fn problems(run: &RunRecord, status: Option<&ScheduleStatus>) -> Vec<Problem> {
    let mut out: Vec<Problem> = Vec::new();
    let mut from_run = run.problems.clone();
    if from_run.is_empty() && run.outcome != RunOutcome::Complete && !run.message.is_empty() {
        from_run.push(run.message.clone());
    }
    let sources: Vec<&str> = status
        .iter()
        .flat_map(|s| s.sources.iter().map(|src| src.source.as_str()))
        .collect();
    for p in from_run {
        if out.iter().any(|o| o.text == p) {
            continue;
        }
        let shares = sources
            .iter()
            .filter(|s| p.starts_with(&format!("{s}: ")))
            .map(|s| s.to_string())
            .collect();
        out.push(Problem { text: p, shares });
    }
    let run_count = out.len();
    for src in status.iter().flat_map(|s| s.sources.iter()) {
        let mut reasons: Vec<String> = src.evaluation.reasons.clone();
        if let Some(n) = &src.suspect {
            let seen = out[..run_count].iter().any(|o| {
                o.text
                    .starts_with(&format!("{}: possible ransomware", src.source))
            });
            if !seen {
                reasons.insert(
                    0,
                    format!(
                        "{}: snapshot {} may hold files damaged by ransomware ({}); {}",
                        src.source, n.snapshot, n.headline, n.advice
                    ),
                );
            }
        }
        for r in reasons {
            // "offsite could not be read: E" is the run's "offsite: E" seen from each share.
            let same = |o: &Problem| {
                o.text == r
                    || r.split_once(" could not be read: ")
                        .is_some_and(|(t, e)| o.text == format!("{t}: {e}"))
            };
            match out.iter_mut().find(|o| same(o)) {
                Some(o) => {
                    if !o.shares.contains(&src.source) {
                        o.shares.push(src.source.clone());
                    }
                }
                None => out.push(Problem {
                    text: r,
                    shares: vec![src.source.clone()],
                }),
            }
        }
    }
    out
}

/// What a problem says happened, and what it says to do: the sentence after its last "; " when
/// that starts with what to do ("check the path", "run `firesafe sync`").
fn split_advice(text: &str) -> (&str, Option<&str>) {
    const DO: [&str; 14] = [
        "check ", "run ", "mount ", "set ", "give ", "fix ", "free ", "restore ", "replace ",
        "decide ", "see ", "add ", "lock ", "plug ",
    ];
    let mut cut = None;
    for (i, _) in text.match_indices("; ") {
        let rest = &text[i + 2..];
        if DO.iter().any(|d| rest.starts_with(d)) {
            cut = Some(i);
        }
    }
    match cut {
        Some(i) => (&text[..i], Some(&text[i + 2..])),
        None => (text, None),
    }
}

/// " (admin)", " (admin, staff)", " (all 3 shares)", or nothing for the run as a whole.
fn affects(shares: &[String], all: usize) -> String {
    match shares.len() {
        0 => String::new(),
        n if n == all && n > 1 => format!(" (all {n} shares)"),
        _ => format!(" ({})", shares.join(", ")),
    }
}

/// The body's first line: what happened and what to do.
fn first_line(
    run: &RunRecord,
    status: Option<&ScheduleStatus>,
    problems: &[Problem],
    host: &str,
) -> String {
    let all = status.map_or(0, |s| s.sources.len());
    let suspect = status.and_then(|st| {
        st.sources
            .iter()
            .find_map(|s| s.suspect.as_ref().map(|n| (s, n)))
    });
    if let Some((src, n)) = suspect {
        return format!(
            "Possible ransomware on the {} share ({}): {}. What to do: {}.",
            printable(&src.source),
            host,
            printable(&n.headline),
            printable(&n.advice)
        );
    }
    let s = &run.schedule;
    let fallback = match run.outcome {
        RunOutcome::Failed => format!("fix what is named here, then run `firesafe run {s}`"),
        RunOutcome::Interrupted => {
            "nothing, if it was stopped on purpose: the next run continues from what was stored"
                .to_string()
        }
        _ => format!(
            "fix what is named here, then run `firesafe sync {s}` (or wait for the next run) and `firesafe status {s}`"
        ),
    };
    let what = match problems.first() {
        Some(p) => {
            let (head, advice) = split_advice(&p.text);
            let more = match problems.len() {
                1 => String::new(),
                n => format!(
                    ", and {} more {} below",
                    n - 1,
                    words::noun(n as u64 - 1, "problem", "problems")
                ),
            };
            let todo = advice.map_or(fallback.clone(), str::to_string);
            format!(
                "{}{}{more}. What to do: {todo}.",
                printable(head),
                affects(&p.shares, all)
            )
        }
        None => format!("see below. What to do: {fallback}."),
    };
    format!(
        "The {s} run on {host} ended {}: {what}",
        run.outcome.as_str().to_uppercase()
    )
}

fn email_body(run: &RunRecord, status: Option<&ScheduleStatus>, host: &str) -> String {
    let problems = problems(run, status);
    let all = status.map_or(0, |s| s.sources.len());
    let mut body = first_line(run, status, &problems, host);
    body.push_str("\n\n");
    if !problems.is_empty() {
        let _ = writeln!(body, "Each problem once, with the shares it affects:");
        for p in &problems {
            let _ = writeln!(
                body,
                "  - {}{}",
                printable(&p.text),
                affects(&p.shares, all)
            );
        }
        body.push('\n');
    }
    if let Some(st) = status {
        let verdicts: Vec<String> = st
            .sources
            .iter()
            .map(|src| format!("{} {}", printable(&src.source), src.shown_verdict()))
            .collect();
        let _ = writeln!(
            body,
            "The 3-2-1 rule, checked against what is on each target: {}.",
            verdicts.join(", ")
        );
    }
    let _ = writeln!(
        body,
        "Run: {} (schedule {}, started {}, finished {}).",
        run.outcome,
        run.schedule,
        run.started.to_rfc3339(),
        run.finished.to_rfc3339()
    );
    let _ = writeln!(
        body,
        "\nRun `firesafe status {}` on {host} for the details.",
        run.schedule
    );
    body
}

/// Sends one email with `alerts`' SMTP settings, reading its smtp_ca_file; `incomplete` is the
/// error when they do not say where to send it.
pub async fn email_with(
    alerts: &crate::config::AlertsSpec,
    incomplete: &str,
    subject: &str,
    body: &str,
) -> Result<()> {
    if alerts.email_to.is_empty() || alerts.smtp_host.is_none() || alerts.email_from.is_none() {
        return Err(Error::Usage(incomplete.to_string()));
    }
    let ca = match &alerts.smtp_ca_file {
        Some(p) => {
            Some(std::fs::read(p).map_err(|e| Error::local(p, "cannot read smtp_ca_file", e))?)
        }
        None => None,
    };
    send_email(alerts, ca.as_deref(), subject, body)
        .await
        .map_err(Error::Usage)
}

/// Sends one email with the schedule's SMTP settings.
pub async fn send_email(
    alerts: &crate::config::AlertsSpec,
    ca: Option<&[u8]>,
    subject: &str,
    body: &str,
) -> std::result::Result<(), String> {
    use lettre::message::{Mailbox, header::ContentType};
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

    let host = alerts.smtp_host.as_deref().ok_or("no smtp_host")?;
    let from: Mailbox = alerts
        .email_from
        .as_deref()
        .ok_or("no email_from")?
        .parse()
        .map_err(|e| format!("email_from is not an address: {e}"))?;
    let mut message = Message::builder().from(from).subject(subject);
    for to in &alerts.email_to {
        message = message.to(to
            .parse()
            .map_err(|e| format!("email_to \"{to}\" is not an address: {e}"))?);
    }
    let message = message
        .header(ContentType::TEXT_PLAIN)
        .body(body.to_string())
        .map_err(|e| format!("cannot build the email: {e}"))?;
    let tls = |host: &str| -> std::result::Result<TlsParameters, String> {
        let mut b = TlsParameters::builder(host.to_string());
        if let Some(pem) = ca {
            b = b.add_root_certificate(
                Certificate::from_pem(pem).map_err(|e| format!("smtp_ca_file: {e}"))?,
            );
        }
        b.build_rustls()
            .map_err(|e| format!("TLS set-up failed: {e}"))
    };
    let (tls, port) = match alerts.smtp_tls {
        crate::config::SmtpTls::Starttls => (Tls::Required(tls(host)?), 587),
        crate::config::SmtpTls::Tls => (Tls::Wrapper(tls(host)?), 465),
        crate::config::SmtpTls::None => (Tls::None, 25),
    };
    let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(alerts.smtp_port.unwrap_or(port))
        .tls(tls)
        .timeout(Some(Duration::from_secs(30)));
    if let Some(user) = &alerts.smtp_user {
        let password = std::env::var("FIRESAFE_SMTP_PASSWORD")
            .map_err(|_| "smtp_user is set but FIRESAFE_SMTP_PASSWORD is not".to_string())?;
        transport = transport.credentials(Credentials::new(user.clone(), password));
    }
    transport
        .build()
        .send(message)
        .await
        .map(|_| ())
        .map_err(|e| {
            let detail = describe_smtp_error(&e.to_string(), ca.is_some());
            format!(
                "the email to {} could not be sent: {detail}",
                alerts.email_to.join(", ")
            )
        })
}

/// An SMTP failure in words, with the fix first when firesafe knows it: a certificate the
/// machine does not trust (a self-signed one, or from the school's own CA) needs `smtp_ca_file`.
fn describe_smtp_error(e: &str, has_ca: bool) -> String {
    let untrusted = [
        "invalid peer certificate",
        "UnknownIssuer",
        "CaUsedAsEndEntity",
        "certificate",
    ];
    if untrusted.iter().any(|m| e.contains(m)) {
        let fix = if has_ca {
            "the certificate in smtp_ca_file does not vouch for it: give the CA certificate that signed the server's (not the server's own certificate, unless it is self-signed and marked as a CA)"
        } else {
            "set smtp_ca_file in the schedule's [alerts] to the PEM file of the CA that signed it (for a self-signed server, its certificate)"
        };
        return format!("the SMTP server's certificate is not trusted; {fix} (detail: {e})");
    }
    if e.contains("Connection refused") || e.contains("connection refused") {
        return format!(
            "the SMTP server refused the connection: check smtp_host and smtp_port (detail: {e})"
        );
    }
    e.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::policy::Evaluation;
    use crate::schedule::status::{SourceStatus, SuspectNotice};

    #[test]
    fn a_target_down_for_every_share_is_one_problem_and_the_first_line_says_what_to_do() {
        let at: chrono::DateTime<chrono::Utc> = "2026-11-23T02:00:00Z".parse().expect("time");
        let down = "repository directory /mnt/offsite does not exist; check the path, and that the disk or share holding it is mounted";
        let source = |name: &str| SourceStatus {
            source: name.into(),
            copies: vec![],
            evaluation: Evaluation {
                verdict: Verdict::Violated,
                copies: 2,
                media: 2,
                offsite: 0,
                live_data_counted: true,
                reasons: vec![
                    format!("offsite could not be read: {down}"),
                    "0 up-to-date offsite copies; the policy asks for 1".into(),
                ],
            },
            suspect: None,
        };
        let status = ScheduleStatus {
            schedule: "nightly".into(),
            checked_at: at,
            min_copies: 3,
            min_media: 2,
            min_offsite: 1,
            max_age_hours: 26,
            live_data_counts: true,
            sources: vec![source("curriculum"), source("admin"), source("staff")],
            media: vec![],
            verification: vec![],
            key_notices: vec![],
            key_differences: vec![],
        };
        let run = RunRecord {
            schedule: "nightly".into(),
            scheduled_for: Some(at),
            started: at,
            finished: at,
            outcome: RunOutcome::Degraded,
            message: format!("offsite: {down}"),
            problems: vec![format!("offsite: {down}")],
        };
        let (subject, body) = email_text(&run, Some(&status), "server");
        assert_eq!(
            subject,
            "firesafe on server: schedule nightly DEGRADED, 3-2-1 VIOLATED"
        );
        let first = body.lines().next().expect("a first line");
        assert_eq!(
            first,
            "The nightly run on server ended DEGRADED: offsite: repository directory /mnt/offsite does not exist (all 3 shares), and 1 more problem below. What to do: check the path, and that the disk or share holding it is mounted."
        );
        assert_eq!(body.matches("/mnt/offsite").count(), 2, "{body}");
        assert_eq!(
            body.matches("0 up-to-date offsite copies").count(),
            1,
            "{body}"
        );
        assert!(
            body.contains("  - 0 up-to-date offsite copies; the policy asks for 1 (all 3 shares)"),
            "{body}"
        );
        assert!(
            body.contains("curriculum VIOLATED, admin VIOLATED, staff VIOLATED"),
            "{body}"
        );
    }

    #[test]
    fn a_suspect_source_makes_the_subject_the_headline() {
        let at: chrono::DateTime<chrono::Utc> = "2026-11-23T02:00:00Z".parse().expect("time");
        let source = |name: &str, suspect: Option<SuspectNotice>| SourceStatus {
            source: name.into(),
            copies: vec![],
            evaluation: Evaluation {
                verdict: Verdict::Ok,
                copies: 2,
                media: 2,
                offsite: 1,
                live_data_counted: false,
                reasons: vec![],
            },
            suspect,
        };
        let notice = SuspectNotice {
            snapshot: "1a2b3c4d".into(),
            taken: at,
            confirmed: false,
            headline: "4,312 of 9,870 files changed, 2,105 renamed to .locked".into(),
            snapshots: 1,
            advice: "decide".into(),
        };
        let status = ScheduleStatus {
            schedule: "nightly".into(),
            checked_at: at,
            min_copies: 2,
            min_media: 2,
            min_offsite: 1,
            max_age_hours: 26,
            live_data_counts: false,
            sources: vec![source("curriculum", None), source("admin", Some(notice))],
            media: vec![],
            verification: vec![],
            key_notices: vec![],
            key_differences: vec![],
        };
        assert!(!status.is_ok());
        let run = RunRecord {
            schedule: "nightly".into(),
            scheduled_for: None,
            started: at,
            finished: at,
            outcome: RunOutcome::Complete,
            message: String::new(),
            problems: vec![],
        };
        let (subject, body) = email_text(&run, Some(&status), "server");
        assert_eq!(
            subject,
            "Possible ransomware on the admin share: 4,312 of 9,870 files changed, 2,105 renamed to .locked (firesafe on server)"
        );
        assert!(
            body.starts_with("Possible ransomware on the admin share (server): 4,312 of 9,870 files changed, 2,105 renamed to .locked. What to do: decide."),
            "{body}"
        );
        assert!(body.contains("admin SUSPECT"), "{body}");
        let m = metrics(&run, None, Some(&status));
        assert!(
            m.contains("firesafe_suspect_snapshots{schedule=\"nightly\",source=\"admin\"} 1"),
            "{m}"
        );
        assert!(
            m.contains("firesafe_suspect_snapshots{schedule=\"nightly\",source=\"curriculum\"} 0"),
            "{m}"
        );
    }
}
