//! Reading blobs back: fetch a pack, check it against its name, decrypt it, cut out a blob,
//! decompress it and check its keyed id. Every read path (ls, restore, check) goes through here,
//! so nothing reaches a user without being verified.
//!
//! A reader may be given several copies of one repository ([`Copies`]: the targets of a
//! schedule, the onsite NAS first). Packs are byte-identical on every target, so each pack is
//! read from the first copy that holds it intact, and a pack missing or damaged there is read
//! from the next. The choice is made per pack, on its name and its decryption: a pack whose
//! bytes hash to its name is the same on every copy, so a blob that then fails its id check
//! would fail it on every copy, and there is nothing to fall back to.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::format::buffers::{self, Buffer};
use crate::format::chunker::MAX_CHUNK_BYTES;
use crate::format::compress;
use crate::format::crypto::{OpenError, RepoKey};
use crate::format::pack;
use crate::format::tree::{MAX_TREE_BYTES, Tree};
use crate::id::Id;
use crate::store::index::{BlobLocation, Index};
use crate::store::repo::{Repository, pack_key};
use crate::store::snapshot::Catalog;

/// A pack cache that holds `packs` whole packs of `repo`'s size, for a walk of a snapshot's
/// trees. A backup's pack workers each fill a tree pack at once, so the trees of folders walked
/// one after the other are spread over as many packs; a cache with room for fewer reads a whole
/// pack again for nearly every folder (measured at a million files: 5,800 reads of 17 MB packs
/// for 10,000 folders, with room for fewer than two).
pub fn tree_cache(repo: &Repository, packs: usize) -> usize {
    (repo.config().pack_size as usize + (1 << 20)) * packs
}

/// Checks a downloaded pack against its name and decrypts it, into a reused buffer.
pub fn open_pack(key: &RepoKey, target: &str, id: &Id, bytes: &[u8]) -> Result<Buffer> {
    open_pack_from(key, target, id, &mut &bytes[..], bytes.len() as u64)
}

/// Checks a pack read from `source` (`size` bytes long) against its name and decrypts it, into
/// a reused buffer, as it is read: the pack is never held whole beside its plaintext. It is checked against its name over every
/// byte `source` gives, after decryption; a pack that is both renamed and damaged is named for
/// its name. An error reading `source` is the target's.
pub fn open_pack_from(
    key: &RepoKey,
    target: &str,
    id: &Id,
    source: &mut dyn std::io::Read,
    size: u64,
) -> Result<Buffer> {
    let corrupt = |detail: String| Error::Corrupt {
        what: "pack",
        id: pack_key(id),
        target: target.to_string(),
        detail,
    };
    let mut hashing = Hashing {
        source,
        hasher: blake3::Hasher::new(),
        read: 0,
        failed: None,
    };
    let mut plain = Buffer::with_capacity(size as usize);
    let opened = key.open_from(
        std::io::BufReader::with_capacity(64 << 10, &mut hashing),
        &mut plain,
    );
    // Whatever decryption left unread still counts toward the name.
    let _ = std::io::copy(&mut hashing, &mut std::io::sink());
    if let Some(e) = hashing.failed {
        return Err(Error::Target {
            target: target.to_string(),
            op: "read",
            path: pack_key(id),
            detail: e.to_string(),
            transient: false,
        });
    }
    if Id(*hashing.hasher.finalize().as_bytes()) != *id {
        return Err(corrupt(format!(
            "its content ({} bytes) does not match its name",
            hashing.read
        )));
    }
    opened.map_err(|e| match e {
        OpenError::WrongKey => corrupt("it is not sealed to this repository's key".into()),
        OpenError::Damaged(why) => corrupt(why),
        e @ OpenError::TooCostly(_) => corrupt(e.to_string()),
    })?;
    Ok(plain)
}

/// A reader that hashes what it reads, and keeps the first error of its source (decryption
/// would report it as damage).
struct Hashing<'r> {
    source: &'r mut dyn std::io::Read,
    hasher: blake3::Hasher,
    read: u64,
    failed: Option<std::io::Error>,
}

impl std::io::Read for Hashing<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.failed.is_some() {
            return Err(std::io::Error::other("the pack could not be read"));
        }
        match self.source.read(buf) {
            Ok(n) => {
                self.hasher.update(&buf[..n]);
                self.read += n as u64;
                Ok(n)
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                self.failed = Some(e);
                Err(std::io::Error::other("the pack could not be read"))
            }
        }
    }
}

/// The largest blob of either kind: a tree ([`MAX_TREE_BYTES`]) is larger than a chunk of data
/// ([`MAX_CHUNK_BYTES`]). Used where a blob is read without knowing which kind it is.
pub const MAX_BLOB_BYTES: usize = if MAX_TREE_BYTES > MAX_CHUNK_BYTES {
    MAX_TREE_BYTES
} else {
    MAX_CHUNK_BYTES
};

/// Cuts one blob out of a decrypted pack, decompresses it and checks its id; a blob of either
/// kind, at most [`MAX_BLOB_BYTES`].
pub fn extract_blob(
    key: &RepoKey,
    plaintext: &[u8],
    id: &Id,
    loc: &BlobLocation,
) -> Result<Vec<u8>, String> {
    extract_blob_within(key, plaintext, id, loc, MAX_BLOB_BYTES)
}

/// [`extract_blob`] for a blob of a known kind, at most `limit` bytes ([`MAX_CHUNK_BYTES`] for
/// file content, [`MAX_TREE_BYTES`] for a tree). The limit is checked against the index's
/// `raw_length` before anything is decompressed, and decompression stops at `raw_length`.
pub fn extract_blob_within(
    key: &RepoKey,
    plaintext: &[u8],
    id: &Id,
    loc: &BlobLocation,
    limit: usize,
) -> Result<Vec<u8>, String> {
    with_blob(key, plaintext, id, loc, limit, <[u8]>::to_vec)
}

/// [`extract_blob_within`] without keeping the blob: `use_it` is given its checked plaintext,
/// decompressed into a buffer from [`buffers::BLOBS`] (a fresh one for each blob of a check or
/// a restore would fault in its pages every time).
pub fn with_blob<T>(
    key: &RepoKey,
    plaintext: &[u8],
    id: &Id,
    loc: &BlobLocation,
    limit: usize,
    use_it: impl FnOnce(&[u8]) -> T,
) -> Result<T, String> {
    let stored = pack::blob_bytes(plaintext, loc.offset, loc.length)
        .ok_or_else(|| "it lies outside its pack".to_string())?;
    if loc.raw_length as usize > limit || stored.len() > limit {
        return Err(compress::too_large(limit as u64));
    }
    let checked = |data: &[u8]| {
        if key.blob_id(data) != *id {
            return Err("its content does not match its id".to_string());
        }
        Ok(())
    };
    if !loc.zstd {
        checked(stored)?;
        return Ok(use_it(stored));
    }
    let mut plain = buffers::BLOBS.take(loc.raw_length as usize);
    compress::decompress_into(stored, loc.raw_length as usize, &mut plain)
        .map_err(|e| format!("zstd: {e}"))?;
    checked(&plain)?;
    Ok(use_it(&plain))
}

/// Reads blobs, keeping recently used decrypted packs in memory up to a byte limit.
pub struct BlobReader<'a> {
    copies: Copies<'a>,
    index: &'a Index,
    cache: Mutex<PackCache>,
}

struct PackCache {
    packs: HashMap<Id, Arc<Buffer>>,
    order: VecDeque<Id>,
    bytes: usize,
    limit: usize,
}

impl<'a> BlobReader<'a> {
    pub fn new(repo: &'a Repository, index: &'a Index, cache_limit: usize) -> BlobReader<'a> {
        Self::with_copies(Copies::one(repo), index, cache_limit)
    }

    /// A reader that takes each pack from the first of `copies` that holds it intact.
    pub fn with_copies(copies: Copies<'a>, index: &'a Index, cache_limit: usize) -> BlobReader<'a> {
        BlobReader {
            copies,
            index,
            cache: Mutex::new(PackCache {
                packs: HashMap::new(),
                order: VecDeque::new(),
                bytes: 0,
                limit: cache_limit,
            }),
        }
    }

    pub fn index(&self) -> &Index {
        self.index
    }

    /// The copies this reader reads from.
    pub fn copies(&self) -> &Copies<'a> {
        &self.copies
    }

    /// A pack's decrypted plaintext.
    pub async fn pack(&self, id: &Id) -> Result<Arc<Buffer>> {
        if let Some(p) = self.cache.lock().expect("cache lock").packs.get(id) {
            return Ok(Arc::clone(p));
        }
        let plain = self.copies.read_pack(id).await?;
        let plain = Arc::new(plain);
        let mut cache = self.cache.lock().expect("cache lock");
        if plain.len() <= cache.limit && !cache.packs.contains_key(id) {
            while cache.bytes + plain.len() > cache.limit {
                let Some(old) = cache.order.pop_front() else {
                    break;
                };
                if let Some(p) = cache.packs.remove(&old) {
                    cache.bytes -= p.len();
                }
            }
            cache.bytes += plain.len();
            cache.order.push_back(*id);
            cache.packs.insert(*id, Arc::clone(&plain));
        }
        Ok(plain)
    }

    /// One data blob's plaintext (a chunk of a file, at most [`MAX_CHUNK_BYTES`]), verified.
    pub async fn blob(&self, id: &Id) -> Result<Vec<u8>> {
        self.blob_within(id, MAX_CHUNK_BYTES).await
    }

    /// One blob's plaintext, verified, refused unread when its index entry says it is larger
    /// than `limit`. When the blob is stored in several packs (stored again after damage), the
    /// others are tried in turn if the first cannot be read; the error is the first's.
    async fn blob_within(&self, id: &Id, limit: usize) -> Result<Vec<u8>> {
        let (pack, loc) = self.index.get(id).ok_or_else(|| Error::Corrupt {
            what: "blob",
            id: id.to_hex(),
            target: self.copies.first().target().name().to_string(),
            detail: "no index object lists it".into(),
        })?;
        let first = self.blob_at(id, pack.id, &loc, limit).await;
        let Err(e) = first else {
            return first;
        };
        if matches!(e, Error::Target { .. }) {
            return Err(e);
        }
        for (other, loc) in self.index.others(id) {
            if let Ok(plain) = self.blob_at(id, other.id, &loc, limit).await {
                return Ok(plain);
            }
        }
        Err(e)
    }

    async fn blob_at(
        &self,
        id: &Id,
        pack_id: Id,
        loc: &BlobLocation,
        limit: usize,
    ) -> Result<Vec<u8>> {
        let plain = self.pack(&pack_id).await?;
        let key = self.copies.first().key();
        extract_blob_within(key, &plain, id, loc, limit).map_err(|detail| Error::Corrupt {
            what: "blob",
            id: format!("{} in {}", id.to_hex(), pack_key(&pack_id)),
            target: self.copies.first().target().name().to_string(),
            detail,
        })
    }

    /// A tree, verified and checked for unsafe names.
    pub async fn tree(&self, id: &Id) -> Result<Tree> {
        let bytes = self.blob_within(id, MAX_TREE_BYTES).await?;
        Tree::decode(&bytes).map_err(|detail| Error::Corrupt {
            what: "tree",
            id: id.to_hex(),
            target: self.copies.first().target().name().to_string(),
            detail,
        })
    }
}

/// The copies of one repository a reader may read packs from, in order of preference, with a
/// tally of which copy served each pack. Clones share the tally.
#[derive(Clone)]
pub struct Copies<'a> {
    repos: Vec<&'a Repository>,
    tally: Arc<Mutex<CopiesUsed>>,
}

/// Which copies a read used.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopiesUsed {
    /// Each copy (target name) in order of preference, with the packs read from it.
    pub packs: Vec<CopyCount>,
    /// Packs that could not be read from a copy tried before the one that served them (or
    /// from any copy).
    pub fallbacks: Vec<Fallback>,
}

/// The packs read from one copy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyCount {
    pub target: String,
    pub packs: u64,
}

/// A pack one copy could not give.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fallback {
    /// The pack's key (`data/ab/ab12…`).
    pub pack: String,
    pub target: String,
    /// `missing`, or what was wrong with it.
    pub problem: String,
}

impl CopiesUsed {
    /// One sentence: "read 812 packs from nas, 3 from offsite (missing or damaged on nas:
    /// data/ab/ab12…)".
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        for (i, c) in self.packs.iter().enumerate() {
            let unit = if c.packs == 1 { "pack" } else { "packs" };
            parts.push(match i {
                0 => format!("read {} {unit} from {}", c.packs, c.target),
                _ => format!("{} from {}", c.packs, c.target),
            });
        }
        let mut text = parts.join(", ");
        let mut by_target: Vec<(&str, Vec<&str>)> = Vec::new();
        for f in &self.fallbacks {
            match by_target.iter_mut().find(|(t, _)| *t == f.target) {
                Some((_, packs)) => packs.push(&f.pack),
                None => by_target.push((&f.target, vec![&f.pack])),
            }
        }
        if !by_target.is_empty() {
            let notes: Vec<String> = by_target
                .iter()
                .map(|(t, packs)| format!("missing or damaged on {t}: {}", packs.join(", ")))
                .collect();
            text.push_str(&format!(" ({})", notes.join("; ")));
        }
        text
    }
}

impl<'a> Copies<'a> {
    /// One repository, on its own.
    pub fn one(repo: &'a Repository) -> Copies<'a> {
        Copies::new(vec![repo]).expect("one copy")
    }

    /// Several copies of one repository, the preferred first. They must share one key (the same
    /// repository replicated); `None` when empty.
    pub fn new(repos: Vec<&'a Repository>) -> Option<Copies<'a>> {
        let first = repos.first()?;
        let tally = CopiesUsed {
            packs: repos
                .iter()
                .map(|r| CopyCount {
                    target: r.target().name().to_string(),
                    packs: 0,
                })
                .collect(),
            fallbacks: Vec::new(),
        };
        debug_assert!(repos.iter().all(|r| r.config().id == first.config().id));
        Some(Copies {
            repos,
            tally: Arc::new(Mutex::new(tally)),
        })
    }

    /// The preferred copy.
    pub fn first(&self) -> &'a Repository {
        self.repos[0]
    }

    pub fn repos(&self) -> &[&'a Repository] {
        &self.repos
    }

    /// Which copies have served packs so far.
    pub fn used(&self) -> CopiesUsed {
        self.tally.lock().expect("tally lock").clone()
    }

    /// A pack's decrypted plaintext, from the first copy that holds it intact (its bytes match
    /// its name and decrypt). When no copy does, the error names what was wrong on each; it is
    /// a target error only when every copy failed to answer.
    pub async fn read_pack(&self, id: &Id) -> Result<Buffer> {
        let key_name = pack_key(id);
        let mut problems: Vec<(usize, Error)> = Vec::new();
        for (i, repo) in self.repos.iter().enumerate() {
            let target = repo.target();
            let key = repo.shared_key();
            let name = target.name().to_string();
            let pid = *id;
            let opened = target.read_with(&key_name, move |source, size| {
                open_pack_from(&key, &name, &pid, source, size)
            });
            let got = match opened.await {
                Ok(Some(plain)) => plain,
                Ok(None) => Err(Error::Corrupt {
                    what: "pack",
                    id: key_name.clone(),
                    target: target.name().to_string(),
                    detail: "it is missing".into(),
                }),
                Err(e) => Err(e),
            };
            match got {
                Ok(plain) => {
                    let mut tally = self.tally.lock().expect("tally lock");
                    tally.packs[i].packs += 1;
                    for (j, e) in &problems {
                        tally.fallbacks.push(Fallback {
                            pack: key_name.clone(),
                            target: self.repos[*j].target().name().to_string(),
                            problem: problem_text(e),
                        });
                    }
                    return Ok(plain);
                }
                Err(e) => problems.push((i, e)),
            }
        }
        {
            let mut tally = self.tally.lock().expect("tally lock");
            for (j, e) in &problems {
                tally.fallbacks.push(Fallback {
                    pack: key_name.clone(),
                    target: self.repos[*j].target().name().to_string(),
                    problem: problem_text(e),
                });
            }
        }
        if problems.len() == 1
            || problems
                .iter()
                .all(|(_, e)| matches!(e, Error::Target { .. }))
        {
            return Err(problems.pop().expect("at least one copy").1);
        }
        Err(Error::Corrupt {
            what: "pack",
            id: key_name,
            target: self
                .repos
                .iter()
                .map(|r| r.target().name())
                .collect::<Vec<_>>()
                .join("\", \""),
            detail: format!(
                "no copy holds it intact ({})",
                problems
                    .iter()
                    .map(|(j, e)| format!(
                        "{}: {}",
                        self.repos[*j].target().name(),
                        problem_text(e)
                    ))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        })
    }
}

/// What was wrong with one copy of a pack, in a few words.
fn problem_text(e: &Error) -> String {
    match e {
        Error::Corrupt { detail, .. } if detail == "it is missing" => "missing".into(),
        Error::Corrupt { detail, .. } => detail.clone(),
        other => other.to_string(),
    }
}

/// Every snapshot any of `repos` (copies of one repository) holds, oldest first, and the index
/// of every copy merged, so that a reader over [`Copies`] finds each blob wherever a pack of it
/// is. A snapshot held by several copies is listed once; `repos` must not be empty.
pub async fn load_all(repos: &[Repository]) -> Result<(Catalog, Index)> {
    let catalog = Catalog::load_all(repos).await?;
    let mut index: Option<Index> = None;
    for repo in repos {
        let i = Index::load(repo).await?.index;
        match &mut index {
            Some(idx) => idx.absorb(&i),
            None => index = Some(i),
        }
    }
    Ok((catalog, index.expect("at least one copy")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source that gives `good` bytes, then fails as a disk would.
    struct Failing<'a>(&'a [u8]);

    impl std::io::Read for Failing<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0.is_empty() {
                return Err(std::io::Error::from_raw_os_error(nix::libc::EIO));
            }
            let n = buf.len().min(self.0.len()).min(1000);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn a_pack_read_as_it_is_decrypted_is_checked_against_its_name_and_its_source() {
        let key = RepoKey::generate();
        let plain: Vec<u8> = (0..300_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let sealed = key.seal(&plain);
        let id = Id::of_object(&sealed);
        let open =
            |bytes: &[u8]| open_pack_from(&key, "nas", &id, &mut &bytes[..], bytes.len() as u64);
        assert_eq!(open(&sealed).unwrap().as_slice(), plain.as_slice());
        assert_eq!(
            open_pack(&key, "nas", &id, &sealed).unwrap().as_slice(),
            plain.as_slice()
        );
        // Damaged, or with bytes added after its end: named for its name, as a whole read is.
        let mut flipped = sealed.clone();
        flipped[sealed.len() / 2] ^= 1;
        let mut longer = sealed.clone();
        longer.extend_from_slice(b"more");
        for bad in [flipped, longer, sealed[..sealed.len() - 1].to_vec()] {
            let e = open(&bad).unwrap_err().to_string();
            assert!(e.contains("does not match its name"), "{e}");
            assert!(e.contains(&format!("({} bytes)", bad.len())), "{e}");
        }
        // Renamed but intact: the name is what is wrong.
        let other = Id::of_object(b"another pack");
        let e = open_pack_from(&key, "nas", &other, &mut &sealed[..], 0).unwrap_err();
        assert!(e.to_string().contains("does not match its name"), "{e}");
        // A source that fails part-way is the target failing, not damage.
        let mut failing = Failing(&sealed[..sealed.len() / 2]);
        let e = open_pack_from(&key, "nas", &id, &mut failing, sealed.len() as u64).unwrap_err();
        assert!(matches!(e, Error::Target { op: "read", .. }), "{e}");
        assert!(e.to_string().contains("Input/output error"), "{e}");
    }
}
