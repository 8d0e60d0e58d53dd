//! The parent snapshot's trees, read as the walk reaches each folder and dropped when it leaves
//! it: the walker asks a tree server, an async task beside the uploader, for one tree at a time.
//! A backup's memory then holds the trees of the folders on the walk's current path and the
//! reader's pack cache, not a whole snapshot's trees, however many files the share has.
//!
//! The server notes what it met: the trees it read intact, and the packs whose trees could not
//! be read (damage). A folder whose parent tree cannot be read is backed up as if it were new.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::error::Error;
use crate::format::tree::Tree;
use crate::id::Id;
use crate::store::blobs::BlobReader;

/// What the server answers for one tree.
pub(super) enum Answer {
    Tree(Arc<Tree>),
    /// Damaged or missing: the folder is backed up as new.
    Unreadable,
    /// The storage failed (unreachable, refused): the backup stops.
    Failed,
}

pub(super) type Request = (Id, std::sync::mpsc::SyncSender<Answer>);

/// The walker's side: asks for one parent tree at a time.
pub(super) struct ParentTrees {
    tx: Option<tokio::sync::mpsc::Sender<Request>>,
}

/// The storage failed while a parent tree was read; the server holds the error.
#[derive(Debug)]
pub(super) struct Failed;

impl ParentTrees {
    /// No parent snapshot: every folder is new.
    pub(super) fn none() -> ParentTrees {
        ParentTrees { tx: None }
    }

    /// A client and the requests its server answers (see [`serve`]).
    pub(super) fn channel() -> (ParentTrees, tokio::sync::mpsc::Receiver<Request>) {
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        (ParentTrees { tx: Some(tx) }, rx)
    }

    /// The parent's tree `id`; `None` when it cannot be read. Called from the walker thread
    /// (never from the async runtime: it blocks until the server answers).
    pub(super) fn get(&self, id: &Id) -> Result<Option<Arc<Tree>>, Failed> {
        let Some(tx) = &self.tx else {
            return Ok(None);
        };
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        tx.blocking_send((*id, reply)).map_err(|_| Failed)?;
        match answer.recv().map_err(|_| Failed)? {
            Answer::Tree(t) => Ok(Some(t)),
            Answer::Unreadable => Ok(None),
            Answer::Failed => Err(Failed),
        }
    }
}

/// What the server met while the walk ran.
#[derive(Default)]
pub(super) struct Served {
    /// Trees read intact.
    pub(super) intact: HashSet<Id>,
    /// Packs whose trees could not be read, and why.
    pub(super) bad: HashMap<Id, String>,
    /// The first storage error (the backup fails with it).
    pub(super) failed: Option<Error>,
}

/// Answers the walker's requests until it drops its [`ParentTrees`].
pub(super) async fn serve(
    reader: &BlobReader<'_>,
    mut requests: tokio::sync::mpsc::Receiver<Request>,
) -> Served {
    let mut served = Served::default();
    while let Some((id, reply)) = requests.recv().await {
        let answer = if served.failed.is_some() {
            Answer::Failed
        } else {
            match reader.tree(&id).await {
                Ok(tree) => {
                    served.intact.insert(id);
                    Answer::Tree(Arc::new(tree))
                }
                Err(e @ Error::Target { .. }) => {
                    served.failed = Some(e);
                    Answer::Failed
                }
                Err(e) => {
                    if let Some((pack, _)) = reader.index().get(&id) {
                        served.bad.entry(pack.id).or_insert_with(|| match e {
                            Error::Corrupt { detail, .. } => detail,
                            other => other.to_string(),
                        });
                    }
                    Answer::Unreadable
                }
            }
        };
        // The walker may have stopped (cancelled) and dropped its end.
        let _ = reply.send(answer);
    }
    served
}
