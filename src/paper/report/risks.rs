//! The "Incidents and open risks" section: every incident of the period and every risk open now,
//! each one plain sentence with its light, the most serious first, for the governors to resolve
//! or accept. Each kind of record (status, runs, verifications, read-back coverage, drills) is
//! read by its own function; the list keeps their order within a light.

use crate::paper::doc::{Block, Light};
use crate::paper::report::facts::{ReportData, ScheduleData};
use crate::paper::report::share::Share;
use crate::paper::report::words::{Clock, describe_seconds};
use crate::plan::policy::Verdict;
use crate::store::records::CheckOutcome;
use crate::store::state::RunOutcome;

/// The section: its heading, a line saying how many items, and the items.
pub(super) fn section(b: &mut Vec<Block>, d: &ReportData, c: &Clock) {
    b.push(Block::Heading("Incidents and open risks".into()));
    let r = risks(d, c);
    if r.is_empty() {
        b.push(Block::Para(
            "No incident was recorded in this period, and no risk is open.".into(),
        ));
    } else {
        b.push(Block::Para(format!(
            "{} item(s), the most serious first. Each should be resolved or accepted by the governors.",
            r.len()
        )));
        b.push(Block::Bullets(
            r.into_iter().map(|(l, t)| (Some(l), t)).collect(),
        ));
    }
}

/// The incidents and open risks, each in one plain sentence, worst first.
fn risks(d: &ReportData, c: &Clock) -> Vec<(Light, String)> {
    let mut out = Vec::new();
    let period = format!("between {} and {}", c.day(d.from), c.day(d.to));
    for s in &d.schedules {
        if let Err(e) = &s.status {
            out.push((
                Light::Red,
                format!(
                    "The copies of schedule {} could not be checked: {e}",
                    s.name
                ),
            ));
        }
        run_risks(&mut out, s, c);
        status_risks(&mut out, s);
        verify_risks(&mut out, s, c, &period);
        drill_risks(&mut out, s, c, &period);
    }
    out.sort_by_key(|r| std::cmp::Reverse(r.0));
    out
}

/// Runs that were not complete.
fn run_risks(out: &mut Vec<(Light, String)>, s: &ScheduleData, c: &Clock) {
    for r in &s.runs {
        let what = match r.outcome {
            RunOutcome::Complete => continue,
            RunOutcome::Degraded => (Light::Amber, "finished, but left a copy out of date"),
            RunOutcome::Failed => (Light::Red, "failed"),
            RunOutcome::Interrupted => (Light::Amber, "was interrupted"),
        };
        out.push((
            what.0,
            format!(
                "The {} backup of {} {}: {}",
                s.name,
                c.time(r.started),
                what.1,
                r.message.trim_end_matches('.')
            ) + ".",
        ));
    }
}

/// What the 3-2-1 status says is amiss now, and the disk rotation's warnings.
fn status_risks(out: &mut Vec<(Light, String)>, s: &ScheduleData) {
    let Ok(st) = &s.status else {
        return;
    };
    for src in &st.sources {
        for r in &src.evaluation.reasons {
            let light = match src.evaluation.verdict {
                Verdict::Violated => Light::Red,
                _ => Light::Amber,
            };
            out.push((light, format!("{} now: {r}.", src.source)));
        }
    }
    for p in &st.media {
        if let Some(w) = &p.warning {
            out.push((Light::Amber, format!("Disk rotation ({}): {w}.", p.target)));
        }
    }
}

/// Verifications that failed or could not run, then targets not (fully) read back.
fn verify_risks(out: &mut Vec<(Light, String)>, s: &ScheduleData, c: &Clock, period: &str) {
    for v in &s.verifies {
        match v.result {
            CheckOutcome::Pass => {}
            CheckOutcome::Error => out.push((
                Light::Amber,
                format!(
                    "Checking {} on {} could not run: {}.",
                    v.target,
                    c.time(v.started),
                    v.error.trim_end_matches('.')
                ),
            )),
            CheckOutcome::Fail => {
                let first = v.findings.first().map_or(String::new(), |f| {
                    format!(
                        " The first: {} {}",
                        f.object,
                        f.problem.trim_end_matches('.')
                    )
                });
                out.push((
                    Light::Red,
                    format!(
                        "Checking {} on {} found {} problem(s) that were not repaired.{first}.",
                        v.target,
                        c.time(v.started),
                        v.findings
                            .iter()
                            .filter(|f| !f.repair.starts_with("repaired"))
                            .count()
                    ),
                ));
            }
        }
    }
    for (t, v) in s.latest_verifies() {
        match v {
            None => out.push((
                Light::Amber,
                format!("The data on {} was not read back {period}.", t.name),
            )),
            Some(v) if v.coverage_90d < 0.999 => out.push((
                Light::Amber,
                format!(
                    "Only {:.0}% of the data on {} was read back in the 90 days to {}.",
                    v.coverage_90d * 100.0,
                    t.name,
                    c.day(v.finished)
                ),
            )),
            Some(_) => {}
        }
    }
}

/// Per share: no drill, failed drills, and a measured recovery slower than the target.
fn drill_risks(out: &mut Vec<(Light, String)>, s: &ScheduleData, c: &Clock, period: &str) {
    for name in &s.sources {
        let share = Share { schedule: s, name };
        let drills = share.drills();
        if drills.is_empty() {
            out.push((
                Light::Red,
                format!("No restore drill of {name} was recorded {period}."),
            ));
        }
        for dr in drills.iter().filter(|x| x.result != CheckOutcome::Pass) {
            out.push((
                Light::Red,
                format!(
                    "The restore drill of {name} from {} on {} failed: {}.",
                    dr.target,
                    c.time(dr.started),
                    if dr.reason.is_empty() {
                        format!("{} file(s) did not match", dr.mismatches.len())
                    } else {
                        dr.reason.trim_end_matches('.').to_string()
                    }
                ),
            ));
        }
        if let Some(r) = share.recovery()
            && let Some(h) = s.rto_hours.or(r.rto_hours)
            && r.estimated_recovery_seconds > h * 3600.0
        {
            out.push((
                Light::Red,
                format!(
                    "Restoring {name} would take about {}, longer than the target of {h} hours.",
                    describe_seconds(r.estimated_recovery_seconds)
                ),
            ));
        }
    }
}
