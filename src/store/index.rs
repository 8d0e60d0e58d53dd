//! The index: which blob lives where.
//!
//! Each index object lists packs and the blobs in each. A backup writes one after every few
//! dozen packs it uploads and one at its end, always after the packs it lists are stored, so an
//! index never points at a pack that was not written. Loading the index reads every index object.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::format::pack::{BlobKind, PackEntry};
use crate::id::Id;
use crate::store::damage;
use crate::store::repo::{DATA, INDEX, Repository};

/// One pack as an index object lists it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IndexPack {
    pub id: Id,
    pub kind: BlobKind,
    /// Stored (encrypted) size of the pack object in bytes.
    pub size: u64,
    pub blobs: Vec<PackEntry>,
}

/// The content of one index object.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct IndexFile {
    pub packs: Vec<IndexPack>,
}

/// Where one blob is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobLocation {
    /// Position in [`Index::packs`].
    pub pack: u32,
    pub offset: u32,
    pub length: u32,
    pub raw_length: u32,
    pub zstd: bool,
}

/// A pack the index knows.
#[derive(Clone, Debug)]
pub struct PackInfo {
    pub id: Id,
    pub kind: BlobKind,
    pub size: u64,
}

/// The whole index in memory.
#[derive(Default)]
pub struct Index {
    pub packs: Vec<PackInfo>,
    pack_pos: HashMap<Id, u32>,
    blobs: HashMap<Id, BlobLocation>,
    /// Further locations of blobs stored more than once (stored again after damage), tried in
    /// turn when the first cannot be read.
    others: HashMap<Id, Vec<BlobLocation>>,
}

/// The index and any index objects that could not be read.
pub struct LoadedIndex {
    pub index: Index,
    /// (object key, what is wrong with it)
    pub damaged: Vec<(String, Error)>,
    /// Keys of the index objects read.
    pub objects: Vec<String>,
    /// The packs on the target and their sizes, as listed when the index was loaded.
    pub present: HashMap<Id, u64>,
    /// The packs marked damaged on the target (see [`damage`]).
    pub marked: HashSet<Id>,
}

impl LoadedIndex {
    /// Whether a pack is on the target at the size the index records and not marked damaged:
    /// whether its blobs can be built on.
    pub fn is_present(&self, pack: &PackInfo) -> bool {
        self.present.get(&pack.id) == Some(&pack.size) && !self.marked.contains(&pack.id)
    }
}

impl Index {
    /// Reads every index object on the repository's target.
    pub async fn load(repo: &Repository) -> Result<LoadedIndex> {
        let loaded = repo.load_all_sealed::<IndexFile>("index", INDEX).await?;
        let damaged = loaded.damaged;
        let mut objects: Vec<String> = loaded
            .read
            .iter()
            .map(|(k, _)| k.clone())
            .chain(damaged.iter().map(|(k, _)| k.clone()))
            .collect();
        objects.sort();
        let mut packs = Vec::new();
        for (_, file) in loaded.read {
            packs.extend(file.packs);
        }
        // Which packs are really there. When a blob is in several packs (stored again after its
        // first pack was lost or found damaged), the copy in a pack that is present and not
        // marked damaged wins.
        let present: HashMap<Id, u64> = repo
            .target()
            .list(DATA)
            .await?
            .into_iter()
            .filter_map(|l| {
                l.key
                    .rsplit('/')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .map(|id| (id, l.size))
            })
            .collect();
        let marked = damage::marked(repo.target()).await?;
        packs.sort_by_key(|p| (present.get(&p.id) != Some(&p.size), marked.contains(&p.id)));
        let mut index = Index::default();
        for p in packs {
            index.add_pack(p.id, p.kind, p.size, &p.blobs);
        }
        Ok(LoadedIndex {
            index,
            damaged,
            objects,
            present,
            marked,
        })
    }

    /// Records a pack and its blobs. A blob already known keeps its first location.
    pub fn add_pack(&mut self, id: Id, kind: BlobKind, size: u64, blobs: &[PackEntry]) {
        let pos = match self.pack_pos.get(&id) {
            Some(&p) => p,
            None => {
                let p = self.packs.len() as u32;
                self.packs.push(PackInfo { id, kind, size });
                self.pack_pos.insert(id, p);
                p
            }
        };
        for b in blobs {
            let loc = BlobLocation {
                pack: pos,
                offset: b.offset,
                length: b.length,
                raw_length: b.raw_length,
                zstd: b.zstd,
            };
            match self.blobs.get(&b.id) {
                None => {
                    self.blobs.insert(b.id, loc);
                }
                Some(first) if first.pack != pos => {
                    let others = self.others.entry(b.id).or_default();
                    if !others.iter().any(|o| o.pack == pos) {
                        others.push(loc);
                    }
                }
                Some(_) => {}
            }
        }
    }

    /// The other places a blob is stored, after the one [`Index::get`] gives.
    pub fn others(&self, id: &Id) -> impl Iterator<Item = (&PackInfo, BlobLocation)> {
        self.others
            .get(id)
            .into_iter()
            .flatten()
            .map(|loc| (&self.packs[loc.pack as usize], *loc))
    }

    pub fn get(&self, id: &Id) -> Option<(&PackInfo, BlobLocation)> {
        self.blobs
            .get(id)
            .map(|loc| (&self.packs[loc.pack as usize], *loc))
    }

    pub fn contains(&self, id: &Id) -> bool {
        self.blobs.contains_key(id)
    }

    pub fn blob_count(&self) -> usize {
        self.blobs.len()
    }

    /// Every blob with its location, for checks.
    pub fn blobs(&self) -> impl Iterator<Item = (&Id, &BlobLocation)> {
        self.blobs.iter()
    }

    /// Adds what `other` knows and this index does not (the index of another copy of the same
    /// repository). A blob already known keeps its location here.
    pub fn absorb(&mut self, other: &Index) {
        for (id, loc) in &other.blobs {
            if self.blobs.contains_key(id) {
                continue;
            }
            let info = &other.packs[loc.pack as usize];
            let pos = match self.pack_pos.get(&info.id) {
                Some(&p) => p,
                None => {
                    let p = self.packs.len() as u32;
                    self.packs.push(info.clone());
                    self.pack_pos.insert(info.id, p);
                    p
                }
            };
            self.blobs.insert(*id, BlobLocation { pack: pos, ..*loc });
        }
    }

    pub fn pack(&self, id: &Id) -> Option<&PackInfo> {
        self.pack_pos.get(id).map(|&p| &self.packs[p as usize])
    }
}

/// Writes one index object listing `packs`.
pub async fn save(repo: &Repository, packs: Vec<IndexPack>) -> Result<Id> {
    repo.save_sealed(INDEX, &IndexFile { packs }).await
}
