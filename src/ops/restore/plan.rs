//! The restore plan: every directory, file, hard link, symlink and special file a restore will
//! create, with its place relative to the destination, worked out from the snapshot's trees
//! before anything is written.
//!
//! Planning is separate from writing so that a dry run, a drill's sample and the tests can
//! look at (and change) what will be done. Hard links are recognised here, by (device, inode)
//! of files with more than one link, so that their content is restored once.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::format::tree::{Node, NodeKind};
use crate::store::blobs::BlobReader;
use crate::store::snapshot::Listed;
use crate::store::walk::Trees;

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

/// Where an in-place restore puts things: for each root entry to restore, the path inside the
/// snapshot to plan (`None`: the whole snapshot) and the directory it goes back into.
///
/// The snapshot's root tree has one entry per path it read, named by that path's last
/// component, so `curriculum/year7` of a snapshot of `/srv/shares/curriculum` goes back into
/// `/srv/shares/curriculum`. Refused when the recorded path is not absolute, or when the
/// directory it goes back into does not exist (an unmounted share).
pub fn in_place_roots(snapshot: &Listed, sub_path: Option<&str>) -> Result<Vec<(String, PathBuf)>> {
    let wanted: Vec<String> = match sub_path
        .map(|p| p.trim_matches('/'))
        .filter(|p| !p.is_empty())
    {
        Some(p) => vec![p.to_string()],
        None => snapshot
            .snapshot
            .paths
            .iter()
            .map(|p| {
                Path::new(p)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| p.clone())
            })
            .collect(),
    };
    let mut out = Vec::new();
    for want in wanted {
        let mut parts = want.split('/').filter(|s| !s.is_empty() && *s != ".");
        let first = parts.next().unwrap_or_default();
        let rest: Vec<&str> = parts.collect();
        let original = snapshot
            .snapshot
            .paths
            .iter()
            .find(|p| {
                Path::new(p)
                    .file_name()
                    .is_some_and(|n| n.as_encoded_bytes() == first.as_bytes())
            })
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "{want} is not in snapshot {}; `firesafe ls {}` shows what it holds",
                    snapshot.id.short(),
                    snapshot.id.short()
                ))
            })?;
        let original = Path::new(original);
        if !original.is_absolute() {
            return Err(Error::Usage(format!(
                "cannot restore in place: snapshot {} recorded the path \"{}\", which is not absolute; restore with --to DIR instead",
                snapshot.id.short(),
                original.display()
            )));
        }
        // The entry itself goes into the directory that holds it.
        let mut full = original.to_path_buf();
        for r in &rest {
            full.push(r);
        }
        let dir = full
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"));
        if !dir.is_dir() {
            return Err(Error::NotFound(format!(
                "cannot restore in place: {} (where {} was) does not exist or is not a directory; check the share is mounted, restore the folder above it in place, or restore with --to DIR",
                dir.display(),
                full.display()
            )));
        }
        out.push((want, dir));
    }
    Ok(out)
}

/// Builds the whole plan for `snapshot` (optionally only `sub_path` inside it). Refused when
/// the trees nest deeper, or share subtrees far more, than a backup writes (see
/// [`crate::store::walk`]). For a restore of any size, [`PlanStream`] makes it a part at a time.
pub async fn plan(
    reader: &BlobReader<'_>,
    snapshot: &Listed,
    sub_path: Option<&str>,
) -> Result<RestorePlan> {
    let mut stream = PlanStream::new(reader, snapshot, sub_path).await?;
    Ok(stream.next(usize::MAX).await?.unwrap_or_default())
}

/// The plan of a restore, made a part at a time as the snapshot's trees are walked (depth
/// first, in name order): each part holds the folders, files, links and special files met
/// until it has enough files, so that memory holds one part and the walk's current path, not
/// a whole snapshot's entries. A folder comes in the part that reaches it, before anything in
/// it; a hard link comes after the file it links to (in that part or an earlier one).
pub struct PlanStream<'r, 'a> {
    trees: Trees<'r, 'a>,
    /// Entries still to plan, the next one last.
    todo: Vec<(PathBuf, Node)>,
    /// The first path planned for each multiply-linked file, by (device, inode).
    links: HashMap<(u64, u64), PathBuf>,
}

impl<'r, 'a> PlanStream<'r, 'a> {
    pub async fn new(
        reader: &'r BlobReader<'a>,
        snapshot: &Listed,
        sub_path: Option<&str>,
    ) -> Result<PlanStream<'r, 'a>> {
        // Each folder's listing is planned once: a small cache serves the few read again.
        let mut trees = Trees::with_cache(reader, snapshot.id.short(), 4 << 20);
        let root = trees.tree(&snapshot.snapshot.tree, 0, "").await?;
        let mut todo: Vec<(PathBuf, Node)> = Vec::new();
        match sub_path
            .map(|p| p.trim_matches('/'))
            .filter(|p| !p.is_empty())
        {
            None => {
                trees.listed(root.entries.len())?;
                todo.extend(
                    root.entries
                        .iter()
                        .map(|n| (PathBuf::from(n.name.as_os()), n.clone())),
                )
            }
            Some(p) => {
                let node = find_node(reader, &root, p, snapshot).await?;
                todo.push((PathBuf::from(node.name.as_os()), node));
            }
        }
        todo.reverse();
        Ok(PlanStream {
            trees,
            todo,
            links: HashMap::new(),
        })
    }

    /// The next part, with at most `max_files` files (and every folder and link met on the
    /// way); `None` when everything is planned.
    pub async fn next(&mut self, max_files: usize) -> Result<Option<RestorePlan>> {
        if self.todo.is_empty() {
            return Ok(None);
        }
        let mut plan = RestorePlan::default();
        while plan.files.len() < max_files
            && let Some((rel, node)) = self.todo.pop()
        {
            match node.kind {
                NodeKind::Dir => {
                    let sub = node.subtree.expect("checked by Tree::decode");
                    let shown = format!("/{}", rel.display());
                    let tree = self
                        .trees
                        .tree(&sub, rel.components().count(), &shown)
                        .await?;
                    self.trees.listed(tree.entries.len())?;
                    for child in tree.entries.iter().rev() {
                        self.todo
                            .push((rel.join(child.name.as_os()), child.clone()));
                    }
                    plan.dirs.push(PlanEntry { rel, node });
                }
                NodeKind::File => {
                    if node.links > 1 {
                        if let Some(first) = self.links.get(&(node.device, node.inode)) {
                            plan.hardlinks
                                .push((PlanEntry { rel, node }, first.clone()));
                            continue;
                        }
                        self.links.insert((node.device, node.inode), rel.clone());
                    }
                    plan.total_bytes += node.size;
                    plan.files.push(PlanEntry { rel, node });
                }
                NodeKind::Symlink => plan.symlinks.push(PlanEntry { rel, node }),
                _ => plan.specials.push(PlanEntry { rel, node }),
            }
        }
        Ok(Some(plan))
    }
}

/// Finds the node at `path` (components separated by `/`) in a snapshot.
pub async fn find_node(
    reader: &BlobReader<'_>,
    root: &crate::format::tree::Tree,
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
