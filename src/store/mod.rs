//! Storage: targets (the only code that sees `object_store`), the repository layout, index, catalog, locks, blob reading, shared tree walks, and the local state directory.

pub mod audit;
pub mod blobs;
pub mod damage;
pub mod decisions;
pub mod index;
pub mod lock;
pub mod records;
pub mod repo;
pub mod snapshot;
pub mod spill;
pub mod state;
pub mod target;
pub mod walk;
