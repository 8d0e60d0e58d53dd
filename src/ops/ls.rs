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

/// Every entry under `path` (the whole snapshot when `None`), depth first, in name order.
/// Refused when the trees nest deeper, or share subtrees far more, than a backup writes
/// (see [`crate::store::walk`]).
pub async fn list(
    reader: &BlobReader<'_>,
    snapshot: &Listed,
    path: Option<&str>,
) -> Result<Vec<Entry>> {
    let mut trees = Trees::new(reader, snapshot.id.short());
    let root_id = snapshot.snapshot.tree;
    let root = trees.tree(&root_id, 0, "").await?;
    let mut out = Vec::new();
    let start = path.map(|p| p.trim_matches('/')).filter(|p| !p.is_empty());
    // Folders still to list: path and tree id. A folder's level is the number of `/` in its
    // path (names hold none).
    let mut todo: Vec<(String, Id)> = Vec::new();
    match start {
        None => todo.push((String::new(), root_id)),
        Some(p) => {
            let node = crate::ops::restore::find_node(reader, &root, p, snapshot).await?;
            let shown = format!("/{p}");
            out.push(Entry::new(shown.clone(), &node));
            if let Some(sub) = node.subtree {
                todo.push((shown, sub));
            }
        }
    }
    while let Some((dir, id)) = todo.pop() {
        let tree = trees.tree(&id, dir.matches('/').count(), &dir).await?;
        trees.listed(tree.entries.len())?;
        // Depth first, in order: push subtrees in reverse after listing this level's entries.
        let first = todo.len();
        for n in &tree.entries {
            let path = format!("{dir}/{}", n.name.display());
            out.push(Entry::new(path.clone(), n));
            if let Some(sub) = n.subtree {
                todo.push((path, sub));
            }
        }
        todo[first..].reverse();
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}
