//! Hard links and symlinks, restored after the files: a hard link needs the file it links to
//! in place, and symlinks come last so that no file is ever written through one.
//!
//! Both are placed the same way ([`place_link`]): what is at the destination is compared with
//! the link (the same link is left alone, a differing entry stays unless `overwrite`), the link
//! is made under a temporary name, the old entry is kept aside when asked, and the link is
//! renamed into place, so an existing entry is replaced only by a link that exists.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::destination::{Existing, kept_name};
use super::write;
use super::{Context, PlanEntry, RestoreOptions, RestoreReport, Step};
use crate::format::tree::{Name, Node};

/// A link to make.
enum Link<'a> {
    /// A hard link to the file restored at this (absolute) path.
    Hard(&'a Path),
    /// A symlink, as the snapshot recorded it.
    Symbolic { target: &'a Name, node: &'a Node },
}

/// Restores each hard link, unless the file it links to failed or was left alone because it
/// differs (then it is not the snapshot's, and nothing is linked to it).
pub(super) fn restore_hardlinks(
    ctx: &Context,
    hardlinks: &[(PlanEntry, PathBuf)],
    left_different: &HashSet<PathBuf>,
    report: &mut RestoreReport,
) {
    let failed: HashSet<PathBuf> = report.failed.iter().map(|(p, _)| p.clone()).collect();
    for (link, first) in hardlinks {
        let dest = ctx.to.join(&link.rel);
        if left_different.contains(first) {
            report.skipped.push(dest);
            continue;
        }
        if failed.contains(first) {
            report.failed.push((
                link.rel.clone(),
                format!("it is a hard link to {}, which failed", first.display()),
            ));
            continue;
        }
        let original = ctx.to.join(first);
        place_link(ctx, &link.rel, dest, Link::Hard(&original), report);
    }
}

/// Restores each symlink.
pub(super) fn restore_symlinks(ctx: &Context, symlinks: &[PlanEntry], report: &mut RestoreReport) {
    for s in symlinks {
        let target = s.node.target.as_ref().expect("checked by Tree::decode");
        let link = Link::Symbolic {
            target,
            node: &s.node,
        };
        place_link(ctx, &s.rel, ctx.to.join(&s.rel), link, report);
    }
}

/// The dry-run steps for the links.
pub(super) fn plan_links(
    ctx: &Context,
    hardlinks: &[(PlanEntry, PathBuf)],
    symlinks: &[PlanEntry],
    report: &mut RestoreReport,
) {
    // A new or empty destination holds nothing yet (and a new one is not there to look in).
    let state = |dest: &Path, target: Option<&Name>, first: Option<&Path>| match ctx.fresh {
        true => Existing::Absent,
        false => link_state(dest, target, first),
    };
    for (link, first) in hardlinks {
        let dest = ctx.to.join(&link.rel);
        let state = state(&dest, None, Some(&ctx.to.join(first)));
        report.steps.push(link_step(dest, state, ctx.options));
    }
    for s in symlinks {
        let dest = ctx.to.join(&s.rel);
        let state = state(&dest, s.node.target.as_ref(), None);
        report.steps.push(link_step(dest, state, ctx.options));
    }
}

/// Puts `link` at `dest` (planned as `rel`), and records what happened: made under a temporary
/// name and renamed into place, the old entry kept aside first when asked.
fn place_link(ctx: &Context, rel: &Path, dest: PathBuf, link: Link, report: &mut RestoreReport) {
    let state = match &link {
        Link::Hard(original) => link_state(&dest, None, Some(original)),
        Link::Symbolic { target, .. } => link_state(&dest, Some(target), None),
    };
    let Some(keep) = link_decision(state, &dest, ctx.options, report) else {
        return;
    };
    let temp = dest.with_file_name(format!(
        ".firesafe-partial-link-{:08x}",
        rand::random::<u32>()
    ));
    let made = make_link(&link, &temp, ctx.as_root, &mut report.warnings)
        .and_then(|()| may_replace(&link, &dest, state, keep.as_deref()))
        .and_then(|()| {
            write::keep_aside(&dest, keep.as_deref())?;
            write::rename(&temp, &dest)
        });
    match made {
        Ok(()) => {
            report.links += 1;
            if let Some(k) = keep {
                report.kept.push((dest, k));
            }
        }
        Err(e) => {
            let _ = write::remove_file(&temp);
            let what = match link {
                Link::Hard(_) => "hard link",
                Link::Symbolic { .. } => "symlink",
            };
            report
                .failed
                .push((rel.to_path_buf(), format!("{what} not created: {e}")));
        }
    }
}

/// Makes the link at `temp`; a symlink gets its owner and time there.
fn make_link(
    link: &Link,
    temp: &Path,
    as_root: bool,
    warnings: &mut Vec<String>,
) -> std::io::Result<()> {
    match link {
        Link::Hard(original) => write::hard_link(original, temp),
        Link::Symbolic { target, node } => {
            write::symlink(target, temp)?;
            write::apply_owner(temp, node, as_root, warnings);
            let _ = write::set_mtime(temp, node);
            Ok(())
        }
    }
}

/// Whether the link may go over what is at `dest` now: not over something that appeared there
/// during the restore, and a symlink not over a directory it is not to keep aside.
fn may_replace(
    link: &Link,
    dest: &Path,
    state: Existing,
    keep: Option<&Path>,
) -> std::io::Result<()> {
    let appeared = |what: &str| {
        Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("{what} of that name appeared during the restore"),
        ))
    };
    match (link, write::stat_at(dest)) {
        (Link::Symbolic { .. }, Ok(m)) if m.is_dir() && keep.is_none() => Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "a directory of that name exists",
        )),
        (Link::Hard(_), Ok(_)) if state == Existing::Absent => appeared("a file"),
        (Link::Symbolic { .. }, Ok(_)) if state == Existing::Absent => appeared("something"),
        _ => Ok(()),
    }
}

/// What is at the destination of a link: the same link (a symlink to `target`, or a hard link
/// to `first`), nothing, or something else. Looked at through [`write::stat_at`], never
/// through a link.
fn link_state(dest: &Path, target: Option<&Name>, first: Option<&Path>) -> Existing {
    let m = match write::stat_at(dest) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Existing::Absent,
        Err(_) => return Existing::Differs,
        Ok(m) => m,
    };
    let same = match (target, first) {
        (Some(t), _) => {
            m.is_symlink() && write::read_link(dest).is_ok_and(|l| l.as_os_str() == t.as_os())
        }
        (None, Some(first)) => write::stat_at(first).is_ok_and(|f| f.file_id() == m.file_id()),
        (None, None) => false,
    };
    if same {
        Existing::Same
    } else {
        Existing::Differs
    }
}

/// What to do with a link's destination: `None` to leave it (the same link is there, or a
/// differing entry that is not to be replaced), else the name to keep a replaced entry under.
fn link_decision(
    state: Existing,
    dest: &Path,
    options: &RestoreOptions,
    report: &mut RestoreReport,
) -> Option<Option<PathBuf>> {
    match state {
        Existing::Same => {
            report.unchanged += 1;
            None
        }
        Existing::Differs if !options.overwrite => {
            report.skipped.push(dest.to_path_buf());
            None
        }
        Existing::Differs if options.keep_replaced => Some(Some(kept_name(dest, &options.now))),
        _ => Some(None),
    }
}

/// The dry-run step for a link.
fn link_step(path: PathBuf, state: Existing, options: &RestoreOptions) -> Step {
    match state {
        Existing::Absent => Step::Link { path },
        Existing::Same => Step::Unchanged { path },
        Existing::Differs if !options.overwrite => Step::Skip { path },
        Existing::Differs => Step::Replace {
            kept: options
                .keep_replaced
                .then(|| kept_name(&path, &options.now)),
            path,
            bytes: 0,
        },
    }
}
