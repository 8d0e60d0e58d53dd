//! Every change a restore makes to the filesystem, and nothing else: creating directories,
//! files, links and named pipes, writing and sizing files, renaming, removing, and setting
//! owners, modes, extended attributes and times.
//!
//! The rest of the restore decides what to do and calls these. Keeping every write in one place
//! keeps the guarantees about writes in one place too: temporary files are created exclusively
//! (`O_EXCL`) and reopened with `O_NOFOLLOW`, renames never go over an entry that appeared
//! during the restore, and owners and times are set on links, not through them. These
//! functions take paths; resolving
//! each against a directory file descriptor instead (`openat`, `renameat`, `linkat`, ... with
//! `O_NOFOLLOW` on every component) would close the window in which a directory on the way is
//! swapped for a symlink, and needs to change only this file.

use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::format::tree::{Name, Node};

/// Creates the restore directory and any missing parents.
pub(super) fn create_dir_all(path: &Path) -> io::Result<()> {
    std::fs::create_dir_all(path)
}

/// Creates one directory, whose parent exists.
pub(super) fn create_dir(path: &Path) -> io::Result<()> {
    std::fs::create_dir(path)
}

/// Writes the (empty) marker of a restore in progress.
pub(super) fn write_marker(path: &Path) -> io::Result<()> {
    std::fs::write(path, b"")
}

/// Removes a file: a temporary file, a leftover of an interrupted restore, or the marker.
pub(super) fn remove_file(path: &Path) -> io::Result<()> {
    std::fs::remove_file(path)
}

/// Renames `from` to `to`, replacing what is there.
pub(super) fn rename(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::rename(from, to)
}

/// Creates a new, empty temporary file, readable only by its owner until its mode is set.
pub(super) fn create_temp(path: &Path) -> io::Result<()> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map(drop)
}

/// Writes one blob at `offset`, leaving a hole instead of writing zeros.
pub(super) fn write_at(path: &Path, data: &[u8], offset: u64) -> io::Result<()> {
    if data.iter().all(|&b| b == 0) {
        return Ok(());
    }
    let f = OpenOptions::new()
        .write(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)?;
    f.write_all_at(data, offset)
}

/// Sets a file's length (a trailing hole stays a hole).
pub(super) fn set_len(path: &Path, size: u64) -> io::Result<()> {
    let f = OpenOptions::new()
        .write(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)?;
    f.set_len(size)
}

/// Creates `temp` and writes a whole file of one blob into it: content, owner, extended
/// attributes, mode and time, all through one open file. Problems with the owner or an
/// attribute are warnings about `dest`; anything else is an error.
pub(super) fn write_whole(
    temp: &Path,
    dest: &Path,
    node: &Node,
    data: &[u8],
    as_root: bool,
    warnings: &mut Vec<String>,
) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(temp)?;
    if data.iter().all(|&b| b == 0) {
        f.set_len(node.size)?;
    } else {
        io::Write::write_all(&mut f, data)?;
        if data.len() as u64 != node.size {
            f.set_len(node.size)?;
        }
    }
    if as_root && let Err(e) = std::os::unix::fs::fchown(&f, Some(node.uid), Some(node.gid)) {
        warnings.push(format!("{}: owner not set: {e}", dest.display()));
    }
    for x in &node.xattrs {
        let Ok(value) = hex::decode(&x.value) else {
            continue;
        };
        if let Err(e) = xattr::FileExt::set_xattr(&f, x.name.as_os(), &value) {
            warnings.push(format!(
                "{}: extended attribute {} not restored: {e}",
                dest.display(),
                x.name.display()
            ));
        }
    }
    f.set_permissions(std::fs::Permissions::from_mode(node.mode))?;
    let mtime = filetime::FileTime::from_unix_time(node.mtime, node.mtime_nsec);
    filetime::set_file_handle_times(&f, Some(mtime), Some(mtime))
}

/// Renames a finished temporary file to `dest`: over the file it replaces (kept aside first
/// at `keep`, when set), and never over a file that appeared there during the restore.
pub(super) fn move_into_place(
    temp: &Path,
    dest: &Path,
    replace: bool,
    keep: Option<&Path>,
) -> io::Result<()> {
    if replace {
        keep_aside(dest, keep)?;
    } else if std::fs::symlink_metadata(dest).is_ok() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "a file of that name appeared during the restore; not replaced",
        ));
    }
    rename(temp, dest)
}

/// Renames what is at `dest` to `keep` (when set) before it is replaced.
pub(super) fn keep_aside(dest: &Path, keep: Option<&Path>) -> io::Result<()> {
    match keep {
        Some(k) => match rename(dest, k) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        },
        None => Ok(()),
    }
}

/// Makes `link` a hard link to the file `original`.
pub(super) fn hard_link(original: &Path, link: &Path) -> io::Result<()> {
    std::fs::hard_link(original, link)
}

/// Makes `link` a symlink pointing to `target`.
pub(super) fn symlink(target: &Name, link: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target.as_os(), link)
}

/// Makes a named pipe.
pub(super) fn make_fifo(path: &Path, mode: u32) -> nix::Result<()> {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(mode))
}

/// Sets the owner (only root can), without following a symlink.
pub(super) fn apply_owner(path: &Path, node: &Node, as_root: bool, warnings: &mut Vec<String>) {
    if as_root && let Err(e) = std::os::unix::fs::lchown(path, Some(node.uid), Some(node.gid)) {
        warnings.push(format!("{}: owner not set: {e}", path.display()));
    }
}

/// Sets the modification (and access) time, without following a symlink.
pub(super) fn set_mtime(path: &Path, node: &Node) -> io::Result<()> {
    // Path-based (utimensat): opening a named pipe to stamp it would block.
    let mtime = filetime::FileTime::from_unix_time(node.mtime, node.mtime_nsec);
    filetime::set_symlink_file_times(path, mtime, mtime)
}

/// Owner, mode, extended attributes and modification time.
pub(super) fn apply_metadata(path: &Path, node: &Node, as_root: bool, warnings: &mut Vec<String>) {
    apply_owner(path, node, as_root, warnings);
    for x in &node.xattrs {
        let Ok(value) = hex::decode(&x.value) else {
            continue;
        };
        if let Err(e) = xattr::set(path, x.name.as_os(), &value) {
            warnings.push(format!(
                "{}: extended attribute {} not restored: {e}",
                path.display(),
                x.name.display()
            ));
        }
    }
    if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(node.mode)) {
        warnings.push(format!("{}: mode not set: {e}", path.display()));
    }
    if let Err(e) = set_mtime(path, node) {
        warnings.push(format!(
            "{}: modification time not set: {e}",
            path.display()
        ));
    }
}
