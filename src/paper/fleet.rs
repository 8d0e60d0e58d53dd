//! The trust's report: every school on one page with its light, then a page for each school
//! that needs attention, with every reason and its shares, from `fleet status`.

use chrono::{DateTime, Local, Utc};

use crate::paper::doc::{Block, Doc, Light};
use crate::schedule::fleet::{self, SchoolStatus};

fn light(l: fleet::Light) -> Light {
    match l {
        fleet::Light::Ok => Light::Green,
        fleet::Light::Degraded => Light::Amber,
        fleet::Light::ActionNeeded => Light::Red,
    }
}

fn when(t: DateTime<Utc>) -> String {
    t.with_timezone(&Local)
        .format("%-d %b %Y %H:%M")
        .to_string()
}

/// The report of `schools` (as `fleet status` read them at `read`) for `trust`.
pub fn build(trust: &str, schools: &[SchoolStatus], read: DateTime<Utc>) -> Doc {
    let attention: Vec<&SchoolStatus> = schools
        .iter()
        .filter(|s| s.light != fleet::Light::Ok)
        .collect();
    let mut blocks = vec![
        Block::Title {
            title: format!("{trust}: is every school's backup safe?"),
            subtitle: format!(
                "Read from each school's signed status beacon and checked against the storage, {}",
                when(read)
            ),
        },
        Block::Status {
            light: schools
                .iter()
                .map(|s| light(s.light))
                .max()
                .unwrap_or(Light::Red),
            headline: match attention.len() {
                0 if schools.len() == 1 => "The school is OK.".to_string(),
                0 if !schools.is_empty() => format!("All {} schools are OK.", schools.len()),
                n => format!(
                    "{n} of {} {} attention.",
                    crate::plan::words::count(schools.len() as u64, "school", "schools"),
                    crate::plan::words::noun(n as u64, "needs", "need")
                ),
            },
            detail: "A school is OK only when its beacon is there, signed by the school, no older than its schedule allows, every share in it is OK, and the copies it counts are really on the storage the trust can read.".into(),
        },
        Block::Bullets(
            schools
                .iter()
                .map(|s| {
                    let why = match s.reasons.first() {
                        Some(r) => format!(": {r}"),
                        None => String::new(),
                    };
                    (Some(light(s.light)), format!("{}{why}", s.school))
                })
                .collect(),
        ),
    ];
    for s in attention {
        blocks.push(Block::PageBreak);
        blocks.push(Block::Heading(s.school.clone()));
        blocks.push(Block::Status {
            light: light(s.light),
            headline: s.light.word().to_string(),
            detail: match s.written {
                Some(w) => format!("Its status beacon was written {}.", when(w)),
                None => "No status beacon from this school could be believed.".into(),
            },
        });
        blocks.push(Block::Bullets(
            s.reasons.iter().map(|r| (None, r.clone())).collect(),
        ));
        if let Some(b) = &s.beacon {
            blocks.push(Block::Table {
                widths: vec![0.25, 0.2, 0.55],
                header: vec!["Share".into(), "Verdict".into(), "Copies counted".into()],
                rows: b
                    .shares
                    .iter()
                    .map(|sh| {
                        let counted: Vec<&str> = sh
                            .copies
                            .iter()
                            .filter(|c| c.counted)
                            .map(|c| c.target.as_str())
                            .collect();
                        vec![sh.name.clone(), sh.verdict.clone(), counted.join(", ")]
                    })
                    .collect(),
            });
        }
    }
    Doc {
        title: format!("{trust}: backups of every school"),
        footer: format!("firesafe fleet report, {}", when(read)),
        blocks,
    }
}
