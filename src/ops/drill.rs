//! Restore drills: restore from a copy into scratch space, prove the bytes, and time it.
//!
//! - A **sample** drill restores a random sample of files (chosen with a recorded seed) from the
//!   newest complete snapshot of each source on each target, re-hashes every restored file
//!   against the snapshot's own blob ids, and compares files that have not changed since with
//!   the live share. A file that differs from the snapshot's hashes, or that cannot be restored,
//!   is a failure; a live file that changed since the snapshot is not (it is counted and shown).
//! - A **full** drill restores a whole share and times it: the measured throughput gives the
//!   share's recovery time from that copy, compared with the policy's RTO.
//! - A **site-loss** drill is a full drill from the offsite targets only, opened with a recovery
//!   key rather than the key the nightly run uses, as if the server and the NAS were gone.
//!
//! Every drill writes a [`DrillRecord`] to the state directory and, sealed, to the repository
//! (`drills/ID`) on the target drilled, so the history survives the loss of the server. Drills
//! restore into a temporary directory that is removed afterwards, and refuse a scratch directory
//! inside any configured share.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::Utc;
use rand::{Rng, SeedableRng};

use crate::error::Result;
use crate::format::tree::Node;
use crate::id::Id;
use crate::ops::restore::{self, PlanEntry, RestoreOptions, RestorePlan, RestoreReport};
use crate::store::blobs::BlobReader;
use crate::store::index::Index;
use crate::store::records::{DrillKind, DrillRecord, Mismatch};
use crate::store::repo::Repository;
use crate::store::snapshot::Listed;

/// Which schedule a drill is for, and the recovery time its policy asks for.
#[derive(Clone, Debug)]
pub struct DrillSchedule {
    pub name: String,
    pub rto_hours: Option<f64>,
}

/// Files per source and target in a sample drill when nothing else is said (the schedule's
/// `[drill] sample_files`, or `firesafe drill --files`).
pub const DEFAULT_SAMPLE_FILES: u32 = 20;

/// What to drill.
#[derive(Clone, Debug)]
pub struct DrillOptions {
    pub kind: DrillKind,
    /// Only this target (by name); default every target (offsite ones for site-loss).
    pub target: Option<String>,
    /// Files per source and target in a sample drill.
    pub sample_files: u32,
    /// The sample's seed; default random (and recorded).
    pub seed: Option<u64>,
    /// For site-loss: the recovery key file.
    pub recovery_key: Option<PathBuf>,
    /// Where to restore to; default the system's temporary directory.
    pub scratch: Option<PathBuf>,
}

/// A drill that could not run, as a record.
pub fn failed(
    schedule: &DrillSchedule,
    options: &DrillOptions,
    source: &str,
    target: &str,
    key: &str,
    reason: String,
) -> DrillRecord {
    let now = Utc::now();
    DrillRecord {
        id: Id::random().to_hex(),
        schedule: schedule.name.clone(),
        kind: options.kind,
        source: source.to_string(),
        target: target.to_string(),
        snapshot: String::new(),
        snapshot_taken: now,
        started: now,
        finished: now,
        seed: None,
        files: 0,
        bytes: 0,
        restore_seconds: 0.0,
        bytes_per_second: 0.0,
        share_bytes: 0,
        estimated_recovery_seconds: 0.0,
        rto_hours: schedule.rto_hours,
        mismatches: Vec::new(),
        changed_since: 0,
        live_identical: 0,
        key: key.to_string(),
        result: crate::store::records::CheckOutcome::Fail,
        reason,
    }
}

/// Drills one snapshot on one target: chooses the sample (a sample drill), restores it into
/// `scratch`, proves the restored bytes against the snapshot's blob ids, compares unchanged
/// files with the live share (a sample drill), and records the outcome.
pub async fn drill_one(
    repo: &Repository,
    index: &Index,
    schedule: &DrillSchedule,
    options: &DrillOptions,
    snap: &Listed,
    scratch: &Path,
    key_label: &str,
) -> Result<DrillRecord> {
    let started = Utc::now();
    let seed = (options.kind == DrillKind::Sample)
        .then(|| options.seed.unwrap_or_else(|| rand::thread_rng().r#gen()));
    let dest = scratch.join("restore");
    // A full drill takes as long as a real restore: its progress is drawn on a terminal and
    // logged every minute otherwise.
    let mut restore_options = RestoreOptions::new(&dest);
    restore_options.progress = true;
    let (report, restore_seconds, proof) = match seed {
        Some(seed) => {
            let reader = BlobReader::new(repo, index, 64 << 20);
            let mut plan = restore::plan(&reader, snap, None).await?;
            drop(reader);
            choose_sample(&mut plan, seed, options.sample_files);
            let files: Vec<PlanEntry> = plan.files.clone();
            let clock = Instant::now();
            let report = restore::restore(repo, index, plan, &restore_options).await?;
            let seconds = clock.elapsed().as_secs_f64().max(1e-6);
            let mut proof = Proof::of(&report);
            prove(&mut proof, repo, options.kind, snap, &files, &dest, &report).await;
            (report, seconds, proof)
        }
        None => full_restore(repo, index, snap, &dest, &restore_options).await?,
    };

    let bytes_per_second = report.bytes as f64 / restore_seconds;
    let share_bytes = snap.snapshot.stats.bytes;
    let estimated_recovery_seconds = if options.kind == DrillKind::Sample {
        if bytes_per_second > 0.0 {
            share_bytes as f64 / bytes_per_second
        } else {
            0.0
        }
    } else {
        restore_seconds
    };
    let reason = failure_reason(
        schedule,
        options,
        &proof.mismatches,
        estimated_recovery_seconds,
    );
    Ok(DrillRecord {
        id: Id::random().to_hex(),
        schedule: schedule.name.clone(),
        kind: options.kind,
        source: snap.snapshot.source.clone(),
        target: repo.target().name().to_string(),
        snapshot: snap.id.to_hex(),
        snapshot_taken: snap.snapshot.start,
        started,
        finished: Utc::now(),
        seed,
        files: report.files,
        bytes: report.bytes,
        restore_seconds,
        bytes_per_second,
        share_bytes,
        estimated_recovery_seconds,
        rto_hours: schedule.rto_hours,
        mismatches: proof.mismatches,
        changed_since: proof.changed_since,
        live_identical: proof.live_identical,
        key: key_label.to_string(),
        result: if reason.is_empty() {
            crate::store::records::CheckOutcome::Pass
        } else {
            crate::store::records::CheckOutcome::Fail
        },
        reason,
    })
}

/// Narrows the plan to a sample of `count` files drawn with `seed` (in plan order), and nothing
/// else: no links or special files.
fn choose_sample(plan: &mut RestorePlan, seed: u64, count: u32) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let n = (count as usize).min(plan.files.len());
    let mut picked: Vec<usize> = rand::seq::index::sample(&mut rng, plan.files.len(), n).into_vec();
    picked.sort_unstable();
    let files = std::mem::take(&mut plan.files);
    plan.files = picked.into_iter().map(|i| files[i].clone()).collect();
    plan.hardlinks.clear();
    plan.symlinks.clear();
    plan.specials.clear();
    plan.total_bytes = plan.files.iter().map(|f| f.node.size).sum();
}

/// What reading the restored files back showed.
struct Proof {
    /// Files that could not be restored or did not restore to the snapshot's bytes.
    mismatches: Vec<Mismatch>,
    /// Sample files whose live copy changed since the snapshot.
    changed_since: u64,
    /// Sample files whose live copy is identical to the restored one.
    live_identical: u64,
}

/// Proves each restored file's bytes against the snapshot and, in a sample drill, compares it
/// with the live file.
/// A full drill: the whole snapshot restored as a real restore is (a part at a time), timed,
/// then every file proved against the snapshot, a part at a time too.
async fn full_restore(
    repo: &Repository,
    index: &Index,
    snap: &Listed,
    dest: &Path,
    options: &RestoreOptions,
) -> Result<(RestoreReport, f64, Proof)> {
    let copies = crate::store::blobs::Copies::one(repo);
    let clock = Instant::now();
    let report = restore::restore_snapshot(&copies, index, snap, None, options).await?;
    let seconds = clock.elapsed().as_secs_f64().max(1e-6);
    let mut proof = Proof::of(&report);
    let cache = crate::store::blobs::tree_cache(repo, restore::TREE_PACKS);
    let reader = BlobReader::new(repo, index, cache);
    let mut parts = restore::PlanStream::new(&reader, snap, None).await?;
    while let Some(part) = parts.next(restore::PART_FILES).await? {
        prove(
            &mut proof,
            repo,
            DrillKind::Full,
            snap,
            &part.files,
            dest,
            &report,
        )
        .await;
    }
    Ok((report, seconds, proof))
}

impl Proof {
    /// The files the restore could not write, as mismatches; nothing proved yet.
    fn of(report: &RestoreReport) -> Proof {
        Proof {
            mismatches: report
                .failed
                .iter()
                .map(|(p, why)| Mismatch {
                    path: p.display().to_string(),
                    problem: format!("could not be restored: {why}"),
                })
                .collect(),
            changed_since: 0,
            live_identical: 0,
        }
    }
}

/// Proves `files` restored under `dest` against the snapshot's blob ids (and, for a sample, the
/// live share), adding what differs to `proof`.
async fn prove(
    proof: &mut Proof,
    repo: &Repository,
    kind: DrillKind,
    snap: &Listed,
    files: &[PlanEntry],
    dest: &Path,
    report: &RestoreReport,
) {
    let failed: std::collections::HashSet<PathBuf> =
        report.failed.iter().map(|(p, _)| p.clone()).collect();
    let live_roots = live_roots(snap);
    for f in files {
        if failed.contains(&f.rel) || failed.contains(&dest.join(&f.rel)) {
            continue;
        }
        let restored = dest.join(&f.rel);
        if let Err(problem) = same_bytes(repo, &restored, &f.node).await {
            proof.mismatches.push(Mismatch {
                path: f.rel.display().to_string(),
                problem,
            });
            continue;
        }
        if kind != DrillKind::Sample {
            continue;
        }
        // The live file, for information: changed since the snapshot, or identical.
        let Some(live) = live_file(&live_roots, &f.rel) else {
            continue;
        };
        let node = f.node.clone();
        let identical = tokio::task::spawn_blocking(move || same_as_live(&live, &restored, &node))
            .await
            .expect("comparing files does not panic");
        if identical {
            proof.live_identical += 1;
        } else {
            proof.changed_since += 1;
        }
    }
}

/// Where each snapshot root entry lives on the server: the parent of the path backed up.
fn live_roots(snap: &Listed) -> HashMap<String, PathBuf> {
    snap.snapshot
        .paths
        .iter()
        .filter_map(|p| {
            let p = PathBuf::from(p);
            Some((
                p.file_name()?.to_string_lossy().into_owned(),
                p.parent()?.to_path_buf(),
            ))
        })
        .collect()
}

/// The live path of a restored file, if its root entry is one the snapshot read.
fn live_file(live_roots: &HashMap<String, PathBuf>, rel: &Path) -> Option<PathBuf> {
    let first = rel.components().next()?;
    let root = live_roots.get(&first.as_os_str().to_string_lossy().into_owned())?;
    Some(root.join(rel))
}

/// Whether the restored file at `path` has the snapshot's size and, chunked again, the
/// snapshot's blob ids; if not, what differs.
async fn same_bytes(
    repo: &Repository,
    path: &Path,
    node: &Node,
) -> std::result::Result<(), String> {
    let chunker = repo.config().chunker;
    let key = repo.shared_key();
    let expected = node.content.clone();
    let size = node.size;
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || -> std::result::Result<(), String> {
        let meta =
            std::fs::metadata(&path).map_err(|e| format!("missing after the restore ({e})"))?;
        if meta.len() != size {
            return Err(format!("{} bytes; the snapshot says {size}", meta.len()));
        }
        let file = std::fs::File::open(&path).map_err(|e| e.to_string())?;
        let mut ids = Vec::new();
        chunker
            .stream(file, |chunk| {
                ids.push(key.blob_id(&chunk));
                Ok(())
            })
            .map_err(|e| e.to_string())?;
        // Sparse runs of zeros are restored as holes; they read back as zeros and hash alike.
        if ids != expected {
            return Err("the restored bytes differ from the snapshot's hashes".into());
        }
        Ok(())
    })
    .await
    .expect("hashing a file does not panic")
}

/// Why the drill failed, or empty when it passed: a file that did not restore exactly, or (a
/// full drill) a recovery time over the policy's RTO.
fn failure_reason(
    schedule: &DrillSchedule,
    options: &DrillOptions,
    mismatches: &[Mismatch],
    estimated_recovery_seconds: f64,
) -> String {
    let rto_missed = schedule.rto_hours.is_some_and(|h| {
        options.kind != DrillKind::Sample && estimated_recovery_seconds > h * 3600.0
    });
    if !mismatches.is_empty() {
        format!(
            "{} did not restore to the snapshot's exact bytes (first: {}: {})",
            crate::plan::words::count_s(mismatches.len() as u64, "file"),
            mismatches[0].path,
            mismatches[0].problem
        )
    } else if rto_missed {
        format!(
            "the restore took {}; the policy allows {} hours",
            crate::plan::policy::describe_duration(estimated_recovery_seconds),
            schedule.rto_hours.unwrap_or_default()
        )
    } else {
        String::new()
    }
}

/// Whether the live file still is what the snapshot recorded: same size and modification time,
/// and the same bytes as the restored copy.
fn same_as_live(live: &Path, restored: &Path, node: &Node) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(live) else {
        return false;
    };
    if !meta.is_file()
        || meta.len() != node.size
        || meta.mtime() != node.mtime
        || meta.mtime_nsec() as u32 != node.mtime_nsec
    {
        return false;
    }
    let (Ok(mut a), Ok(mut b)) = (std::fs::File::open(live), std::fs::File::open(restored)) else {
        return false;
    };
    let mut x = vec![0u8; 1 << 16];
    let mut y = vec![0u8; 1 << 16];
    loop {
        let n = match a.read(&mut x) {
            Ok(n) => n,
            Err(_) => return false,
        };
        if n == 0 {
            return b.read(&mut y).is_ok_and(|m| m == 0);
        }
        if b.read_exact(&mut y[..n]).is_err() || x[..n] != y[..n] {
            return false;
        }
    }
}
