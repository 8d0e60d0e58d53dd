//! A copy counts only when it is really there: a NAS that is not mounted (its mount point empty,
//! or on the server's own disk) is missing, never filled by a run; a copy lacking a pack or an
//! index object its newest snapshot needs is not counted, and names what is missing; repairs
//! bring it back and leave the copies identical.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Output;

use crate::support::*;

fn fs_in(dir: &Path, args: &[&str]) -> Output {
    firesafe()
        .env("FIRESAFE_STATE_DIR", dir.join("state"))
        .args(args)
        .arg("--config-dir")
        .arg(dir)
        .output()
        .expect("run firesafe")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every file under `root` with its length.
fn files(root: &Path) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    if !root.exists() {
        return out;
    }
    let mut todo = vec![root.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            let m = fs::symlink_metadata(&p).expect("meta");
            if m.is_dir() {
                todo.push(p);
            } else {
                out.insert(p.strip_prefix(root).unwrap().display().to_string(), m.len());
            }
        }
    }
    out
}

fn nas_toml(dir: &Path, require_mount: bool) {
    let path = dir.join("targets/nas.toml");
    let toml = fs::read_to_string(&path).expect("nas.toml");
    let kept: Vec<&str> = toml
        .lines()
        .filter(|l| !l.starts_with("require_mount"))
        .collect();
    let mut toml = kept.join("\n");
    if !require_mount {
        toml.push_str("\nrequire_mount = false\n");
    }
    fs::write(&path, toml).expect("write nas.toml");
}

/// The NAS's directory on the server's own disk, with `require_mount` on (as on a school
/// server): `config check` warns, the run is degraded naming the NAS and writes nothing there,
/// status says it is not mounted. An empty NAS directory (require_mount off) is missing too,
/// until `sync --init`; a directory holding another repository is left alone.
#[test]
fn a_nas_that_is_not_mounted_is_missing_and_never_written() {
    let dir = example();
    let d = dir.path();
    assert_success(&fs_in(d, &["run", "nightly", "--init"]), "first run");
    let nas = d.join("demo/nas");
    let before = files(&nas);

    // The temporary directory must be on the root filesystem to stand for an unmounted share;
    // where it is a mount of its own (a tmpfs), that half of the test cannot be made here.
    if firesafe::store::target::disk::on_mounted_filesystem(&nas) {
        eprintln!(
            "{} is on a mounted filesystem: the require_mount half is skipped",
            nas.display()
        );
    } else {
        not_mounted(d, &nas, &before);
    }

    // A plain directory, as meant (require_mount = false), but empty: an unmounted share's
    // mount point. The run must not fill it.
    nas_toml(d, false);
    fs::remove_dir_all(&nas).expect("rm");
    fs::create_dir(&nas).expect("mkdir");
    let out = fs_in(d, &["run", "nightly"]);
    assert_exit(&out, 1, "run with the NAS directory empty");
    let t = text(&out);
    assert!(
        t.contains("target \"nas\" is missing (not mounted?)"),
        "{t}"
    );
    assert!(t.contains("sync nightly --init"), "{t}");
    assert!(
        files(&nas).is_empty(),
        "the empty NAS directory stays empty"
    );
    let status = fs_in(d, &["status"]);
    assert!(
        text(&status).contains("missing (not mounted?)"),
        "{}",
        text(&status)
    );
    assert!(
        !text(&status).contains(" init`"),
        "no advice to make a new repository"
    );
    governors_read_the_nas_is_not_mounted(d);
    // A new, empty disk or share: sync --init makes it a copy.
    assert_success(&fs_in(d, &["sync", "nightly", "--init"]), "sync --init");
    assert_success(&fs_in(d, &["status"]), "status after sync --init");

    // Another repository where the NAS should be: left alone, named.
    fs::remove_dir_all(&nas).expect("rm");
    let other = firesafe()
        .arg("--repo")
        .arg(&nas)
        .args(["init", "--generate-key"])
        .arg(d.join("other.key"))
        .env_remove("FIRESAFE_KEY_FILE")
        .output()
        .expect("init");
    assert_success(&other, "init another repository");
    let stranger = files(&nas);
    let out = fs_in(d, &["run", "nightly"]);
    assert_exit(&out, 1, "run with another repository on the NAS");
    let t = text(&out);
    assert!(
        t.contains("target nas: NOT UPDATED") && t.contains("another repository"),
        "{t}"
    );
    assert!(t.contains("target offsite: received the backup"), "{t}");
    assert_eq!(files(&nas), stranger, "the other repository is not written");
}

/// The report on an unmounted NAS: one plain sentence for the governors that names the copy,
/// the shares and what to do (mount it), not the technician's error with its path, and the
/// runs that took place are not put down to a stopped service.
fn governors_read_the_nas_is_not_mounted(d: &Path) {
    let out = fs_in(d, &["report", "--out", &d.join("report").to_string_lossy()]);
    assert_success(&out, "report");
    let html = fs::read_to_string(d.join("report.html"))
        .unwrap_or_else(|e| panic!("report.html: {e}: {}", text(&out)));
    let plain = html
        .split('<')
        .map(|part| part.split_once('>').map_or(part, |(_, t)| t))
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let page_one = &plain[..plain.find("Incidents and open risks").expect("risks")];
    let risks = &plain[plain.find("Incidents and open risks").expect("risks")
        ..plain.find("Technician's appendix").expect("appendix")];
    let sentence = "The nas copy (on site) was not found: its NAS share looks not mounted, so it does not count for curriculum, admin and staff. The technician should mount the NAS share";
    assert!(page_one.contains(sentence), "{page_one}");
    assert_eq!(risks.matches(sentence).count(), 1, "{risks}");
    for raw in [
        "demo/nas",
        "sync nightly --init",
        "is missing (not mounted?)",
    ] {
        assert!(!page_one.contains(raw), "{raw} on page 1: {page_one}");
        assert!(!risks.contains(raw), "{raw} in the risks: {risks}");
    }
    assert!(
        !page_one.contains("systemctl status firesafe"),
        "the service ran: {page_one}"
    );
    assert!(
        plain.contains("is missing (not mounted?)"),
        "the appendix keeps the error"
    );
}

/// With `require_mount` on, a NAS directory on the server's own disk: `config check` warns, the
/// run is degraded naming the NAS and writes nothing there, and status says it is not mounted.
fn not_mounted(d: &Path, nas: &Path, before: &BTreeMap<String, u64>) {
    nas_toml(d, true);
    let check = fs_in(d, &["config", "check"]);
    assert_success(&check, "config check");
    assert!(
        text(&check).contains("warning: target nas:"),
        "{}",
        text(&check)
    );
    let out = fs_in(d, &["run", "nightly"]);
    assert_exit(&out, 1, "run with the NAS not mounted");
    let t = text(&out);
    assert!(t.contains("target nas") && t.contains("not mounted"), "{t}");
    assert_eq!(&files(nas), before, "nothing written to the NAS directory");
    let status = fs_in(d, &["status"]);
    assert_exit(&status, 1, "status");
    assert!(
        text(&status).contains("missing (not mounted?)"),
        "{}",
        text(&status)
    );
    nas_toml(d, false);
}

fn status_json(d: &Path) -> (i32, serde_json::Value) {
    let out = fs_in(d, &["status", "--json"]);
    let code = out.status.code().expect("code");
    (code, serde_json::from_slice(&out.stdout).expect("json"))
}

/// The copies of `source` that count (have a time), by target.
fn counted(status: &serde_json::Value, source: &str) -> Vec<String> {
    status[0]["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .find(|s| s["source"] == source)
        .expect("source")["copies"]
        .as_array()
        .expect("copies")
        .iter()
        .filter(|c| !c["taken"].is_null())
        .map(|c| c["target"].as_str().expect("target").to_string())
        .collect()
}

/// The largest pack on a local target, and an index object.
fn a_pack(root: &Path) -> String {
    let mut packs: Vec<(u64, String)> = files(root)
        .into_iter()
        .filter(|(k, _)| k.starts_with("data/"))
        .map(|(k, n)| (n, k))
        .collect();
    packs.sort();
    packs.last().expect("a pack").1.clone()
}

/// A pack, then an index object, deleted from the NAS: status stops counting the NAS copy of
/// the share that needs it and names the object; `repair` brings it back, status counts it
/// again, and `verify` finds the copies identical.
#[test]
fn a_copy_counts_only_when_its_data_is_there() {
    let dir = example();
    let d = dir.path();
    assert_success(&fs_in(d, &["run", "nightly", "--init"]), "first run");
    let (code, st) = status_json(d);
    assert_eq!(code, 0, "{st:#}");
    let nas = d.join("demo/nas");

    let pack = a_pack(&nas);
    fs::remove_file(nas.join(&pack)).expect("rm pack");
    let out = fs_in(d, &["status"]);
    assert_exit(&out, 1, "status with a pack missing");
    let t = text(&out);
    assert!(t.contains("NOT COUNTED") && t.contains(&pack), "{t}");
    assert!(t.contains("firesafe repair nightly"), "{t}");
    let (_, st) = status_json(d);
    let lost: Vec<&str> = ["curriculum", "admin", "staff"]
        .into_iter()
        .filter(|s| !counted(&st, s).contains(&"nas".to_string()))
        .collect();
    assert!(!lost.is_empty(), "some share needs the pack: {st:#}");
    let repair = fs_in(d, &["repair", "nightly"]);
    assert_success(&repair, "repair");
    assert_success(&fs_in(d, &["status"]), "status after repair");

    let index = files(&nas)
        .into_keys()
        .find(|k| k.starts_with("index/"))
        .expect("an index object");
    fs::remove_file(nas.join(&index)).expect("rm index");
    let out = fs_in(d, &["status"]);
    assert_exit(&out, 1, "status with an index object missing");
    let t = text(&out);
    assert!(t.contains("NOT COUNTED"), "{t}");
    assert!(
        t.contains(&format!("{index} (held by offsite)")),
        "the lost index object is named: {t}"
    );
    assert_success(&fs_in(d, &["repair", "nightly"]), "repair");
    assert_success(&fs_in(d, &["status"]), "status after the second repair");
    let verify = fs_in(d, &["verify", "nightly"]);
    assert_success(&verify, "verify");
    assert!(!text(&verify).contains("missing here"), "{}", text(&verify));
    assert!(
        text(&verify).contains("copies compared: nas and offsite hold the same objects"),
        "{}",
        text(&verify)
    );
    assert_eq!(
        files(&nas),
        files(&d.join("demo/offsite")),
        "identical copies"
    );
}

/// An index object lost on every copy: repair indexes the packs again on the first copy and
/// carries the new index object to the other, so that verify then finds them identical.
#[test]
fn a_reindex_is_carried_to_every_copy() {
    let dir = example();
    let d = dir.path();
    assert_success(&fs_in(d, &["run", "nightly", "--init"]), "first run");
    let (nas, offsite) = (d.join("demo/nas"), d.join("demo/offsite"));
    let index = files(&nas)
        .into_keys()
        .find(|k| k.starts_with("index/"))
        .expect("an index object");
    fs::remove_file(nas.join(&index)).expect("rm");
    fs::remove_file(offsite.join(&index)).expect("rm");
    let repair = fs_in(d, &["repair", "nightly"]);
    let t = text(&repair);
    assert!(t.contains("copied to offsite"), "{t}");
    let verify = fs_in(d, &["verify", "nightly"]);
    assert_success(&verify, "verify after the reindex");
    assert!(!text(&verify).contains("missing here"), "{}", text(&verify));
    assert!(
        text(&verify).contains("copies compared: nas and offsite hold the same objects"),
        "{}",
        text(&verify)
    );
    let indexes = |root: &Path| -> Vec<String> {
        files(root)
            .into_keys()
            .filter(|k| k.starts_with("index/"))
            .collect()
    };
    assert_eq!(indexes(&nas), indexes(&offsite));
    assert_success(&fs_in(d, &["status"]), "status");
}
