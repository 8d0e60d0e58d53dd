//! `firesafe fleet status`: every school's status beacon, read with the trust's key, its
//! signature checked against the school's public key, its age against what the school's
//! schedule allows, and what it says confirmed against the store: each copy it names on a target
//! the trust can read must be there (`snapshots/ID`). Storage read access is all this needs; no
//! school's data key is used.
//!
//! A school is OK only when its beacon is there, signed, fresh, confirmed, and every share's
//! verdict in it is OK. Anything else needs attention, with the reason in words.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::config::fleet::{Fleet, School};
use crate::error::{Error, Result};
use crate::schedule::beacon::{self, Beacon, Refused};
use crate::store::repo::SNAPSHOTS;
use crate::store::target::{Target, TargetOptions};

/// A school's light.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "SCREAMING-KEBAB-CASE")]
pub enum Light {
    Ok,
    /// The beacon is believed, and says a share is DEGRADED.
    Degraded,
    /// No believable beacon, or it says a share is VIOLATED or SUSPECT.
    ActionNeeded,
}

impl Light {
    pub fn word(self) -> &'static str {
        match self {
            Light::Ok => "OK",
            Light::Degraded => "DEGRADED",
            Light::ActionNeeded => "ACTION NEEDED",
        }
    }
}

/// One school, as the trust sees it.
#[derive(Clone, Debug, Serialize)]
pub struct SchoolStatus {
    pub school: String,
    pub light: Light,
    /// Why it is not OK, one sentence each.
    pub reasons: Vec<String>,
    /// When the beacon was written (when one was read and believed).
    pub written: Option<DateTime<Utc>>,
    /// What the beacon says, when it is believed.
    pub beacon: Option<Beacon>,
}

/// Every school of `fleet`, read now.
pub async fn status(fleet: &Fleet, now: DateTime<Utc>) -> Result<Vec<SchoolStatus>> {
    crate::ops::keys::check_private(&fleet.key_file)?;
    let text = std::fs::read_to_string(&fleet.key_file).map_err(|e| {
        Error::WrongKey(format!(
            "{}: cannot read the trust's key file ({e}); check key_file in fleet.toml",
            fleet.key_file.display()
        ))
    })?;
    let identities = match crate::format::crypto::Unlock::parse_identity_file(&text) {
        Ok(crate::format::crypto::Unlock::Identities(ids)) => ids,
        Ok(_) => Vec::new(),
        Err(why) => {
            return Err(Error::WrongKey(format!(
                "{}: {why}; key_file in fleet.toml must be the trust's age identity (`firesafe fleet keygen`)",
                fleet.key_file.display()
            )));
        }
    };
    // A few schools at once: each costs a couple of requests, and over a real network their
    // round trips, not firesafe's work, take the time. The order of fleet.toml is kept.
    use futures::StreamExt;
    let out = futures::stream::iter(&fleet.schools)
        .map(|school| one(fleet, school, &identities, now))
        .buffered(SCHOOLS_AT_ONCE)
        .collect()
        .await;
    Ok(out)
}

/// How many schools `status` reads at once.
const SCHOOLS_AT_ONCE: usize = 8;

fn open(fleet: &Fleet, name: &str, t: &crate::config::fleet::FleetTarget) -> Result<Target> {
    Target::open(
        name,
        &t.location(&fleet.dir),
        &TargetOptions::default(),
        false,
    )
}

async fn one(
    fleet: &Fleet,
    school: &School,
    trust: &[age::x25519::Identity],
    now: DateTime<Utc>,
) -> SchoolStatus {
    let refused = |why: String| SchoolStatus {
        school: school.name.clone(),
        light: Light::ActionNeeded,
        reasons: vec![why],
        written: None,
        beacon: None,
    };
    let public = match crate::format::signing::parse_public(&school.public_key) {
        Ok(k) => k,
        Err(why) => return refused(format!("its public_key in fleet.toml is wrong: {why}")),
    };
    let Some((where_, spec)) = school.beacon_target() else {
        return refused("fleet.toml names no target for its beacon".into());
    };
    let key = beacon::key(&school.schedule);
    let bytes = match open(fleet, where_, spec) {
        Ok(t) => t.get_opt(&key).await,
        Err(e) => Err(e),
    };
    let bytes = match bytes {
        Ok(Some(b)) => b,
        Ok(None) => {
            return refused(format!(
                "no status beacon ({key}) on target \"{where_}\": the school's firesafe has not written one (does its site.toml give trust_recipient?), or it was deleted"
            ));
        }
        Err(e) => {
            return refused(format!(
                "its beacon could not be read from \"{where_}\": {e}"
            ));
        }
    };
    let b = match beacon::open(&bytes, trust, &public) {
        Ok(b) => b,
        Err(Refused::NotSigned) => {
            return refused(
                "its beacon is not signed by the school's key: written or changed by someone else; do not trust it, and ask the school to check its server".into(),
            );
        }
        Err(Refused::Unreadable(why)) => {
            return refused(format!("its beacon is unreadable: {why}"));
        }
    };
    let mut light = Light::Ok;
    let mut reasons = Vec::new();
    let mut worse = |l: Light, why: String, reasons: &mut Vec<String>| {
        light = light.max(l);
        reasons.push(why);
    };
    let allowed = Duration::hours(i64::from(b.max_age_hours.max(1)));
    if now - b.written > allowed {
        worse(
            Light::ActionNeeded,
            format!(
                "its beacon is stale: written {} ago, and its schedule renews it at least every {} hours; the school's runs are not happening or not reaching this store",
                crate::plan::words::age((now - b.written).num_seconds()),
                b.max_age_hours
            ),
            &mut reasons,
        );
    }
    if b.school != school.name || b.schedule != school.schedule {
        worse(
            Light::ActionNeeded,
            format!(
                "its beacon is for \"{}\" (schedule {}), not this school's: check fleet.toml",
                b.school, b.schedule
            ),
            &mut reasons,
        );
    }
    for s in &b.shares {
        let l = match s.verdict.as_str() {
            "OK" => Light::Ok,
            "DEGRADED" => Light::Degraded,
            _ => Light::ActionNeeded,
        };
        if l != Light::Ok || s.suspect.is_some() {
            let mut why = format!("{}: {}", s.name, s.verdict);
            if let Some(sus) = &s.suspect {
                why.push_str(&format!(" ({sus})"));
            }
            if !s.reasons.is_empty() {
                why.push_str(&format!(": {}", s.reasons.join("; ")));
            }
            worse(l.max(Light::Degraded), why, &mut reasons);
        }
    }
    for why in contradictions(fleet, school, &b).await {
        worse(Light::ActionNeeded, why, &mut reasons);
    }
    SchoolStatus {
        school: school.name.clone(),
        light,
        reasons,
        written: Some(b.written),
        beacon: Some(b),
    }
}

/// What the beacon says is on the trust's targets but is not: each copy it counts must have its
/// snapshot object there.
async fn contradictions(fleet: &Fleet, school: &School, b: &Beacon) -> Vec<String> {
    let mut listed: HashMap<&str, std::result::Result<HashSet<String>, String>> = HashMap::new();
    let mut out = Vec::new();
    for share in &b.shares {
        for c in share.copies.iter().filter(|c| c.counted) {
            let (Some(spec), Some(id)) = (school.targets.get(&c.target), &c.snapshot) else {
                continue;
            };
            if !listed.contains_key(c.target.as_str()) {
                let keys = match open(fleet, &c.target, spec) {
                    Ok(t) => t.list(SNAPSHOTS).await.map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                }
                .map(|l| l.into_iter().map(|x| x.key).collect());
                listed.insert(&c.target, keys);
            }
            match &listed[c.target.as_str()] {
                Ok(keys) if keys.contains(&format!("{SNAPSHOTS}/{id}")) => {}
                Ok(_) => out.push(format!(
                    "{}: the beacon counts snapshot {} on \"{}\", but that target does not hold it: the beacon is contradicted by the store",
                    share.name,
                    &id[..8.min(id.len())],
                    c.target
                )),
                Err(e) => out.push(format!(
                    "{}: the copy on \"{}\" could not be confirmed: {e}",
                    share.name, c.target
                )),
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The message `fleet email` sends: (subject, body). The subject names up to three schools that
/// need attention, worst first; the body gives every such school's reasons, then the schools
/// that are OK.
pub fn email_text(trust: &str, schools: &[SchoolStatus], now: DateTime<Utc>) -> (String, String) {
    use crate::format::tree::printable;
    use crate::plan::words::{count, noun};
    use std::fmt::Write as _;
    let mut attention: Vec<&SchoolStatus> =
        schools.iter().filter(|s| s.light != Light::Ok).collect();
    attention.sort_by_key(|s| std::cmp::Reverse(s.light));
    let all = count(schools.len() as u64, "school", "schools");
    let n = attention.len() as u64;
    let subject = if attention.is_empty() && schools.len() == 1 {
        format!("{trust} backups: the school is OK")
    } else if attention.is_empty() {
        format!("{trust} backups: all {all} OK")
    } else {
        let mut names: Vec<String> = attention
            .iter()
            .take(3)
            .map(|s| printable(&s.school).into_owned())
            .collect();
        if attention.len() > 3 {
            names.push(format!("{} more", attention.len() - 3));
        }
        format!(
            "{trust} backups: {n} of {all} {} attention: {}",
            noun(n, "needs", "need"),
            names.join(", ")
        )
    };
    let mut body = format!(
        "The backups of {trust}'s {all}, as their status beacons and the store showed them at {} (UTC).\n",
        now.format("%Y-%m-%d %H:%M")
    );
    if !attention.is_empty() {
        let _ = writeln!(
            body,
            "\n{n} of {all} {} attention:",
            noun(n, "needs", "need")
        );
    }
    for s in &attention {
        let _ = writeln!(body, "\n{}: {}", printable(&s.school), s.light.word());
        for r in &s.reasons {
            let _ = writeln!(body, "  - {}", printable(r));
        }
    }
    let ok: Vec<String> = schools
        .iter()
        .filter(|s| s.light == Light::Ok)
        .map(|s| printable(&s.school).into_owned())
        .collect();
    if !ok.is_empty() {
        let _ = writeln!(
            body,
            "\n{} OK: {}.",
            count(ok.len() as u64, "school is", "schools are"),
            ok.join(", ")
        );
    }
    let _ = writeln!(
        body,
        "\n`firesafe fleet status` shows the table, and `firesafe fleet report` writes the board's page."
    );
    (subject, body)
}

/// Prometheus text format: per school, whether it is OK and how old its beacon is.
pub fn metrics(schools: &[SchoolStatus], now: DateTime<Utc>) -> String {
    let label = |s: &str| {
        s.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', " ")
    };
    let mut out = String::from(
        "# HELP firesafe_fleet_school_ok 1 when the school's beacon is believed and every share is OK.\n# TYPE firesafe_fleet_school_ok gauge\n",
    );
    for s in schools {
        out.push_str(&format!(
            "firesafe_fleet_school_ok{{school=\"{}\"}} {}\n",
            label(&s.school),
            u8::from(s.light == Light::Ok)
        ));
    }
    out.push_str("# HELP firesafe_fleet_beacon_age_seconds Age of the school's believed status beacon.\n# TYPE firesafe_fleet_beacon_age_seconds gauge\n");
    for s in schools {
        if let Some(w) = s.written {
            out.push_str(&format!(
                "firesafe_fleet_beacon_age_seconds{{school=\"{}\"}} {}\n",
                label(&s.school),
                (now - w).num_seconds().max(0)
            ));
        }
    }
    out
}
