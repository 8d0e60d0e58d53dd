//! The index: which blob lives where.
//!
//! Each index object lists packs and the blobs in each. A backup writes one after every few
//! dozen packs it uploads and one at its end, always after the packs it lists are stored, so an
//! index never points at a pack that was not written. Loading the index reads every index object.
//!
//! The index grows with the number of blobs (a million-file share has about a million), so it is
//! held as a sorted table of 48-byte slots that moves from memory to an unnamed scratch file past
//! [`spill::IN_MEMORY`] blobs (see [`spill`]), and a small map of the blobs added since (merged
//! into the table as it grows). Index objects are read a few at a time and dropped once their
//! blobs are in the table.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::format::pack::{BlobKind, PackEntry};
use crate::id::Id;
use crate::store::damage;
use crate::store::repo::{DATA, INDEX, Repository};
use crate::store::spill::{self, Builder, Record, Table};

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

/// One blob in the table: its id and location, with the zstd flag in the top bit of the
/// pack position (an index never has 2^31 packs).
#[derive(Clone, Copy)]
struct Slot {
    id: Id,
    pack: u32,
    offset: u32,
    length: u32,
    raw_length: u32,
}

const ZSTD_BIT: u32 = 1 << 31;

impl Record for Slot {
    const SIZE: usize = 48;

    fn id(&self) -> &Id {
        &self.id
    }

    fn encode(&self, out: &mut [u8]) {
        out[..32].copy_from_slice(&self.id.0);
        for (i, v) in [self.pack, self.offset, self.length, self.raw_length]
            .into_iter()
            .enumerate()
        {
            out[32 + 4 * i..36 + 4 * i].copy_from_slice(&v.to_le_bytes());
        }
    }

    fn decode(bytes: &[u8]) -> Self {
        let word = |i: usize| {
            u32::from_le_bytes(bytes[32 + 4 * i..36 + 4 * i].try_into().expect("4 bytes"))
        };
        Slot {
            id: Id::decode(&bytes[..32]),
            pack: word(0),
            offset: word(1),
            length: word(2),
            raw_length: word(3),
        }
    }
}

impl Slot {
    fn new(id: Id, loc: BlobLocation) -> Slot {
        Slot {
            id,
            pack: loc.pack | if loc.zstd { ZSTD_BIT } else { 0 },
            offset: loc.offset,
            length: loc.length,
            raw_length: loc.raw_length,
        }
    }

    fn location(&self) -> BlobLocation {
        BlobLocation {
            pack: self.pack & !ZSTD_BIT,
            offset: self.offset,
            length: self.length,
            raw_length: self.raw_length,
            zstd: self.pack & ZSTD_BIT != 0,
        }
    }
}

/// Blobs added since the last merge are merged into the table once there are this many, or a
/// quarter of the table, whichever is more.
const MERGE_AT: usize = 1 << 16;

/// The whole index in memory.
#[derive(Default)]
pub struct Index {
    pub packs: Vec<PackInfo>,
    pack_pos: HashMap<Id, u32>,
    /// Each blob once, sorted by id: the location first tried.
    table: Table<Slot>,
    /// Blobs added since the last merge, none of them in `table`.
    added: HashMap<Id, BlobLocation>,
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
        let mut index = Index::default();
        let mut objects = Vec::new();
        // Of a blob's locations the one tried first is in a pack that is there and unmarked,
        // then marked, then missing or the wrong size (rank 0, 1, 2 or 3).
        let mut table = Builder::new(spill::limit());
        let mut scratch_error = None;
        let damaged = repo
            .each_sealed::<IndexFile>("index", INDEX, |key, file| {
                objects.push(key);
                for p in file.packs {
                    let pos = index.pack_position(p.id, p.kind, p.size);
                    let gone = present.get(&p.id) != Some(&p.size);
                    let rank = (gone as u8) << 1 | marked.contains(&p.id) as u8;
                    for b in &p.blobs {
                        if scratch_error.is_none()
                            && let Err(e) = table.push(Slot::new(b.id, location(pos, b)), rank)
                        {
                            scratch_error = Some(e);
                        }
                    }
                }
            })
            .await?;
        objects.extend(damaged.iter().map(|(k, _)| k.clone()));
        objects.sort();
        let others = &mut index.others;
        let built = match scratch_error {
            Some(e) => Err(e),
            None => table.finish(|first, later| {
                let loc = later.location();
                if loc.pack != first.location().pack {
                    let list = others.entry(later.id).or_default();
                    if !list.iter().any(|o| o.pack == loc.pack) {
                        list.push(loc);
                    }
                }
            }),
        };
        index.table = built.map_err(|e| {
            Error::local(
                std::env::temp_dir(),
                "cannot write the index's scratch file (TMPDIR must name a writable directory with free space)",
                e,
            )
        })?;
        Ok(LoadedIndex {
            index,
            damaged,
            objects,
            present,
            marked,
        })
    }

    /// Moves the blobs added since the last merge into the table. If its scratch file cannot be
    /// written they stay where they are (found all the same) and the table notes the error.
    fn merge(&mut self) {
        let added: Vec<Slot> = self
            .added
            .iter()
            .map(|(id, loc)| Slot::new(*id, *loc))
            .collect();
        if self.table.merge(added) {
            self.added.clear();
            self.added.shrink_to_fit();
        }
    }

    fn merge_if_due(&mut self) {
        if self.added.len() >= MERGE_AT.max(self.table.len() / 4) {
            self.merge();
        }
    }

    fn pack_position(&mut self, id: Id, kind: BlobKind, size: u64) -> u32 {
        match self.pack_pos.get(&id) {
            Some(&p) => p,
            None => {
                let p = self.packs.len() as u32;
                self.packs.push(PackInfo { id, kind, size });
                self.pack_pos.insert(id, p);
                p
            }
        }
    }

    /// Records a pack and its blobs. A blob already known keeps its first location.
    pub fn add_pack(&mut self, id: Id, kind: BlobKind, size: u64, blobs: &[PackEntry]) {
        let pos = self.pack_position(id, kind, size);
        for b in blobs {
            let loc = location(pos, b);
            match self.location(&b.id) {
                None => {
                    self.added.insert(b.id, loc);
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
        self.merge_if_due();
    }

    fn location(&self, id: &Id) -> Option<BlobLocation> {
        match self.table.find(id) {
            Some(slot) => Some(slot.location()),
            None => self.added.get(id).copied(),
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
        self.location(id)
            .map(|loc| (&self.packs[loc.pack as usize], loc))
    }

    pub fn contains(&self, id: &Id) -> bool {
        self.location(id).is_some()
    }

    /// The first error met reading the index's scratch file (see [`spill`]): lookups since may
    /// have answered "not stored" and [`Index::blobs`] may have ended early.
    pub fn trouble(&self) -> Option<String> {
        self.table.trouble()
    }

    /// An error if the index's scratch file failed (see [`Index::trouble`]): what read the whole
    /// index must not report on it.
    pub fn healthy(&self) -> Result<()> {
        match self.trouble() {
            None => Ok(()),
            Some(e) => Err(Error::local(
                std::env::temp_dir(),
                "the index's scratch file failed, so not every blob was seen (check the free space and health of this disk, or set TMPDIR to another, and run it again)",
                std::io::Error::other(e),
            )),
        }
    }

    pub fn blob_count(&self) -> usize {
        self.table.len() + self.added.len()
    }

    /// Every blob with its location, for checks.
    pub fn blobs(&self) -> impl Iterator<Item = (Id, BlobLocation)> + '_ {
        self.table
            .iter()
            .map(|s| (s.id, s.location()))
            .chain(self.added.iter().map(|(id, loc)| (*id, *loc)))
    }

    /// Adds what `other` knows and this index does not (the index of another copy of the same
    /// repository). A blob already known keeps its location here.
    pub fn absorb(&mut self, other: &Index) {
        for (id, loc) in other.blobs() {
            if self.contains(&id) {
                continue;
            }
            let info = &other.packs[loc.pack as usize];
            let pos = self.pack_position(info.id, info.kind, info.size);
            self.added.insert(id, BlobLocation { pack: pos, ..loc });
        }
        self.merge_if_due();
    }

    pub fn pack(&self, id: &Id) -> Option<&PackInfo> {
        self.pack_pos.get(id).map(|&p| &self.packs[p as usize])
    }
}

fn location(pack: u32, b: &PackEntry) -> BlobLocation {
    BlobLocation {
        pack,
        offset: b.offset,
        length: b.length,
        raw_length: b.raw_length,
        zstd: b.zstd,
    }
}

/// Blobs an index object lists at most (unless one pack holds more): about 7 MB of JSON, so
/// that writing or reading one holds little memory even when packs hold thousands of small
/// files' blobs.
pub const OBJECT_BLOBS: usize = 50_000;

/// Packs an index object lists at most.
pub const OBJECT_PACKS: usize = 256;

/// Writes index objects listing `packs`, as many as it takes to keep each within
/// [`OBJECT_BLOBS`] and [`OBJECT_PACKS`]; their ids, in order.
pub async fn save(repo: &Repository, packs: Vec<IndexPack>) -> Result<Vec<Id>> {
    let mut written = Vec::new();
    let mut group: Vec<IndexPack> = Vec::new();
    let mut blobs = 0;
    for p in packs {
        if !group.is_empty()
            && (blobs + p.blobs.len() > OBJECT_BLOBS || group.len() >= OBJECT_PACKS)
        {
            let packs = std::mem::take(&mut group);
            written.push(repo.save_sealed(INDEX, &IndexFile { packs }).await?);
            blobs = 0;
        }
        blobs += p.blobs.len();
        group.push(p);
    }
    if !group.is_empty() {
        written.push(repo.save_sealed(INDEX, &IndexFile { packs: group }).await?);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u64, offset: u32) -> PackEntry {
        PackEntry {
            id: Id::of_object(&n.to_le_bytes()),
            offset,
            length: 10 + (n % 7) as u32,
            raw_length: 20 + (n % 5) as u32,
            zstd: n.is_multiple_of(2),
        }
    }

    fn pack_id(n: u8) -> Id {
        Id::of_object(&[n, 0xaa])
    }

    #[test]
    fn finds_every_blob_across_merges_and_keeps_the_first_location() {
        // In memory, and in a scratch file from the first merge on.
        for limit in [spill::IN_MEMORY, 1000] {
            let index = Index {
                table: Table::with_limit(limit),
                ..Index::default()
            };
            assert_eq!(finds_every_blob(index), limit == 1000, "in a file");
        }
    }

    /// Whether the table ended in a scratch file.
    fn finds_every_blob(mut index: Index) -> bool {
        let n = (MERGE_AT as u64) * 3 + 17;
        let per_pack = 5_000u64;
        let mut packs = 0u8;
        let mut start = 0;
        while start < n {
            let blobs: Vec<PackEntry> = (start..n.min(start + per_pack))
                .map(|i| entry(i, (i - start) as u32))
                .collect();
            index.add_pack(pack_id(packs), BlobKind::Data, 1, &blobs);
            packs += 1;
            start += per_pack;
        }
        assert!(
            index.table.len() > index.added.len(),
            "merged into the array"
        );
        assert_eq!(index.blob_count() as u64, n);
        for i in (0..n).step_by(97) {
            let e = entry(i, 0);
            let (pack, loc) = index.get(&e.id).expect("blob found");
            assert_eq!(pack.id, pack_id((i / per_pack) as u8));
            assert_eq!(loc.offset as u64, i % per_pack);
            assert_eq!(
                (loc.length, loc.raw_length, loc.zstd),
                (e.length, e.raw_length, e.zstd)
            );
        }
        assert!(!index.contains(&Id::of_object(b"not stored")));
        // The same blob stored again in another pack: the first location stays, the second is
        // one of the others, once.
        let again = entry(3, 999);
        index.add_pack(
            pack_id(200),
            BlobKind::Data,
            1,
            &[again.clone(), again.clone()],
        );
        let (pack, _) = index.get(&again.id).unwrap();
        assert_eq!(pack.id, pack_id(0));
        let others: Vec<_> = index.others(&again.id).collect();
        assert_eq!(others.len(), 1);
        assert_eq!((others[0].0.id, others[0].1.offset), (pack_id(200), 999));
        assert_eq!(index.blobs().count() as u64, n);
        index.table.spilled()
    }

    /// Index objects stay within 50,000 blobs, a pack is never split, and the index read back
    /// holds every blob.
    #[tokio::test]
    async fn index_objects_are_split_by_blobs() {
        use crate::format::crypto::{self, Recipient};
        use crate::store::repo::InitOptions;
        use crate::store::target::{Location, Target, TargetOptions};
        let dir = tempfile::tempdir().expect("tempdir");
        let url = dir.path().join("repo").display().to_string();
        let location = Location::parse(&url).expect("location");
        let target =
            Target::open("store", &location, &TargetOptions::default(), true).expect("target");
        let (_, public) = crypto::generate_identity_file();
        let who = Recipient::parse_x25519(&public).expect("recipient");
        let repo = Repository::init(target, &[(who, "test".into())], &InitOptions::default())
            .await
            .expect("init");
        // Six packs of 20,000 blobs, then one of 70,000: 2 + 2 + 2, then 1 on its own.
        let sizes = [20_000u64, 20_000, 20_000, 20_000, 20_000, 20_000, 70_000];
        let mut next = 0u64;
        let packs: Vec<IndexPack> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| IndexPack {
                id: pack_id(i as u8),
                kind: BlobKind::Data,
                size: 1,
                blobs: (0..n)
                    .map(|k| {
                        next += 1;
                        entry(next, k as u32)
                    })
                    .collect(),
            })
            .collect();
        let written = save(&repo, packs).await.expect("save");
        assert_eq!(written.len(), 4);
        let loaded = Index::load(&repo).await.expect("load");
        assert_eq!(loaded.objects.len(), 4);
        assert_eq!(loaded.index.blob_count() as u64, next);
    }

    #[test]
    fn absorb_adds_only_what_is_missing() {
        let mut a = Index::default();
        a.add_pack(pack_id(1), BlobKind::Data, 1, &[entry(1, 0), entry(2, 10)]);
        let mut b = Index::default();
        b.add_pack(pack_id(2), BlobKind::Data, 1, &[entry(2, 50), entry(3, 60)]);
        a.absorb(&b);
        assert_eq!(a.blob_count(), 3);
        assert_eq!(a.get(&entry(2, 0).id).unwrap().0.id, pack_id(1));
        let (pack, loc) = a.get(&entry(3, 0).id).unwrap();
        assert_eq!((pack.id, loc.offset), (pack_id(2), 60));
    }
}
