//! Listing a snapshot's contents.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::Result;
use crate::format::tree::{Node, NodeKind, Tree};
use crate::store::blobs::BlobReader;
use crate::store::snapshot::Listed;

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
pub async fn list(
    reader: &BlobReader<'_>,
    snapshot: &Listed,
    path: Option<&str>,
) -> Result<Vec<Entry>> {
    let root = reader.tree(&snapshot.snapshot.tree).await?;
    let mut out = Vec::new();
    let start = path.map(|p| p.trim_matches('/')).filter(|p| !p.is_empty());
    let mut todo: Vec<(String, Tree)> = Vec::new();
    match start {
        None => todo.push((String::new(), root)),
        Some(p) => {
            let node = crate::ops::restore::find_node(reader, &root, p, snapshot).await?;
            let shown = format!("/{p}");
            out.push(Entry::new(shown.clone(), &node));
            if let Some(sub) = node.subtree {
                todo.push((shown, reader.tree(&sub).await?));
            }
        }
    }
    while let Some((dir, tree)) = todo.pop() {
        // Depth first, in order: push subtrees in reverse after listing this level's entries.
        let mut subs = Vec::new();
        for n in &tree.entries {
            let path = format!("{dir}/{}", n.name.display());
            out.push(Entry::new(path.clone(), n));
            if let Some(sub) = n.subtree {
                subs.push((path, sub));
            }
        }
        for (path, sub) in subs.into_iter().rev() {
            todo.push((path, reader.tree(&sub).await?));
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}
