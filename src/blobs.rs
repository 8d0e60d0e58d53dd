//! Reading blobs back: fetch a pack, check it against its name, decrypt it, cut out a blob,
//! decompress it and check its keyed id. Every read path (ls, restore, check) goes through here,
//! so nothing reaches a user without being verified.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use crate::compress;
use crate::crypto::{OpenError, RepoKey};
use crate::error::{Error, Result};
use crate::id::Id;
use crate::index::{BlobLocation, Index};
use crate::pack;
use crate::repo::{Repository, pack_key};
use crate::tree::Tree;

/// Checks a downloaded pack against its name and decrypts it.
pub fn open_pack(key: &RepoKey, target: &str, id: &Id, bytes: &[u8]) -> Result<Vec<u8>> {
    let corrupt = |detail: String| Error::Corrupt {
        what: "pack",
        id: pack_key(id),
        target: target.to_string(),
        detail,
    };
    if Id::of_object(bytes) != *id {
        return Err(corrupt(format!(
            "its content ({} bytes) does not match its name",
            bytes.len()
        )));
    }
    key.open(bytes).map_err(|e| match e {
        OpenError::WrongKey => corrupt("it is not sealed to this repository's key".into()),
        OpenError::Damaged(why) => corrupt(why),
    })
}

/// Cuts one blob out of a decrypted pack, decompresses it and checks its id.
pub fn extract_blob(
    key: &RepoKey,
    plaintext: &[u8],
    id: &Id,
    loc: &BlobLocation,
) -> Result<Vec<u8>, String> {
    let stored = pack::blob_bytes(plaintext, loc.offset, loc.length)
        .ok_or_else(|| "it lies outside its pack".to_string())?;
    let data = if loc.zstd {
        compress::decompress(stored, loc.raw_length as usize).map_err(|e| format!("zstd: {e}"))?
    } else {
        stored.to_vec()
    };
    if key.blob_id(&data) != *id {
        return Err("its content does not match its id".into());
    }
    Ok(data)
}

/// Reads blobs, keeping recently used decrypted packs in memory up to a byte limit.
pub struct BlobReader<'a> {
    repo: &'a Repository,
    index: &'a Index,
    cache: Mutex<PackCache>,
}

struct PackCache {
    packs: HashMap<Id, Arc<Vec<u8>>>,
    order: VecDeque<Id>,
    bytes: usize,
    limit: usize,
}

impl<'a> BlobReader<'a> {
    pub fn new(repo: &'a Repository, index: &'a Index, cache_limit: usize) -> BlobReader<'a> {
        BlobReader {
            repo,
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

    /// A pack's decrypted plaintext.
    pub async fn pack(&self, id: &Id) -> Result<Arc<Vec<u8>>> {
        if let Some(p) = self.cache.lock().expect("cache lock").packs.get(id) {
            return Ok(Arc::clone(p));
        }
        let target = self.repo.target();
        let bytes = target
            .get_opt(&pack_key(id))
            .await?
            .ok_or_else(|| Error::Corrupt {
                what: "pack",
                id: pack_key(id),
                target: target.name().to_string(),
                detail: "it is missing".into(),
            })?;
        let key = self.repo.shared_key();
        let name = target.name().to_string();
        let pid = *id;
        let plain = tokio::task::spawn_blocking(move || open_pack(&key, &name, &pid, &bytes))
            .await
            .expect("pack decryption does not panic")?;
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

    /// One blob's plaintext, verified.
    pub async fn blob(&self, id: &Id) -> Result<Vec<u8>> {
        let (pack, loc) = self.index.get(id).ok_or_else(|| Error::Corrupt {
            what: "blob",
            id: id.to_hex(),
            target: self.repo.target().name().to_string(),
            detail: "no index object lists it".into(),
        })?;
        let pack_id = pack.id;
        let plain = self.pack(&pack_id).await?;
        extract_blob(self.repo.key(), &plain, id, &loc).map_err(|detail| Error::Corrupt {
            what: "blob",
            id: format!("{} in {}", id.to_hex(), pack_key(&pack_id)),
            target: self.repo.target().name().to_string(),
            detail,
        })
    }

    /// A tree, verified and checked for unsafe names.
    pub async fn tree(&self, id: &Id) -> Result<Tree> {
        let bytes = self.blob(id).await?;
        Tree::decode(&bytes).map_err(|detail| Error::Corrupt {
            what: "tree",
            id: id.to_hex(),
            target: self.repo.target().name().to_string(),
            detail,
        })
    }
}
