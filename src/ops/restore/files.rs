//! Regular files: what to do with each planned file, its blobs laid out and grouped by pack,
//! and the pack jobs that download each pack once and write its blobs into every file that
//! uses them.
//!
//! Each file is written under a temporary name (`.firesafe-partial-...`) in its directory,
//! created by the pack job that brings its first blob and renamed into place by the one that
//! brings its last, so creating files is spread over every core and a file is never left
//! half-written under its final name. A file of one blob (most files in a school share) is
//! written whole when its blob arrives. The writes themselves are in [`super::write`].

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use futures::StreamExt;

use super::destination::{Existing, existing, kept_name, same_metadata};
use super::write;
use super::{Context, PlanEntry, RestoreReport, Step};
use crate::error::{Error, Result};
use crate::format::chunker::MAX_CHUNK_BYTES;
use crate::format::crypto::RepoKey;
use crate::format::tree::Node;
use crate::id::Id;
use crate::ops::progress::Ticker;
use crate::store::blobs::{self, Copies};
use crate::store::index::{BlobLocation, Index};
use crate::store::repo::pack_key;

/// One file being written: its temporary and final paths and the blobs still to come.
pub(super) struct Pending {
    pub(super) temp: PathBuf,
    pub(super) dest: PathBuf,
    /// Set once the temporary file exists (created by the first blob to arrive).
    created: OnceLock<Result<(), String>>,
    remaining: AtomicUsize,
    failed: Mutex<Option<String>>,
    /// Nothing to write: the file is already there (unchanged) or differs and stays (skipped).
    pub(super) leave: bool,
    /// Replaces a file that differs; the old one is first renamed to `keep`, when set.
    replace: bool,
    keep: Option<PathBuf>,
}

impl Pending {
    fn placing(&self) -> write::Placing<'_> {
        write::Placing {
            temp: &self.temp,
            dest: &self.dest,
            replace: self.replace,
            keep: self.keep.as_deref(),
        }
    }

    fn has_failed(&self) -> bool {
        self.failed.lock().expect("failure lock").is_some()
    }

    /// Records why the file cannot be restored (the first reason is kept).
    fn fail(&self, why: String) {
        let mut f = self.failed.lock().expect("failure lock");
        if f.is_none() {
            *f = Some(why);
        }
    }
}

/// Where one blob goes: file number and offset.
type Uses = Vec<(usize, u64)>;

/// The blobs to fetch from one pack: each blob's location in the pack and where it goes.
type PackBlobs = HashMap<Id, (BlobLocation, Uses)>;

/// The blobs to fetch, by the pack's position in the index.
pub(super) type ByPack = BTreeMap<u32, PackBlobs>;

/// Decides what to do with each planned file (a dry-run step for each) and lays out the blobs
/// of those to write, grouped by pack.
pub(super) fn lay_out(
    ctx: &Context,
    index: &Index,
    key: &RepoKey,
    files: &[PlanEntry],
    report: &mut RestoreReport,
) -> (Vec<Pending>, ByPack) {
    let dry_run = ctx.options.dry_run;
    let mut pending: Vec<Pending> = Vec::with_capacity(files.len());
    let mut by_pack = ByPack::new();
    for (n, f) in files.iter().enumerate() {
        let dest = ctx.to.join(&f.rel);
        let dir = dest.parent().expect("a file has a directory").to_path_buf();
        let temp = dir.join(format!(
            ".firesafe-partial-{n}-{:08x}",
            rand::random::<u32>()
        ));
        let (leave, replace, keep) = decide(ctx, &dest, &f.node, index, key, report);
        let missing = if leave || dry_run {
            None
        } else {
            add_blobs(index, n, &f.node, &mut by_pack)
        };
        pending.push(Pending {
            temp,
            dest,
            created: OnceLock::new(),
            remaining: AtomicUsize::new(f.node.content.len()),
            failed: Mutex::new(missing),
            leave: leave || dry_run,
            replace,
            keep,
        });
    }
    (pending, by_pack)
}

/// What to do with one file given what is at `dest`: (leave it, replace it, keep the old one
/// at). A file already there with the snapshot's content gets its metadata back if that differs.
fn decide(
    ctx: &Context,
    dest: &Path,
    node: &Node,
    index: &Index,
    key: &RepoKey,
    report: &mut RestoreReport,
) -> (bool, bool, Option<PathBuf>) {
    let options = ctx.options;
    let state = if ctx.fresh {
        Existing::Absent
    } else {
        existing(dest, node, index, key)
    };
    let path = dest.to_path_buf();
    match state {
        Existing::Absent => {
            step(
                report,
                options.dry_run,
                Step::Write {
                    path,
                    bytes: node.size,
                },
            );
            (false, false, None)
        }
        Existing::Same => {
            report.unchanged += 1;
            step(report, options.dry_run, Step::Unchanged { path });
            if !options.dry_run && !write::stat_at(dest).is_ok_and(|m| same_metadata(&m, node)) {
                write::apply_metadata(dest, node, ctx.as_root, &mut report.warnings);
            }
            (true, false, None)
        }
        Existing::Differs if !options.overwrite => {
            report.skipped.push(path.clone());
            step(report, options.dry_run, Step::Skip { path });
            (true, false, None)
        }
        Existing::Differs => {
            let keep = options.keep_replaced.then(|| kept_name(dest, &options.now));
            step(
                report,
                options.dry_run,
                Step::Replace {
                    path,
                    bytes: node.size,
                    kept: keep.clone(),
                },
            );
            (false, true, keep)
        }
    }
}

/// Notes a step of a dry run (a real restore keeps no list of its steps: it grows with the
/// number of files).
fn step(report: &mut RestoreReport, dry_run: bool, step: Step) {
    if dry_run {
        report.steps.push(step);
    }
}

/// Adds file `n`'s blobs to `by_pack`. Returns why the file cannot be restored, if a blob is in
/// no index object or the blobs do not add up to the file's size.
fn add_blobs(index: &Index, n: usize, node: &Node, by_pack: &mut ByPack) -> Option<String> {
    let mut offset = 0u64;
    for id in &node.content {
        let Some((_, loc)) = index.get(id) else {
            if let Some(e) = index.trouble() {
                return Some(format!("the index's scratch file could not be read: {e}"));
            }
            return Some(format!("blob {} is in no index object", id.short()));
        };
        by_pack
            .entry(loc.pack)
            .or_default()
            .entry(*id)
            .or_insert((loc, Vec::new()))
            .1
            .push((n, offset));
        offset += loc.raw_length as u64;
    }
    (offset != node.size).then(|| {
        format!(
            "its blobs hold {offset} bytes but the snapshot records {} (damaged tree)",
            node.size
        )
    })
}

/// The files being written, shared by the pack jobs, and the progress they make.
pub(super) struct Writing {
    pub(super) files: Vec<PlanEntry>,
    pub(super) pending: Vec<Pending>,
    as_root: bool,
    written: Arc<AtomicU64>,
    files_done: Arc<AtomicU64>,
    /// The counters are a [`Progress`] shared by every part.
    shared_progress: bool,
    warnings: Mutex<Vec<String>>,
}

/// One progress bar over every part of a restore whose size is known at the start.
#[derive(Clone)]
pub(super) struct Progress {
    written: Arc<AtomicU64>,
    files_done: Arc<AtomicU64>,
    _ticker: Arc<Ticker>,
}

impl Progress {
    pub(super) fn new(files: u64, bytes: u64) -> Progress {
        let written = Arc::new(AtomicU64::new(0));
        let files_done = Arc::new(AtomicU64::new(0));
        let (w, d) = (Arc::clone(&written), Arc::clone(&files_done));
        let ticker = Ticker::bar_with_message(
            bytes,
            move || w.load(Ordering::Relaxed),
            move || format!("{}/{files} files", d.load(Ordering::Relaxed)),
        );
        Progress {
            written,
            files_done,
            _ticker: Arc::new(ticker),
        }
    }
}

impl Writing {
    /// The files of one part; `progress`, the restore's bar, counts what they write too.
    pub(super) fn new(
        files: Vec<PlanEntry>,
        pending: Vec<Pending>,
        as_root: bool,
        progress: Option<&Progress>,
    ) -> Writing {
        let (written, files_done) = match progress {
            Some(p) => (Arc::clone(&p.written), Arc::clone(&p.files_done)),
            None => (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0))),
        };
        Writing {
            files,
            pending,
            as_root,
            written,
            files_done,
            shared_progress: progress.is_some(),
            warnings: Mutex::new(Vec::new()),
        }
    }

    /// The multiply-linked files left as they were because they differ (by their path in the
    /// plan): their hard links are left too.
    pub(super) fn left_different_links(&self, report: &RestoreReport) -> Vec<PathBuf> {
        self.pending
            .iter()
            .zip(self.files.iter())
            .filter(|(p, f)| f.node.links > 1 && p.leave && report.skipped.contains(&p.dest))
            .map(|(_, f)| f.rel.clone())
            .collect()
    }

    /// The files not left alone, with their planned entries.
    fn to_write(&self) -> impl Iterator<Item = (&Pending, &PlanEntry)> {
        self.pending
            .iter()
            .zip(self.files.iter())
            .filter(|(p, _)| !p.leave)
    }

    /// Writes every file: the empty ones at once, the others pack by pack, a few packs in
    /// flight at once. Only a target that stops answering ends it early; damaged data fails
    /// the files that use it.
    pub(super) async fn write_all(
        self: &Arc<Writing>,
        copies: &Copies<'_>,
        index: &Index,
        by_pack: ByPack,
        ctx: &Context<'_>,
        report: &mut RestoreReport,
    ) -> Result<()> {
        // The restore's own bar when its size was known at the start, else this part's.
        let ticker = (ctx.options.progress && !self.shared_progress).then(|| self.ticker());
        self.finish_empty_files(&mut report.warnings);
        let jobs: Vec<(Id, PackBlobs)> = by_pack
            .into_iter()
            .map(|(pos, blobs)| (index.packs[pos as usize].id, blobs))
            .collect();
        // Each pack is downloaded, then decrypted and written out on a blocking thread; a few
        // packs are in flight at once, so downloading and writing overlap and every core works.
        let mut stream = futures::stream::iter(jobs)
            .map(|(pack_id, blobs)| Arc::clone(self).restore_pack(copies, pack_id, blobs))
            // A download in flight holds a pack's plaintext (it is decrypted as it arrives): at
            // most four at once by default, so that a restore holds at most about 70 MiB of packs.
            .buffer_unordered(match ctx.options.downloads {
                0 => copies.first().target().transfers().min(4),
                n => n,
            });
        while let Some(done) = stream.next().await {
            done?;
        }
        drop(stream);
        drop(ticker);
        report
            .warnings
            .extend(self.warnings.lock().expect("warnings lock").drain(..));
        Ok(())
    }

    fn ticker(self: &Arc<Writing>) -> Ticker {
        let to_write = self.to_write().count() as u64;
        let bytes_to_write: u64 = self.to_write().map(|(_, f)| f.node.size).sum();
        let (w, d) = (Arc::clone(self), Arc::clone(self));
        Ticker::bar_with_message(
            bytes_to_write,
            move || w.written.load(Ordering::Relaxed),
            move || format!("{}/{to_write} files", d.files_done.load(Ordering::Relaxed)),
        )
    }

    /// Empty files have no pack to wait for: they are finished at once.
    fn finish_empty_files(&self, warnings: &mut Vec<String>) {
        for (p, f) in self.to_write() {
            if !f.node.content.is_empty() {
                continue;
            }
            write_whole(p, &f.node, &[], self.as_root, warnings);
            self.files_done.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Downloads one pack and writes its blobs out on a blocking thread.
    async fn restore_pack(
        self: Arc<Writing>,
        copies: &Copies<'_>,
        pack_id: Id,
        blobs: PackBlobs,
    ) -> Result<()> {
        let key = copies.first().shared_key();
        let plain = match copies.read_pack(&pack_id).await {
            Ok(p) => Ok(p),
            // Targets that stop answering end the restore.
            Err(e @ Error::Target { .. }) => return Err(e),
            Err(e) => Err(e.to_string()),
        };
        tokio::task::spawn_blocking(move || {
            for (id, (loc, uses)) in blobs {
                let placed = match &plain {
                    Ok(p) => blobs::with_blob(&key, p, &id, &loc, MAX_CHUNK_BYTES, |data| {
                        for &(n, offset) in &uses {
                            self.place_blob(n, offset, Ok(data));
                        }
                    })
                    .map_err(|why| format!("blob {} in {}: {why}", id.short(), pack_key(&pack_id))),
                    Err(e) => Err(e.clone()),
                };
                if let Err(why) = placed {
                    for &(n, offset) in &uses {
                        self.place_blob(n, offset, Err(&why));
                    }
                }
            }
        })
        .await
        .expect("restoring a pack does not panic");
        Ok(())
    }

    /// Writes one blob (or records why it cannot be had) into file `n` at `offset`, and
    /// finishes the file when it was the last to come.
    fn place_blob(&self, n: usize, offset: u64, data: Result<&[u8], &String>) {
        let p = &self.pending[n];
        let node = &self.files[n].node;
        if node.content.len() == 1 {
            match data {
                Ok(d) => {
                    let mut w = Vec::new();
                    write_whole(p, node, d, self.as_root, &mut w);
                    self.written.fetch_add(d.len() as u64, Ordering::Relaxed);
                    self.files_done.fetch_add(1, Ordering::Relaxed);
                    if !w.is_empty() {
                        self.warnings.lock().expect("warnings lock").extend(w);
                    }
                }
                Err(why) => p.fail(why.clone()),
            }
            return;
        }
        match data {
            Ok(d) => {
                let created = p.created.get_or_init(|| {
                    write::create_temp(&p.temp)
                        .map_err(|e| format!("cannot create {}: {e}", p.temp.display()))
                });
                if let Err(why) = created {
                    p.fail(why.clone());
                } else if let Err(e) = write::write_at(&p.temp, d, offset) {
                    p.fail(format!("cannot write {}: {e}", p.temp.display()));
                }
                self.written.fetch_add(d.len() as u64, Ordering::Relaxed);
            }
            Err(why) => p.fail(why.clone()),
        }
        if p.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            let mut w = Vec::new();
            finish_file(p, node, self.as_root, &mut w);
            self.files_done.fetch_add(1, Ordering::Relaxed);
            self.warnings.lock().expect("warnings lock").extend(w);
        }
    }

    /// Counts what was written, and removes the temporary files of those that failed.
    pub(super) fn account(&self, report: &mut RestoreReport) {
        for (p, f) in self.to_write() {
            match p.failed.lock().expect("failure lock").clone() {
                Some(why) => {
                    let _ = write::remove_file(&p.temp);
                    report.failed.push((f.rel.clone(), why));
                }
                None => {
                    report.files += 1;
                    report.bytes += f.node.size;
                    if let Some(k) = &p.keep
                        && write::stat_at(k).is_ok()
                    {
                        report.kept.push((p.dest.clone(), k.clone()));
                    }
                }
            }
        }
    }
}

/// Sizes, stamps and renames a complete file into place (unless it failed).
fn finish_file(p: &Pending, node: &Node, as_root: bool, warnings: &mut Vec<String>) {
    if p.has_failed() {
        return;
    }
    if let Err(e) = write::finish(&p.placing(), node, as_root, warnings) {
        p.fail(format!("cannot finish {}: {e}", p.dest.display()));
    }
}

/// Writes a file of one blob in one go and renames it into place (unless it failed).
fn write_whole(p: &Pending, node: &Node, data: &[u8], as_root: bool, warnings: &mut Vec<String>) {
    if p.has_failed() {
        return;
    }
    if let Err(e) = write::write_whole(&p.placing(), node, data, as_root, warnings) {
        let _ = write::remove_file(&p.temp);
        p.fail(format!("cannot write {}: {e}", p.dest.display()));
    }
}
