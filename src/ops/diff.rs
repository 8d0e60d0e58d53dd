//! Comparing two snapshots: what was added, removed and modified between them.
//!
//! Both snapshots are walked together, folder by folder. Trees are content-addressed, so two
//! folders with the same tree id hold exactly the same entries: such a folder is skipped without
//! reading it, and only the folders on the paths to what changed are read. Everything beneath an
//! added or removed folder is listed. The walk keeps the bounds of [`crate::store::walk`]: trees
//! nested deeper, or shared far more, than a backup writes are refused.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::format::tree::{Node, NodeKind, Tree};
use crate::id::Id;
use crate::store::blobs::BlobReader;
use crate::store::snapshot::Listed;
use crate::store::walk::Trees;

/// What to compare.
#[derive(Clone, Debug, Default)]
pub struct DiffOptions {
    /// Only this file or folder (a path as `firesafe ls` shows it); the whole snapshots when
    /// `None`.
    pub path: Option<String>,
}

/// A snapshot, as the report names it.
#[derive(Clone, Debug, Serialize)]
pub struct Side {
    pub snapshot: Id,
    pub source: String,
    pub time: DateTime<Utc>,
}

/// How an entry differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Added,
    Removed,
    Modified,
}

/// One entry that differs.
#[derive(Clone, Debug, Serialize)]
pub struct Change {
    /// Path inside the snapshot, starting with `/`.
    pub path: String,
    pub change: ChangeKind,
    #[serde(rename = "type")]
    pub kind: NodeKind,
    /// Size in the first snapshot (absent for an added entry).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_before: Option<u64>,
    /// Size in the second snapshot (absent for a removed entry).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_after: Option<u64>,
    /// For a modified entry, what differs: `content`, `target` (symlinks), `mode`, `mtime`,
    /// `owner`, `xattrs`. A folder's own modification time is not compared: it changes whenever
    /// its entries do, and those are listed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub what: Vec<&'static str>,
}

/// The differences from one snapshot to another, sorted by path.
#[derive(Clone, Debug, Serialize)]
pub struct DiffReport {
    pub from: Side,
    pub to: Side,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub changes: Vec<Change>,
    pub added: usize,
    pub removed: usize,
    pub modified: usize,
    /// Bytes of the files added, and of those removed.
    pub bytes_added: u64,
    pub bytes_removed: u64,
    /// Trees read, and folders skipped because their tree was the same in both.
    pub trees_read: usize,
    pub trees_skipped: usize,
}

/// Folders still to compare: in both snapshots, or only in one.
enum Work {
    Both(String, Id, Id),
    Only(String, Id, ChangeKind),
}

/// Compares snapshot `from` with snapshot `to`.
pub async fn diff(
    reader: &BlobReader<'_>,
    from: &Listed,
    to: &Listed,
    options: &DiffOptions,
) -> Result<DiffReport> {
    let mut walk = Walk {
        changes: Vec::new(),
        work: Vec::new(),
        trees_read: 0,
        trees_skipped: 0,
    };
    let path = options
        .path
        .as_deref()
        .map(|p| p.trim_matches('/'))
        .filter(|p| !p.is_empty());
    match path {
        None if from.snapshot.tree == to.snapshot.tree => walk.trees_skipped += 1,
        None => walk.work.push(Work::Both(
            String::new(),
            from.snapshot.tree,
            to.snapshot.tree,
        )),
        Some(p) => {
            let before = node_at(reader, from, p).await?;
            let after = node_at(reader, to, p).await?;
            if before.is_none() && after.is_none() {
                return Err(Error::NotFound(format!(
                    "{p} is in neither snapshot {} nor {}; `firesafe ls` shows what they hold",
                    from.id.short(),
                    to.id.short()
                )));
            }
            walk.compare(format!("/{p}"), before.as_ref(), after.as_ref());
        }
    }
    // Both snapshots' trees through one cache, with one bound on what the walk lists.
    let mut trees = Trees::new(reader, format!("{} or {}", from.id.short(), to.id.short()));
    while let Some(w) = walk.work.pop() {
        match w {
            Work::Both(dir, a, b) => {
                let level = dir.matches('/').count();
                let ta = trees.tree(&a, level, &dir).await?;
                let tb = trees.tree(&b, level, &dir).await?;
                trees.listed(ta.entries.len() + tb.entries.len())?;
                walk.trees_read += 2;
                walk.merge(&dir, &ta, &tb);
            }
            Work::Only(dir, id, change) => {
                let tree = trees.tree(&id, dir.matches('/').count(), &dir).await?;
                trees.listed(tree.entries.len())?;
                walk.trees_read += 1;
                for n in &tree.entries {
                    walk.one(format!("{dir}/{}", n.name.display()), n, change);
                }
            }
        }
    }
    let mut changes = walk.changes;
    changes.sort_by(|a, b| a.path.cmp(&b.path).then(a.change.cmp_order(b.change)));
    let count = |k: ChangeKind| changes.iter().filter(|c| c.change == k).count();
    let bytes = |k: ChangeKind, size: fn(&Change) -> Option<u64>| {
        changes
            .iter()
            .filter(|c| c.change == k && c.kind == NodeKind::File)
            .filter_map(size)
            .sum()
    };
    let side = |l: &Listed| Side {
        snapshot: l.id,
        source: l.snapshot.source.clone(),
        time: l.snapshot.start,
    };
    Ok(DiffReport {
        from: side(from),
        to: side(to),
        path: path.map(|p| format!("/{p}")),
        added: count(ChangeKind::Added),
        removed: count(ChangeKind::Removed),
        modified: count(ChangeKind::Modified),
        bytes_added: bytes(ChangeKind::Added, |c| c.size_after),
        bytes_removed: bytes(ChangeKind::Removed, |c| c.size_before),
        trees_read: walk.trees_read,
        trees_skipped: walk.trees_skipped,
        changes,
    })
}

impl ChangeKind {
    /// At one path, a removal is listed before an addition (a file replaced by a folder).
    fn cmp_order(self, other: ChangeKind) -> std::cmp::Ordering {
        let rank = |k: ChangeKind| match k {
            ChangeKind::Removed => 0,
            ChangeKind::Modified => 1,
            ChangeKind::Added => 2,
        };
        rank(self).cmp(&rank(other))
    }
}

/// The node at `path` in a snapshot, or `None` when the path is not there.
async fn node_at(reader: &BlobReader<'_>, snapshot: &Listed, path: &str) -> Result<Option<Node>> {
    let mut tree = reader.tree(&snapshot.snapshot.tree).await?;
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    for (i, part) in parts.iter().enumerate() {
        let Some(node) = tree.find(part.as_bytes()).cloned() else {
            return Ok(None);
        };
        if i + 1 == parts.len() {
            return Ok(Some(node));
        }
        match (node.kind, node.subtree) {
            (NodeKind::Dir, Some(sub)) => tree = reader.tree(&sub).await?,
            _ => return Ok(None),
        }
    }
    Ok(None)
}

struct Walk {
    changes: Vec<Change>,
    work: Vec<Work>,
    trees_read: usize,
    trees_skipped: usize,
}

impl Walk {
    /// Compares two folders' entries, in name order.
    fn merge(&mut self, dir: &str, a: &Tree, b: &Tree) {
        let (mut i, mut j) = (0, 0);
        while i < a.entries.len() || j < b.entries.len() {
            let (na, nb) = (a.entries.get(i), b.entries.get(j));
            let order = match (na, nb) {
                (Some(x), Some(y)) => x.name.cmp(&y.name),
                (Some(_), None) => std::cmp::Ordering::Less,
                _ => std::cmp::Ordering::Greater,
            };
            let (left, right) = match order {
                std::cmp::Ordering::Less => (na, None),
                std::cmp::Ordering::Greater => (None, nb),
                std::cmp::Ordering::Equal => (na, nb),
            };
            let name = left
                .or(right)
                .expect("one side has an entry")
                .name
                .display();
            self.compare(format!("{dir}/{name}"), left, right);
            i += usize::from(left.is_some());
            j += usize::from(right.is_some());
        }
    }

    /// Compares the entries at one path; either may be absent.
    fn compare(&mut self, path: String, a: Option<&Node>, b: Option<&Node>) {
        match (a, b) {
            (Some(a), None) => self.one(path, a, ChangeKind::Removed),
            (None, Some(b)) => self.one(path, b, ChangeKind::Added),
            (Some(a), Some(b)) if a.kind != b.kind => {
                self.one(path.clone(), a, ChangeKind::Removed);
                self.one(path, b, ChangeKind::Added);
            }
            (Some(a), Some(b)) => {
                let what = differences(a, b);
                if !what.is_empty() {
                    self.changes.push(Change {
                        path: path.clone(),
                        change: ChangeKind::Modified,
                        kind: b.kind,
                        size_before: Some(a.size),
                        size_after: Some(b.size),
                        what,
                    });
                }
                if let (Some(sa), Some(sb)) = (a.subtree, b.subtree) {
                    if sa == sb {
                        self.trees_skipped += 1;
                    } else {
                        self.work.push(Work::Both(path, sa, sb));
                    }
                }
            }
            (None, None) => {}
        }
    }

    /// An entry present on one side only, and everything beneath it.
    fn one(&mut self, path: String, n: &Node, change: ChangeKind) {
        let removed = change == ChangeKind::Removed;
        self.changes.push(Change {
            path: path.clone(),
            change,
            kind: n.kind,
            size_before: removed.then_some(n.size),
            size_after: (!removed).then_some(n.size),
            what: Vec::new(),
        });
        if let Some(sub) = n.subtree {
            self.work.push(Work::Only(path, sub, change));
        }
    }
}

/// What differs between two nodes of the same kind at one path.
fn differences(a: &Node, b: &Node) -> Vec<&'static str> {
    let mut what = Vec::new();
    if a.content != b.content || a.size != b.size {
        what.push("content");
    }
    if a.target != b.target {
        what.push("target");
    }
    if a.mode != b.mode {
        what.push("mode");
    }
    if a.kind != NodeKind::Dir && (a.mtime, a.mtime_nsec) != (b.mtime, b.mtime_nsec) {
        what.push("mtime");
    }
    if (a.uid, a.gid) != (b.uid, b.gid) {
        what.push("owner");
    }
    if a.xattrs != b.xattrs {
        what.push("xattrs");
    }
    what
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::tree::Name;

    fn node(name: &str, kind: NodeKind) -> Node {
        Node {
            name: Name(name.as_bytes().to_vec()),
            kind,
            mode: 0o644,
            uid: 1000,
            gid: 1000,
            user: None,
            group: None,
            mtime: 1_700_000_000,
            mtime_nsec: 0,
            ctime: 1_700_000_000,
            ctime_nsec: 0,
            inode: 1,
            device: 1,
            links: 1,
            size: 3,
            target: None,
            rdev: None,
            xattrs: vec![],
            content: vec![Id([1; 32])],
            subtree: (kind == NodeKind::Dir).then_some(Id([9; 32])),
            look: None,
        }
    }

    fn walk() -> Walk {
        Walk {
            changes: Vec::new(),
            work: Vec::new(),
            trees_read: 0,
            trees_skipped: 0,
        }
    }

    #[test]
    fn entries_are_added_removed_and_modified() {
        let same = node("same.txt", NodeKind::File);
        let mut edited = node("edited.txt", NodeKind::File);
        let before = Tree {
            entries: vec![
                edited.clone(),
                node("gone.txt", NodeKind::File),
                same.clone(),
            ],
        };
        edited.content = vec![Id([2; 32])];
        edited.mtime += 60;
        let after = Tree {
            entries: vec![edited, node("new.txt", NodeKind::File), same],
        };
        let mut w = walk();
        w.merge("/share", &before, &after);
        let seen: Vec<(&str, ChangeKind, &[&str])> = w
            .changes
            .iter()
            .map(|c| (c.path.as_str(), c.change, c.what.as_slice()))
            .collect();
        assert_eq!(
            seen,
            vec![
                (
                    "/share/edited.txt",
                    ChangeKind::Modified,
                    &["content", "mtime"][..]
                ),
                ("/share/gone.txt", ChangeKind::Removed, &[][..]),
                ("/share/new.txt", ChangeKind::Added, &[][..]),
            ]
        );
    }

    #[test]
    fn identical_folders_are_skipped_and_changed_ones_queued() {
        let dir = node("dir", NodeKind::Dir);
        let mut changed = node("other", NodeKind::Dir);
        let before = Tree {
            entries: vec![dir.clone(), changed.clone()],
        };
        changed.subtree = Some(Id([7; 32]));
        changed.mtime += 5;
        let after = Tree {
            entries: vec![dir, changed],
        };
        let mut w = walk();
        w.merge("", &before, &after);
        assert!(w.changes.is_empty(), "a folder's own mtime is not a change");
        assert_eq!(w.trees_skipped, 1);
        assert!(matches!(w.work.as_slice(), [Work::Both(p, _, _)] if p == "/other"));
    }

    #[test]
    fn a_file_replaced_by_a_folder_is_removed_then_added() {
        let before = Tree {
            entries: vec![node("x", NodeKind::File)],
        };
        let after = Tree {
            entries: vec![node("x", NodeKind::Dir)],
        };
        let mut w = walk();
        w.merge("", &before, &after);
        let kinds: Vec<ChangeKind> = w.changes.iter().map(|c| c.change).collect();
        assert_eq!(kinds, vec![ChangeKind::Removed, ChangeKind::Added]);
        assert!(matches!(
            w.work.as_slice(),
            [Work::Only(_, _, ChangeKind::Added)]
        ));
    }
}
