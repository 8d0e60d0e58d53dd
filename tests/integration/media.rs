//! Rotated removable disks: only a disk of the pool is written, each disk's writes and moves are
//! recorded, the disk off site counts as the offsite copy (as recorded), and an overdue rotation
//! is reported. The disks are faked the way the kernel and udev present them: a mount table
//! (FIRESAFE_MOUNTINFO) and /dev/disk/by-label symlinks to device nodes (FIRESAFE_DISK_DIR).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::support::*;

/// A configuration with the shipped example plus a pool of two disks, and fake disks.
struct Rig {
    dir: tempfile::TempDir,
}

impl Rig {
    fn new() -> Rig {
        let dir = example();
        let root = dir.path();
        fs::create_dir_all(root.join("fakedev")).expect("mkdir");
        fs::create_dir_all(root.join("disk/by-label")).expect("mkdir");
        fs::create_dir_all(root.join("disk/by-uuid")).expect("mkdir");
        for (label, dev) in [
            ("FIRESAFE-A", "sdb1"),
            ("FIRESAFE-B", "sdc1"),
            ("PUPIL-STICK", "sdd1"),
        ] {
            fs::write(root.join("fakedev").join(dev), b"").expect("device node");
            std::os::unix::fs::symlink(
                format!("../../fakedev/{dev}"),
                root.join("disk/by-label").join(label),
            )
            .expect("symlink");
            // What each disk holds while it is unplugged.
            fs::create_dir_all(root.join("shelf").join(dev)).expect("mkdir");
        }
        std::os::unix::fs::symlink("../../fakedev/sdc1", root.join("disk/by-uuid/1234-ABCD"))
            .expect("symlink");
        fs::create_dir(root.join("usb")).expect("mount point");
        fs::write(
            root.join("targets/usb-rotation.toml"),
            "description = \"Rotated USB disks\"\nkind = \"path\"\nlocation = \"offsite\"\nmedium = \"removable-disk\"\npath = \"usb\"\npool = [\"FIRESAFE-A\", \"FIRESAFE-B\"]\nrotate_days = 7\n",
        )
        .expect("write");
        let sched = root.join("schedules/nightly.toml");
        let text = fs::read_to_string(&sched).expect("read").replace(
            "targets = [\"nas\", \"offsite\"]",
            "targets = [\"nas\", \"offsite\", \"usb-rotation\"]",
        );
        fs::write(&sched, text).expect("write");
        let rig = Rig { dir };
        rig.mount(None);
        rig
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn canonical(&self, p: &str) -> PathBuf {
        fs::canonicalize(self.root().join(p)).expect("canonicalize")
    }

    /// Writes the mount table: the root filesystem, and `dev` mounted at usb/ if given.
    fn mount(&self, dev: Option<&str>) {
        let mut table = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/fakeroot rw\n".to_string();
        if let Some(dev) = dev {
            table.push_str(&format!(
                "40 22 8:17 / {} rw,nosuid,nodev,relatime shared:5 - ext4 {} rw\n",
                self.canonical("usb").display(),
                self.canonical(&format!("fakedev/{dev}")).display()
            ));
        }
        fs::write(self.root().join("mountinfo"), table).expect("write");
    }

    /// Plugs a disk in: its contents appear at usb/ and the mount table says so.
    fn plug(&self, dev: &str) {
        fs::remove_dir(self.root().join("usb")).expect("the mount point is empty");
        fs::rename(self.root().join("shelf").join(dev), self.root().join("usb")).expect("plug");
        self.mount(Some(dev));
    }

    fn unplug(&self, dev: &str) {
        self.mount(None);
        fs::rename(self.root().join("usb"), self.root().join("shelf").join(dev)).expect("unplug");
        fs::create_dir(self.root().join("usb")).expect("mount point");
    }

    fn fs(&self, args: &[&str]) -> Output {
        firesafe()
            .env("FIRESAFE_DISK_DIR", self.root().join("disk"))
            .env("FIRESAFE_MOUNTINFO", self.root().join("mountinfo"))
            .env("FIRESAFE_STATE_DIR", self.root().join("state"))
            .env("FIRESAFE_CONFIG_DIR", self.root())
            .env("USER", "technician")
            .env_remove("SUDO_USER")
            .args(args)
            .output()
            .expect("run firesafe")
    }

    fn json(&self, args: &[&str]) -> (i32, serde_json::Value) {
        let out = self.fs(args);
        let value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{args:?}: {e}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code().expect("code"), value)
    }

    fn stdout(out: &Output) -> String {
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

fn source<'a>(status: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    status[0]["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .find(|s| s["source"] == name)
        .expect("source")
}

#[test]
fn a_rotation_of_two_disks() {
    let rig = Rig::new();

    // Disk A attached: the first run writes it and records what it holds.
    rig.plug("sdb1");
    assert_success(&rig.fs(&["run", "nightly", "--init"]), "first run");
    assert!(
        rig.root().join("usb/config").exists(),
        "disk A holds no repository"
    );
    let (code, list) = rig.json(&["media", "list", "--json"]);
    assert_eq!(code, 0, "{list:#}");
    let pool = &list[0];
    assert_eq!(pool["target"], "usb-rotation");
    assert_eq!(pool["attached"], "FIRESAFE-A");
    let a = &pool["disks"][0];
    assert_eq!(a["disk"], "FIRESAFE-A");
    assert_eq!(a["place"], "attached");
    assert!(a["last_written"].is_string(), "{pool:#}");
    assert_eq!(
        a["snapshots"].as_array().expect("held").len(),
        3,
        "{pool:#}"
    );
    assert_eq!(pool["disks"][1]["last_written"], serde_json::Value::Null);
    let text = Rig::stdout(&rig.fs(&["media", "list"]));
    assert!(
        text.contains("FIRESAFE-A")
            && text.contains("attached")
            && text.contains("curriculum: snapshot"),
        "{text}"
    );

    // The status reads disk A, on site while it is plugged in.
    let (code, status) = rig.json(&["status", "nightly", "--json"]);
    assert_eq!(code, 0, "{status:#}");
    let admin = source(&status, "admin");
    let on_a = admin["copies"]
        .as_array()
        .expect("copies")
        .iter()
        .find(|c| c["disk"] == "FIRESAFE-A")
        .expect("a copy on disk A");
    assert_eq!(on_a["location"], "onsite");
    assert_eq!(on_a["as_recorded"], false);
    let held_on_a = on_a["snapshot"].clone();

    // No disk has gone off site for ten days (B left then, a move recorded late): overdue.
    let ten_days_ago = (chrono::Utc::now() - chrono::Duration::days(10)).to_rfc3339();
    let out = rig.fs(&[
        "media",
        "offsite",
        "usb-rotation",
        "FIRESAFE-B",
        "--at",
        &ten_days_ago,
    ]);
    assert_success(&out, "media offsite --at");
    let (code, status) = rig.json(&["status", "nightly", "--json"]);
    assert_eq!(code, 1, "{status:#}");
    let admin = source(&status, "admin");
    assert_eq!(admin["evaluation"]["verdict"], "DEGRADED", "{admin:#}");
    let reasons = admin["evaluation"]["reasons"].to_string();
    assert!(
        reasons.contains(
            "usb-rotation: rotation overdue: no disk has gone off site in 10 days; the policy says every 7 days"
        ),
        "{reasons}"
    );
    assert!(status[0]["media"][0]["warning"].is_string(), "{status:#}");
    let text = Rig::stdout(&rig.fs(&["status", "nightly"]));
    assert!(
        text.contains("rotation overdue") && text.contains("disks of usb-rotation"),
        "{text}"
    );

    // A goes off site: the rotation is up to date, and A's copy counts as the offsite copy.
    rig.unplug("sdb1");
    let out = rig.fs(&[
        "media",
        "offsite",
        "usb-rotation",
        "FIRESAFE-A",
        "--note",
        "to the bursar's safe",
    ]);
    assert_success(&out, "media offsite");
    assert!(
        Rig::stdout(&out).contains("went off site"),
        "{}",
        Rig::stdout(&out)
    );
    let (_, log) = rig.json(&["media", "log", "--json"]);
    let log = log.as_array().expect("log");
    assert_eq!(log.len(), 2);
    assert_eq!(log[1]["disk"], "FIRESAFE-A");
    assert_eq!(log[1]["to"], "offsite");
    assert_eq!(log[1]["who"], "technician");
    assert_eq!(log[1]["note"], "to the bursar's safe");
    let (_, status) = rig.json(&["status", "nightly", "--json"]);
    assert!(status[0]["media"][0]["warning"].is_null(), "{status:#}");
    let admin = source(&status, "admin");
    let recorded = admin["copies"]
        .as_array()
        .expect("copies")
        .iter()
        .find(|c| c["as_recorded"] == true)
        .unwrap_or_else(|| panic!("no copy as recorded: {admin:#}"));
    assert_eq!(recorded["disk"], "FIRESAFE-A");
    assert_eq!(recorded["location"], "offsite");
    assert_eq!(recorded["snapshot"], held_on_a);
    let text = Rig::stdout(&rig.fs(&["status", "nightly"]));
    assert!(
        text.contains("usb-rotation/FIRESAFE-A") && text.contains("as recorded"),
        "{text}"
    );

    // Nothing attached: the run is degraded, names the target, and writes nothing to the bare
    // mount point.
    let out = rig.fs(&["run", "nightly"]);
    assert_exit(&out, 1, "run with no disk attached");
    let text = Rig::stdout(&out);
    assert!(
        text.contains("target usb-rotation: NOT UPDATED")
            && text.contains("no disk of the pool (FIRESAFE-A, FIRESAFE-B) is mounted at")
            && text.contains("attach one")
            && text.contains("degraded"),
        "{text}"
    );
    assert_eq!(
        fs::read_dir(rig.root().join("usb")).expect("usb").count(),
        0
    );

    // A pupil's memory stick at the mount point is refused, by name, and left untouched.
    rig.plug("sdd1");
    let out = rig.fs(&["run", "nightly"]);
    assert_exit(&out, 1, "run with an unknown disk");
    let text = Rig::stdout(&out);
    assert!(
        text.contains("\"PUPIL-STICK\", which is not in the pool (FIRESAFE-A, FIRESAFE-B)"),
        "{text}"
    );
    assert_eq!(
        fs::read_dir(rig.root().join("usb")).expect("usb").count(),
        0
    );
    rig.unplug("sdd1");

    // B comes back and is attached: the next run gives it a full copy of its own.
    let out = rig.fs(&["media", "onsite", "usb-rotation", "FIRESAFE-B"]);
    assert_success(&out, "media onsite");
    rig.plug("sdc1");
    assert_success(&rig.fs(&["run", "nightly"]), "run to disk B");
    assert!(
        rig.root().join("usb/config").exists(),
        "disk B holds no repository"
    );
    let (_, list) = rig.json(&["media", "list", "usb-rotation", "--json"]);
    let disks = list[0]["disks"].as_array().expect("disks");
    assert_eq!(disks[0]["place"], "offsite", "{list:#}");
    assert_eq!(disks[1]["place"], "attached", "{list:#}");
    assert_eq!(disks[1]["snapshots"].as_array().expect("held").len(), 3);
    let (code, status) = rig.json(&["status", "nightly", "--json"]);
    assert_eq!(code, 0, "{status:#}");
    for src in status[0]["sources"].as_array().expect("sources") {
        assert_eq!(src["evaluation"]["verdict"], "OK", "{src:#}");
    }

    // A disk named by UUID is the same disk.
    let toml = rig.root().join("targets/usb-rotation.toml");
    let text = fs::read_to_string(&toml)
        .expect("read")
        .replace("\"FIRESAFE-B\"", "\"UUID=1234-ABCD\"");
    fs::write(&toml, text).expect("write");
    let (_, list) = rig.json(&["media", "list", "--json"]);
    assert_eq!(list[0]["attached"], "UUID=1234-ABCD", "{list:#}");
}

#[test]
fn bad_media_commands_are_named() {
    let rig = Rig::new();
    for (args, expected) in [
        (
            vec!["media", "offsite", "usb", "FIRESAFE-A"],
            "there is no target \"usb\"",
        ),
        (
            vec!["media", "offsite", "nas", "FIRESAFE-A"],
            "target \"nas\" has no disk pool",
        ),
        (
            vec!["media", "onsite", "usb-rotation", "FIRESAFE-Z"],
            "\"FIRESAFE-Z\" is not a disk of target \"usb-rotation\"; its pool is FIRESAFE-A, FIRESAFE-B",
        ),
        (
            vec![
                "media",
                "offsite",
                "usb-rotation",
                "FIRESAFE-A",
                "--at",
                "2999-01-01",
            ],
            "is in the future",
        ),
        (
            vec![
                "media",
                "offsite",
                "usb-rotation",
                "FIRESAFE-A",
                "--at",
                "last tuesday",
            ],
            "is not a time",
        ),
        (
            vec!["media", "list", "nas"],
            "target \"nas\" has no disk pool",
        ),
    ] {
        let out = rig.fs(&args);
        let stderr = assert_exit(&out, 2, &args.join(" "));
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
    }
    assert!(!rig.root().join("state/media/rotation.jsonl").exists());
}

#[test]
fn config_check_names_bad_pools() {
    let rig = Rig::new();
    let targets = rig.root().join("targets");
    fs::write(
        targets.join("cloud-pool.toml"),
        "kind = \"s3\"\nlocation = \"offsite\"\nmedium = \"object-storage\"\nbucket = \"b\"\npool = [\"FIRESAFE-A\"]\n",
    )
    .expect("write");
    fs::write(
        targets.join("blank.toml"),
        "kind = \"path\"\nlocation = \"offsite\"\nmedium = \"removable-disk\"\npath = \"usb\"\npool = [\"FIRESAFE-A\", \"\"]\nrotate_days = 0\n",
    )
    .expect("write");
    fs::write(
        targets.join("empty.toml"),
        "kind = \"path\"\nlocation = \"offsite\"\nmedium = \"removable-disk\"\npath = \"usb\"\npool = []\n",
    )
    .expect("write");
    let out = rig.fs(&["config", "check"]);
    assert_exit(&out, 1, "config check");
    let text = Rig::stdout(&out);
    for expected in [
        "cloud-pool.toml:5:1: key pool: a disk pool is only for kind = \"path\" targets",
        "blank.toml:5:1: key pool: \"\" names no disk",
        "blank.toml:6:1: key rotate_days: rotate_days must be at least 1",
        "empty.toml:5:1: key pool: name at least one disk",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}
