//! Snapshots: what was backed up, from where, when, and how it went.
//!
//! A snapshot is the school policy's "clearly marked stating what they are and when they were
//! taken". This module reads and writes them on a repository (the manifest data itself is
//! [`crate::format::snapshot`]). A snapshot is written only after every object it references is
//! stored.

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::format::snapshot::Verdict;
use crate::id::Id;
use crate::plan::when;
use crate::store::decisions::{self, Standing};
use crate::store::repo::{Repository, SNAPSHOTS};

/// The manifest data lives with the other encodings; callers reach it here, beside the catalog.
pub use crate::format::snapshot::{Decision, Listed, Snapshot, SnapshotStats, Warning};

/// All readable snapshots, oldest first, and the keys of those that could not be read; with the
/// technicians' decisions about suspect snapshots (`decisions/ID`), which say which are clean.
pub struct Catalog {
    pub snapshots: Vec<Listed>,
    pub damaged: Vec<(String, Error)>,
    /// Every readable decision, oldest first.
    pub decisions: Vec<Decision>,
    /// The decision objects that could not be read.
    pub damaged_decisions: Vec<(String, Error)>,
}

impl Catalog {
    pub async fn load(repo: &Repository) -> Result<Catalog> {
        let loaded = repo
            .load_all_sealed::<Snapshot>("snapshot", SNAPSHOTS)
            .await?;
        let mut snapshots = Vec::new();
        let mut damaged = loaded.damaged;
        for (key, snapshot) in loaded.read {
            match key.rsplit('/').next().and_then(|n| n.parse().ok()) {
                Some(id) => snapshots.push(Listed { id, snapshot }),
                None => damaged.push((
                    key.clone(),
                    Error::Format(format!("{key} is not named by an id; ignored")),
                )),
            }
        }
        snapshots.sort_by_key(|a| (a.snapshot.start, a.id));
        let (decisions, damaged_decisions) = decisions::load(repo).await?;
        Ok(Catalog {
            snapshots,
            damaged,
            decisions,
            damaged_decisions,
        })
    }

    /// Every snapshot and decision any of `repos` (copies of one repository) holds, oldest
    /// first; a snapshot held by several copies is listed once. `repos` must not be empty.
    pub async fn load_all(repos: &[Repository]) -> Result<Catalog> {
        let mut all: Option<Catalog> = None;
        for repo in repos {
            let c = Catalog::load(repo).await?;
            match &mut all {
                Some(all) => all.absorb(c),
                None => all = Some(c),
            }
        }
        let mut all = all.expect("at least one copy");
        all.snapshots.sort_by_key(|l| (l.snapshot.start, l.id));
        Ok(all)
    }

    /// Adds another copy's snapshots and decisions (those not already here), keeping the order.
    pub fn absorb(&mut self, other: Catalog) {
        for l in other.snapshots {
            if !self.snapshots.iter().any(|s| s.id == l.id) {
                self.snapshots.push(l);
            }
        }
        for d in other.decisions {
            if !self.decisions.contains(&d) {
                self.decisions.push(d);
            }
        }
        self.snapshots.sort_by_key(|l| (l.snapshot.start, l.id));
        self.decisions.sort_by_key(|d| (d.time, d.snapshot));
    }

    /// What a snapshot counts as, given the decisions (see [`decisions::standing`]).
    pub fn standing(&self, snapshot: &Listed) -> Standing {
        decisions::standing(snapshot, &self.decisions)
    }

    /// The oldest snapshot of `source` that holds it from pruning (suspect and undecided, or a
    /// confirmed attack not lifted), if any.
    pub fn hold(&self, source: &str) -> Option<&Listed> {
        self.snapshots
            .iter()
            .filter(|l| l.snapshot.source == source)
            .find(|l| self.standing(l).holds())
    }

    /// `SOURCE@clean`: the newest clean snapshot of `source` taken outside every incident. An
    /// incident runs from a snapshot that is not clean (suspect and not accepted) until its hold
    /// is lifted, or for ever while it is not: snapshots taken in between read the attacked
    /// share even where nothing new was flagged, so none of them is a restore point.
    pub fn clean(&self, source: &str) -> Result<&Listed> {
        let of_source: Vec<&Listed> = self
            .snapshots
            .iter()
            .filter(|l| l.snapshot.source == source)
            .collect();
        let incidents = self.incidents(source, &of_source);
        let during = |t: DateTime<Utc>| {
            incidents
                .iter()
                .any(|(from, to)| t >= *from && to.is_none_or(|to| t < to))
        };
        let found = of_source
            .iter()
            .rev()
            .find(|l| self.standing(l).is_clean() && !during(l.snapshot.start));
        if let Some(found) = found {
            return Ok(found);
        }
        Err(Error::NotFound(if incidents.is_empty() {
            format!(
                "no snapshot of source \"{source}\" in this repository; `firesafe snapshots` lists what there is"
            )
        } else {
            format!(
                "no clean snapshot of source \"{source}\" was taken before its first suspect one or after an incident was lifted; `firesafe suspect list` shows them"
            )
        }))
    }

    /// Each incident of `source` (of `of_source`, its snapshots here): from when it was taken to
    /// the time of its `lifted` decision, or without end. A confirmed or lifted attack whose
    /// snapshot prune has since forgotten is known from its decisions; a decision that does not
    /// say when the snapshot was taken starts the incident before every snapshot.
    fn incidents(
        &self,
        source: &str,
        of_source: &[&Listed],
    ) -> Vec<(DateTime<Utc>, Option<DateTime<Utc>>)> {
        let mut out: Vec<_> = of_source
            .iter()
            .filter_map(|l| match self.standing(l) {
                s if s.is_clean() => None,
                Standing::Lifted(d) => Some((l.snapshot.start, Some(d.time))),
                _ => Some((l.snapshot.start, None)),
            })
            .collect();
        // Snapshots prune has forgotten, known only from the decisions about them.
        let mut forgotten: Vec<Id> = self
            .decisions
            .iter()
            .filter(|d| d.source == source && !of_source.iter().any(|l| l.id == d.snapshot))
            .map(|d| d.snapshot)
            .collect();
        forgotten.sort();
        forgotten.dedup();
        let forgotten = forgotten
            .into_iter()
            .filter_map(|id| decisions::latest(id, &self.decisions));
        for d in forgotten {
            let from = d.taken.unwrap_or(DateTime::<Utc>::MIN_UTC);
            match d.verdict {
                Verdict::Accepted => {}
                Verdict::Confirmed => out.push((from, None)),
                Verdict::Lifted => out.push((from, Some(d.time))),
            }
        }
        out
    }

    /// Finds a snapshot by id prefix, `latest` (of `source`, when given), or `SOURCE@WHEN`: the
    /// newest snapshot of SOURCE (or of `source`, for `@WHEN`) taken at or before WHEN, read in
    /// the local time zone by [`when::parse`].
    pub fn resolve(&self, spec: &str, source: Option<&str>) -> Result<&Listed> {
        self.resolve_at(spec, source, &chrono::Local::now())
    }

    /// The sources (shares) the catalog holds snapshots of, sorted.
    pub fn sources(&self) -> Vec<&str> {
        let mut sources: Vec<&str> = self
            .snapshots
            .iter()
            .map(|l| l.snapshot.source.as_str())
            .collect();
        sources.sort_unstable();
        sources.dedup();
        sources
    }

    /// A selector by time (`latest`, `@DATE`) without a source is refused when the repository
    /// holds more than one share: it would silently pick whichever share was backed up last.
    fn one_source(&self, spec: &str) -> Result<()> {
        let sources = self.sources();
        if sources.len() <= 1 {
            return Ok(());
        }
        Err(Error::Usage(format!(
            "\"{spec}\" could mean the newest snapshot of any of {} shares ({}): give --source NAME (for example --source {}) or write {}@..., or restore every share at once with `restore --all-sources`",
            sources.len(),
            sources.join(", "),
            sources[0],
            sources[0]
        )))
    }

    /// [`Catalog::resolve`], with relative times (`yesterday`) read from `now` and in its zone.
    pub fn resolve_at<Tz: chrono::TimeZone>(
        &self,
        spec: &str,
        source: Option<&str>,
        now: &DateTime<Tz>,
    ) -> Result<&Listed>
    where
        Tz::Offset: std::fmt::Display,
    {
        if let Some((name, text)) = spec.rsplit_once('@') {
            let source = match (name, source) {
                ("", s) => s,
                (n, Some(s)) if n != s => {
                    return Err(Error::Usage(format!(
                        "\"{spec}\" names source \"{n}\" but --source says \"{s}\"; give one"
                    )));
                }
                (n, _) => Some(n),
            };
            if text.trim() == "clean" {
                let source = source.ok_or_else(|| {
                    Error::Usage(format!(
                        "\"{spec}\" needs a source: write SOURCE@clean (or give --source)"
                    ))
                })?;
                return self.clean(source);
            }
            if source.is_none() {
                self.one_source(spec)?;
            }
            let span = when::parse(text, now).map_err(Error::Usage)?;
            return self.as_of(source, span.end, &now.timezone());
        }
        let of_source = |l: &&Listed| source.is_none_or(|s| l.snapshot.source == s);
        if spec == "latest" {
            if source.is_none() {
                self.one_source(spec)?;
            }
            return self.snapshots.iter().rev().find(of_source).ok_or_else(|| {
                Error::NotFound(match source {
                    Some(s) => format!("no snapshot of source \"{s}\" in this repository; `firesafe snapshots` lists what there is"),
                    None => "the repository has no snapshots yet; run `firesafe backup` first".into(),
                })
            });
        }
        if spec.is_empty() || spec.len() > 64 || !spec.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::Usage(format!(
                "\"{spec}\" is not a snapshot id; give an id (or its first digits) from `firesafe snapshots`, `latest`, or SOURCE@DATE"
            )));
        }
        let spec = spec.to_ascii_lowercase();
        let matches: Vec<&Listed> = self
            .snapshots
            .iter()
            .filter(|l| l.id.to_hex().starts_with(&spec))
            .filter(of_source)
            .collect();
        match matches.as_slice() {
            [one] => Ok(one),
            [] => Err(Error::NotFound(format!(
                "no snapshot with id {spec} in this repository; `firesafe snapshots` lists them"
            ))),
            many => Err(Error::Usage(format!(
                "snapshot id {spec} is ambiguous ({} snapshots start with it); give more digits",
                many.len()
            ))),
        }
    }

    /// The newest snapshot (of `source`, when given) taken at or before `at`; times in the error
    /// are shown in `zone`.
    pub fn as_of<Tz: chrono::TimeZone>(
        &self,
        source: Option<&str>,
        at: DateTime<Utc>,
        zone: &Tz,
    ) -> Result<&Listed>
    where
        Tz::Offset: std::fmt::Display,
    {
        let of_source: Vec<&Listed> = self
            .snapshots
            .iter()
            .filter(|l| source.is_none_or(|s| l.snapshot.source == s))
            .collect();
        if let Some(found) = of_source.iter().rev().find(|l| l.snapshot.start <= at) {
            return Ok(found);
        }
        let show = |t: DateTime<Utc>| t.with_timezone(zone).format("%Y-%m-%d %H:%M:%S");
        let whose = source.map_or("no snapshot".to_string(), |s| {
            format!("no snapshot of source \"{s}\"")
        });
        Err(Error::NotFound(match of_source.first() {
            Some(first) => format!(
                "{whose} was taken at or before {}; the first was taken {} (`firesafe snapshots` lists them)",
                show(at),
                show(first.snapshot.start)
            ),
            None => format!("{whose} in this repository; `firesafe snapshots` lists what there is"),
        }))
    }

    /// The newest complete snapshot of `source` (the parent for the next backup).
    pub fn latest_complete(&self, source: &str) -> Option<&Listed> {
        self.snapshots
            .iter()
            .rev()
            .find(|l| l.snapshot.source == source && !l.snapshot.partial)
            .or_else(|| {
                self.snapshots
                    .iter()
                    .rev()
                    .find(|l| l.snapshot.source == source)
            })
    }
}

/// Splits `SNAPSHOT:PATH` into the snapshot and the path. After `@` the time may hold colons
/// itself (`curriculum@2026-11-20 18:00:year7`): the whole is a snapshot when the time reads,
/// and otherwise the path starts after the last colon that leaves a readable time before it.
pub fn split_path(what: &str) -> (&str, Option<&str>) {
    let Some(at) = what.rfind('@') else {
        return match what.split_once(':') {
            Some((spec, path)) => (spec, Some(path)),
            None => (what, None),
        };
    };
    let now = chrono::Local::now();
    let reads = |end: usize| {
        let text = &what[at + 1..end];
        text == "clean" || when::parse(text, &now).is_ok()
    };
    if reads(what.len()) {
        return (what, None);
    }
    let colons: Vec<usize> = what[at..].match_indices(':').map(|(i, _)| at + i).collect();
    let cut = colons.iter().rev().find(|&&i| reads(i)).or(colons.first());
    match cut {
        Some(&i) => (&what[..i], Some(&what[i + 1..])),
        None => (what, None),
    }
}

/// Stores a snapshot; returns its id.
pub async fn save(repo: &Repository, snapshot: &Snapshot) -> Result<Id> {
    repo.save_sealed(SNAPSHOTS, snapshot).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(n: u8, source: &str, start: &str) -> Listed {
        Listed {
            id: Id([n; 32]),
            snapshot: Snapshot {
                source: source.into(),
                host: "h".into(),
                paths: vec![],
                tags: vec![],
                start: start.parse().expect("time"),
                end: start.parse().expect("time"),
                program_version: "0".into(),
                parent: None,
                tree: Id([0; 32]),
                partial: false,
                warnings: vec![],
                stats: SnapshotStats::default(),
                suspect: None,
            },
        }
    }

    #[test]
    fn a_time_picks_the_newest_snapshot_of_its_source_at_or_before_it() {
        let catalog = Catalog {
            snapshots: vec![
                listed(1, "curriculum", "2026-11-19T18:00:05Z"),
                listed(2, "admin", "2026-11-20T12:00:00Z"),
                listed(3, "curriculum", "2026-11-20T18:00:05Z"),
                listed(4, "curriculum", "2026-11-23T09:00:00Z"),
            ],
            damaged: vec![],
            decisions: vec![],
            damaged_decisions: vec![],
        };
        let now: DateTime<Utc> = "2026-11-23T14:30:00Z".parse().expect("time");
        let pick = |spec: &str, source: Option<&str>| {
            catalog
                .resolve_at(spec, source, &now)
                .map(|l| l.id.0[0])
                .map_err(|e| e.to_string())
        };
        assert_eq!(pick("curriculum@2026-11-20", None), Ok(3));
        assert_eq!(pick("curriculum@2026-11-20 18:00", None), Ok(3));
        assert_eq!(pick("curriculum@2026-11-20 17:59", None), Ok(1));
        assert_eq!(pick("curriculum@last friday 18:00", None), Ok(3));
        assert_eq!(pick("@yesterday", Some("admin")), Ok(2));
        assert_eq!(pick("curriculum@today", None), Ok(4));
        let early = pick("curriculum@2026-11-18", None).unwrap_err();
        assert!(
            early.contains("at or before 2026-11-18 23:59:59")
                && early.contains("the first was taken 2026-11-19 18:00:05"),
            "{early}"
        );
        assert!(pick("admin@2026-11-20", Some("curriculum")).is_err());
    }

    #[test]
    fn clean_skips_every_snapshot_of_an_incident_until_it_is_lifted() {
        use crate::format::snapshot::{Decision, Suspect, Verdict};
        let suspect = |mut l: Listed| {
            l.snapshot.suspect = Some(Suspect {
                score: 90,
                threshold: 60,
                headline: "files encrypted".into(),
                signals: vec![],
            });
            l
        };
        let decide = |n: u8, verdict: Verdict, time: &str| Decision {
            snapshot: Id([n; 32]),
            source: "admin".into(),
            verdict,
            who: "jo".into(),
            host: "server".into(),
            time: time.parse().expect("time"),
            note: String::new(),
            taken: None,
        };
        let mut catalog = Catalog {
            snapshots: vec![
                listed(1, "admin", "2026-11-16T18:00:00Z"),
                suspect(listed(2, "admin", "2026-11-17T18:00:00Z")),
                // The next night reads the encrypted share again without new alarms.
                listed(3, "admin", "2026-11-18T18:00:00Z"),
                listed(9, "curriculum", "2026-11-18T18:00:00Z"),
            ],
            damaged: vec![],
            decisions: vec![],
            damaged_decisions: vec![],
        };
        let pick = |c: &Catalog| {
            c.clean("admin")
                .map(|l| l.id.0[0])
                .map_err(|e| e.to_string())
        };
        assert_eq!(pick(&catalog), Ok(1), "an open incident");
        catalog.decisions = vec![decide(2, Verdict::Confirmed, "2026-11-18T08:00:00Z")];
        assert_eq!(pick(&catalog), Ok(1), "a confirmed attack");
        // The share restored, then the hold lifted: the nights after the lift are clean again.
        catalog
            .decisions
            .push(decide(2, Verdict::Lifted, "2026-11-19T10:00:00Z"));
        assert_eq!(pick(&catalog), Ok(1), "lifted, nothing taken since");
        catalog
            .snapshots
            .push(listed(4, "admin", "2026-11-19T18:00:00Z"));
        assert_eq!(pick(&catalog), Ok(4), "the first night after the lift");
        // A false alarm accepted is clean at once, and so are the nights after it.
        catalog.decisions = vec![decide(2, Verdict::Accepted, "2026-11-18T08:00:00Z")];
        assert_eq!(pick(&catalog), Ok(4));
        // Prune forgot the lifted attack and the clean night before it: the night after the
        // attack is still no restore point, and the night after the lift is.
        let mut lifted = decide(2, Verdict::Lifted, "2026-11-19T10:00:00Z");
        lifted.taken = Some("2026-11-17T18:00:00Z".parse().expect("time"));
        catalog.decisions = vec![lifted];
        catalog.snapshots = vec![listed(3, "admin", "2026-11-18T18:00:00Z")];
        assert!(pick(&catalog).is_err());
        catalog
            .snapshots
            .push(listed(4, "admin", "2026-11-19T18:00:00Z"));
        assert_eq!(pick(&catalog), Ok(4));
        // Without `taken` (an older decision), every snapshot before the lift is left out.
        catalog.decisions[0].taken = None;
        catalog
            .snapshots
            .insert(0, listed(1, "admin", "2026-11-16T18:00:00Z"));
        catalog.snapshots.pop();
        assert!(pick(&catalog).is_err());
        catalog.snapshots = vec![suspect(listed(2, "admin", "2026-11-17T18:00:00Z"))];
        catalog.decisions.clear();
        let none = pick(&catalog).unwrap_err();
        assert!(
            none.contains("no clean snapshot of source \"admin\""),
            "{none}"
        );
    }

    #[test]
    fn a_path_follows_the_snapshot_even_when_its_time_has_colons() {
        assert_eq!(
            split_path("latest:curriculum/year7"),
            ("latest", Some("curriculum/year7"))
        );
        assert_eq!(split_path("1a2b3c4d"), ("1a2b3c4d", None));
        assert_eq!(
            split_path("curriculum@2026-11-20 18:00"),
            ("curriculum@2026-11-20 18:00", None)
        );
        assert_eq!(
            split_path("curriculum@2026-11-20 18:00:year7/plan.docx"),
            ("curriculum@2026-11-20 18:00", Some("year7/plan.docx"))
        );
        assert_eq!(
            split_path("curriculum@last friday 18:00:30:notes 10:30.txt"),
            ("curriculum@last friday 18:00:30", Some("notes 10:30.txt"))
        );
        assert_eq!(
            split_path("curriculum@yesterday:a:b"),
            ("curriculum@yesterday", Some("a:b"))
        );
    }
}
