//! Listing a snapshot's contents.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::Result;
use crate::format::tree::{Node, NodeKind};
use crate::id::Id;
use crate::store::blobs::BlobReader;
use crate::store::snapshot::Listed;
use crate::store::walk::Trees;

/// One listed entry.
#[derive(Clone, Debug, Serialize)]
pub struct Entry {
    /// Path inside the snapshot, starting with `/`.
    pub path: String,
    #[serde(rename = "type")]
    pub kind: NodeKind,
    pub mode: u32,
    pub size: u64,
    pub mtime: DateTime<Utc>,
    pub uid: u32,
    pub gid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

impl Entry {
    fn new(path: String, n: &Node) -> Entry {
        Entry {
            path,
            kind: n.kind,
            mode: n.mode,
            size: n.size,
            mtime: DateTime::from_timestamp(n.mtime, n.mtime_nsec).unwrap_or_default(),
            uid: n.uid,
            gid: n.gid,
            target: n.target.as_ref().map(|t| t.display()),
        }
    }
}

/// Hands `emit` every entry under `path` (the whole snapshot when `None`) as it is read: depth
/// first, each folder's entries in name order, a folder before what it holds. Nothing is
/// collected, so listing a million-file snapshot takes no more memory than listing a small one.
/// Refused when the trees nest deeper, or share subtrees far more, than a backup writes (see
/// [`crate::store::walk`]).
pub async fn each(
    reader: &BlobReader<'_>,
    snapshot: &Listed,
    path: Option<&str>,
    mut emit: impl FnMut(Entry),
) -> Result<()> {
    let mut trees = Trees::new(reader, snapshot.id.short());
    let root_id = snapshot.snapshot.tree;
    let root = trees.tree(&root_id, 0, "").await?;
    let start = path.map(|p| p.trim_matches('/')).filter(|p| !p.is_empty());
    // The folder to open next: path and tree id. A folder's level is the number of `/` in its
    // path (names hold none).
    let mut next: Option<(String, Id)> = match start {
        None => Some((String::new(), root_id)),
        Some(p) => {
            let node = crate::ops::restore::find_node(reader, &root, p, snapshot).await?;
            let shown = format!("/{p}");
            emit(Entry::new(shown.clone(), &node));
            node.subtree.map(|sub| (shown, sub))
        }
    };
    // The entries of the folders opened still to show, innermost last: an entry is shown, and
    // then, if it is a folder, what it holds.
    let mut pending: Vec<std::vec::IntoIter<(Entry, Option<Id>)>> = Vec::new();
    while let Some((dir, id)) = next.take() {
        let tree = trees.tree(&id, dir.matches('/').count(), &dir).await?;
        trees.listed(tree.entries.len())?;
        let level: Vec<(Entry, Option<Id>)> = tree
            .entries
            .iter()
            .map(|n| {
                (
                    Entry::new(format!("{dir}/{}", n.name.display()), n),
                    n.subtree,
                )
            })
            .collect();
        pending.push(level.into_iter());
        while next.is_none()
            && let Some(level) = pending.last_mut()
        {
            match level.next() {
                Some((entry, sub)) => {
                    next = sub.map(|sub| (entry.path.clone(), sub));
                    emit(entry);
                }
                None => {
                    pending.pop();
                }
            }
        }
    }
    Ok(())
}
