//! Tree walks shared by operations, and the bounds every walk keeps.
//!
//! Whoever holds the repository key can write trees that no backup writes: 40 trees, each
//! listing the next twice, expand to 2^40 paths; a chain of 20,000 trees nests 20,000 folders
//! deep. So every walk keeps its own stack (never the call stack), and:
//!
//! - follows trees at most [`MAX_DEPTH`] (+1) folders deep, refusing a deeper one;
//! - reads each tree once while it stays in the walk's cache ([`TREE_CACHE_BYTES`]), so shared
//!   subtrees cost their listing, not another read;
//! - when it lists every path (ls, find, diff, restore), lists at most [`LISTED_FLOOR`] entries
//!   plus [`LISTED_RATIO`] times the entries of the distinct trees it has read. Real snapshots
//!   do share subtrees (every empty folder has the same tree; hard-linked copies of a folder
//!   share theirs), but by small factors; a walk past the bound is refused as forged.
//!
//! [`used_blobs`] reads each tree once however many snapshots share it.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::tree::{MAX_DEPTH, NodeKind, Tree, printable};
use crate::id::Id;
use crate::store::blobs::BlobReader;
use crate::store::index::{Index, LoadedIndex};
use crate::store::repo::{Repository, pack_key};

/// Entries any walk may list, however much its trees are shared.
pub const LISTED_FLOOR: u64 = 1_000_000;

/// How many times over a walk may list the entries of the distinct trees it has read.
pub const LISTED_RATIO: u64 = 100;

/// Tree blob bytes a walk keeps decoded, for trees met again.
pub const TREE_CACHE_BYTES: usize = 64 << 20;

/// Every blob (trees and file content) reachable from `roots`, each tree read once.
pub async fn used_blobs(
    repo: &Repository,
    index: &Index,
    roots: impl Iterator<Item = Id>,
) -> Result<HashSet<Id>> {
    let reader = BlobReader::new(repo, index, 64 << 20);
    let mut used = HashSet::new();
    let mut stack: Vec<Id> = Vec::new();
    for root in roots {
        if used.insert(root) {
            stack.push(root);
        }
    }
    while let Some(id) = stack.pop() {
        let tree = reader.tree(&id).await?;
        for node in tree.entries {
            used.extend(node.content.iter().copied());
            if node.kind == NodeKind::Dir
                && let Some(sub) = node.subtree
                && used.insert(sub)
            {
                stack.push(sub);
            }
        }
    }
    Ok(used)
}

/// What a snapshot with root tree `root` needs that is not on the target: the keys of packs
/// holding its blobs that are not there at the size the index records (or are marked damaged),
/// then `blob ID` for blobs no index object lists, sorted. Empty when every object it needs is
/// listed. A folder listing that is not there is counted and its folder not followed; one that
/// is there but cannot be read is an error.
pub async fn absent_for(repo: &Repository, loaded: &LoadedIndex, root: Id) -> Result<Vec<String>> {
    let reader = BlobReader::new(repo, &loaded.index, 64 << 20);
    let mut packs = BTreeSet::new();
    let mut unindexed = BTreeSet::new();
    let mut there = |blob: &Id| match loaded.index.get(blob) {
        None => {
            unindexed.insert(format!("blob {}", blob.to_hex()));
            false
        }
        Some((pack, _)) if !loaded.is_present(pack) => {
            packs.insert(pack_key(&pack.id));
            false
        }
        Some(_) => true,
    };
    let mut seen: HashSet<Id> = HashSet::new();
    let mut stack = vec![root];
    seen.insert(root);
    while let Some(id) = stack.pop() {
        if !there(&id) {
            continue;
        }
        let tree = reader.tree(&id).await?;
        for node in &tree.entries {
            for blob in &node.content {
                there(blob);
            }
            if node.kind == NodeKind::Dir
                && let Some(sub) = node.subtree
                && seen.insert(sub)
            {
                stack.push(sub);
            }
        }
    }
    Ok(packs.into_iter().chain(unindexed).collect())
}

/// The trees of one walk: read through a cache, with the walk's depth and listing bounds.
pub struct Trees<'r, 'a> {
    reader: &'r BlobReader<'a>,
    /// The snapshot walked, for refusals: `1a2b3c4d`.
    snapshot: String,
    cache: HashMap<Id, Arc<Tree>>,
    order: VecDeque<(Id, usize)>,
    cached: usize,
    /// The cache's bound, in bytes of listings.
    limit: usize,
    seen: HashSet<Id>,
    distinct: u64,
    listed: u64,
    /// Trees read (not found in the cache).
    pub read: usize,
}

impl<'r, 'a> Trees<'r, 'a> {
    /// A walk of `snapshot` (its short id, or `1a2b3c4d or 5e6f7a8b` for two compared),
    /// reading through `reader`.
    pub fn new(reader: &'r BlobReader<'a>, snapshot: String) -> Trees<'r, 'a> {
        Self::with_cache(reader, snapshot, TREE_CACHE_BYTES)
    }

    /// A walk whose cache holds at most `limit` bytes of listings: a walk that reads each tree
    /// once (planning a restore) needs little.
    pub fn with_cache(reader: &'r BlobReader<'a>, snapshot: String, limit: usize) -> Trees<'r, 'a> {
        Trees {
            reader,
            snapshot,
            cache: HashMap::new(),
            order: VecDeque::new(),
            cached: 0,
            limit,
            seen: HashSet::new(),
            distinct: 0,
            listed: 0,
            read: 0,
        }
    }

    pub fn reader(&self) -> &'r BlobReader<'a> {
        self.reader
    }

    /// Starts listing another snapshot with the same cache: the count of entries listed starts
    /// again, the trees read so far still count as distinct.
    pub fn next_walk(&mut self, snapshot: String) {
        self.snapshot = snapshot;
        self.listed = 0;
    }

    /// The tree `id` of the folder at `path`, `level` folders below the snapshot's root tree
    /// (the root tree is level 0, a backed-up path's tree level 1).
    pub async fn tree(&mut self, id: &Id, level: usize, path: &str) -> Result<Arc<Tree>> {
        if level > MAX_DEPTH + 1 {
            return Err(self.refuse(format!(
                "its folders nest deeper than the {MAX_DEPTH} levels a backup writes (at {})",
                shown(path)
            )));
        }
        if let Some(tree) = self.cache.get(id) {
            return Ok(Arc::clone(tree));
        }
        let tree = Arc::new(self.reader.tree(id).await?);
        self.read += 1;
        if self.seen.insert(*id) {
            self.distinct += tree.entries.len() as u64;
        }
        let size = self
            .reader
            .index()
            .get(id)
            .map_or(0, |(_, loc)| loc.raw_length as usize);
        if size <= self.limit {
            while self.cached + size > self.limit {
                let Some((old, n)) = self.order.pop_front() else {
                    break;
                };
                self.cache.remove(&old);
                self.cached -= n;
            }
            self.cache.insert(*id, Arc::clone(&tree));
            self.order.push_back((*id, size));
            self.cached += size;
        }
        Ok(tree)
    }

    /// Counts `n` more entries listed; refused past the walk's bound.
    pub fn listed(&mut self, n: usize) -> Result<()> {
        self.listed += n as u64;
        self.within(self.listed)
    }

    /// Whether `n` entries are within what this walk may list.
    pub fn within(&self, n: u64) -> Result<()> {
        let bound = LISTED_FLOOR.saturating_add(LISTED_RATIO.saturating_mul(self.distinct));
        if n > bound {
            return Err(self.refuse(format!(
                "its folders share subtrees so often that it expands to more than {bound} entries from {} stored ones, far more than any backup writes",
                self.distinct
            )));
        }
        Ok(())
    }

    fn refuse(&self, detail: String) -> Error {
        Error::Corrupt {
            what: "snapshot",
            id: self.snapshot.clone(),
            target: self.reader.copies().first().target().name().to_string(),
            detail: format!("{detail}: it is forged or damaged"),
        }
    }
}

/// A path for a one-line message: escaped, and cut in the middle when long.
pub fn shown(path: &str) -> String {
    let path = if path.is_empty() { "/" } else { path };
    let text = printable(path);
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= 120 {
        return text.into_owned();
    }
    let head: String = chars[..60].iter().collect();
    let tail: String = chars[chars.len() - 60..].iter().collect();
    format!("{head}…{tail}")
}
