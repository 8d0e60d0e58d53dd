//! Damage is never built on: a pack damaged at its own size (a flipped bit, an overwrite) is
//! found by a check, a verification or the backup that reads it, marked, and the next backup
//! stores its data again, so that `restore latest` works; on several targets a run replaces the
//! damaged copy from an intact one.

use std::fs;
use std::path::Path;
use std::process::Output;

use firesafe::format::crypto::Unlock;
use firesafe::format::pack::BlobKind;
use firesafe::store::index::Index;
use firesafe::store::repo::Repository;

use crate::support::*;

/// The packs of `kind` in the repository, largest first.
pub(crate) fn packs_of(repo: &Repo, kind: BlobKind) -> Vec<String> {
    let key = fs::read_to_string(&repo.key).expect("key");
    let unlock = Unlock::parse_identity_file(&key).expect("identity");
    let mut packs: Vec<(u64, String)> = block_on(async {
        let r = Repository::open(repo.target(), &unlock)
            .await
            .expect("open");
        let loaded = Index::load(&r).await.expect("index");
        loaded
            .index
            .packs
            .iter()
            .filter(|p| p.kind == kind)
            .map(|p| (p.size, firesafe::store::repo::pack_key(&p.id)))
            .collect()
    });
    packs.sort();
    packs.reverse();
    packs.into_iter().map(|(_, k)| k).collect()
}

/// Flips one byte in the middle of the object: same size, wrong content.
pub(crate) fn flip(bytes: &mut [u8]) {
    let n = bytes.len() / 2;
    bytes[n] ^= 0x40;
}

/// Overwrites the object with other bytes of the same length.
fn overwrite(bytes: &mut [u8]) {
    let other = noise(99, bytes.len());
    bytes.copy_from_slice(&other);
}

fn mark_of(pack: &str) -> String {
    format!("damaged/{}", pack.rsplit('/').next().expect("name"))
}

fn backup(repo: &Repo, share: &Path) -> (Output, serde_json::Value) {
    let out = repo
        .cmd()
        .arg("backup")
        .arg(share)
        .args(["--source", "admin"])
        .output()
        .expect("run");
    let json: serde_json::Value =
        serde_json::from_str(&repo.ok(&["snapshots", "--json"])).expect("json");
    let last = json.as_array().expect("array").last().expect("one").clone();
    (out, last)
}

fn share(repo: &Repo) -> std::path::PathBuf {
    let share = repo.path("admin");
    write(&share.join("finance/budget 2026.xlsx"), &noise(11, 700_000));
    write(
        &share.join("finance/notes.txt"),
        "notes\n".repeat(2000).as_bytes(),
    );
    write(&share.join("letters/parents.docx"), &noise(12, 200_000));
    for i in 0..30 {
        write(
            &share.join(format!("pupils/{i:04}/work.txt")),
            &noise(i, 3_000),
        );
    }
    share
}

/// A damaged data pack, found by `check --read-data`: marked, the next backup stores its data
/// again and restores; the mark makes the pack a note once nothing depends on it, and prune
/// deletes it with its mark.
fn data_pack_found_by_check(backend: Backend, damage: fn(&mut [u8])) {
    let repo = Repo::new(backend);
    let share = share(&repo);
    repo.backup(&share, "admin");
    let pack = packs_of(&repo, BlobKind::Data)[0].clone();
    let mut bytes = repo.get(&pack);
    let size = bytes.len();
    damage(&mut bytes);
    repo.replace(&pack, bytes);

    // Before a check, nothing can tell: the backup references the pack as it did.
    let out = repo.run(&["check", "--read-data"]);
    assert_exit(&out, 1, "check --read-data finds the damage");
    assert!(
        repo.keys_under("damaged").contains(&mark_of(&pack)),
        "check marks {pack}: {:?}",
        repo.keys_under("damaged")
    );

    let (out, last) = backup(&repo, &share);
    assert_success(&out, "backup after the check");
    let stored = last["stats"]["bytes_stored"].as_u64().expect("stored") as usize;
    assert!(
        stored * 10 >= size * 9,
        "the pack was {size} bytes; the backup stored only {stored} again"
    );
    let to = repo.path("restored");
    assert_success(&repo.restore("latest", &to), "restore latest");
    assert_same_tree(&share, &to.join("admin"));
    // The first snapshot reads the data from the new pack too.
    let first = repo.path("first");
    let json: serde_json::Value =
        serde_json::from_str(&repo.ok(&["snapshots", "--json"])).expect("json");
    let id = json[0]["short_id"].as_str().expect("id").to_string();
    assert_success(&repo.restore(&id, &first), "restore the first snapshot");
    assert_same_tree(&share, &first.join("admin"));

    // Every blob of the damaged pack is stored again: a note, not a finding.
    let out = repo.run(&["check"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_success(&out, "check after healing");
    assert!(
        text.contains(&pack) && text.contains("stored again"),
        "{text}"
    );
    // Prune deletes the damaged pack and its mark.
    prune_keeping_all(&repo);
    let keys = repo.keys_under("data");
    assert!(!keys.contains(&pack), "prune deleted {pack}");
    assert!(
        repo.keys_under("damaged").is_empty(),
        "the mark went with the pack"
    );
    assert_success(&repo.run(&["check", "--read-data"]), "check after prune");
}

/// A prune that forgets nothing: it only deletes the packs nothing needs.
fn prune_keeping_all(repo: &Repo) {
    let key = fs::read_to_string(&repo.key).expect("key");
    let unlock = Unlock::parse_identity_file(&key).expect("identity");
    block_on(async {
        let r = Repository::open(repo.target(), &unlock)
            .await
            .expect("open");
        let options = firesafe::ops::prune::PruneOptions {
            retention: firesafe::plan::retention::Retention {
                last: 100,
                ..Default::default()
            },
            sources: vec!["admin".into()],
            timezone: chrono_tz::Europe::London,
            grace: chrono::Duration::hours(24),
            object_lock: None,
            now: chrono::Utc::now(),
        };
        firesafe::ops::prune::prune(&r, &options)
            .await
            .expect("prune");
    });
}

#[test]
fn a_flipped_byte_in_a_data_pack_is_stored_again_after_check() {
    for b in backends() {
        data_pack_found_by_check(b, flip);
    }
}

#[test]
fn a_same_size_overwrite_of_a_data_pack_is_stored_again_after_check() {
    data_pack_found_by_check(Backend::Local, overwrite);
}

/// A damaged tree pack is met by the next backup itself, reading the parent's trees: it says
/// so, marks the pack, stores the trees again, and the new snapshot restores.
fn tree_pack_met_by_backup(backend: Backend, damage: fn(&mut [u8])) {
    let repo = Repo::new(backend);
    let share = share(&repo);
    repo.backup(&share, "admin");
    let trees = packs_of(&repo, BlobKind::Tree);
    assert!(!trees.is_empty());
    for pack in &trees {
        let mut bytes = repo.get(pack);
        damage(&mut bytes);
        repo.replace(pack, bytes);
    }
    let (out, last) = backup(&repo, &share);
    assert_success(&out, "backup with damaged parent trees");
    let err = String::from_utf8_lossy(&out.stderr);
    // The backup meets the root's pack (below it, it cannot know what the parent held) and
    // names and marks it.
    let met: Vec<&String> = trees
        .iter()
        .filter(|p| err.contains(&format!("pack {p} is damaged")))
        .collect();
    assert!(!met.is_empty(), "the backup names a damaged pack: {err}");
    for pack in met {
        assert!(repo.keys_under("damaged").contains(&mark_of(pack)));
    }
    // Every file was read again (the walk that met the damage could not trust the parent), and
    // what it stored was new.
    assert!(
        last["stats"]["bytes_read"].as_u64() >= Some(1_000_000),
        "{last:#}"
    );
    assert!(last["stats"]["packs_added"].as_u64() >= Some(1), "{last:#}");
    let to = repo.path("restored");
    assert_success(&repo.restore("latest", &to), "restore latest");
    assert_same_tree(&share, &to.join("admin"));
    // The next backup builds on the new snapshot: no warning, nothing read again.
    let (out, last) = backup(&repo, &share);
    assert_success(&out, "third backup");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("damaged"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(last["stats"]["files_new"].as_u64(), Some(0), "{last:#}");
    assert_eq!(last["stats"]["files_changed"].as_u64(), Some(0), "{last:#}");
}

#[test]
fn a_damaged_tree_pack_is_met_by_the_backup_and_stored_again() {
    for b in backends() {
        tree_pack_met_by_backup(b, flip);
    }
    tree_pack_met_by_backup(Backend::Local, overwrite);
}

fn run(dir: &Path, args: &[&str]) -> Output {
    firesafe()
        .env("FIRESAFE_STATE_DIR", dir.join("state"))
        .args(args)
        .arg("--config-dir")
        .arg(dir)
        .output()
        .expect("run firesafe")
}

/// The packs on a local target whose names start `data/`, largest first.
pub(crate) fn local_packs(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out: Vec<(u64, std::path::PathBuf)> = Vec::new();
    let mut todo = vec![root.join("data")];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push((fs::metadata(&p).expect("meta").len(), p));
            }
        }
    }
    out.sort();
    out.reverse();
    out.into_iter().map(|(_, p)| p).collect()
}

/// `restore latest` of one share from one copy, opened with the schedule's key.
fn restore_from(dir: &Path, target: &str, share: &str, to: &Path) -> Output {
    firesafe()
        .env("FIRESAFE_STATE_DIR", dir.join("state"))
        .env("FIRESAFE_KEY_FILE", dir.join("demo/firesafe.key"))
        .arg("--repo")
        .arg(dir.join("demo").join(target))
        .args(["restore", "latest", "--source", share, "--to"])
        .arg(to)
        .output()
        .expect("run firesafe")
}

/// Two targets: the NAS's packs damaged in place are met or found, the run stores the data again
/// and says so; the offsite's damaged pack, found by `verify`, is replaced by the next run from
/// the NAS; both copies then verify clean and restore.
#[test]
fn damage_on_one_of_several_targets_is_healed_by_the_runs() {
    let dir = example();
    let d = dir.path();
    assert_success(&run(d, &["run", "nightly", "--init"]), "first run");
    // Every pack on the NAS damaged in place (trees and data).
    let nas = d.join("demo/nas");
    for p in local_packs(&nas) {
        let mut bytes = fs::read(&p).expect("read");
        flip(&mut bytes);
        fs::write(&p, bytes).expect("write");
    }
    // The run meets the damaged trees: degraded, named, and the data stored again.
    let out = run(d, &["run", "nightly"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(
        out.status.code(),
        Some(0),
        "a run that met damage is not clean: {text}"
    );
    assert!(text.contains("is damaged"), "{text}");
    // The schedule's verification reads every pack, finds the damaged ones and repairs them
    // from the offsite copy.
    let verify = run(d, &["verify", "nightly", "--read-all"]);
    let vtext = String::from_utf8_lossy(&verify.stdout).into_owned();
    assert!(vtext.contains("repaired from offsite"), "{vtext}");
    assert!(!vtext.contains("not repaired"), "{vtext}");
    assert_success(&verify, "verify --read-all with repair");
    assert_success(&run(d, &["run", "nightly"]), "run after verify");
    for share in ["curriculum", "admin", "staff"] {
        for target in ["nas", "offsite"] {
            let to = d.join(format!("restored-{share}-{target}"));
            assert_success(&restore_from(d, target, share, &to), "restore latest");
            assert_same_tree(&d.join("demo/shares").join(share), &to.join(share));
        }
    }

    // A flipped byte in the offsite copy of a pack: a check of that copy finds and marks it;
    // the next run replaces it from the NAS, and verify is clean on both.
    let offsite = d.join("demo/offsite");
    let victim = local_packs(&offsite)[0].clone();
    let mut bytes = fs::read(&victim).expect("read");
    flip(&mut bytes);
    fs::write(&victim, bytes).expect("write");
    let check = firesafe()
        .env("FIRESAFE_KEY_FILE", d.join("demo/firesafe.key"))
        .arg("--repo")
        .arg(&offsite)
        .args(["check", "--read-data"])
        .output()
        .expect("run firesafe");
    assert_exit(&check, 1, "check of the damaged offsite copy");
    let name = victim
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    assert!(
        offsite.join("damaged").join(&name).exists(),
        "the check marks {name}"
    );
    let out = run(d, &["run", "nightly"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("replaced damaged object"), "{text}");
    assert_success(&run(d, &["prune", "nightly"]), "prune");
    let verify = run(d, &["verify", "nightly", "--read-all"]);
    assert_success(&verify, "verify after the runs healed both copies");
}

/// A pipe in a pack's place on the offsite copy, and another pack truncated there: the next run
/// replaces both with the NAS's intact copies and says so, rather than counting them as there.
#[test]
fn a_run_replaces_what_is_not_the_object_on_another_copy() {
    let dir = example();
    let d = dir.path();
    assert_success(&run(d, &["run", "nightly", "--init"]), "first run");
    let offsite = d.join("demo/offsite");
    let packs = local_packs(&offsite);
    let (piped, truncated) = (&packs[0], &packs[1]);
    fs::remove_file(piped).expect("rm");
    nix::unistd::mkfifo(piped, nix::sys::stat::Mode::from_bits_truncate(0o644)).expect("mkfifo");
    let f = fs::OpenOptions::new()
        .write(true)
        .open(truncated)
        .expect("open");
    f.set_len(100).expect("truncate");
    drop(f);
    let out = run(d, &["run", "nightly"]);
    assert_success(&out, "run");
    let text = String::from_utf8_lossy(&out.stdout);
    for p in [piped, truncated] {
        let rel = p
            .strip_prefix(&offsite)
            .expect("inside")
            .display()
            .to_string();
        assert!(
            text.contains(&format!("replaced damaged object {rel}")),
            "{rel}: {text}"
        );
        let nas = fs::read(d.join("demo/nas").join(&rel)).expect("the NAS copy");
        assert_eq!(fs::read(p).expect("a file now"), nas, "{rel}");
    }
}

/// A pipe in a pack's place on the NAS: `repair` finds it, replaces it with the offsite copy,
/// and every share restores from the NAS again.
#[test]
fn repair_replaces_a_pack_that_is_a_pipe() {
    let dir = example();
    let d = dir.path();
    assert_success(&run(d, &["run", "nightly", "--init"]), "first run");
    let nas = d.join("demo/nas");
    let piped = local_packs(&nas)[0].clone();
    let rel = piped.strip_prefix(&nas).expect("inside").to_path_buf();
    fs::remove_file(&piped).expect("rm");
    nix::unistd::mkfifo(&piped, nix::sys::stat::Mode::from_bits_truncate(0o644)).expect("mkfifo");
    let out = run(d, &["repair", "nightly"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("repaired from offsite"), "{text}");
    assert!(!text.contains("not repaired"), "{text}");
    let meta = fs::symlink_metadata(&piped).expect("there");
    assert!(meta.is_file(), "a plain file again: {text}");
    let offsite = fs::read(d.join("demo/offsite").join(&rel)).expect("the offsite copy");
    assert_eq!(fs::read(&piped).expect("read back"), offsite);
    for share in ["curriculum", "admin", "staff"] {
        let to = d.join(format!("restored-{share}"));
        assert_success(&restore_from(d, "nas", share, &to), "restore from the NAS");
        assert_same_tree(&d.join("demo/shares").join(share), &to.join(share));
    }
}
