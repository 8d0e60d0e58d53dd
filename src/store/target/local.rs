//! Writes to a local target's directory that never follow a link below it.
//!
//! firesafe runs as root, and anyone who can write the NAS can plant `tmp`, `data/ab` or
//! `index` as a symbolic link to anywhere. A path-based write (object_store's, or
//! `std::fs::write`) would follow it and put pack files wherever it points. Every write here
//! opens the repository directory once, then each directory below it with
//! `O_DIRECTORY | O_NOFOLLOW` (making the missing ones with `mkdirat`), creates files with
//! `O_CREAT | O_EXCL | O_NOFOLLOW`, and names them into place with `linkat` (never replacing)
//! or `renameat` (replacing), all relative to those directory handles. A link, or anything but
//! a directory, where a directory should be is refused, named, with what to do. The repository
//! directory itself is the one the configuration names, and may be a link.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::Mode;

use super::Put;

/// The scratch directory of a local target, below its root.
pub(super) const TMP: &str = "tmp";

/// Why a write was refused: a link or other non-directory stands where a directory should be.
fn refused(path: &Path) -> io::Error {
    io::Error::other(format!(
        "{} is a symbolic link or not a directory, and firesafe writes nothing through it; something other than firesafe put it there: remove it (check what it points to), then run the command again",
        path.display()
    ))
}

/// Opens `root/rel`, a directory, without following a link below `root`; `create` makes the
/// missing directories on the way. `Ok(None)`: it does not exist and `create` is false.
pub(super) fn open_dir(root: &Path, rel: &Path, create: bool) -> io::Result<Option<OwnedFd>> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let mut dir = openat(nix::fcntl::AT_FDCWD, root, flags, Mode::empty())?;
    let mut walked = root.to_path_buf();
    for part in parts(rel)? {
        walked.push(part);
        let opened = |dir: &OwnedFd| openat(dir, part, flags | OFlag::O_NOFOLLOW, Mode::empty());
        let next = match opened(&dir) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) if create => {
                match nix::sys::stat::mkdirat(&dir, part, Mode::from_bits_truncate(0o777)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(e.into()),
                }
                opened(&dir).map_err(|e| refused_or(e, &walked))?
            }
            Err(Errno::ENOENT) => return Ok(None),
            Err(e) => return Err(refused_or(e, &walked)),
        };
        dir = next;
    }
    Ok(Some(dir))
}

/// A link (`ELOOP`) or a file (`ENOTDIR`) met on the way is a refusal, named.
fn refused_or(e: Errno, path: &Path) -> io::Error {
    match e {
        Errno::ELOOP | Errno::ENOTDIR => refused(path),
        e => e.into(),
    }
}

/// The plain components of a key or a relative path; anything else (`..`, a root) is refused.
fn parts(rel: &Path) -> io::Result<Vec<&OsStr>> {
    rel.components()
        .map(|c| match c {
            Component::Normal(n) => Ok(n),
            _ => Err(io::Error::other(format!(
                "{}: not a plain path inside the repository",
                rel.display()
            ))),
        })
        .collect()
}

/// The directory of a key and its last component.
fn split(key: &str) -> io::Result<(&Path, &OsStr)> {
    let path = Path::new(key);
    match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => Ok((dir, name)),
        _ => Err(io::Error::other(format!("{key}: not an object key"))),
    }
}

/// Creates a new file with a random name in the directory `dir` (`name-RANDOM.tmp`), with
/// `O_EXCL | O_NOFOLLOW`, through its handle: a name planted there is never written through.
pub(super) fn create_scratch(dir: &OwnedFd, prefix: &str) -> io::Result<(String, File)> {
    let name = format!("{prefix}-{:016x}.tmp", rand::random::<u64>());
    let fd = openat(
        dir,
        name.as_str(),
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )?;
    Ok((name, File::from(fd)))
}

/// Stores `bytes` under `key` in the repository at `root`: written to a new file in `tmp/`,
/// synced, then linked into place (`replace` false: an existing object is kept, and that is
/// [`Put::Existed`]) or renamed over what is there (`replace` true).
pub(super) fn write(root: &Path, key: &str, bytes: &[u8], replace: bool) -> io::Result<Put> {
    let tmp = open_dir(root, Path::new(TMP), true)?.expect("created");
    let (name, mut file) = create_scratch(&tmp, "object")?;
    let written = file.write_all(bytes).and_then(|_| file.sync_all());
    drop(file);
    let stored = written.and_then(|_| place(root, &tmp, &name, key, replace));
    let _ = nix::unistd::unlinkat(&tmp, name.as_str(), nix::unistd::UnlinkatFlags::NoRemoveDir);
    stored
}

/// Names the file `name` of the directory `from` as `key` (linked, or renamed when `replace`),
/// making the key's directories, and syncs the directory.
pub(super) fn place(
    root: &Path,
    from: &OwnedFd,
    name: &str,
    key: &str,
    replace: bool,
) -> io::Result<Put> {
    let (dir, last) = split(key)?;
    let to = open_dir(root, dir, true)?.expect("created");
    let put = if replace {
        nix::fcntl::renameat(from, name, &to, last)?;
        Put::Created
    } else {
        // linkat without AT_SYMLINK_FOLLOW names the file itself, and fails if the name exists.
        match nix::unistd::linkat(from, name, &to, last, AtFlags::empty()) {
            Ok(()) => Put::Created,
            Err(Errno::EEXIST) => Put::Existed,
            Err(e) => return Err(e.into()),
        }
    };
    nix::unistd::fsync(&to)?;
    Ok(put)
}

/// Stores the file `path` of the scratch directory `root/tmp` under `key` (never replacing),
/// reading it and naming it through the scratch directory's handle, and removes it.
pub(super) fn store_file(root: &Path, key: &str, path: &Path) -> io::Result<Put> {
    let tmp = open_dir(root, Path::new(TMP), false)?
        .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
    let name = path
        .file_name()
        .and_then(OsStr::to_str)
        .ok_or_else(|| io::Error::other(format!("{}: not a scratch file", path.display())))?;
    let file = openat(
        &tmp,
        name,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    nix::unistd::fsync(&file)?;
    let put = place(root, &tmp, name, key, false)?;
    nix::unistd::unlinkat(&tmp, name, nix::unistd::UnlinkatFlags::NoRemoveDir)?;
    Ok(put)
}

/// Deletes the object `key`; a missing one (or a missing directory) is no error.
pub(super) fn delete(root: &Path, key: &str) -> io::Result<()> {
    let (dir, last) = split(key)?;
    let Some(dir) = open_dir(root, dir, false)? else {
        return Ok(());
    };
    match nix::unistd::unlinkat(&dir, last, nix::unistd::UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Whether `key` is a plain file, reached without following a link. A FIFO, a device, a
/// directory or a link where an object should be is no object.
pub(super) fn is_plain_object(root: &Path, key: &str) -> io::Result<bool> {
    let (dir, last) = split(key)?;
    let dir = match open_dir(root, dir, false) {
        Ok(Some(d)) => d,
        Ok(None) => return Ok(false),
        Err(e) if e.kind() == io::ErrorKind::Other => return Ok(false),
        Err(e) => return Err(e),
    };
    match nix::sys::stat::fstatat(&dir, last, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(st.st_mode & nix::libc::S_IFMT == nix::libc::S_IFREG),
        Err(Errno::ENOENT) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The scratch directory `root/tmp`, made if need be, refused if it is a link or no directory.
pub(super) fn scratch(root: &Path) -> io::Result<(PathBuf, OwnedFd)> {
    let fd = open_dir(root, Path::new(TMP), true)?.expect("created");
    Ok((root.join(TMP), fd))
}
