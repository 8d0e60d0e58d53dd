//! The report's running order: the title, the first page, the incidents and risks, each share
//! in detail, the glossary, the sign-off and the technician's appendix. Each part is built by
//! its own module from the facts; the glossary and the sign-off, which are fixed text, are here.

use crate::paper::doc::{Block, Doc};
use crate::paper::report::appendix;
use crate::paper::report::detail;
use crate::paper::report::facts::ReportData;
use crate::paper::report::risks;
use crate::paper::report::summary;
use crate::paper::report::words::Clock;

/// Builds the report from its facts.
pub fn build(d: &ReportData) -> Doc {
    let c = Clock { tz: d.timezone };
    let school = d.school.clone().unwrap_or_else(|| "The school".into());
    let mut b = Vec::new();
    b.push(Block::Title {
        title: format!("{school}: backup and disaster recovery report"),
        subtitle: format!(
            "For the headteacher and governors. Period: {} to {}. Produced on {} from the recorded history and from the backup copies themselves.",
            c.day(d.from),
            c.day(d.to),
            c.time(d.generated)
        ),
    });
    summary::section(&mut b, d, &c);
    risks::section(&mut b, d, &c);
    detail::section(&mut b, d, &c);
    glossary(&mut b);
    sign_off(&mut b, d, &c);
    b.push(Block::PageBreak);
    appendix::section(&mut b, d, &c);
    Doc {
        title: format!("{school}: backup and disaster recovery report"),
        footer: format!("{school} · DR report {} to {}", c.day(d.from), c.day(d.to)),
        blocks: b,
    }
}

fn glossary(b: &mut Vec<Block>) {
    b.push(Block::Heading("Glossary".into()));
    b.push(Block::Bullets(
        GLOSSARY
            .iter()
            .map(|(t, m)| (None, format!("{t}: {m}")))
            .collect(),
    ));
}

fn sign_off(b: &mut Vec<Block>, d: &ReportData, c: &Clock) {
    b.push(Block::Heading("Sign-off".into()));
    b.push(Block::Para(format!(
        "We have read this report for the period {} to {}, and the risks it names have been discussed and either resolved or accepted.",
        c.day(d.from),
        c.day(d.to)
    )));
    b.push(Block::SignOff(vec![
        "Headteacher".into(),
        "Chair of Governors".into(),
    ]));
}

/// The terms a governor meets in the report, in plain words.
const GLOSSARY: &[(&str, &str)] = &[
    (
        "Backup",
        "A copy of the school's files, kept so they can be got back if the originals are lost, damaged or locked by ransomware.",
    ),
    (
        "Share",
        "One of the school's shared folders on the file server, such as the curriculum, admin or staff share.",
    ),
    (
        "Snapshot",
        "One backup of a share: the files exactly as they were at one moment. Older snapshots are kept, so a file can be got back as it was last week or last term.",
    ),
    (
        "3-2-1 rule",
        "At least three copies of important data, on at least two separate kinds of storage, with at least one kept off site. The school's policy asks for this.",
    ),
    (
        "Off site",
        "Away from the school building (another building, or a data centre), so that a fire, flood or theft at school cannot destroy every copy.",
    ),
    (
        "Encryption",
        "The backups are scrambled with a secret key before they leave the server. Without the key, nobody (including the storage company) can read them.",
    ),
    (
        "Recovery key",
        "The secret key that unlocks the backups. A copy is kept in the fire safe; without it the backups cannot be read.",
    ),
    (
        "Restore drill",
        "A practice restore: files are really restored from the backups and compared with the originals, to prove the backups work.",
    ),
    (
        "RPO (recovery point objective)",
        "How much recent work the school could lose: the time since the last good backup. A nightly backup means at most about a day.",
    ),
    (
        "RTO (recovery time objective)",
        "How long the school can manage without its files: the target time to get a whole share back. Restore drills measure the real time.",
    ),
    (
        "Verification",
        "Reading the stored backups back and checking every piece is intact, so that hidden damage is found before the backups are needed.",
    ),
    (
        "Immutability",
        "Backups that cannot be changed or deleted for a set time, even by someone with the passwords: a defence against ransomware.",
    ),
    (
        "Ransomware",
        "Malicious software that locks or deletes files and demands payment. The school's policy counts an attack as a security breach.",
    ),
];
