//! Damage marks: packs found damaged on one copy, so that nothing new is built on them.
//!
//! A pack whose bytes are wrong at the right size (a flipped bit, bit rot, an overwrite) looks
//! present to a listing. When a check, a verification or a backup reading the parent's trees
//! finds such a pack, it leaves an empty object `damaged/ID` on that copy, named by the pack.
//! From then on the index treats the pack as absent: a backup stores its data again instead of
//! referencing it, and reads prefer another pack holding the same blob. A mark stays until what
//! removes the damage removes the mark: `repair` (or a run's copy) replacing the pack with an
//! intact one, a check that reads the pack back intact, or a prune deleting it. Marks are never
//! copied between copies: each copy's damage is its own.

use std::collections::HashSet;

use bytes::Bytes;

use crate::error::Result;
use crate::id::Id;
use crate::store::repo::DAMAGED;
use crate::store::target::Target;

/// The key of the mark for `pack`.
pub fn mark_key(pack: &Id) -> String {
    format!("{DAMAGED}/{}", pack.to_hex())
}

/// Marks `pack` damaged on `target`.
pub async fn mark(target: &Target, pack: &Id) -> Result<()> {
    target.put_replace(&mark_key(pack), Bytes::new()).await
}

/// Removes the mark of `pack`, if there is one.
pub async fn unmark(target: &Target, pack: &Id) -> Result<()> {
    if target.exists(&mark_key(pack)).await? {
        target.delete(&mark_key(pack)).await?;
    }
    Ok(())
}

/// The packs marked damaged on `target`. Names that are not pack ids are ignored.
pub async fn marked(target: &Target) -> Result<HashSet<Id>> {
    Ok(target
        .list(DAMAGED)
        .await?
        .into_iter()
        .filter_map(|l| l.key.rsplit('/').next()?.parse().ok())
        .collect())
}
