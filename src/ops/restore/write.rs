//! Every change a restore makes to the filesystem, and every look at what is already there:
//! creating directories, files, links and named pipes, writing and sizing files, renaming,
//! removing, and setting owners, modes, extended attributes and times; and finding what is at
//! a path, reading an existing file to compare it, reading a link and listing a directory.
//!
//! The rest of the restore decides what to do and calls these. Keeping every write and read in
//! one place keeps the guarantees about them in one place too: temporary files are created exclusively
//! (`O_EXCL`) and reopened with `O_NOFOLLOW`, renames never go over an entry that appeared
//! during the restore, and owners and times are set on links, not through them. These
//! functions take paths, but
//! no path is handed to the kernel whole: each is resolved from the restore directory's handle
//! (opened once, when the restore starts), one directory at a time with `O_NOFOLLOW`, and the
//! change is made with the `*at` call on the last directory's handle. A directory on the way
//! that a local user swaps for a link during the restore is refused (that file fails, named,
//! and the restore goes on; exit 1), never followed out of the restore. Reads go the same way,
//! and an existing file is opened only once it is seen to be a regular file, without blocking
//! (`O_NONBLOCK`), so a named pipe or a link put in its place is neither read nor waited on.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use nix::fcntl::{OFlag, openat};
use nix::sys::stat::Mode;

use crate::format::tree::{Name, Node, NodeKind};

/// The restore roots open in this process: each restore registers the directory it writes into
/// (opened once), and every path below it is resolved from that handle, one component at a
/// time, never following a link.
static ANCHORS: Mutex<Vec<(PathBuf, Arc<OwnedFd>)>> = Mutex::new(Vec::new());

/// A restore root held open; writes below it are resolved from it until it is dropped.
pub(super) struct Anchor {
    path: PathBuf,
}

impl Drop for Anchor {
    fn drop(&mut self) {
        let mut anchors = ANCHORS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = anchors.iter().rposition(|(p, _)| *p == self.path) {
            anchors.remove(i);
        }
    }
}

/// Opens the restore directory `root` (which must not itself be a link) and makes it the
/// anchor of every write below it.
pub(super) fn anchor(root: &Path) -> io::Result<Anchor> {
    let fd = openat(
        nix::fcntl::AT_FDCWD,
        root,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| refused(root, e))?;
    ANCHORS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((root.to_path_buf(), Arc::new(fd)));
    Ok(Anchor {
        path: root.to_path_buf(),
    })
}

/// A directory handle and the name of an entry in it.
struct At {
    dir: Arc<OwnedFd>,
    name: OsString,
}

impl At {
    /// `path` resolved like `at` does, through this entry's directory handle when `path` is in
    /// the same directory (one walk for several changes to one folder, such as writing a
    /// temporary file and renaming it into place).
    fn sibling(&self, of: &Path, path: &Path) -> io::Result<At> {
        match (of.parent(), path.parent(), path.file_name()) {
            (Some(a), Some(b), Some(name)) if a == b => Ok(At {
                dir: Arc::clone(&self.dir),
                name: name.to_os_string(),
            }),
            _ => at(path),
        }
    }

    /// The entry itself (`AT_SYMLINK_NOFOLLOW`).
    fn stat(&self, path: &Path) -> io::Result<Found> {
        nix::sys::stat::fstatat(
            self.dir.as_fd(),
            self.name.as_os_str(),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map(Found)
        .map_err(|e| refused(path, e))
    }

    fn open(&self, path: &Path, flags: OFlag, mode: u32) -> io::Result<File> {
        openat(
            self.dir.as_fd(),
            self.name.as_os_str(),
            flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(mode),
        )
        .map(File::from)
        .map_err(|e| refused(path, e))
    }
}

/// A finished temporary file and where it goes: renamed to `dest`, over the file there when
/// `replace` (that one kept aside at `keep` first, when set), otherwise never over a file that
/// appeared during the restore.
pub(super) struct Placing<'a> {
    pub(super) temp: &'a Path,
    pub(super) dest: &'a Path,
    pub(super) replace: bool,
    pub(super) keep: Option<&'a Path>,
}

fn refused(path: &Path, e: nix::errno::Errno) -> io::Error {
    match e {
        nix::errno::Errno::ELOOP | nix::errno::Errno::ENOTDIR => io::Error::other(format!(
            "{} {} (changed during the restore?): nothing is written through it",
            path.display(),
            super::REFUSED
        )),
        e => io::Error::from(e),
    }
}

/// Resolves `path` to its parent directory's handle and its last component: from the anchor
/// of the restore it is in, opening each directory on the way with `O_NOFOLLOW`, so a
/// directory swapped for a link during the restore is refused, not followed.
fn at(path: &Path) -> io::Result<At> {
    let anchored = {
        let anchors = ANCHORS.lock().unwrap_or_else(|e| e.into_inner());
        anchors
            .iter()
            .filter_map(|(root, fd)| {
                Some((
                    root.clone(),
                    path.strip_prefix(root).ok()?.to_path_buf(),
                    Arc::clone(fd),
                ))
            })
            .max_by_key(|(root, _, _)| root.as_os_str().len())
    };
    let Some((root, rel, mut dir)) = anchored else {
        return Err(io::Error::other(format!(
            "{} is outside the restore directory: not written",
            path.display()
        )));
    };
    let parts: Vec<&OsStr> = rel
        .components()
        .map(|c| match c {
            Component::Normal(n) => Ok(n),
            _ => Err(io::Error::other(format!(
                "{}: not a plain path below the restore directory",
                path.display()
            ))),
        })
        .collect::<io::Result<_>>()?;
    let Some((last, dirs)) = parts.split_last() else {
        return Ok(At {
            dir,
            name: OsString::from("."),
        });
    };
    let mut walked = root;
    for part in dirs {
        walked.push(part);
        let next = openat(
            dir.as_fd(),
            *part,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| refused(&walked, e))?;
        dir = Arc::new(next);
    }
    Ok(At {
        dir,
        name: last.to_os_string(),
    })
}

fn open_at(path: &Path, flags: OFlag, mode: u32) -> io::Result<File> {
    at(path)?.open(path, flags, mode)
}

/// An entry already at the destination, as [`stat_at`] found it: the entry itself, never what
/// a link there points to.
pub(super) struct Found(nix::sys::stat::FileStat);

impl Found {
    fn kind(&self) -> nix::libc::mode_t {
        self.0.st_mode & nix::libc::S_IFMT
    }

    pub(super) fn is_dir(&self) -> bool {
        self.kind() == nix::libc::S_IFDIR
    }

    pub(super) fn is_file(&self) -> bool {
        self.kind() == nix::libc::S_IFREG
    }

    pub(super) fn is_symlink(&self) -> bool {
        self.kind() == nix::libc::S_IFLNK
    }

    /// The permission bits (with setuid, setgid and sticky).
    pub(super) fn mode(&self) -> u32 {
        self.0.st_mode & 0o7777
    }

    /// Seconds and nanoseconds.
    pub(super) fn mtime(&self) -> (i64, i64) {
        (self.0.st_mtime, self.0.st_mtime_nsec)
    }

    /// (device, inode): the same pair is the same file.
    pub(super) fn file_id(&self) -> (u64, u64) {
        (self.0.st_dev, self.0.st_ino)
    }
}

/// What is at `path`, reached like every write: from the restore directory's handle without
/// following a link on the way, and the last component not followed either.
pub(super) fn stat_at(path: &Path) -> io::Result<Found> {
    at(path)?.stat(path)
}

/// Opens the regular file at `path` for reading, reached like every write. Anything else there
/// (a link, a directory, a named pipe, a device) is refused without being opened, and what was
/// opened is checked again to be a regular file, in case it was swapped in between; the open
/// itself cannot block (`O_NONBLOCK`) or take a terminal (`O_NOCTTY`).
pub(super) fn open_read(path: &Path) -> io::Result<File> {
    let a = at(path)?;
    let not_regular = || io::Error::other(format!("{} is not a regular file", path.display()));
    if !a.stat(path)?.is_file() {
        return Err(not_regular());
    }
    let f = a.open(
        path,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY,
        0,
    )?;
    match nix::sys::stat::fstat(f.as_fd()) {
        Ok(s) if Found(s).is_file() => Ok(f),
        Ok(_) => Err(not_regular()),
        Err(e) => Err(io::Error::from(e)),
    }
}

/// Where the symlink at `path` points, reached like every write.
pub(super) fn read_link(path: &Path) -> io::Result<OsString> {
    let a = at(path)?;
    nix::fcntl::readlinkat(a.dir.as_fd(), a.name.as_os_str()).map_err(|e| refused(path, e))
}

/// The names in the directory at `path` (not `.` or `..`), reached like every write and opened
/// without following a link.
pub(super) fn list_dir(path: &Path) -> io::Result<Vec<OsString>> {
    use std::os::unix::ffi::OsStrExt;
    let fd = open_at(
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NONBLOCK,
        0,
    )?;
    let dir = nix::dir::Dir::from_fd(OwnedFd::from(fd)).map_err(io::Error::from)?;
    let mut names = Vec::new();
    for entry in dir {
        let entry = entry.map_err(io::Error::from)?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(OsStr::from_bytes(name).to_os_string());
        }
    }
    Ok(names)
}

/// Creates the restore directory and any missing parents (before it is anchored: it is the
/// directory the technician named, checked not to be a link).
pub(super) fn create_dir_all(path: &Path) -> io::Result<()> {
    std::fs::create_dir_all(path)
}

/// Creates one directory, whose parent exists (private until its mode is set at the end).
pub(super) fn create_dir(path: &Path) -> io::Result<()> {
    let a = at(path)?;
    nix::sys::stat::mkdirat(
        a.dir.as_fd(),
        a.name.as_os_str(),
        Mode::from_bits_truncate(0o700),
    )
    .map_err(|e| refused(path, e))
}

/// Writes the (empty) marker of a restore in progress.
pub(super) fn write_marker(path: &Path) -> io::Result<()> {
    open_at(
        path,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_TRUNC,
        0o600,
    )
    .map(drop)
}

/// Removes a file: a temporary file, a leftover of an interrupted restore, or the marker.
pub(super) fn remove_file(path: &Path) -> io::Result<()> {
    let a = at(path)?;
    nix::unistd::unlinkat(
        a.dir.as_fd(),
        a.name.as_os_str(),
        nix::unistd::UnlinkatFlags::NoRemoveDir,
    )
    .map_err(io::Error::from)
}

/// Renames `from` to `to`, replacing what is there.
pub(super) fn rename(from: &Path, to: &Path) -> io::Result<()> {
    let f = at(from)?;
    renamed(&f, &f.sibling(from, to)?, to)
}

/// Renames the entry `from` to `to` through their directories' handles, replacing what is
/// there (`shown` names `to` in an error).
fn renamed(from: &At, to: &At, shown: &Path) -> io::Result<()> {
    nix::fcntl::renameat(
        from.dir.as_fd(),
        from.name.as_os_str(),
        to.dir.as_fd(),
        to.name.as_os_str(),
    )
    .map_err(|e| refused(shown, e))
}

/// Nothing there to move is no error.
fn unless_absent(r: io::Result<()>) -> io::Result<()> {
    match r {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Creates a new, empty temporary file, readable only by its owner until its mode is set.
pub(super) fn create_temp(path: &Path) -> io::Result<()> {
    open_at(
        path,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL,
        0o600,
    )
    .map(drop)
}

/// Writes one blob at `offset`, leaving a hole instead of writing zeros.
pub(super) fn write_at(path: &Path, data: &[u8], offset: u64) -> io::Result<()> {
    if data.iter().all(|&b| b == 0) {
        return Ok(());
    }
    open_at(path, OFlag::O_WRONLY, 0)?.write_all_at(data, offset)
}

/// Creates the temporary file and writes a whole file of one blob into it (content, owner,
/// extended attributes, mode and time, all through one open file), then renames it into
/// place. Problems with the owner or an attribute are warnings about `dest`; anything else is
/// an error. The folder is walked once for all of it.
pub(super) fn write_whole(
    p: &Placing,
    node: &Node,
    data: &[u8],
    as_root: bool,
    warnings: &mut Vec<String>,
) -> io::Result<()> {
    let a = at(p.temp)?;
    let mut f = a.open(
        p.temp,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL,
        0o600,
    )?;
    if data.iter().all(|&b| b == 0) {
        f.set_len(node.size)?;
    } else {
        io::Write::write_all(&mut f, data)?;
        if data.len() as u64 != node.size {
            f.set_len(node.size)?;
        }
    }
    metadata_through(&f, p.dest, node, as_root, warnings)?;
    drop(f);
    place(&a, p)
}

/// Sizes and stamps a temporary file written blob by blob, then renames it into place, with
/// one walk of its folder.
pub(super) fn finish(
    p: &Placing,
    node: &Node,
    as_root: bool,
    warnings: &mut Vec<String>,
) -> io::Result<()> {
    let a = at(p.temp)?;
    let f = a.open(p.temp, OFlag::O_WRONLY, 0)?;
    f.set_len(node.size)?;
    metadata_through(&f, p.dest, node, as_root, warnings)?;
    drop(f);
    place(&a, p)
}

/// Owner, extended attributes, mode and time, through an open handle of the object itself.
fn metadata_through(
    f: &File,
    shown: &Path,
    node: &Node,
    as_root: bool,
    warnings: &mut Vec<String>,
) -> io::Result<()> {
    if as_root && let Err(e) = std::os::unix::fs::fchown(f, Some(node.uid), Some(node.gid)) {
        warnings.push(format!("{}: owner not set: {e}", shown.display()));
    }
    for x in &node.xattrs {
        let Ok(value) = hex::decode(&x.value) else {
            continue;
        };
        if let Err(e) = xattr::FileExt::set_xattr(f, x.name.as_os(), &value) {
            warnings.push(format!(
                "{}: extended attribute {} not restored: {e}",
                shown.display(),
                x.name.display()
            ));
        }
    }
    nix::sys::stat::fchmod(f.as_fd(), Mode::from_bits_truncate(node.mode))?;
    let mtime = filetime::FileTime::from_unix_time(node.mtime, node.mtime_nsec);
    filetime::set_file_handle_times(f, Some(mtime), Some(mtime))
}

/// Renames the finished temporary file (reached as `temp`) into place.
fn place(temp: &At, p: &Placing) -> io::Result<()> {
    let t = temp.sibling(p.temp, p.dest)?;
    if p.replace {
        if let Some(k) = p.keep {
            unless_absent(
                temp.sibling(p.temp, k)
                    .and_then(|kept| renamed(&t, &kept, k)),
            )?;
        }
        return renamed(temp, &t, p.dest);
    }
    match nix::fcntl::renameat2(
        temp.dir.as_fd(),
        temp.name.as_os_str(),
        t.dir.as_fd(),
        t.name.as_os_str(),
        nix::fcntl::RenameFlags::RENAME_NOREPLACE,
    ) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EEXIST) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "a file of that name appeared during the restore; not replaced",
        )),
        Err(e) => Err(refused(p.dest, e)),
    }
}

/// Renames what is at `dest` to `keep` (when set) before it is replaced.
pub(super) fn keep_aside(dest: &Path, keep: Option<&Path>) -> io::Result<()> {
    match keep {
        Some(k) => unless_absent(rename(dest, k)),
        None => Ok(()),
    }
}

/// Makes `link` a hard link to the file `original` (the entry itself, never what a link there
/// points to).
pub(super) fn hard_link(original: &Path, link: &Path) -> io::Result<()> {
    let o = at(original)?;
    let l = o.sibling(original, link)?;
    nix::unistd::linkat(
        o.dir.as_fd(),
        o.name.as_os_str(),
        l.dir.as_fd(),
        l.name.as_os_str(),
        nix::fcntl::AtFlags::empty(),
    )
    .map_err(|e| refused(link, e))
}

/// Makes `link` a symlink pointing to `target`.
pub(super) fn symlink(target: &Name, link: &Path) -> io::Result<()> {
    let l = at(link)?;
    nix::unistd::symlinkat(target.as_os(), l.dir.as_fd(), l.name.as_os_str())
        .map_err(|e| refused(link, e))
}

/// Makes a named pipe.
pub(super) fn make_fifo(path: &Path, mode: u32) -> nix::Result<()> {
    let a = at(path).map_err(|e| {
        e.raw_os_error()
            .map_or(nix::errno::Errno::ELOOP, nix::errno::Errno::from_raw)
    })?;
    nix::unistd::mkfifoat(
        a.dir.as_fd(),
        a.name.as_os_str(),
        Mode::from_bits_truncate(mode),
    )
}

/// Sets the owner (only root can), without following a symlink.
pub(super) fn apply_owner(path: &Path, node: &Node, as_root: bool, warnings: &mut Vec<String>) {
    if !as_root {
        return;
    }
    let result = at(path).and_then(|a| {
        nix::unistd::fchownat(
            a.dir.as_fd(),
            a.name.as_os_str(),
            Some(nix::unistd::Uid::from_raw(node.uid)),
            Some(nix::unistd::Gid::from_raw(node.gid)),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(io::Error::from)
    });
    if let Err(e) = result {
        warnings.push(format!("{}: owner not set: {e}", path.display()));
    }
}

/// Sets the modification (and access) time, without following a symlink.
pub(super) fn set_mtime(path: &Path, node: &Node) -> io::Result<()> {
    let a = at(path)?;
    let t = nix::sys::time::TimeSpec::new(node.mtime, i64::from(node.mtime_nsec));
    nix::sys::stat::utimensat(
        a.dir.as_fd(),
        a.name.as_os_str(),
        &t,
        &t,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .map_err(io::Error::from)
}

/// Owner, mode, extended attributes and modification time of a directory, file or named pipe,
/// applied through a handle of the object itself (opened without following a link and without
/// blocking), so a link swapped in at its name is refused rather than changed.
pub(super) fn apply_metadata(path: &Path, node: &Node, as_root: bool, warnings: &mut Vec<String>) {
    if matches!(node.kind, NodeKind::Chardev | NodeKind::Blockdev) {
        // Opening a device can act on it: its owner and time are set on the entry, and its
        // mode too (a device node is made by root, in a directory reached without links).
        apply_owner(path, node, as_root, warnings);
        let mode = at(path).and_then(|a| {
            nix::sys::stat::fchmodat(
                a.dir.as_fd(),
                a.name.as_os_str(),
                Mode::from_bits_truncate(node.mode),
                nix::sys::stat::FchmodatFlags::FollowSymlink,
            )
            .map_err(io::Error::from)
        });
        if let Err(e) = mode {
            warnings.push(format!("{}: mode not set: {e}", path.display()));
        }
        if let Err(e) = set_mtime(path, node) {
            warnings.push(format!(
                "{}: modification time not set: {e}",
                path.display()
            ));
        }
        return;
    }
    let opened = open_at(
        path,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY,
        0,
    );
    let result = opened.and_then(|f| metadata_through(&f, path, node, as_root, warnings));
    if let Err(e) = result {
        warnings.push(format!("{}: metadata not set: {e}", path.display()));
    }
}
