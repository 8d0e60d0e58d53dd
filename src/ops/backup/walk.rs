//! The walker: it lists directories in order, compares each entry with the parent snapshot,
//! hands the files that must be read to the reader threads, and builds and queues the trees,
//! deepest first, so that each tree's id is known when its parent is encoded.
//!
//! A file unchanged since the parent snapshot (same size, times and inode, its blobs all
//! stored) is recorded without being read; so is another link to a file read in this run.
//! Whatever cannot be read becomes a warning in the snapshot, which is then marked partial.

use std::collections::{HashMap, HashSet};
use std::fs::Metadata;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::parents::ParentTrees;
use super::read::{Chunking, ReadError, ReadJob, Reply, Stopped};
use super::signals::Gather;
use crate::error::{Error, Result};
use crate::format::pack::BlobKind;
use crate::format::tree::{Look, MAX_TREE_BYTES, Name, Node, NodeKind, Tree, Xattr};
use crate::id::Id;
use crate::plan::ransomware::Observed;
use crate::store::snapshot::{SnapshotStats, Warning};

/// A multiply-linked file read in this run: its content, size, modification time and look.
type ReadLink = (Vec<Id>, u64, (i64, u32), Option<Look>);

/// What a walk ends with: the root tree's id, the stats, the warnings, and what it gathered for
/// the ransomware score (when asked to).
pub(super) type Walked = (Id, SnapshotStats, Vec<Warning>, Option<Observed>);

/// The walker's state: it lists directories, compares entries with the parent snapshot, hands
/// files to the reader threads, and builds the trees in order.
pub(super) struct Walk {
    cancel: Option<Arc<AtomicBool>>,
    chunking: Arc<Chunking>,
    jobs: crossbeam_channel::Sender<ReadJob>,
    stats: SnapshotStats,
    warnings: Vec<Warning>,
    users: HashMap<u32, Option<String>>,
    groups: HashMap<u32, Option<String>>,
    /// Content of multiply-linked files already read in this run, by (device, inode).
    /// The modification time is kept too, so that an inode freed and reused during the walk is
    /// not mistaken for another link to the same file.
    links: HashMap<(u64, u64), ReadLink>,
    /// How many directories deep the walk is.
    depth: usize,
    /// The ransomware signals, when detection is on.
    gather: Option<Gather>,
    /// Read every file, even one the parent describes unchanged (`--force-read`); the parent is
    /// still compared with.
    force_read: bool,
}

/// The deepest directory a backup descends into. Anyone who can write a share can make a
/// folder thousands of levels deep (`mkdir -p` of 2,000 one-letter names is under PATH_MAX);
/// below this depth a directory is recorded empty, with a warning, so the rest of the share is
/// still backed up. The walk recurses, on a thread whose stack is sized for this depth.
pub const MAX_DEPTH: usize = crate::format::tree::MAX_DEPTH;

/// The walker thread's stack. Each level of the walk costs a few KiB of stack (more in a debug
/// build); 256 MiB holds [`MAX_DEPTH`] levels with a wide margin, and only the pages a deep walk
/// touches are ever used.
pub(super) const WALK_STACK: usize = 256 << 20;

/// Whether the parent snapshot's node describes this file unchanged (same size, modification
/// and change times, inode), so its content can be recorded without reading it.
fn unchanged(prev: Option<&Node>, meta: &Metadata) -> bool {
    prev.is_some_and(|p| {
        p.kind == NodeKind::File
            && p.size == meta.len()
            && p.mtime == meta.mtime()
            && p.mtime_nsec == meta.mtime_nsec() as u32
            && p.ctime == meta.ctime()
            && p.ctime_nsec == meta.ctime_nsec() as u32
            && p.inode == meta.ino()
    })
}

impl Walk {
    pub(super) fn new(
        cancel: Option<Arc<AtomicBool>>,
        chunking: Arc<Chunking>,
        jobs: crossbeam_channel::Sender<ReadJob>,
        gather: Option<Gather>,
        force_read: bool,
    ) -> Walk {
        Walk {
            cancel,
            chunking,
            jobs,
            stats: SnapshotStats::default(),
            warnings: Vec::new(),
            users: HashMap::new(),
            groups: HashMap::new(),
            links: HashMap::new(),
            depth: 0,
            gather,
            force_read,
        }
    }

    /// Walks `roots` into the snapshot's trees, then closes the job queue and waits for the
    /// `readers`. Returns the root tree's id, the stats, the warnings and the signals gathered.
    pub(super) fn run(
        mut self,
        roots: &[(Name, PathBuf)],
        parent_root: Option<Id>,
        parents: &ParentTrees,
        readers: Vec<std::thread::JoinHandle<()>>,
    ) -> Result<Walked> {
        let root = self.root(roots, parent_root, parents);
        // Closing the job queue lets the readers finish; they hold the last senders of the
        // blob queue, so the pack workers then finish too.
        drop(self.jobs);
        for r in readers {
            r.join().expect("a reader thread does not panic");
        }
        let c = &self.chunking;
        self.stats.blobs_added = c.blobs_added.load(Ordering::Relaxed);
        self.stats.bytes_added = c.bytes_added.load(Ordering::Relaxed);
        self.stats.bytes_read = c.bytes_read.load(Ordering::Relaxed);
        let observed = self.gather.map(Gather::finish);
        if let Some(o) = &observed {
            self.stats.files_removed = o.removed.count;
            self.stats.files_moved = o.moved;
        }
        root.map(|root| (root, self.stats, self.warnings, observed))
    }

    fn root(
        &mut self,
        roots: &[(Name, PathBuf)],
        parent_root: Option<Id>,
        parents: &ParentTrees,
    ) -> Result<Id> {
        let parent_tree = match parent_root {
            Some(id) => parents.get(&id).map_err(|_| stopped(Stopped))?,
            None => None,
        };
        let parent_tree = parent_tree.as_deref();
        if let (Some(g), Some(t)) = (self.gather.as_mut(), parent_tree) {
            g.parent_folder(t);
        }
        let mut tree = Tree::default();
        for (name, path) in roots {
            let meta = match std::fs::symlink_metadata(path) {
                Ok(m) => m,
                Err(e) => {
                    self.warn(path, format!("cannot be read: {}", io_reason(&e)));
                    continue;
                }
            };
            let prev = parent_tree.and_then(|t| t.find(&name.0));
            let pending = self
                .submit_if_needed(path, &meta, prev, &mut HashSet::new())
                .map_err(stopped)?;
            if let Some(node) = self
                .node(path, name.clone(), &meta, prev, parents, pending)
                .map_err(stopped)?
            {
                tree.entries.push(node);
            }
        }
        self.store_tree(tree).map_err(stopped)
    }

    fn cancelled(&self) -> bool {
        self.cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
    }

    fn warn(&mut self, path: &Path, message: String) {
        self.warnings.push(Warning {
            path: path.display().to_string(),
            message,
        });
    }

    /// Hands a file to the reader threads unless its content is known already (unchanged since
    /// the parent, or another link to a file read in this run).
    fn submit_if_needed(
        &mut self,
        path: &Path,
        meta: &Metadata,
        prev: Option<&Node>,
        links_submitted: &mut HashSet<(u64, u64)>,
    ) -> Result<Option<Reply>, Stopped> {
        if !meta.is_file() {
            return Ok(None);
        }
        if !self.force_read
            && unchanged(prev, meta)
            && prev.is_some_and(|p| p.content.iter().all(|id| self.chunking.is_stored(id)))
        {
            return Ok(None);
        }
        let link = (meta.dev(), meta.ino());
        let known = self.links.get(&link).is_some_and(|(_, size, mtime, _)| {
            *size == meta.len() && *mtime == (meta.mtime(), meta.mtime_nsec() as u32)
        });
        if meta.nlink() > 1 && (known || !links_submitted.insert(link)) {
            return Ok(None);
        }
        self.submit(path, meta).map(Some)
    }

    /// Queues a file for the reader threads; its ids arrive on the returned channel.
    fn submit(&self, path: &Path, meta: &Metadata) -> Result<Reply, Stopped> {
        let (reply, rx) = crossbeam_channel::bounded(1);
        self.jobs
            .send(ReadJob {
                path: path.to_path_buf(),
                size_hint: meta.len(),
                reply,
            })
            .map_err(|_| Stopped)?;
        Ok(rx)
    }

    /// Records one entry; `None` when it vanished or could not be read (a warning is kept).
    fn node(
        &mut self,
        path: &Path,
        name: Name,
        meta: &Metadata,
        prev: Option<&Node>,
        parents: &ParentTrees,
        pending: Option<Reply>,
    ) -> Result<Option<Node>, Stopped> {
        let ft = meta.file_type();
        let kind = if ft.is_dir() {
            NodeKind::Dir
        } else if ft.is_file() {
            NodeKind::File
        } else if ft.is_symlink() {
            NodeKind::Symlink
        } else if ft.is_fifo() {
            NodeKind::Fifo
        } else if ft.is_socket() {
            NodeKind::Socket
        } else if ft.is_char_device() {
            NodeKind::Chardev
        } else {
            NodeKind::Blockdev
        };
        let mut node = Node {
            name,
            kind,
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            user: self.user(meta.uid()),
            group: self.group(meta.gid()),
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec() as u32,
            ctime: meta.ctime(),
            ctime_nsec: meta.ctime_nsec() as u32,
            inode: meta.ino(),
            device: meta.dev(),
            links: meta.nlink(),
            size: 0,
            target: None,
            rdev: None,
            xattrs: read_xattrs(path),
            content: Vec::new(),
            subtree: None,
            look: None,
        };
        match kind {
            NodeKind::Dir => {
                self.stats.dirs += 1;
                let prev_id = prev
                    .filter(|p| p.kind == NodeKind::Dir)
                    .and_then(|p| p.subtree);
                if self.depth >= MAX_DEPTH {
                    self.warn(
                        path,
                        format!("deeper than {MAX_DEPTH} folders: recorded empty, its contents not backed up"),
                    );
                    node.subtree = Some(self.store_tree(Tree::default())?);
                } else {
                    // Read as the walk enters the folder, dropped as it leaves.
                    let prev_tree = match prev_id {
                        Some(id) => parents.get(&id).map_err(|_| Stopped)?,
                        None => None,
                    };
                    self.depth += 1;
                    let subtree = self.dir(path, prev_tree.as_deref(), parents);
                    self.depth -= 1;
                    node.subtree = Some(subtree?);
                }
            }
            NodeKind::File => {
                if !self.file(path, meta, prev, &mut node, pending)? {
                    return Ok(None);
                }
                self.stats.files += 1;
                self.stats.bytes += node.size;
                self.chunking.counters.files.fetch_add(1, Ordering::Relaxed);
            }
            NodeKind::Symlink => match std::fs::read_link(path) {
                Ok(t) => {
                    node.target = Some(Name::from_os(t.as_os_str()));
                    self.stats.others += 1;
                }
                Err(e) => {
                    self.warn(path, format!("symlink cannot be read: {}", io_reason(&e)));
                    return Ok(None);
                }
            },
            NodeKind::Chardev | NodeKind::Blockdev => {
                node.rdev = Some(meta.rdev());
                self.stats.others += 1;
            }
            NodeKind::Fifo | NodeKind::Socket => self.stats.others += 1,
        }
        Ok(Some(node))
    }

    fn dir(
        &mut self,
        path: &Path,
        prev: Option<&Tree>,
        parents: &ParentTrees,
    ) -> Result<Id, Stopped> {
        let mut tree = Tree::default();
        if let (Some(g), Some(p)) = (self.gather.as_mut(), prev) {
            g.parent_folder(p);
        }
        let entries = match std::fs::read_dir(path) {
            Ok(rd) => rd,
            Err(e) => {
                self.warn(
                    path,
                    format!("directory cannot be listed: {}", io_reason(&e)),
                );
                return self.store_tree(tree);
            }
        };
        let mut names: Vec<std::ffi::OsString> = Vec::new();
        for entry in entries {
            match entry {
                Ok(e) => names.push(e.file_name()),
                Err(e) => {
                    self.warn(
                        path,
                        format!("directory listing failed part-way: {}", io_reason(&e)),
                    );
                    break;
                }
            }
        }
        names.sort();
        let gone = self
            .gather
            .as_mut()
            .map(|g| g.gone(path, prev, &names, parents));
        // First hand every file that must be read to the readers, so that several are read at
        // once; then build the entries in order, waiting for each file's ids as needed.
        let mut items = Vec::with_capacity(names.len());
        let mut links_submitted = HashSet::new();
        for os_name in names {
            if self.cancelled() {
                return Err(Stopped);
            }
            let child = path.join(&os_name);
            let meta = match std::fs::symlink_metadata(&child) {
                Ok(m) => m,
                Err(e) => {
                    self.warn(&child, format!("cannot be read: {}", io_reason(&e)));
                    continue;
                }
            };
            let name = Name::from_os(&os_name);
            let prev_node = prev.and_then(|t| t.find(&name.0));
            let pending = self.submit_if_needed(&child, &meta, prev_node, &mut links_submitted)?;
            items.push((child, name, meta, prev_node, pending));
        }
        let mut notes_here = false;
        for (child, name, meta, prev_node, pending) in items {
            let read_before = self.stats.files_new + self.stats.files_changed;
            if let Some(node) = self.node(&child, name, &meta, prev_node, parents, pending)? {
                if let (Some(g), Some(gone), NodeKind::File) =
                    (self.gather.as_mut(), gone.as_ref(), node.kind)
                {
                    let read = self.stats.files_new + self.stats.files_changed > read_before;
                    notes_here |= g.file(&child, &node, read, prev_node, gone);
                }
                tree.entries.push(node);
            }
        }
        if notes_here && let Some(g) = self.gather.as_mut() {
            g.observed.note_folders += 1;
        }
        let bytes = self.fit(path, &mut tree);
        self.queue_tree(bytes)
    }

    /// The folder's tree encoded, leaving out with a warning the last entries of a folder whose
    /// listing would be larger than a tree may be ([`MAX_TREE_BYTES`]): a snapshot that stored
    /// it could not be read.
    fn fit(&mut self, path: &Path, tree: &mut Tree) -> Vec<u8> {
        let mut bytes = tree.encode();
        let size = bytes.len();
        if size <= MAX_TREE_BYTES {
            return bytes;
        }
        let total = tree.entries.len();
        // Entries are of similar size: keep the share that fits, with a margin, then check.
        let mut keep = (total as f64 * (MAX_TREE_BYTES as f64 / size as f64) * 0.95) as usize;
        loop {
            tree.entries.truncate(keep);
            bytes = tree.encode();
            if bytes.len() <= MAX_TREE_BYTES || keep == 0 {
                break;
            }
            keep = keep * 9 / 10;
        }
        self.warn(
            path,
            format!(
                "the folder has {total} entries, more than one folder's listing can hold ({} MiB); the last {} (in name order) were left out of this snapshot: split the folder",
                MAX_TREE_BYTES >> 20,
                total - tree.entries.len()
            ),
        );
        bytes
    }

    /// Fills in a file's content. Returns false (with a warning) if it could not be read.
    fn file(
        &mut self,
        path: &Path,
        meta: &Metadata,
        prev: Option<&Node>,
        node: &mut Node,
        pending: Option<Reply>,
    ) -> Result<bool, Stopped> {
        let link = (node.device, node.inode);
        let result = match pending {
            Some(reply) => reply.recv().map_err(|_| Stopped)?,
            None => {
                // Not handed to a reader: another link to a file read in this run, or unchanged
                // since the parent snapshot.
                if node.links > 1
                    && let Some((content, size, _, look)) =
                        self.links.get(&link).filter(|(_, size, mtime, _)| {
                            *size == meta.len() && *mtime == (node.mtime, node.mtime_nsec)
                        })
                {
                    node.content = content.clone();
                    node.size = *size;
                    node.look = *look;
                    self.stats.files_unchanged += 1;
                    return Ok(true);
                }
                if let Some(p) = prev
                    && !self.force_read
                    && unchanged(prev, meta)
                    && p.content.iter().all(|id| self.chunking.is_stored(id))
                {
                    node.content = p.content.clone();
                    node.size = p.size;
                    node.look = p.look;
                    self.stats.files_unchanged += 1;
                    return Ok(true);
                }
                self.submit(path, meta)?.recv().map_err(|_| Stopped)?
            }
        };
        match result {
            Ok((content, size, look)) => {
                node.content = content;
                node.size = size;
                node.look = look;
                // Read again with the same content (only its times changed, or --force-read):
                // unchanged.
                if prev.is_some_and(|p| p.kind == NodeKind::File && p.content == node.content) {
                    self.stats.files_unchanged += 1;
                } else if prev.is_some() {
                    self.stats.files_changed += 1;
                } else {
                    self.stats.files_new += 1;
                }
                if node.links > 1 {
                    self.links.insert(
                        link,
                        (
                            node.content.clone(),
                            size,
                            (node.mtime, node.mtime_nsec),
                            node.look,
                        ),
                    );
                }
                Ok(true)
            }
            Err(ReadError::Stopped) => Err(Stopped),
            Err(ReadError::Io(e)) => {
                self.warn(path, format!("file cannot be read: {}", io_reason(&e)));
                Ok(false)
            }
        }
    }

    fn store_tree(&mut self, mut tree: Tree) -> Result<Id, Stopped> {
        let bytes = tree.encode();
        self.queue_tree(bytes)
    }

    fn queue_tree(&mut self, bytes: Vec<u8>) -> Result<Id, Stopped> {
        let id = self.chunking.key.blob_id(&bytes);
        self.chunking.queue(BlobKind::Tree, id, bytes)?;
        Ok(id)
    }

    fn user(&mut self, uid: u32) -> Option<String> {
        self.users
            .entry(uid)
            .or_insert_with(|| {
                nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
                    .ok()
                    .flatten()
                    .map(|u| u.name)
            })
            .clone()
    }

    fn group(&mut self, gid: u32) -> Option<String> {
        self.groups
            .entry(gid)
            .or_insert_with(|| {
                nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))
                    .ok()
                    .flatten()
                    .map(|g| g.name)
            })
            .clone()
    }
}

fn stopped(_: Stopped) -> Error {
    Error::Usage("the backup stopped because storing data failed".into())
}

fn read_xattrs(path: &Path) -> Vec<Xattr> {
    let Ok(names) = xattr::list(path) else {
        return Vec::new();
    };
    let mut out: Vec<Xattr> = names
        .filter_map(|n| {
            let value = xattr::get(path, &n).ok().flatten()?;
            Some(Xattr {
                name: Name::from_os(&n),
                value: hex::encode(value),
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

pub(super) fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "it does not exist".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}
