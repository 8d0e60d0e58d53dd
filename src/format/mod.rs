//! On-target encodings: chunking, compression, sealing (age), packs and trees. Pure: no I/O, no async, no configuration.

pub mod buffers;
pub mod chunker;
pub mod compress;
pub mod crypto;
pub mod pack;
pub mod signing;
pub mod snapshot;
pub mod tree;
