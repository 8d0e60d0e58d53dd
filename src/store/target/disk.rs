//! Disk identity for path targets with a pool of removable disks: which disk of the pool is
//! mounted at the target's path (see [`crate::schedule::media`] for the rotation built on it).
//!
//! - the mount whose mount point is the longest prefix of `path` is found in the mount table, and
//!   its source device is compared (as a canonical path) with the devices that the pool's entries
//!   name in `/dev/disk/by-label` and `/dev/disk/by-uuid`;
//! - a disk of the pool: the target is that disk;
//! - another disk mounted at `path` itself: refused, by name;
//! - otherwise no disk is attached, and the target is "not attached" and left alone.
//!
//! For tests and for systems without udev, `FIRESAFE_DISK_DIR` names the directory holding
//! `by-label/` and `by-uuid/` (default `/dev/disk`) and `FIRESAFE_MOUNTINFO` the mount table
//! (default `/proc/self/mountinfo`).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The directory holding `by-label/` and `by-uuid/`.
fn disk_dir() -> PathBuf {
    std::env::var_os("FIRESAFE_DISK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/dev/disk"))
}

/// The mount table.
fn mountinfo() -> PathBuf {
    std::env::var_os("FIRESAFE_MOUNTINFO")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/proc/self/mountinfo"))
}

/// One line of the mount table.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Mount {
    point: PathBuf,
    source: String,
}

/// Undoes the mount table's octal escapes (`\040` for a space).
fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4]
                .iter()
                .all(|c| (b'0'..=b'3').contains(&b[i + 1]) && (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `/proc/self/mountinfo`: mount point is field 5, the source follows the `-` separator
/// and the filesystem type. Lines that do not parse are skipped.
fn parse_mounts(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let point = fields.get(4)?;
            let dash = fields.iter().position(|f| *f == "-")?;
            let source = fields.get(dash + 2)?;
            Some(Mount {
                point: PathBuf::from(unescape_octal(point)),
                source: unescape_octal(source),
            })
        })
        .collect()
}

/// The mount holding `path`: the longest mount point that is a prefix of it; of two mounts on
/// the same point, the later one (it hides the earlier).
fn mount_of<'a>(mounts: &'a [Mount], path: &Path) -> Option<&'a Mount> {
    mounts
        .iter()
        .filter(|m| path.starts_with(&m.point))
        // `max_by_key` keeps the last of equals: the mount on top.
        .max_by_key(|m| m.point.components().count())
}

/// udev's escaping of a label in `/dev/disk/by-label` (`\x20` for a space, `\x2f` for `/`).
fn udev_escape(label: &str) -> String {
    let mut out = String::new();
    for c in label.chars() {
        if c.is_ascii_alphanumeric() || "#+-.:=@_".contains(c) || !c.is_ascii() {
            out.push(c);
        } else {
            out.push_str(&format!("\\x{:02x}", c as u32));
        }
    }
    out
}

fn udev_unescape(name: &str) -> String {
    let mut out = Vec::new();
    let b = name.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && b.get(i + 1) == Some(&b'x')
            && let Some(v) = name
                .get(i + 2..i + 4)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The device a pool entry names, if that disk is connected: `UUID=...` in `by-uuid`,
/// `LABEL=...` or a bare label in `by-label`.
fn device_of(dir: &Path, entry: &str) -> Option<PathBuf> {
    let candidates = if let Some(uuid) = entry.strip_prefix("UUID=") {
        vec![dir.join("by-uuid").join(uuid)]
    } else {
        let label = entry.strip_prefix("LABEL=").unwrap_or(entry);
        vec![
            dir.join("by-label").join(label),
            dir.join("by-label").join(udev_escape(label)),
        ]
    };
    candidates
        .into_iter()
        .find_map(|p| std::fs::canonicalize(p).ok())
}

/// What the disk directory calls a device: its label, else `UUID=...`.
fn name_of(dir: &Path, device: &Path) -> Option<String> {
    for (sub, prefix) in [("by-label", ""), ("by-uuid", "UUID=")] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for e in entries.flatten() {
            if std::fs::canonicalize(e.path()).is_ok_and(|d| d == device) {
                return Some(format!(
                    "{prefix}{}",
                    udev_unescape(&e.file_name().to_string_lossy())
                ));
            }
        }
    }
    None
}

/// Which disk is mounted at a pool target's path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attachment {
    /// This disk of the pool (the entry as the pool names it).
    Disk(String),
    /// No disk is mounted there.
    NotAttached,
    /// A disk that is not in the pool is mounted there: its label, UUID or device.
    Unknown(String),
}

/// Identifies the disk mounted at `path` among the pool's entries.
pub fn identify(pool: &[String], path: &Path) -> Result<Attachment> {
    let table = mountinfo();
    let text = std::fs::read_to_string(&table).map_err(|e| {
        Error::local(
            &table,
            "cannot read the mount table to find which disk is attached",
            e,
        )
    })?;
    let mounts = parse_mounts(&text);
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let Some(mount) = mount_of(&mounts, &path) else {
        return Ok(Attachment::NotAttached);
    };
    let dir = disk_dir();
    let source =
        std::fs::canonicalize(&mount.source).unwrap_or_else(|_| PathBuf::from(&mount.source));
    for entry in pool {
        if device_of(&dir, entry).is_some_and(|d| d == source) {
            return Ok(Attachment::Disk(entry.clone()));
        }
    }
    if mount.point == path {
        Ok(Attachment::Unknown(
            name_of(&dir, &source).unwrap_or_else(|| mount.source.clone()),
        ))
    } else {
        Ok(Attachment::NotAttached)
    }
}

/// For a pool target (named `target`, with the disks of `pool`), the disk of the pool mounted at `path`; `None` for a target without a
/// pool. No disk, or a disk not in the pool, is an error that names the target and says what
/// to do: nothing may be read from or written to the target then.
pub fn attached(target: &str, pool: &[String], path: &Path) -> Result<Option<String>> {
    if pool.is_empty() {
        return Ok(None);
    }
    let names = pool.join(", ");
    match identify(pool, path)? {
        Attachment::Disk(d) => Ok(Some(d)),
        Attachment::NotAttached => Err(Error::NotFound(format!(
            "{target}: no disk of the pool ({names}) is mounted at {}; attach one",
            path.display()
        ))),
        Attachment::Unknown(label) => Err(Error::NotFound(format!(
            "{target}: the disk mounted at {} is \"{label}\", which is not in the pool ({names}); nothing is written to an unknown disk: attach a disk of the pool, or add \"{label}\" to pool in targets/{target}.toml",
            path.display()
        ))),
    }
}

/// Whether `path` (or, if it does not exist, its nearest existing ancestor) is on a filesystem
/// mounted below the root: some directory from it up to `/` is on another device than its
/// parent. An unmounted NAS share leaves its mount point, an empty directory on the root
/// filesystem.
pub fn on_mounted_filesystem(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(abs) = std::path::absolute(path) else {
        return false;
    };
    let mut here = abs.as_path();
    let mut dev = None;
    loop {
        match (std::fs::metadata(here), dev) {
            (Ok(m), Some(d)) if m.dev() != d => return true,
            (Ok(m), _) => dev = Some(m.dev()),
            (Err(_), _) => {}
        }
        match here.parent() {
            Some(up) => here = up,
            None => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_mount_point_holds_a_path() {
        let text = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
                    40 22 8:17 / /media/fire\\040safe rw,relatime shared:5 - vfat /dev/sdb1 rw\n\
                    41 22 0:40 / /media rw - tmpfs tmpfs rw\n";
        let mounts = parse_mounts(text);
        assert_eq!(mounts.len(), 3);
        let m = mount_of(&mounts, Path::new("/media/fire safe/firesafe")).unwrap();
        assert_eq!(m.source, "/dev/sdb1");
        assert_eq!(
            mount_of(&mounts, Path::new("/media/other")).unwrap().source,
            "tmpfs"
        );
        assert_eq!(
            mount_of(&mounts, Path::new("/srv")).unwrap().source,
            "/dev/sda1"
        );
        // /media/firesafe is not below /media/fire (whole components only).
        assert_eq!(
            mount_of(&mounts, Path::new("/media/fire")).unwrap().source,
            "tmpfs"
        );
    }

    #[test]
    fn udev_label_escapes_round_trip() {
        assert_eq!(udev_escape("FIRESAFE A"), "FIRESAFE\\x20A");
        assert_eq!(udev_unescape("FIRESAFE\\x20A"), "FIRESAFE A");
        assert_eq!(udev_unescape("FIRESAFE-B"), "FIRESAFE-B");
    }
}
