//! Tree walks shared by operations: what a set of snapshots uses. Each tree is read once
//! however many snapshots share it, and the walk keeps a stack, not the call stack, so depth
//! costs memory for the stack only.

use std::collections::HashSet;

use crate::error::Result;
use crate::format::tree::NodeKind;
use crate::id::Id;
use crate::store::blobs::BlobReader;
use crate::store::index::Index;
use crate::store::repo::Repository;

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
