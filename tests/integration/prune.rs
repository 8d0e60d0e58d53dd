//! `firesafe prune`: retention forgets what it should and nothing else, unused data goes, what
//! remains checks and restores, `--dry-run` changes nothing, append-only targets are left alone,
//! and a prune running at the same time as a backup never loses data either of them needs.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use tempfile::TempDir;

use crate::support::*;

/// A configuration with one target (`store`) on `backend` and one schedule (`s`) backing up one
/// share, keeping only the newest snapshot.
struct Setup {
    dir: TempDir,
    repo_url: String,
}

impl Setup {
    fn new(backend: Backend, target_extra: &str) -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        fs::create_dir_all(root.join("targets")).expect("mkdir");
        fs::create_dir_all(root.join("schedules")).expect("mkdir");
        let (target, repo_url) = match backend {
            Backend::Local => (
                "kind = \"path\"\npath = \"store\"\n".to_string(),
                root.join("store").display().to_string(),
            ),
            Backend::S3 => {
                let bucket = std::env::var("AWS_BUCKET").expect("AWS_BUCKET");
                let prefix = format!("prune-{:016x}", rand::random::<u64>());
                (
                    format!("kind = \"s3\"\nbucket = \"{bucket}\"\nprefix = \"{prefix}\"\n"),
                    format!("s3://{bucket}/{prefix}"),
                )
            }
        };
        fs::write(
            root.join("targets/store.toml"),
            format!("{target}location = \"onsite\"\nmedium = \"nas\"\nrequire_mount = false\n{target_extra}"),
        )
        .expect("write target");
        fs::write(
            root.join("schedules/s.toml"),
            "cron = \"0 2 * * *\"\ntimezone = \"Europe/London\"\ntargets = [\"store\"]\n\
             key_file = \"s.key\"\n\n[[sources]]\nname = \"share\"\npath = \"share\"\n\n\
             [policy]\nmin_copies = 1\nmin_media = 1\nmin_offsite = 0\n\n\
             [retention]\nkeep_last = 1\n",
        )
        .expect("write schedule");
        fs::create_dir_all(root.join("share")).expect("mkdir share");
        Setup { dir, repo_url }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn cmd(&self, args: &[&str]) -> std::process::Command {
        let mut c = firesafe();
        c.args(args)
            .arg("--config-dir")
            .arg(self.root())
            .arg("--state-dir")
            .arg(self.root().join("state"));
        c
    }

    fn run(&self, init: bool) -> Output {
        let mut args = vec!["run", "s"];
        if init {
            args.push("--init");
        }
        self.cmd(&args).output().expect("run")
    }

    fn prune(&self, extra: &[&str]) -> Output {
        let mut args = vec!["prune", "s"];
        args.extend_from_slice(extra);
        self.cmd(&args).output().expect("prune")
    }

    fn repo(&self, args: &[&str]) -> Output {
        firesafe()
            .arg("--repo")
            .arg(&self.repo_url)
            .args(args)
            .env("FIRESAFE_KEY_FILE", self.root().join("s.key"))
            .output()
            .expect("firesafe")
    }

    fn target(&self) -> firesafe::store::target::Target {
        let location = firesafe::store::target::Location::parse(&self.repo_url).expect("location");
        firesafe::store::target::Target::open(
            "store",
            &location,
            &firesafe::store::target::TargetOptions::default(),
            false,
        )
        .expect("open target")
    }

    /// Every object's key and size.
    fn objects(&self) -> BTreeMap<String, u64> {
        let t = self.target();
        block_on(async {
            t.list("")
                .await
                .expect("list")
                .into_iter()
                .filter(|l| !l.key.starts_with("tmp/"))
                .map(|l| (l.key, l.size))
                .collect()
        })
    }

    fn share(&self) -> PathBuf {
        self.root().join("share")
    }

    /// Checks every byte and restores the newest snapshot, comparing it with the share.
    fn assert_intact(&self, what: &str) {
        let out = self.repo(&["check", "--read-data"]);
        assert_success(&out, &format!("{what}: check --read-data"));
        let to = self
            .root()
            .join(format!("restored-{}", rand::random::<u32>()));
        let out = self.repo(&[
            "restore",
            "latest",
            "--source",
            "share",
            "--to",
            to.to_str().expect("utf-8"),
        ]);
        assert_success(&out, &format!("{what}: restore"));
        assert_same_tree(&self.share(), &to.join("share"));
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn prune_forgets_old_snapshots_and_deletes_only_unused_data() {
    for backend in backends() {
        let s = Setup::new(backend, "");
        // Kept across every snapshot: one file; replaced each time: another.
        write(&s.share().join("kept.bin"), &noise(1, 3_000_000));
        write(&s.share().join("changing.bin"), &noise(2, 3_000_000));
        assert_success(&s.run(true), "first run");
        write(&s.share().join("changing.bin"), &noise(3, 3_000_000));
        assert_success(&s.run(false), "second run");
        let before = s.objects();
        let snapshots_before = before
            .keys()
            .filter(|k| k.starts_with("snapshots/"))
            .count();
        assert_eq!(snapshots_before, 2, "{backend:?}");

        // A dry run says what would go and changes nothing.
        let out = s.prune(&["--dry-run"]);
        assert_success(&out, "prune --dry-run");
        let text = stdout(&out);
        assert!(
            text.contains("would forget") && text.contains("would delete"),
            "{text}"
        );
        assert_eq!(
            s.objects(),
            before,
            "{backend:?}: --dry-run changed the target"
        );
        // Which packs share chunks of both files depends on the order the readers finish, so a
        // pack of changing.bin may also hold some of kept.bin and stay, partly unused.
        let plan = s.prune(&["--dry-run", "--json"]);
        assert_success(&plan, "prune --dry-run --json");
        let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).expect("json");
        let unused_kept = plan[0]["report"]["bytes_unused_in_kept_packs"]
            .as_u64()
            .expect("bytes_unused_in_kept_packs");

        let out = s.prune(&[]);
        assert_success(&out, "prune");
        let after = s.objects();
        let text = stdout(&out);
        assert!(text.contains("forget "), "{text}");
        assert_eq!(
            after.keys().filter(|k| k.starts_with("snapshots/")).count(),
            1,
            "{backend:?}: {text}"
        );
        assert_eq!(
            after.keys().filter(|k| k.starts_with("forgotten/")).count(),
            1
        );
        let data = |m: &BTreeMap<String, u64>| -> u64 {
            m.iter()
                .filter(|(k, _)| k.starts_with("data/"))
                .map(|(_, v)| v)
                .sum()
        };
        // The first version of changing.bin (3 MB of noise) is gone, but for what shares a pack
        // with kept.bin; everything else stays.
        let freed = data(&before) - data(&after);
        assert!(
            (2_900_000..3_500_000).contains(&(freed + unused_kept)),
            "{backend:?}: freed {freed} bytes, {unused_kept} unused kept\n{text}"
        );
        assert!(
            !after.keys().any(|k| k.starts_with("locks/")),
            "prune left its lock behind"
        );
        s.assert_intact("after prune");

        // A second prune has nothing left to do.
        let out = s.prune(&[]);
        assert_success(&out, "second prune");
        assert!(stdout(&out).contains("deleted 0 packs"), "{}", stdout(&out));

        // The next backup after a prune still deduplicates against what stayed, and restores.
        write(&s.share().join("new.txt"), b"after the prune");
        let out = s.run(false);
        assert_success(&out, "run after prune");
        assert!(stdout(&out).contains("2 unchanged"), "{}", stdout(&out));
        s.assert_intact("backup after prune");
    }
}

#[test]
fn append_only_targets_are_not_pruned_without_the_flag() {
    let s = Setup::new(Backend::Local, "append_only = true\n");
    write(&s.share().join("a.bin"), &noise(4, 500_000));
    assert_success(&s.run(true), "first run");
    write(&s.share().join("a.bin"), &noise(5, 500_000));
    assert_success(&s.run(false), "second run");
    let before = s.objects();
    let out = s.prune(&[]);
    assert_success(&out, "prune");
    assert!(
        stdout(&out).contains("skipped: append-only"),
        "{}",
        stdout(&out)
    );
    assert_eq!(s.objects(), before);

    let out = s.prune(&["--include-append-only"]);
    assert_success(&out, "prune --include-append-only");
    assert_eq!(
        s.objects()
            .keys()
            .filter(|k| k.starts_with("snapshots/"))
            .count(),
        1
    );
    s.assert_intact("after pruning an append-only target");
}

/// Writes a lock object as another host's backup would.
fn foreign_lock(s: &Setup, refreshed: chrono::DateTime<chrono::Utc>) -> String {
    let key = format!("locks/{:064x}", rand::random::<u128>());
    let body = serde_json::json!({
        "kind": "shared",
        "operation": "backup",
        "host": "another-server",
        "pid": 4242,
        "started": refreshed,
        "refreshed": refreshed,
    });
    let t = s.target();
    block_on(t.put_replace(&key, serde_json::to_vec(&body).expect("json").into()))
        .expect("write lock");
    key
}

#[test]
fn a_running_backup_elsewhere_stops_a_prune_and_a_stale_one_does_not() {
    for backend in backends() {
        let s = Setup::new(backend, "");
        write(&s.share().join("a.bin"), &noise(6, 400_000));
        assert_success(&s.run(true), "first run");
        write(&s.share().join("a.bin"), &noise(7, 400_000));
        assert_success(&s.run(false), "second run");

        let live = foreign_lock(&s, chrono::Utc::now());
        let before = s.objects();
        let out = s.prune(&[]);
        assert_exit(&out, 1, "prune while another host backs up");
        let text = stdout(&out);
        assert!(
            text.contains("NOT PRUNED") && text.contains("another-server"),
            "{text}"
        );
        assert_eq!(
            s.objects(),
            before,
            "{backend:?}: a refused prune changed something"
        );

        // A lock that says it was refreshed an hour ago, but that the store saw written just
        // now (a holder whose clock is behind): still live.
        let t = s.target();
        block_on(t.delete(&live)).expect("delete");
        let old = foreign_lock(&s, chrono::Utc::now() - chrono::Duration::hours(1));
        assert_exit(&s.prune(&[]), 1, "prune with a lock written just now");
        if backend == Backend::Local {
            // The store's time says an hour ago too: its holder is gone. (An S3 object's time
            // cannot be set back, so this part runs on a directory.)
            let file = s.root().join("store").join(&old);
            set_mtime(&file, chrono::Utc::now().timestamp() - 3600, 0);
            let out = s.prune(&[]);
            assert_success(&out, "prune with a stale lock");
            s.assert_intact("after prune past a stale lock");
        }
    }
}

#[test]
fn prune_and_backup_at_the_same_time_never_lose_data() {
    for backend in backends() {
        let s = Setup::new(backend, "");
        // Enough data that a backup takes a while; a part of it changes every round, so every
        // round leaves a snapshot to forget and packs to delete while others are reused.
        for i in 0..24 {
            write(
                &s.share().join(format!("stable-{i}.bin")),
                &noise(100 + i, 2_000_000),
            );
        }
        write(&s.share().join("round.bin"), &noise(0, 4_000_000));
        assert_success(&s.run(true), "first run");

        let mut refused = 0;
        // (prune starts first?, how long before the other starts); a delay of u64::MAX starts
        // the prune as soon as the backup's lock appears on the target, so that at least one
        // round meets a running backup however loaded the machine is.
        let rounds = [
            (false, u64::MAX),
            (false, 0u64),
            (false, 50),
            (false, 400),
            (true, 0),
            (true, 20),
        ];
        for (round, (prune_first, delay_ms)) in rounds.into_iter().enumerate() {
            let round = round as u64 + 1;
            write(&s.share().join("round.bin"), &noise(round, 4_000_000));
            write(
                &s.share().join(format!("stable-{}.bin", round % 24)),
                &noise(1000 + round, 2_000_000),
            );
            // A backup from another machine: it shares no local lock with this prune, only the
            // target.
            let mut backup = firesafe();
            backup
                .arg("--repo")
                .arg(&s.repo_url)
                .arg("backup")
                .arg(s.share())
                // Read all 52 MB every time, so that the backup lasts long enough to meet a prune.
                .args(["--source", "share", "--force-read"])
                .env("FIRESAFE_KEY_FILE", s.root().join("s.key"))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            let mut prune = s.cmd(&["prune", "s"]);
            prune
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            let (first, second) = if prune_first {
                (&mut prune, &mut backup)
            } else {
                (&mut backup, &mut prune)
            };
            let first = first.spawn().expect("spawn");
            if delay_ms == u64::MAX {
                let t = s.target();
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
                while !block_on(t.list("locks"))
                    .expect("list locks")
                    .iter()
                    .any(|_| true)
                {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "the backup never took its lock"
                    );
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
            } else {
                std::thread::sleep(std::time::Duration::from_millis(delay_ms));
            }
            let second = second.output().expect("run");
            let first = first.wait_with_output().expect("wait");
            let (backup, prune) = if prune_first {
                (second, first)
            } else {
                (first, second)
            };
            assert_success(&backup, &format!("{backend:?} round {round}: backup"));
            eprintln!(
                "{backend:?} round {round}: prune exit {:?}: {}",
                prune.status.code(),
                stdout(&prune).lines().next().unwrap_or_default()
            );
            match prune.status.code() {
                Some(0) => {}
                Some(1) => {
                    assert!(
                        stdout(&prune).contains("is in use: backup"),
                        "{backend:?} round {round}: {}",
                        stdout(&prune)
                    );
                    refused += 1;
                }
                other => panic!(
                    "{backend:?} round {round}: prune exited {other:?}: {}{}",
                    stdout(&prune),
                    String::from_utf8_lossy(&prune.stderr)
                ),
            }
            s.assert_intact(&format!("{backend:?} round {round}"));
        }
        // At least one prune really met a running backup (the first round makes sure of it).
        assert!(refused >= 1, "{backend:?}: no prune overlapped a backup");
        let out = s.prune(&[]);
        assert_success(&out, "final prune");
        s.assert_intact("after the final prune");
        eprintln!(
            "{backend:?}: {refused} of {} prunes met a running backup",
            rounds.len()
        );
    }
}

#[test]
fn a_lost_index_object_does_not_let_prune_delete_the_packs_it_listed() {
    let s = Setup::new(Backend::Local, "");
    // Unlisted packs of any age may go.
    let schedule = s.root().join("schedules/s.toml");
    let text = fs::read_to_string(&schedule).expect("schedule");
    fs::write(&schedule, format!("{text}grace_hours = 0\n")).expect("write schedule");
    write(&s.share().join("kept.bin"), &noise(21, 2_000_000));
    write(&s.share().join("changing.bin"), &noise(22, 1_000_000));
    assert_success(&s.run(true), "first run");
    let first_index: Vec<String> = s
        .objects()
        .into_keys()
        .filter(|k| k.starts_with("index/"))
        .collect();
    write(&s.share().join("changing.bin"), &noise(23, 1_000_000));
    assert_success(&s.run(false), "second run");
    // The index object listing kept.bin's pack is lost; the newest snapshot still uses it.
    let t = s.target();
    for k in &first_index {
        block_on(t.delete(k)).expect("delete index object");
    }
    let out = s.prune(&[]);
    assert_success(&out, "prune");
    assert!(
        stdout(&out).contains("firesafe repair s"),
        "{}",
        stdout(&out)
    );
    assert_success(&s.cmd(&["repair", "s"]).output().expect("repair"), "repair");
    s.assert_intact("prune after a lost index object, then repair");
}

/// Every file under a local target (but locks), with its size.
fn tree_of(root: &Path) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            let key = p.strip_prefix(root).expect("inside").display().to_string();
            if key.starts_with("locks") || key.starts_with("tmp") {
                continue;
            }
            if p.is_dir() {
                todo.push(p);
            } else {
                out.insert(key, fs::metadata(&p).expect("stat").len());
            }
        }
    }
    out
}

/// The shipped example keeping one snapshot per share, after three runs that leave data to
/// prune.
fn example_to_prune(offsite_extra: &str) -> TempDir {
    let dir = example();
    let sched = dir.path().join("schedules/nightly.toml");
    let text = fs::read_to_string(&sched).expect("read");
    fs::write(
        &sched,
        text.replace("keep_daily = 14", "keep_last = 1\nkeep_daily = 0"),
    )
    .expect("write");
    let offsite = dir.path().join("targets/offsite.toml");
    let text = fs::read_to_string(&offsite).expect("read");
    fs::write(&offsite, format!("{text}{offsite_extra}")).expect("write");
    let run = |args: &[&str]| {
        firesafe()
            .args(args)
            .arg("--config-dir")
            .arg(dir.path())
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .output()
            .expect("run")
    };
    assert_success(&run(&["run", "nightly", "--init"]), "first run");
    write(
        &dir.path().join("demo/shares/admin/big.bin"),
        &noise(77, 3_000_000),
    );
    assert_success(&run(&["run", "nightly"]), "second run");
    fs::remove_file(dir.path().join("demo/shares/admin/big.bin")).expect("remove");
    assert_success(&run(&["run", "nightly"]), "third run");
    dir
}

fn in_dir(dir: &Path, args: &[&str]) -> Output {
    firesafe()
        .args(args)
        .arg("--config-dir")
        .arg(dir)
        .arg("--state-dir")
        .arg(dir.join("state"))
        .output()
        .expect("firesafe")
}

#[test]
fn every_target_holds_the_same_objects_after_a_prune_and_the_next_run() {
    let dir = example_to_prune("");
    let (nas, offsite) = (dir.path().join("demo/nas"), dir.path().join("demo/offsite"));
    let before = tree_of(&nas).values().sum::<u64>();
    let out = in_dir(dir.path(), &["prune", "nightly"]);
    assert_success(&out, "prune");
    assert!(
        stdout(&out).contains("target offsite: given nas's new objects and the same deletions"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        tree_of(&nas),
        tree_of(&offsite),
        "the targets differ after the prune"
    );
    let after = tree_of(&nas).values().sum::<u64>();
    assert!(
        before - after > 2_900_000,
        "freed only {} bytes",
        before - after
    );
    assert_success(
        &in_dir(dir.path(), &["run", "nightly"]),
        "run after the prune",
    );
    assert_eq!(
        tree_of(&nas),
        tree_of(&offsite),
        "the targets differ after the next run"
    );
    assert!(tree_of(&nas).values().sum::<u64>() < before - 2_900_000);
    for target in [&nas, &offsite] {
        let out = firesafe()
            .arg("--repo")
            .arg(target)
            .args(["check", "--read-data"])
            .env("FIRESAFE_KEY_FILE", dir.path().join("demo/firesafe.key"))
            .output()
            .expect("check");
        assert_success(&out, "check after prune and run");
    }
}

#[test]
fn an_append_only_target_does_not_give_pruned_data_back() {
    let dir = example_to_prune("append_only = true\n");
    let nas = dir.path().join("demo/nas");
    let offsite_before = tree_of(&dir.path().join("demo/offsite"));
    assert_success(&in_dir(dir.path(), &["prune", "nightly"]), "prune");
    let pruned = tree_of(&nas).values().sum::<u64>();
    assert_success(
        &in_dir(dir.path(), &["run", "nightly"]),
        "run after the prune",
    );
    let now = tree_of(&nas).values().sum::<u64>();
    assert!(
        now < pruned + 100_000,
        "the NAS grew from {pruned} to {now} bytes: pruned data came back"
    );
    // Nothing was deleted from the append-only target.
    let offsite = tree_of(&dir.path().join("demo/offsite"));
    assert!(offsite_before.keys().all(|k| offsite.contains_key(k)));
}
