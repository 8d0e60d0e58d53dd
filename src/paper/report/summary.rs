//! The first page, for a governor with two minutes: one overall light, the seven questions each
//! with its light and answer, and a line per share (last backed up, 3-2-1, restore tested).
//! When firesafe's records begin after the period starts, the page says so under the overall
//! light, before anything else.

use crate::paper::doc::{Block, Light};
use crate::paper::report::checks::{self, Check};
use crate::paper::report::expected;
use crate::paper::report::facts::ReportData;
use crate::paper::report::proof;
use crate::paper::report::ransomware;
use crate::paper::report::share::shares;
use crate::paper::report::words::{Clock, points};
use crate::plan::policy::Verdict;
use crate::store::records::CheckOutcome;

/// The seven questions of the first page, in order, each with the check that answers it.
fn questions(d: &ReportData, c: &Clock) -> [(&'static str, Check); 7] {
    [
        (
            "Are there enough copies, in enough places?",
            checks::check_copies(d),
        ),
        ("Is every share backed up?", checks::check_newest(d, c)),
        ("Did the nightly backups work?", checks::check_runs(d, c)),
        ("Was a restore tested?", proof::check_drills(d, c)),
        ("How long would recovery take?", proof::check_recovery(d)),
        ("Were the stored copies checked?", proof::check_reads(d, c)),
        (
            "Could ransomware or a break-in destroy every copy?",
            ransomware::check_immutable(d, c),
        ),
    ]
}

/// The page, up to and including its page break.
pub(super) fn section(b: &mut Vec<Block>, d: &ReportData, c: &Clock) {
    let answers = questions(d, c);
    b.push(overall(&answers));
    let exp = expected::all(d);
    let many = exp.len() > 1;
    for (s, e) in &exp {
        if let Some(t) = e.records_begin(s, c, many) {
            b.push(Block::Para(t));
        }
    }
    b.push(Block::Subheading("The seven questions".into()));
    for (q, k) in answers {
        b.push(Block::Status {
            light: k.light,
            headline: q.to_string(),
            detail: format!("{} {}", k.headline, k.detail),
        });
    }
    b.push(Block::Subheading("Each share".into()));
    b.push(share_table(d, c));
    b.push(Block::Note(
        "Details, incidents and a glossary of terms follow. The technician's appendix lists every record this report is built from.".into(),
    ));
    b.push(Block::PageBreak);
}

/// The overall light: the worst of the seven, with how many points need action or attention.
fn overall(answers: &[(&str, Check)]) -> Block {
    let worst = answers
        .iter()
        .map(|(_, k)| k.light)
        .max()
        .unwrap_or(Light::Red);
    let count = |l: Light| answers.iter().filter(|(_, k)| k.light == l).count();
    Block::Status {
        light: worst,
        headline: match worst {
            Light::Green => "Overall: the backups are working and were tested.".into(),
            Light::Amber => format!(
                "Overall: {} {} attention.",
                points(count(Light::Amber)),
                need(count(Light::Amber))
            ),
            Light::Red => format!(
                "Overall: {} {} action{}.",
                points(count(Light::Red)),
                need(count(Light::Red)),
                match count(Light::Amber) {
                    0 => String::new(),
                    n => format!(", {} attention", points(n)),
                }
            ),
        },
        detail:
            "Each point below is one question a governor may ask, answered from what was measured."
                .into(),
    }
}

/// "needs" after "1 point", "need" after more.
fn need(n: usize) -> &'static str {
    if n == 1 { "needs" } else { "need" }
}

/// One row per share: when it was last backed up, its 3-2-1 verdict, its latest drill.
fn share_table(d: &ReportData, c: &Clock) -> Block {
    let mut rows = Vec::new();
    for s in shares(d) {
        rows.push(vec![
            s.name.to_string(),
            s.newest().map_or("never".into(), |t| c.time(t)),
            s.status()
                .map_or("not checked".into(), |x| match x.evaluation.verdict {
                    Verdict::Ok => "OK".into(),
                    Verdict::Degraded => "ATTENTION: a copy is old".into(),
                    Verdict::Violated => "ACTION NEEDED: a copy is missing".into(),
                }),
            match s.drills().last() {
                None => "never in this period".into(),
                Some(x) if x.result == CheckOutcome::Pass => {
                    format!("passed {}", c.day(x.finished))
                }
                Some(x) => format!("FAILED {}", c.day(x.finished)),
            },
        ]);
    }
    Block::Table {
        widths: vec![0.22, 0.26, 0.28, 0.24],
        header: vec![
            "Share".into(),
            "Last backed up".into(),
            "Copies (3-2-1)".into(),
            "Restore tested".into(),
        ],
        rows,
    }
}
