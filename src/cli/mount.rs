//! `mount`: snapshots as read-only folders (FUSE), from `--repo` or a schedule's copies.

use std::path::PathBuf;

use clap::Args;
use firesafe::Result;
use firesafe::store::blobs::{BlobReader, Copies, load_all};
use firesafe::store::index::Index;
use firesafe::store::repo::Repository;
use firesafe::store::snapshot::Listed;

use super::Outcome;
use super::args::{ConfigDir, open_copies, pick};

/// The `mount` command's long help.
pub(super) const HELP: &str =
    "Needs /dev/fuse and fusermount (Debian: apt-get install fuse3); without them it says so
and exits with status 2. The view stays until unmounted (fusermount -u DIR) or Ctrl-C.

EXAMPLES:
  firesafe --repo /mnt/nas/firesafe mount curriculum /mnt/snapshots
  firesafe --repo /mnt/nas/firesafe mount 1a2b3c4d /mnt/snapshots
  firesafe --repo /mnt/nas/firesafe mount all /mnt/snapshots";

#[derive(Args, Debug)]
pub(super) struct MountArgs {
    /// A source (every snapshot of it), one snapshot (id, `latest`, SOURCE@DATE), or `all`.
    #[arg(value_name = "SNAPSHOT_OR_SOURCE")]
    what: String,
    /// An empty directory to mount the view on.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// Read from a schedule's targets instead of --repo, the first first (as `restore --schedule`).
    #[arg(long, value_name = "NAME")]
    schedule: Option<String>,
    #[command(flatten)]
    config: ConfigDir,
}

pub(super) async fn mount_cmd(url: Option<&str>, a: MountArgs) -> Result<Outcome> {
    firesafe::ops::mount::available()?;
    let repos = open_copies(url, a.schedule.as_deref(), &a.config).await?;
    let (catalog, index) = load_all(&repos).await?;
    let s = &a.what;
    let selected: Vec<Listed> = if s == "all" {
        catalog.snapshots.clone()
    } else if catalog.snapshots.iter().any(|l| &l.snapshot.source == s) {
        catalog
            .snapshots
            .iter()
            .filter(|l| &l.snapshot.source == s)
            .cloned()
            .collect()
    } else {
        vec![pick(&catalog, s, None, None)?.clone()]
    };
    // The view lives until the process ends.
    let repos: &'static [Repository] = Box::leak(repos.into_boxed_slice());
    let index: &'static Index = Box::leak(Box::new(index));
    let copies = Copies::new(repos.iter().collect()).expect("at least one copy");
    let reader = BlobReader::with_copies(copies, index, 256 << 20);
    let fs = firesafe::ops::mount::SnapshotFs::new(reader, &selected);
    println!(
        "mounted {} read-only at {}; unmount with `fusermount -u {}` or Ctrl-C",
        firesafe::plan::words::count_s(selected.len() as u64, "snapshot"),
        a.dir.display(),
        a.dir.display()
    );
    let stop = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("signal handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    firesafe::ops::mount::serve(fs, &a.dir, stop).await?;
    Ok(Outcome::Success)
}
