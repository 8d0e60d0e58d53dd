//! A read-only FUSE view of snapshots: `DIR/SOURCE/2026-11-23T0200/...`, one directory per
//! source, one per snapshot named by its local start time (with `-ID` added when two start in
//! the same minute), and under it the snapshot's root tree.
//!
//! Everything read goes through [`BlobReader`], so every byte shown is verified. Trees are read
//! when a directory is first looked into (never more than [`MAX_DEPTH`] folders deep); file
//! contents blob by blob as they are read. The
//! kernel calls in on fuser's threads, which wait on the tokio runtime for each read.
//!
//! FUSE needs `/dev/fuse` and, for anyone but root, `fusermount`; [`available`] says in one
//! sentence which is missing.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, UNIX_EPOCH};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, INodeNo, LockOwner, MountOption, OpenFlags,
    ReplyAttr, ReplyData, ReplyDirectory, ReplyEntry, Request,
};

use crate::error::{Error, Result};
use crate::format::tree::{MAX_DEPTH, Node, NodeKind};
use crate::id::Id;
use crate::store::blobs::BlobReader;
use crate::store::snapshot::Listed;

/// How long the kernel may cache names and attributes: snapshots never change.
const TTL: Duration = Duration::from_secs(3600);

/// Whether FUSE can be used here; the error is one sentence naming what is missing.
pub fn available() -> Result<()> {
    if !Path::new("/dev/fuse").exists() {
        return Err(Error::Usage(
            "cannot mount: /dev/fuse is missing (load the fuse module, or in a container pass --device /dev/fuse); use `firesafe restore` instead".into(),
        ));
    }
    let on_path = |name: &str| {
        std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
    };
    if !on_path("fusermount3") && !on_path("fusermount") {
        return Err(Error::Usage(
            "cannot mount: fusermount is not installed (apt-get install fuse3); use `firesafe restore` instead".into(),
        ));
    }
    Ok(())
}

/// One inode of the view.
enum Entry {
    Root,
    Source,
    /// A snapshot's directory: its root tree.
    Snapshot(Id),
    Node(Box<Node>),
}

struct Inode {
    entry: Entry,
    parent: u64,
    /// Children by name, once read.
    children: Option<Vec<(OsString, u64)>>,
    /// For files: where each blob starts, once computed.
    offsets: Option<Vec<u64>>,
}

/// The most entries a mount hands out inodes for (about 2 GiB of memory): browsing past it
/// gives an I/O error. A real share of a few million files stays below it.
const MAX_INODES: usize = 8_000_000;

/// The filesystem: the snapshots shown and the inodes handed out so far.
pub struct SnapshotFs {
    reader: BlobReader<'static>,
    runtime: tokio::runtime::Handle,
    inodes: Mutex<Vec<Inode>>,
    uid: u32,
    gid: u32,
}

impl SnapshotFs {
    /// A view of `snapshots`, grouped by source.
    pub fn new(reader: BlobReader<'static>, snapshots: &[Listed]) -> SnapshotFs {
        let mut inodes = vec![
            // Inode 0 is unused; 1 is the root.
            Inode {
                entry: Entry::Root,
                parent: 1,
                children: Some(Vec::new()),
                offsets: None,
            },
            Inode {
                entry: Entry::Root,
                parent: 1,
                children: Some(Vec::new()),
                offsets: None,
            },
        ];
        let mut sources: HashMap<String, u64> = HashMap::new();
        for l in snapshots {
            let src = *sources.entry(l.snapshot.source.clone()).or_insert_with(|| {
                let ino = inodes.len() as u64;
                inodes.push(Inode {
                    entry: Entry::Source,
                    parent: 1,
                    children: Some(Vec::new()),
                    offsets: None,
                });
                inodes[1]
                    .children
                    .as_mut()
                    .expect("root")
                    .push((OsString::from(&l.snapshot.source), ino));
                ino
            });
            let mut name = l
                .snapshot
                .start
                .with_timezone(&chrono::Local)
                .format("%Y-%m-%dT%H%M")
                .to_string();
            let taken = inodes[src as usize]
                .children
                .as_ref()
                .expect("source")
                .iter()
                .any(|(n, _)| n.to_str() == Some(name.as_str()));
            if taken {
                name.push_str(&format!("-{}", l.id.short()));
            }
            let ino = inodes.len() as u64;
            inodes.push(Inode {
                entry: Entry::Snapshot(l.snapshot.tree),
                parent: src,
                children: None,
                offsets: None,
            });
            inodes[src as usize]
                .children
                .as_mut()
                .expect("source")
                .push((OsString::from(name), ino));
        }
        SnapshotFs {
            reader,
            runtime: tokio::runtime::Handle::current(),
            inodes: Mutex::new(inodes),
            uid: nix::unistd::getuid().as_raw(),
            gid: nix::unistd::getgid().as_raw(),
        }
    }

    /// The children of a directory inode, reading its tree the first time.
    fn children(&self, ino: u64) -> Result<Vec<(OsString, u64)>, Errno> {
        let tree_id = {
            let inodes = self.inodes.lock().expect("inodes");
            let inode = inodes.get(ino as usize).ok_or(Errno::ENOENT)?;
            if let Some(c) = &inode.children {
                return Ok(c.clone());
            }
            match &inode.entry {
                Entry::Snapshot(tree) => *tree,
                Entry::Node(n) if n.kind == NodeKind::Dir => {
                    // Folders below the snapshot's directory: a forged tree nested deeper than
                    // any backup writes is not followed.
                    let mut level = 0;
                    let mut up = ino;
                    while let Some(Inode {
                        entry: Entry::Node(_),
                        parent,
                        ..
                    }) = inodes.get(up as usize)
                    {
                        level += 1;
                        up = *parent;
                    }
                    if level > MAX_DEPTH + 1 {
                        tracing::warn!(
                            "a folder is nested deeper than the {MAX_DEPTH} levels a backup writes: the snapshot is forged or damaged"
                        );
                        return Err(Errno::EIO);
                    }
                    n.subtree.ok_or(Errno::EIO)?
                }
                _ => return Err(Errno::ENOTDIR),
            }
        };
        let tree = self
            .runtime
            .block_on(self.reader.tree(&tree_id))
            .map_err(|_| Errno::EIO)?;
        let mut inodes = self.inodes.lock().expect("inodes");
        if let Some(c) = &inodes[ino as usize].children {
            return Ok(c.clone());
        }
        // Folders are listed as they are browsed; a forged snapshot of shared subtrees could
        // make browsing hand out inodes without end, so there is a ceiling far above any share.
        if inodes.len() + tree.entries.len() > MAX_INODES {
            return Err(Errno::EIO);
        }
        let mut children = Vec::with_capacity(tree.entries.len());
        for node in tree.entries {
            let child = inodes.len() as u64;
            children.push((node.name.as_os().to_os_string(), child));
            inodes.push(Inode {
                entry: Entry::Node(Box::new(node)),
                parent: ino,
                children: None,
                offsets: None,
            });
        }
        inodes[ino as usize].children = Some(children.clone());
        Ok(children)
    }

    fn attr(&self, ino: u64) -> Option<FileAttr> {
        let inodes = self.inodes.lock().expect("inodes");
        let inode = inodes.get(ino as usize)?;
        let dir = |perm: u16| FileAttr {
            ino: INodeNo(ino),
            size: 0,
            blocks: 0,
            atime: UNIX_EPOCH,
            mtime: UNIX_EPOCH,
            ctime: UNIX_EPOCH,
            crtime: UNIX_EPOCH,
            kind: FileType::Directory,
            perm,
            nlink: 2,
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            flags: 0,
            blksize: 4096,
        };
        Some(match &inode.entry {
            Entry::Root | Entry::Source | Entry::Snapshot(_) => dir(0o555),
            Entry::Node(n) => {
                let time = if n.mtime >= 0 {
                    UNIX_EPOCH + Duration::new(n.mtime as u64, n.mtime_nsec)
                } else {
                    UNIX_EPOCH
                };
                let kind = match n.kind {
                    NodeKind::Dir => FileType::Directory,
                    NodeKind::Symlink => FileType::Symlink,
                    NodeKind::Fifo => FileType::NamedPipe,
                    NodeKind::File => FileType::RegularFile,
                    _ => FileType::RegularFile,
                };
                let size = match n.kind {
                    NodeKind::Symlink => n.target.as_ref().map_or(0, |t| t.as_os().len() as u64),
                    _ => n.size,
                };
                FileAttr {
                    ino: INodeNo(ino),
                    size,
                    blocks: size.div_ceil(512),
                    atime: time,
                    mtime: time,
                    ctime: time,
                    crtime: time,
                    kind,
                    // Read-only whatever it was.
                    perm: (n.mode & 0o7555) as u16,
                    nlink: if n.kind == NodeKind::Dir { 2 } else { 1 },
                    uid: n.uid,
                    gid: n.gid,
                    rdev: 0,
                    flags: 0,
                    blksize: 4096,
                }
            }
        })
    }

    /// Reads `size` bytes of a file at `offset`, blob by blob.
    fn read_file(&self, ino: u64, offset: u64, size: u32) -> Result<Vec<u8>, Errno> {
        let (content, offsets, file_size) = {
            let mut inodes = self.inodes.lock().expect("inodes");
            let inode = inodes.get_mut(ino as usize).ok_or(Errno::ENOENT)?;
            let Entry::Node(n) = &inode.entry else {
                return Err(Errno::EISDIR);
            };
            if n.kind != NodeKind::File {
                return Err(Errno::EINVAL);
            }
            let content = n.content.clone();
            let file_size = n.size;
            if inode.offsets.is_none() {
                let mut at = 0u64;
                let mut offsets = Vec::with_capacity(content.len());
                for id in &content {
                    offsets.push(at);
                    let (_, loc) = self.reader.index().get(id).ok_or(Errno::EIO)?;
                    at += u64::from(loc.raw_length);
                }
                inode.offsets = Some(offsets);
            }
            (content, inode.offsets.clone().expect("set"), file_size)
        };
        let end = (offset + u64::from(size)).min(file_size);
        let mut out = Vec::with_capacity(end.saturating_sub(offset) as usize);
        if offset >= end {
            return Ok(out);
        }
        let first = offsets.partition_point(|&o| o <= offset).saturating_sub(1);
        for (i, id) in content.iter().enumerate().skip(first) {
            let start = offsets[i];
            if start >= end {
                break;
            }
            let data = self
                .runtime
                .block_on(self.reader.blob(id))
                .map_err(|_| Errno::EIO)?;
            let from = offset.saturating_sub(start) as usize;
            let to = ((end - start) as usize).min(data.len());
            if from < to {
                out.extend_from_slice(&data[from..to]);
            }
        }
        Ok(out)
    }
}

impl Filesystem for SnapshotFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.children(parent.0) {
            Ok(children) => match children.iter().find(|(n, _)| n == name) {
                Some((_, ino)) => match self.attr(*ino) {
                    Some(a) => reply.entry(&TTL, &a, fuser::Generation(0)),
                    None => reply.error(Errno::ENOENT),
                },
                None => reply.error(Errno::ENOENT),
            },
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.attr(ino.0) {
            Some(a) => reply.attr(&TTL, &a),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let inodes = self.inodes.lock().expect("inodes");
        match inodes.get(ino.0 as usize).map(|i| &i.entry) {
            Some(Entry::Node(n)) if n.kind == NodeKind::Symlink => match &n.target {
                Some(t) => reply.data(t.as_os().as_encoded_bytes()),
                None => reply.error(Errno::EIO),
            },
            _ => reply.error(Errno::EINVAL),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.read_file(ino.0, offset, size) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let children = match self.children(ino.0) {
            Ok(c) => c,
            Err(e) => return reply.error(e),
        };
        let parent = self
            .inodes
            .lock()
            .expect("inodes")
            .get(ino.0 as usize)
            .map_or(1, |i| i.parent);
        let mut entries: Vec<(u64, FileType, OsString)> = vec![
            (ino.0, FileType::Directory, ".".into()),
            (parent, FileType::Directory, "..".into()),
        ];
        for (name, child) in children {
            let kind = self.attr(child).map_or(FileType::RegularFile, |a| a.kind);
            entries.push((child, kind, name));
        }
        for (i, (child, kind, name)) in entries.into_iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(child), (i + 1) as u64, kind, &name) {
                break;
            }
        }
        reply.ok();
    }
}

/// Mounts the view at `dir` and serves it until it is unmounted (`fusermount -u DIR`) or
/// `stop` resolves; then unmounts.
pub async fn serve(
    fs: SnapshotFs,
    dir: &Path,
    stop: impl std::future::Future<Output = ()>,
) -> Result<()> {
    available()?;
    let mut config = fuser::Config::default();
    config.mount_options = vec![
        MountOption::RO,
        MountOption::FSName("firesafe".into()),
        MountOption::Subtype("firesafe".into()),
        MountOption::DefaultPermissions,
    ];
    let session =
        fuser::spawn_mount(fs, dir, &config).map_err(|e| Error::local(dir, "cannot mount", e))?;
    // The session's thread ends when the filesystem is unmounted from outside.
    let mut session = Some(session);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {
                if session.as_ref().is_some_and(|s| s.guard.is_finished()) {
                    let _ = session.take().map(|s| s.join());
                    return Ok(());
                }
            }
        }
    }
    if let Some(s) = session {
        tokio::task::spawn_blocking(move || s.umount_and_join())
            .await
            .expect("unmount does not panic")
            .map_err(|e| Error::local(dir, "cannot unmount", e))?;
    }
    Ok(())
}
