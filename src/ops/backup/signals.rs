//! Gathering the ransomware signals during the walk: each file compared with the parent
//! snapshot's node, the folder's entries that are gone, names and extensions, and the look of
//! each file read. Nothing is read that the backup does not read anyway; memory is counts, a
//! few example paths, and (to tell moves from removals) 8 bytes per removed or new file not yet
//! paired, at most [`PAIRING_CAP`] of each. The score is [`crate::plan::ransomware::score`].

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use super::parents::ParentTrees;
use crate::format::tree::{Name, Node, NodeKind, Tree};
use crate::id::Id;
use crate::plan::ransomware::{Detection, Names, Observed, Tally, extension, turned_dense};

/// The most removed (and, apart, new) files kept unpaired for move detection: 2 million, about
/// 50 MiB each at most. Beyond it, moves are counted as removals and additions.
pub(super) const PAIRING_CAP: usize = 2_000_000;

/// What the walk gathers for the ransomware score.
pub(super) struct Gather {
    names: Names,
    /// Extensions of the parent snapshot's files, from every parent folder the walk read (all
    /// of them: a folder still there is read as the walk enters it, one gone as it is counted).
    parent_extensions: HashSet<String>,
    /// New files by extension, in the order first seen: which extensions are new is known only
    /// once the walk has read every parent folder ([`Gather::finish`]).
    new_by_extension: Vec<(String, Tally)>,
    new_extension_slot: HashMap<String, usize>,
    /// Backed-up paths and their names in the snapshot, for example paths.
    roots: Vec<(Name, PathBuf)>,
    pub(super) observed: Observed,
    /// Removed files not yet paired with a new one, and new ones not yet paired with a removed
    /// one: by the first 8 bytes of their first blob id, the hash of their extension and how
    /// many.
    removed_first: HashMap<u64, (u64, u32)>,
    new_first: HashMap<u64, (u64, u32)>,
}

/// The files of one folder of the parent that are gone now, by name and by stem (the name
/// without its last extension), to pair a renamed file with its old version.
pub(super) struct Gone<'a> {
    by_name: HashMap<&'a [u8], &'a Node>,
    by_stem: HashMap<&'a [u8], &'a Node>,
}

impl Gone<'_> {
    /// The old version of a new file renamed in its folder: `report.docx` for
    /// `report.docx.locked` or `report.locked`.
    fn partner(&self, name: &[u8]) -> Option<&Node> {
        let stem = stem(name)?;
        self.by_name
            .get(stem)
            .or_else(|| self.by_stem.get(stem))
            .copied()
    }
}

fn stem(name: &[u8]) -> Option<&[u8]> {
    let dot = name.iter().rposition(|&b| b == b'.')?;
    (dot > 0).then(|| &name[..dot])
}

fn first_key(content: &[Id]) -> Option<u64> {
    content
        .first()
        .map(|id| u64::from_le_bytes(id.0[..8].try_into().expect("8 bytes")))
}

fn ext_key(ext: &Option<String>) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    ext.hash(&mut h);
    h.finish()
}

/// Takes one from a pairing map; whether there was one, and its extension's hash.
fn take(map: &mut HashMap<u64, (u64, u32)>, key: u64) -> Option<u64> {
    let entry = map.get_mut(&key)?;
    let ext = entry.0;
    entry.1 -= 1;
    if entry.1 == 0 {
        map.remove(&key);
    }
    Some(ext)
}

fn put(map: &mut HashMap<u64, (u64, u32)>, key: u64, ext: u64) {
    if map.len() < PAIRING_CAP || map.contains_key(&key) {
        let e = map.entry(key).or_insert((ext, 0));
        e.1 = e.1.saturating_add(1);
    }
}

impl Gather {
    pub(super) fn new(
        detection: &Detection,
        roots: &[(Name, PathBuf)],
        parent_files: Option<u64>,
    ) -> Gather {
        Gather {
            names: Names::new(detection),
            parent_extensions: HashSet::new(),
            new_by_extension: Vec::new(),
            new_extension_slot: HashMap::new(),
            roots: roots.to_vec(),
            observed: Observed {
                parent_files,
                ..Default::default()
            },
            removed_first: HashMap::new(),
            new_first: HashMap::new(),
        }
    }

    /// A folder of the parent snapshot, as the walk reads it: its files' extensions.
    pub(super) fn parent_folder(&mut self, tree: &Tree) {
        for n in &tree.entries {
            if n.kind == NodeKind::File
                && let Some(e) = extension(&n.name.0)
                && self.parent_extensions.len() < MAX_EXTENSIONS
            {
                self.parent_extensions.insert(e);
            }
        }
    }

    /// What was gathered, once the walk is done: new files whose extension no file of the
    /// parent had are counted now.
    pub(super) fn finish(mut self) -> Observed {
        let o = &mut self.observed;
        if o.parent_files.is_some() {
            for (e, tally) in self.new_by_extension {
                if self.parent_extensions.contains(&e) {
                    continue;
                }
                for example in &tally.examples {
                    o.new_extensions.add(|| example.clone());
                }
                o.new_extensions
                    .add_n(tally.count - tally.examples.len() as u64);
                bump(&mut o.new_extension_counts, &e, tally.count);
            }
        }
        self.observed
    }

    /// A path as the snapshot has it: `/NAME/...` under the backed-up path named NAME.
    fn shown(&self, path: &Path) -> String {
        for (name, root) in &self.roots {
            if let Ok(rel) = path.strip_prefix(root) {
                let rel = rel.display().to_string();
                return if rel.is_empty() {
                    format!("/{}", name.display())
                } else {
                    format!("/{}/{rel}", name.display())
                };
            }
        }
        path.display().to_string()
    }

    /// The entries of the parent's folder `prev` that are not among `names` now: each file
    /// (and every file below a folder) is counted removed. Returns them for [`Gather::file`].
    pub(super) fn gone<'a>(
        &mut self,
        dir: &Path,
        prev: Option<&'a Tree>,
        names: &[std::ffi::OsString],
        parents: &ParentTrees,
    ) -> Gone<'a> {
        use std::os::unix::ffi::OsStrExt;
        let mut gone = Gone {
            by_name: HashMap::new(),
            by_stem: HashMap::new(),
        };
        let Some(prev) = prev else { return gone };
        for node in &prev.entries {
            if names
                .binary_search_by(|n| n.as_bytes().cmp(&node.name.0))
                .is_ok()
            {
                continue;
            }
            let path = dir.join(node.name.as_os());
            match node.kind {
                NodeKind::File => {
                    self.removed(&path, node);
                    gone.by_name.insert(&node.name.0, node);
                    if let Some(s) = stem(&node.name.0) {
                        gone.by_stem.insert(s, node);
                    }
                }
                NodeKind::Dir => self.removed_dir(path, node, parents),
                _ => {}
            }
        }
        gone
    }

    /// Every file below a folder of the parent that is gone.
    fn removed_dir(&mut self, path: PathBuf, node: &Node, parents: &ParentTrees) {
        let mut todo = vec![(path, node.subtree)];
        while let Some((path, sub)) = todo.pop() {
            // A tree that cannot be read here is met again, and reported, by the walk.
            let Some(tree) = sub.and_then(|id| parents.get(&id).ok().flatten()) else {
                continue;
            };
            self.parent_folder(&tree);
            for n in &tree.entries {
                match n.kind {
                    NodeKind::File => self.removed(&path.join(n.name.as_os()), n),
                    NodeKind::Dir => todo.push((path.join(n.name.as_os()), n.subtree)),
                    _ => {}
                }
            }
        }
    }

    fn removed(&mut self, path: &Path, node: &Node) {
        let shown = self.shown(path);
        self.observed.removed.add(|| shown.clone());
        let Some(key) = first_key(&node.content) else {
            return;
        };
        let ext = ext_key(&extension(&node.name.0));
        match take(&mut self.new_first, key) {
            Some(new_ext) => self.moved(new_ext != ext, shown),
            None => put(&mut self.removed_first, key, ext),
        }
    }

    fn moved(&mut self, other_extension: bool, shown: String) {
        self.observed.moved += 1;
        if other_extension {
            self.observed.renamed.add(|| shown);
        }
    }

    /// A file recorded in this backup: `read` when its content was read (new or changed),
    /// `prev` the parent's node at the same path, `gone` its folder's removed files. Returns
    /// whether it is named like a ransom note.
    pub(super) fn file(
        &mut self,
        path: &Path,
        node: &Node,
        read: bool,
        prev: Option<&Node>,
        gone: &Gone<'_>,
    ) -> bool {
        self.observed.files += 1;
        if !read {
            return false;
        }
        let shown = self.shown(path);
        if let Some(p) = prev.filter(|p| p.kind == NodeKind::File) {
            let o = &mut self.observed;
            o.changed.add(|| shown.clone());
            if p.look.is_some() && node.look.is_some() {
                o.character_known += 1;
            }
            if turned_dense(p.look, node.look) {
                o.character.add(|| shown);
            }
            return false;
        }
        self.observed.new.add(|| shown.clone());
        let ext = extension(&node.name.0);
        if let Some(old) = gone.partner(&node.name.0) {
            let o = &mut self.observed;
            if old.look.is_some() && node.look.is_some() {
                o.character_known += 1;
            }
            if turned_dense(old.look, node.look) {
                o.character.add(|| shown.clone());
            }
        }
        if let Some(e) = &ext {
            self.new_with_extension(e, &shown);
            let o = &mut self.observed;
            if self.names.ransom_extension(e) {
                o.ransom_extensions.add(|| shown.clone());
                bump(&mut o.ransom_extension_counts, e, 1);
            }
        }
        let note = self.names.ransom_note(&node.name.display());
        if note {
            self.observed.notes.add(|| shown.clone());
        }
        // With no parent snapshot nothing can have moved: a first backup keeps no new files
        // for pairing (a million-file first backup kept 26 MiB of them).
        if let Some(key) = first_key(&node.content)
            && self.observed.parent_files.is_some()
        {
            let ext = ext_key(&ext);
            match take(&mut self.removed_first, key) {
                Some(old_ext) => self.moved(old_ext != ext, shown),
                None => put(&mut self.new_first, key, ext),
            }
        }
        note
    }
}

/// The most different extensions remembered (of the parent's files, and of new files): beyond
/// it, a new file's extension is not weighed as new.
const MAX_EXTENSIONS: usize = 10_000;

impl Gather {
    /// A new file with extension `e`, weighed as a new extension at the end if the parent has
    /// none.
    fn new_with_extension(&mut self, e: &str, shown: &str) {
        let slot = match self.new_extension_slot.get(e) {
            Some(&i) => i,
            None if self.new_by_extension.len() < MAX_EXTENSIONS => {
                self.new_by_extension
                    .push((e.to_string(), Tally::default()));
                let i = self.new_by_extension.len() - 1;
                self.new_extension_slot.insert(e.to_string(), i);
                i
            }
            None => return,
        };
        self.new_by_extension[slot].1.add(|| shown.to_string());
    }
}

/// Counts `n` files of an extension, keeping at most 1,000 different ones (the rest are counted
/// in the tally only).
fn bump(counts: &mut std::collections::BTreeMap<String, u64>, ext: &str, n: u64) {
    if let Some(c) = counts.get_mut(ext) {
        *c += n;
    } else if counts.len() < 1000 {
        counts.insert(ext.to_string(), n);
    }
}
