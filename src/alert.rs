//! After a run: a Prometheus text-format metrics file, and a healthchecks-style ping.
//!
//! The metrics file is written whole to a temporary name and renamed, so a collector (such as
//! node_exporter's textfile collector) never reads half a file. The ping is a GET of the
//! schedule's `ping_url` on success, and of `ping_url/fail` when the run failed, ended degraded
//! or a 3-2-1 verdict is not OK; it carries nothing but the URL, so no secret leaves the machine.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::job::RunReport;
use crate::policy::Verdict;
use crate::state::RunRecord;
use crate::status::ScheduleStatus;

const OUTCOMES: [&str; 4] = ["complete", "degraded", "failed", "interrupted"];

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
    for o in OUTCOMES {
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
            for c in &src.copies {
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
    }
    out
}

/// Writes a metrics file atomically.
pub fn write_metrics(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::local(dir, "cannot create the metrics directory", e))?;
    }
    let tmp = path.with_extension("prom.tmp");
    std::fs::write(&tmp, text)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| Error::local(path, "cannot write the metrics file", e))
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
