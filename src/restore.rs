//! Restore: rebuild files from a snapshot, byte for byte, with their metadata.
//!
//! The restore is planned first ([`RestorePlan`]: every directory, file, link and special file
//! with its destination), then carried out pack by pack, so that each pack is downloaded once
//! however many files share its blobs. Each file is written under a temporary name
//! (`.firesafe-partial-...`) in its directory and renamed into place only when complete, so a
//! file is never left half-written under its final name. Blobs of zeros are skipped rather than
//! written, so sparse files stay sparse.
//!
//! Names come from trees, which [`crate::tree::Tree::decode`] has already checked: no entry can
//! be `..`, absolute, or contain `/`. Directories are created by the restore itself and symlinks
//! are created last, so no file is ever written through a symlink; an existing symlink in the
//! way of a directory is refused.

use std::collections::{BTreeMap, HashMap};
use std::fs::OpenOptions;
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures::StreamExt;

use crate::blobs::{self, BlobReader};
use crate::error::{Error, Result};
use crate::id::Id;
use crate::index::{BlobLocation, Index};
use crate::progress::Ticker;
use crate::repo::{Repository, pack_key};
use crate::snapshot::Listed;
use crate::tree::{Node, NodeKind};

/// What to restore and where.
#[derive(Clone, Debug)]
pub struct RestoreOptions {
    /// The destination: a new or empty directory (any directory with `overwrite`).
    pub to: PathBuf,
    /// A path inside the snapshot (`curriculum/year7`); `None` restores everything.
    pub path: Option<String>,
    /// Replace existing files.
    pub overwrite: bool,
    /// Packs downloaded at once.
    pub downloads: usize,
    pub progress: bool,
}

impl RestoreOptions {
    pub fn new(to: impl Into<PathBuf>) -> RestoreOptions {
        RestoreOptions {
            to: to.into(),
            path: None,
            overwrite: false,
            downloads: 2,
            progress: false,
        }
    }
}

/// One planned entry: where it goes and what it is.
#[derive(Clone, Debug)]
pub struct PlanEntry {
    /// Path relative to the destination.
    pub rel: PathBuf,
    pub node: Node,
}

/// Everything a restore will create, computed before anything is written.
#[derive(Debug, Default)]
pub struct RestorePlan {
    pub dirs: Vec<PlanEntry>,
    pub files: Vec<PlanEntry>,
    /// (link path, path of the file it is a hard link to), both relative.
    pub hardlinks: Vec<(PlanEntry, PathBuf)>,
    pub symlinks: Vec<PlanEntry>,
    pub specials: Vec<PlanEntry>,
    pub total_bytes: u64,
}

/// How a restore went.
#[derive(Debug, Default)]
pub struct RestoreReport {
    pub files: u64,
    pub dirs: u64,
    pub links: u64,
    pub bytes: u64,
    /// Files that could not be restored, with the reason (damaged or missing data).
    pub failed: Vec<(PathBuf, String)>,
    /// Things restored only in part (an owner or xattr the filesystem would not take).
    pub warnings: Vec<String>,
}

/// Builds the plan for `snapshot` (optionally only `options.path` inside it).
pub async fn plan(
    reader: &BlobReader<'_>,
    snapshot: &Listed,
    sub_path: Option<&str>,
) -> Result<RestorePlan> {
    let root = reader.tree(&snapshot.snapshot.tree).await?;
    let mut plan = RestorePlan::default();
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    let mut todo: Vec<(PathBuf, Node)> = Vec::new();
    match sub_path
        .map(|p| p.trim_matches('/'))
        .filter(|p| !p.is_empty())
    {
        None => todo.extend(
            root.entries
                .into_iter()
                .map(|n| (PathBuf::from(n.name.as_os()), n)),
        ),
        Some(p) => {
            let node = find_node(reader, &root, p, snapshot).await?;
            todo.push((PathBuf::from(node.name.as_os()), node));
        }
    }
    todo.reverse();
    while let Some((rel, node)) = todo.pop() {
        match node.kind {
            NodeKind::Dir => {
                let tree = reader
                    .tree(&node.subtree.expect("checked by Tree::decode"))
                    .await?;
                for child in tree.entries.into_iter().rev() {
                    todo.push((rel.join(child.name.as_os()), child));
                }
                plan.dirs.push(PlanEntry { rel, node });
            }
            NodeKind::File => {
                if node.links > 1 {
                    if let Some(first) = links.get(&(node.device, node.inode)) {
                        plan.hardlinks
                            .push((PlanEntry { rel, node }, first.clone()));
                        continue;
                    }
                    links.insert((node.device, node.inode), rel.clone());
                }
                plan.total_bytes += node.size;
                plan.files.push(PlanEntry { rel, node });
            }
            NodeKind::Symlink => plan.symlinks.push(PlanEntry { rel, node }),
            _ => plan.specials.push(PlanEntry { rel, node }),
        }
    }
    Ok(plan)
}

/// Finds the node at `path` (components separated by `/`) in a snapshot.
pub async fn find_node(
    reader: &BlobReader<'_>,
    root: &crate::tree::Tree,
    path: &str,
    snapshot: &Listed,
) -> Result<Node> {
    let not_found = || {
        Error::NotFound(format!(
            "{path} is not in snapshot {}; `firesafe ls {}` shows what it holds",
            snapshot.id.short(),
            snapshot.id.short()
        ))
    };
    let mut tree = root.clone();
    let parts: Vec<&str> = path
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    for (i, part) in parts.iter().enumerate() {
        let node = tree.find(part.as_bytes()).cloned().ok_or_else(not_found)?;
        if i + 1 == parts.len() {
            return Ok(node);
        }
        match (node.kind, node.subtree) {
            (NodeKind::Dir, Some(sub)) => tree = reader.tree(&sub).await?,
            _ => return Err(not_found()),
        }
    }
    Err(not_found())
}

/// Checks the destination: it must be new, or an empty directory unless `overwrite`.
fn prepare_destination(to: &Path, overwrite: bool) -> Result<()> {
    match std::fs::symlink_metadata(to) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::create_dir_all(to)
            .map_err(|e| Error::local(to, "cannot create the restore directory", e)),
        Err(e) => Err(Error::local(to, "cannot use the restore directory", e)),
        Ok(m) if !m.is_dir() => Err(Error::Usage(format!(
            "restore target {} exists and is not a directory; choose a new or empty directory",
            to.display()
        ))),
        Ok(_) => {
            let mut entries = std::fs::read_dir(to)
                .map_err(|e| Error::local(to, "cannot list the restore directory", e))?;
            if !overwrite && entries.next().is_some() {
                return Err(Error::Usage(format!(
                    "restore target {} is not empty; choose a new or empty directory, or pass --overwrite to replace files there",
                    to.display()
                )));
            }
            Ok(())
        }
    }
}

/// One file being written: its temporary and final paths and the blobs still to come.
struct Pending {
    temp: PathBuf,
    dest: PathBuf,
    /// Set once the temporary file exists (created by the first blob to arrive).
    created: std::sync::OnceLock<Result<(), String>>,
    remaining: AtomicUsize,
    failed: Mutex<Option<String>>,
}

/// Where one blob goes: file number and offset.
type Uses = Vec<(usize, u64)>;

/// Carries out a plan.
pub async fn restore(
    repo: &Repository,
    index: &Index,
    plan: RestorePlan,
    options: &RestoreOptions,
) -> Result<RestoreReport> {
    prepare_destination(&options.to, options.overwrite)?;
    let to = &options.to;
    let mut report = RestoreReport::default();
    let as_root = nix::unistd::geteuid().is_root();

    for d in &plan.dirs {
        let path = to.join(&d.rel);
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(Error::Usage(format!(
                    "{} exists and is not a directory; refusing to restore through it",
                    path.display()
                )));
            }
            Err(_) => std::fs::create_dir(&path)
                .map_err(|e| Error::local(&path, "cannot create directory", e))?,
        }
        report.dirs += 1;
    }

    // Lay out every file's blobs and group them by pack.
    let mut pending: Vec<Pending> = Vec::with_capacity(plan.files.len());
    let mut by_pack: BTreeMap<u32, HashMap<Id, (BlobLocation, Uses)>> = BTreeMap::new();
    for (n, f) in plan.files.iter().enumerate() {
        let dest = to.join(&f.rel);
        let dir = dest.parent().expect("a file has a directory").to_path_buf();
        let temp = dir.join(format!(
            ".firesafe-partial-{n}-{:08x}",
            rand::random::<u32>()
        ));
        let mut missing = None;
        let mut offset = 0u64;
        for id in &f.node.content {
            match index.get(id) {
                Some((_, loc)) => {
                    by_pack
                        .entry(loc.pack)
                        .or_default()
                        .entry(*id)
                        .or_insert((loc, Vec::new()))
                        .1
                        .push((n, offset));
                    offset += loc.raw_length as u64;
                }
                None => {
                    missing = Some(format!("blob {} is in no index object", id.short()));
                    break;
                }
            }
        }
        if missing.is_none() && offset != f.node.size {
            missing = Some(format!(
                "its blobs hold {offset} bytes but the snapshot records {} (damaged tree)",
                f.node.size
            ));
        }
        pending.push(Pending {
            temp,
            dest,
            created: std::sync::OnceLock::new(),
            remaining: AtomicUsize::new(f.node.content.len()),
            failed: Mutex::new(missing),
        });
    }
    let pending = Arc::new(pending);
    let files = Arc::new(plan.files);
    let written = Arc::new(AtomicU64::new(0));
    let ticker = options.progress.then(|| {
        let w = Arc::clone(&written);
        Ticker::bar(plan.total_bytes, move || w.load(Ordering::Relaxed))
    });

    // Empty files are finished at once. Other files are created by the pack job that brings
    // their first blob, so creating them is spread over every core; a file of one blob is
    // written whole when its blob arrives.
    for (n, p) in pending.iter().enumerate() {
        if files[n].node.content.is_empty() {
            if let Err(e) = create_temp(&p.temp) {
                fail(p, format!("cannot create {}: {e}", p.temp.display()));
                continue;
            }
            finish_file(
                p,
                &files[n].node,
                as_root,
                options.overwrite,
                &mut report.warnings,
            );
        }
    }

    let warnings = Arc::new(Mutex::new(Vec::<String>::new()));
    let jobs: Vec<(Id, HashMap<Id, (BlobLocation, Uses)>)> = by_pack
        .into_iter()
        .map(|(pos, blobs)| (index.packs[pos as usize].id, blobs))
        .collect();
    let target = repo.target();
    // Each pack is downloaded, then decrypted and written out on a blocking thread; a few packs
    // are in flight at once, so downloading and writing overlap and every core does work.
    let overwrite = options.overwrite;
    let mut stream = futures::stream::iter(jobs)
        .map(|(pack_id, blobs)| {
            let key = repo.shared_key();
            let name = target.name().to_string();
            let pending = Arc::clone(&pending);
            let files = Arc::clone(&files);
            let written = Arc::clone(&written);
            let warnings = Arc::clone(&warnings);
            async move {
                let bytes = match target.get_opt(&pack_key(&pack_id)).await {
                    Ok(Some(b)) => Ok(b),
                    Ok(None) => Err(format!("pack {} is missing", pack_key(&pack_id))),
                    // A target that stops answering ends the restore.
                    Err(e) => return Err(e),
                };
                tokio::task::spawn_blocking(move || {
                    let plain = bytes.and_then(|b| {
                        blobs::open_pack(&key, &name, &pack_id, &b).map_err(|e| e.to_string())
                    });
                    for (id, (loc, uses)) in blobs {
                        let data = match &plain {
                            Ok(p) => blobs::extract_blob(&key, p, &id, &loc).map_err(|why| {
                                format!("blob {} in {}: {why}", id.short(), pack_key(&pack_id))
                            }),
                            Err(e) => Err(e.clone()),
                        };
                        for (n, offset) in uses {
                            let p = &pending[n];
                            if files[n].node.content.len() == 1 {
                                match &data {
                                    Ok(d) => {
                                        let mut w = Vec::new();
                                        write_whole(
                                            p,
                                            &files[n].node,
                                            d,
                                            as_root,
                                            overwrite,
                                            &mut w,
                                        );
                                        written.fetch_add(d.len() as u64, Ordering::Relaxed);
                                        if !w.is_empty() {
                                            warnings.lock().expect("warnings lock").extend(w);
                                        }
                                    }
                                    Err(why) => fail(p, why.clone()),
                                }
                                continue;
                            }
                            match &data {
                                Ok(d) => {
                                    let created = p.created.get_or_init(|| {
                                        create_temp(&p.temp).map_err(|e| {
                                            format!("cannot create {}: {e}", p.temp.display())
                                        })
                                    });
                                    if let Err(why) = created {
                                        fail(p, why.clone());
                                    } else if let Err(e) = write_at(&p.temp, d, offset) {
                                        fail(p, format!("cannot write {}: {e}", p.temp.display()));
                                    }
                                    written.fetch_add(d.len() as u64, Ordering::Relaxed);
                                }
                                Err(why) => fail(p, why.clone()),
                            }
                            if p.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                                let mut w = Vec::new();
                                finish_file(p, &files[n].node, as_root, overwrite, &mut w);
                                warnings.lock().expect("warnings lock").extend(w);
                            }
                        }
                    }
                })
                .await
                .expect("restoring a pack does not panic");
                Ok(())
            }
        })
        .buffer_unordered(options.downloads.max(1));
    while let Some(done) = stream.next().await {
        done?;
    }
    drop(stream);
    drop(ticker);
    report
        .warnings
        .extend(warnings.lock().expect("warnings lock").drain(..));

    for (n, p) in pending.iter().enumerate() {
        match p.failed.lock().expect("failure lock").clone() {
            Some(why) => {
                let _ = std::fs::remove_file(&p.temp);
                report.failed.push((files[n].rel.clone(), why));
            }
            None => {
                report.files += 1;
                report.bytes += files[n].node.size;
            }
        }
    }

    let failed: std::collections::HashSet<PathBuf> =
        report.failed.iter().map(|(p, _)| p.clone()).collect();
    for (link, first) in &plan.hardlinks {
        if failed.contains(first) {
            report.failed.push((
                link.rel.clone(),
                format!("it is a hard link to {}, which failed", first.display()),
            ));
            continue;
        }
        let dest = to.join(&link.rel);
        // Made under a temporary name and renamed into place, so that with --overwrite an
        // existing file is replaced only by a link that exists.
        let temp = dest.with_file_name(format!(
            ".firesafe-partial-link-{:08x}",
            rand::random::<u32>()
        ));
        let made = std::fs::hard_link(to.join(first), &temp).and_then(|_| {
            if !options.overwrite && std::fs::symlink_metadata(&dest).is_ok() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "a file of that name exists",
                ));
            }
            std::fs::rename(&temp, &dest)
        });
        match made {
            Ok(()) => report.links += 1,
            Err(e) => {
                let _ = std::fs::remove_file(&temp);
                report
                    .failed
                    .push((link.rel.clone(), format!("hard link not created: {e}")));
            }
        }
    }

    for s in &plan.symlinks {
        let dest = to.join(&s.rel);
        let target = s.node.target.as_ref().expect("checked by Tree::decode");
        let temp = dest.with_file_name(format!(
            ".firesafe-partial-link-{:08x}",
            rand::random::<u32>()
        ));
        let made = std::os::unix::fs::symlink(target.as_os(), &temp).and_then(|_| {
            apply_owner(&temp, &s.node, as_root, &mut report.warnings);
            let mtime = filetime::FileTime::from_unix_time(s.node.mtime, s.node.mtime_nsec);
            let _ = filetime::set_symlink_file_times(&temp, mtime, mtime);
            match std::fs::symlink_metadata(&dest) {
                Ok(m) if m.is_dir() || !options.overwrite => Err(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "something of that name exists",
                )),
                _ => std::fs::rename(&temp, &dest),
            }
        });
        match made {
            Ok(()) => report.links += 1,
            Err(e) => {
                let _ = std::fs::remove_file(&temp);
                report
                    .failed
                    .push((s.rel.clone(), format!("symlink not created: {e}")));
            }
        }
    }

    for s in &plan.specials {
        let dest = to.join(&s.rel);
        if s.node.kind == NodeKind::Fifo {
            match nix::unistd::mkfifo(&dest, nix::sys::stat::Mode::from_bits_truncate(s.node.mode))
            {
                Ok(()) => apply_metadata(&dest, &s.node, as_root, &mut report.warnings),
                Err(e) => report
                    .warnings
                    .push(format!("{}: named pipe not created: {e}", dest.display())),
            }
        } else {
            report.warnings.push(format!(
                "{}: {:?} not restored (device files and sockets are recreated by the system, not restored)",
                dest.display(),
                s.node.kind
            ));
        }
    }

    // Directories last and deepest first, so that creating their contents does not change the
    // times restored on them.
    for d in plan.dirs.iter().rev() {
        apply_metadata(&to.join(&d.rel), &d.node, as_root, &mut report.warnings);
    }
    Ok(report)
}

fn create_temp(path: &Path) -> std::io::Result<()> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map(drop)
}

fn fail(p: &Pending, why: String) {
    let mut f = p.failed.lock().expect("failure lock");
    if f.is_none() {
        *f = Some(why);
    }
}

/// Writes one blob at `offset`, leaving a hole instead of writing zeros.
fn write_at(path: &Path, data: &[u8], offset: u64) -> std::io::Result<()> {
    if data.iter().all(|&b| b == 0) {
        return Ok(());
    }
    let f = OpenOptions::new()
        .write(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)?;
    f.write_all_at(data, offset)
}

/// Sizes, stamps and renames a complete file into place (unless it failed).
fn finish_file(
    p: &Pending,
    node: &Node,
    as_root: bool,
    overwrite: bool,
    warnings: &mut Vec<String>,
) {
    if p.failed.lock().expect("failure lock").is_some() {
        return;
    }
    let result = (|| -> std::io::Result<()> {
        let f = OpenOptions::new()
            .write(true)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&p.temp)?;
        f.set_len(node.size)?;
        drop(f);
        apply_metadata(&p.temp, node, as_root, warnings);
        move_into_place(p, overwrite)
    })();
    if let Err(e) = result {
        fail(p, format!("cannot finish {}: {e}", p.dest.display()));
    }
}

/// Writes a file of one blob in one go: create, write, stamp and rename, all through one open
/// file (most files in a school share are this small).
fn write_whole(
    p: &Pending,
    node: &Node,
    data: &[u8],
    as_root: bool,
    overwrite: bool,
    warnings: &mut Vec<String>,
) {
    if p.failed.lock().expect("failure lock").is_some() {
        return;
    }
    let result = (|| -> std::io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&p.temp)?;
        if data.iter().all(|&b| b == 0) {
            f.set_len(node.size)?;
        } else {
            std::io::Write::write_all(&mut f, data)?;
            if data.len() as u64 != node.size {
                f.set_len(node.size)?;
            }
        }
        if as_root && let Err(e) = std::os::unix::fs::fchown(&f, Some(node.uid), Some(node.gid)) {
            warnings.push(format!("{}: owner not set: {e}", p.dest.display()));
        }
        for x in &node.xattrs {
            let Ok(value) = hex::decode(&x.value) else {
                continue;
            };
            if let Err(e) = xattr::FileExt::set_xattr(&f, x.name.as_os(), &value) {
                warnings.push(format!(
                    "{}: extended attribute {} not restored: {e}",
                    p.dest.display(),
                    x.name.display()
                ));
            }
        }
        f.set_permissions(std::fs::Permissions::from_mode(node.mode))?;
        let mtime = filetime::FileTime::from_unix_time(node.mtime, node.mtime_nsec);
        filetime::set_file_handle_times(&f, Some(mtime), Some(mtime))?;
        drop(f);
        move_into_place(p, overwrite)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&p.temp);
        fail(p, format!("cannot write {}: {e}", p.dest.display()));
    }
}

/// Renames a finished temporary file to its name; without `--overwrite`, never over a file that
/// appeared there during the restore.
fn move_into_place(p: &Pending, overwrite: bool) -> std::io::Result<()> {
    if !overwrite && std::fs::symlink_metadata(&p.dest).is_ok() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "a file of that name appeared during the restore; not replaced",
        ));
    }
    std::fs::rename(&p.temp, &p.dest)
}

fn apply_owner(path: &Path, node: &Node, as_root: bool, warnings: &mut Vec<String>) {
    if as_root && let Err(e) = std::os::unix::fs::lchown(path, Some(node.uid), Some(node.gid)) {
        warnings.push(format!("{}: owner not set: {e}", path.display()));
    }
}

/// Owner, mode, extended attributes and modification time.
fn apply_metadata(path: &Path, node: &Node, as_root: bool, warnings: &mut Vec<String>) {
    apply_owner(path, node, as_root, warnings);
    for x in &node.xattrs {
        let Ok(value) = hex::decode(&x.value) else {
            continue;
        };
        if let Err(e) = xattr::set(path, x.name.as_os(), &value) {
            warnings.push(format!(
                "{}: extended attribute {} not restored: {e}",
                path.display(),
                x.name.display()
            ));
        }
    }
    if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(node.mode)) {
        warnings.push(format!("{}: mode not set: {e}", path.display()));
    }
    // Path-based (utimensat): opening a named pipe to stamp it would block.
    let mtime = filetime::FileTime::from_unix_time(node.mtime, node.mtime_nsec);
    if let Err(e) = filetime::set_symlink_file_times(path, mtime, mtime) {
        warnings.push(format!(
            "{}: modification time not set: {e}",
            path.display()
        ));
    }
}
