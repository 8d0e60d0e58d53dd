//! A multi-academy trust's offsite target as a distributed object store: a Garage cluster of
//! three nodes on 127.0.0.1, every object on all three (tests/scripts/garage-start.sh, which
//! tests/run.sh runs). With one node stopped, backups, the 3-2-1 verdict and restores carry on
//! through the others. Garage ignores conditional writes, so two `init`s racing on one
//! location must still leave exactly one repository.
//!
//! The cluster comes from the FIRESAFE_TEST_GARAGE_* variables garage-start.sh prints. Without
//! them the tests say so and pass, except under CI, where a missing cluster is a failure.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::*;

/// The running cluster.
pub(crate) struct Garage {
    pub(crate) dir: PathBuf,
    pub(crate) endpoints: Vec<String>,
    bucket: String,
    region: String,
    key_id: String,
    secret: String,
}

pub(crate) fn garage() -> Option<Garage> {
    let var = |name: &str| {
        std::env::var(format!("FIRESAFE_TEST_GARAGE_{name}"))
            .unwrap_or_else(|_| panic!("FIRESAFE_TEST_GARAGE_{name} is not set"))
    };
    if std::env::var_os("FIRESAFE_TEST_GARAGE_ENDPOINT").is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs must test the Garage cluster too: run the suite through tests/run.sh, which starts it"
        );
        eprintln!(
            "note: FIRESAFE_TEST_GARAGE_ENDPOINT is not set, so the Garage cluster tests are skipped (tests/run.sh starts a cluster)"
        );
        return None;
    }
    let endpoints: Vec<String> = var("ENDPOINTS")
        .split_whitespace()
        .map(String::from)
        .collect();
    assert!(
        endpoints.len() >= 3,
        "the Garage tests need a cluster of 3 nodes, not {}",
        endpoints.len()
    );
    Some(Garage {
        dir: var("DIR").into(),
        endpoints,
        bucket: var("BUCKET"),
        region: var("REGION"),
        key_id: var("KEY_ID"),
        secret: var("SECRET"),
    })
}

impl Garage {
    /// `firesafe` with Garage's credentials, through `endpoint` when given. Every other AWS_*
    /// variable (those of the suite's other S3 server) is removed.
    fn firesafe(&self, endpoint: Option<&str>) -> Command {
        let mut c = firesafe();
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("AWS_") {
                c.env_remove(name);
            }
        }
        c.env("AWS_ACCESS_KEY_ID", &self.key_id)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret)
            .env("AWS_REGION", &self.region)
            .env("AWS_ALLOW_HTTP", "true");
        if let Some(e) = endpoint {
            c.env("AWS_ENDPOINT_URL", e);
        }
        c
    }

    pub(crate) fn script(&self, name: &str, args: &[&str]) {
        let out = Command::new(project_root().join("tests/scripts").join(name))
            .arg(&self.dir)
            .args(args)
            .output()
            .expect("run garage script");
        assert_success(&out, &format!("{name} {}", args.join(" ")));
    }

    /// Stops one node; it starts again when the guard is dropped. Tests sharing the cluster
    /// stop a node one at a time (a lock in its directory, held until the guard is dropped):
    /// two nodes down at once would leave no write quorum.
    pub(crate) fn stop_node(&self, node: usize) -> NodeDown<'_> {
        let lock = fs::File::create(self.dir.join("outage.lock")).expect("outage.lock");
        lock.lock().expect("lock outage.lock");
        self.script("garage-stop.sh", &["--node", &node.to_string()]);
        NodeDown {
            garage: self,
            node,
            up: false,
            _lock: lock,
        }
    }
}

/// A stopped node, started again by `restart` or, if the test fails first, on drop. The
/// cluster's outage lock is held until it is dropped.
pub(crate) struct NodeDown<'a> {
    garage: &'a Garage,
    node: usize,
    up: bool,
    _lock: fs::File,
}

impl NodeDown<'_> {
    pub(crate) fn restart(&mut self) {
        self.up = true;
        self.garage
            .script("garage-start.sh", &["--node", &self.node.to_string()]);
    }
}

impl Drop for NodeDown<'_> {
    fn drop(&mut self) {
        if !self.up {
            let _ = Command::new(project_root().join("tests/scripts/garage-start.sh"))
                .arg(&self.garage.dir)
                .args(["--node", &self.node.to_string()])
                .output();
        }
    }
}

/// A trust's configuration: the school's NAS (a local directory) and the trust's Garage
/// cluster offsite, reached through node 0, with one share held to a 2-2-1 policy.
fn trust_config(g: &Garage, prefix: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path();
    write(
        &p.join("targets/nas.toml"),
        b"kind = \"path\"\nlocation = \"onsite\"\nmedium = \"nas\"\npath = \"nas\"\nrequire_mount = false\n",
    );
    write(
        &p.join("targets/offsite.toml"),
        format!(
            "description = \"The trust's object store, spread over three schools\"\n\
             kind = \"s3\"\nlocation = \"offsite\"\nmedium = \"object-storage\"\n\
             bucket = \"{}\"\nprefix = \"{prefix}\"\nendpoint = \"{}\"\nregion = \"{}\"\n",
            g.bucket, g.endpoints[0], g.region
        )
        .as_bytes(),
    );
    write(
        &p.join("schedules/trust.toml"),
        b"cron = \"0 2 * * *\"\ntimezone = \"Europe/London\"\n\
          targets = [\"nas\", \"offsite\"]\nkey_file = \"trust.key\"\n\n\
          [[sources]]\nname = \"curriculum\"\npath = \"shares/curriculum\"\n\n\
          [policy]\nmin_copies = 2\nmin_media = 2\nmin_offsite = 1\nmax_age_hours = 26\n\
          live_data_counts = false\n",
    );
    make_share(&p.join("shares/curriculum"));
    dir
}

fn in_config(g: &Garage, dir: &Path, args: &[&str]) -> Output {
    g.firesafe(None)
        .args(args)
        .arg("--config-dir")
        .arg(dir)
        .arg("--state-dir")
        .arg(dir.join("state"))
        .output()
        .expect("run firesafe")
}

#[test]
fn a_cluster_with_a_node_down_still_backs_up_reports_and_restores() {
    let Some(g) = garage() else { return };
    let prefix = format!("trust-{:016x}", rand::random::<u64>());
    let dir = trust_config(&g, &prefix);
    let p = dir.path();
    let out = in_config(&g, p, &["run", "trust", "--init"]);
    assert_success(&out, "first run");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("run of schedule trust: complete"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // One school's node goes down; the share changes; the next night's run goes ahead.
    let mut down = g.stop_node(2);
    let share = p.join("shares/curriculum");
    write(
        &share.join("year9/new scheme of work.docx"),
        &noise(31, 700_000),
    );
    write(&share.join("year7/worksheet 003.txt"), b"rewritten\n");
    fs::remove_file(share.join("year8/worksheet 001.txt")).expect("rm");
    let out = in_config(&g, p, &["run", "trust"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_success(&out, "run with a node down");
    assert!(
        stdout.contains("run of schedule trust: complete") && !stdout.contains("NOT UPDATED"),
        "{stdout}"
    );

    let out = in_config(&g, p, &["status", "trust", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(0), "{json:#}");
    let source = &json[0]["sources"][0];
    assert_eq!(source["source"], "curriculum", "{json:#}");
    assert_eq!(source["evaluation"]["verdict"], "OK", "{json:#}");
    let copies = source["copies"].as_array().expect("copies");
    assert_eq!(copies.len(), 2, "{json:#}");
    assert_eq!(copies[0]["snapshot"], copies[1]["snapshot"], "{json:#}");

    // The offsite copy alone restores the new snapshot, read through another surviving node.
    let url = format!("s3://{}/{prefix}", g.bucket);
    let to = p.join("restored");
    let out = g
        .firesafe(Some(&g.endpoints[1]))
        .args(["--repo", &url, "restore", "latest"])
        .args(["--source", "curriculum", "--to"])
        .arg(&to)
        .env("FIRESAFE_KEY_FILE", p.join("trust.key"))
        .output()
        .expect("run firesafe");
    assert_success(&out, "restore from the cluster with a node down");
    assert_same_tree(&share, &to.join("curriculum"));

    // The node comes back, and answers for the repository again.
    down.restart();
    let out = g
        .firesafe(Some(&g.endpoints[2]))
        .args(["--repo", &url, "snapshots", "--json"])
        .env("FIRESAFE_KEY_FILE", p.join("trust.key"))
        .output()
        .expect("run firesafe");
    assert_success(&out, "snapshots through the restarted node");
    let snapshots: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(snapshots.as_array().map(Vec::len), Some(2), "{snapshots:#}");
}

#[test]
fn two_concurrent_inits_leave_one_repository() {
    let Some(g) = garage() else { return };
    for round in 0..3 {
        let scratch = tempfile::tempdir().expect("tempdir");
        let url = format!("s3://{}/race-{:016x}", g.bucket, rand::random::<u64>());
        let keys = [scratch.path().join("a.key"), scratch.path().join("b.key")];
        let children: Vec<_> = keys
            .iter()
            .map(|key| {
                g.firesafe(Some(&g.endpoints[0]))
                    .args(["--repo", &url, "init", "--generate-key"])
                    .arg(key)
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("spawn firesafe")
            })
            .collect();
        let outs: Vec<Output> = children
            .into_iter()
            .map(|c| c.wait_with_output().expect("wait"))
            .collect();
        let winners: Vec<usize> = (0..2).filter(|&i| outs[i].status.success()).collect();
        assert_eq!(
            winners.len(),
            1,
            "round {round}: exactly one init must succeed:\n{:?}\n{:?}",
            outs[0],
            outs[1]
        );
        let (won, lost) = (winners[0], 1 - winners[0]);
        let err = assert_exit(&outs[lost], 2, "the init that lost");
        assert!(
            err.contains("already holds a firesafe repository"),
            "round {round}: {err}"
        );

        let with = |key: &Path, args: &[&str]| {
            g.firesafe(Some(&g.endpoints[0]))
                .args(["--repo", &url])
                .args(args)
                .env("FIRESAFE_KEY_FILE", key)
                .output()
                .expect("run firesafe")
        };
        // The winner's key opens the repository, which holds only the winner's envelope.
        let out = with(&keys[won], &["key", "list", "--json"]);
        assert_success(&out, "key list");
        let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(
            list.as_array().map(Vec::len),
            Some(1),
            "round {round}: {list:#}"
        );
        assert_exit(
            &with(&keys[lost], &["snapshots"]),
            2,
            "the losing key opens nothing",
        );
        let share = scratch.path().join("share");
        write(&share.join("letter.txt"), b"dear parents\n");
        let out = g
            .firesafe(Some(&g.endpoints[0]))
            .args(["--repo", &url, "backup"])
            .arg(&share)
            .args(["--source", "office"])
            .env("FIRESAFE_KEY_FILE", &keys[won])
            .output()
            .expect("run firesafe");
        assert_success(&out, "backup with the winner's key");
        let out = with(&keys[won], &["snapshots", "--json"]);
        assert_success(&out, "snapshots");
        let snaps: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(snaps.as_array().map(Vec::len), Some(1), "{snaps:#}");
    }
}

/// The `KEY=value` lines of one of scripts/garage-schools.sh's credential files.
pub(crate) fn credentials(path: &Path) -> Vec<(String, String)> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{} is mode {mode:o}", path.display());
    fs::read_to_string(path)
        .expect("read the credentials")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("not KEY=value: {l}"));
            (k.to_string(), v.to_string())
        })
        .collect()
}

pub(crate) fn credential<'a>(creds: &'a [(String, String)], name: &str) -> &'a str {
    creds
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} in {creds:?}"))
}

/// `firesafe` with these credentials alone (every other AWS_* variable removed).
pub(crate) fn firesafe_as(creds: &[(String, String)]) -> Command {
    let mut c = firesafe();
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("AWS_") {
            c.env_remove(name);
        }
    }
    c.envs(creds.iter().map(|(k, v)| (k, v)));
    c
}

/// Whether firesafe's error is the store refusing the key (403), rather than anything else.
fn refused(err: &str) -> bool {
    err.contains("AccessDenied") || err.contains("403 Forbidden")
}

/// A signed S3 request (curl's SigV4) with these credentials: the HTTP status and the body.
fn s3_request(creds: &[(String, String)], method: &str, path: &str, body: &str) -> (u16, String) {
    let mut c = Command::new("curl");
    c.args(["-sS", "-X", method, "-w", "\n%{http_code}", "--aws-sigv4"])
        .arg(format!("aws:amz:{}:s3", credential(creds, "AWS_REGION")))
        .arg("--user")
        .arg(format!(
            "{}:{}",
            credential(creds, "AWS_ACCESS_KEY_ID"),
            credential(creds, "AWS_SECRET_ACCESS_KEY")
        ))
        .args(["-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"]);
    if method == "PUT" {
        c.args(["--data-binary", body]);
    }
    let out = c
        .arg(format!("{}/{path}", credential(creds, "AWS_ENDPOINT_URL")))
        .output()
        .expect("run curl");
    assert_success(&out, &format!("curl {method} {path}"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').expect("curl's status line");
    (
        status.trim().parse().expect("an HTTP status"),
        body.to_string(),
    )
}

#[test]
fn each_school_has_its_own_bucket_and_key_and_the_trust_only_reads() {
    let Some(g) = garage() else { return };
    // Names of this run's own, so that a cluster used before holds none of their buckets.
    let tag = format!("{:08x}", rand::random::<u32>());
    let names = [
        format!("Ash Primary {tag}"),
        format!("Beech Academy {tag}"),
        format!("St. Cedar's {tag}"),
    ];
    let slugs = [
        format!("ash-primary-{tag}"),
        format!("beech-academy-{tag}"),
        format!("st-cedar-s-{tag}"),
    ];
    let scratch = tempfile::tempdir().expect("tempdir");
    let s = scratch.path();
    let out_dir = s.join("credentials");
    let script = project_root().join("scripts/garage-schools.sh");
    let run = |args: &[&str]| {
        Command::new(&script)
            .arg("--cluster")
            .arg(&g.dir)
            .arg("--out")
            .arg(&out_dir)
            .args(args)
            .output()
            .expect("run scripts/garage-schools.sh")
    };
    let first = run(&names.iter().map(String::as_str).collect::<Vec<_>>());
    assert_success(&first, "garage-schools.sh");

    // The fleet.toml fragment names each school's bucket.
    let fragment: toml::Value =
        toml::from_str(&String::from_utf8_lossy(&first.stdout)).expect("a TOML fragment");
    let listed = fragment["school"].as_array().expect("[[school]]");
    assert_eq!(listed.len(), 3, "{fragment:#?}");
    for ((school, name), slug) in listed.iter().zip(&names).zip(&slugs) {
        assert_eq!(school["name"].as_str(), Some(name.as_str()), "{school:#?}");
        let offsite = &school["targets"]["offsite"];
        assert_eq!(offsite["kind"].as_str(), Some("s3"), "{school:#?}");
        assert_eq!(
            offsite["bucket"].as_str(),
            Some(format!("school-{slug}").as_str()),
            "{school:#?}"
        );
        assert_eq!(offsite["prefix"].as_str(), Some("firesafe"), "{school:#?}");
    }
    // Each school's target file is one firesafe accepts, on its own bucket.
    let cloud =
        fs::read_to_string(out_dir.join(format!("{}-cloud.toml", slugs[0]))).expect("cloud");
    let target: toml::Value = toml::from_str(&cloud).expect("TOML");
    assert_eq!(
        target["bucket"].as_str(),
        Some(format!("school-{}", slugs[0]).as_str())
    );
    assert_eq!(target["location"].as_str(), Some("offsite"));
    write(&s.join("school/targets/offsite.toml"), cloud.as_bytes());
    let out = firesafe()
        .args(["config", "check", "--config-dir"])
        .arg(s.join("school"))
        .output()
        .expect("run firesafe");
    assert_success(&out, "config check of the school's target");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 target (offsite)"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let creds = |file: &str| credentials(&out_dir.join(format!("{file}.env")));
    let (a, b, trust) = (creds(&slugs[0]), creds(&slugs[1]), creds("trust-read"));
    assert_eq!(credential(&a, "AWS_ENDPOINT_URL"), g.endpoints[0]);
    assert_ne!(
        credential(&a, "AWS_ACCESS_KEY_ID"),
        credential(&b, "AWS_ACCESS_KEY_ID")
    );
    let repo = |slug: &str| format!("s3://school-{slug}/firesafe");

    // School A backs up into its own bucket with its own key.
    let a_key = s.join("a.key");
    let out = firesafe_as(&a)
        .args(["--repo", &repo(&slugs[0]), "init", "--generate-key"])
        .arg(&a_key)
        .output()
        .expect("run firesafe");
    assert_success(&out, "school A's init in its own bucket");
    let share = s.join("share");
    write(&share.join("letter.txt"), b"dear parents\n");
    let out = firesafe_as(&a)
        .args(["--repo", &repo(&slugs[0]), "backup"])
        .arg(&share)
        .args(["--source", "office"])
        .env("FIRESAFE_KEY_FILE", &a_key)
        .output()
        .expect("run firesafe");
    assert_success(&out, "school A's backup");
    // School B has a repository of its own.
    let b_key = s.join("b.key");
    let out = firesafe_as(&b)
        .args(["--repo", &repo(&slugs[1]), "init", "--generate-key"])
        .arg(&b_key)
        .output()
        .expect("run firesafe");
    assert_success(&out, "school B's init in its own bucket");

    // School A's key opens neither school B's bucket nor school C's.
    let out = firesafe_as(&a)
        .args(["--repo", &repo(&slugs[1]), "snapshots"])
        .env("FIRESAFE_KEY_FILE", &b_key)
        .output()
        .expect("run firesafe");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && refused(&err),
        "school A's key read school B's repository: {out:?}"
    );
    let out = firesafe_as(&a)
        .args(["--repo", &repo(&slugs[2]), "init", "--generate-key"])
        .arg(s.join("c.key"))
        .output()
        .expect("run firesafe");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && refused(&err),
        "school A's key wrote to school C's bucket: {out:?}"
    );
    let (status, body) = s3_request(&a, "GET", &format!("school-{}?list-type=2", slugs[1]), "");
    assert_eq!(status, 403, "school A listed school B's bucket: {body}");
    assert!(body.contains("not allowed for this key"), "{body}");
    // The same request form is accepted where the key may write (so each 403 is the key's).
    let (status, body) = s3_request(&a, "PUT", &format!("school-{}/probe", slugs[0]), "probe");
    assert_eq!(status, 200, "{body}");

    // The trust's key lists every school's snapshots, and writes and deletes nothing.
    let (status, listing) = s3_request(
        &trust,
        "GET",
        &format!(
            "school-{}?list-type=2&prefix=firesafe%2Fsnapshots%2F",
            slugs[0]
        ),
        "",
    );
    assert_eq!(status, 200, "the trust's listing of school A: {listing}");
    let snapshot = listing
        .split("<Key>")
        .nth(1)
        .and_then(|k| k.split("</Key>").next())
        .unwrap_or_else(|| panic!("no snapshot in school A's listing: {listing}"))
        .to_string();
    assert!(snapshot.starts_with("firesafe/snapshots/"), "{snapshot}");
    for slug in &slugs[1..] {
        let (status, body) = s3_request(&trust, "GET", &format!("school-{slug}?list-type=2"), "");
        assert_eq!(status, 200, "the trust's listing of school-{slug}: {body}");
    }
    let (status, body) = s3_request(
        &trust,
        "PUT",
        &format!("school-{}/firesafe/snapshots/forged", slugs[0]),
        "forged",
    );
    assert_eq!(status, 403, "the trust's key wrote to school A: {body}");
    assert!(body.contains("not allowed for this key"), "{body}");
    let (status, body) = s3_request(
        &trust,
        "DELETE",
        &format!("school-{}/{snapshot}", slugs[0]),
        "",
    );
    assert_eq!(
        status, 403,
        "the trust's key deleted school A's snapshot: {body}"
    );
    let out = firesafe_as(&a)
        .args(["--repo", &repo(&slugs[0]), "snapshots", "--json"])
        .env("FIRESAFE_KEY_FILE", &a_key)
        .output()
        .expect("run firesafe");
    assert_success(&out, "school A's snapshots");
    let snaps: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(snaps.as_array().map(Vec::len), Some(1), "{snaps:#}");

    // Run again, from a list file: the same keys, the same files, the same fragment.
    let before: Vec<(PathBuf, Vec<u8>)> = {
        let mut files: Vec<_> = fs::read_dir(&out_dir)
            .expect("read the credentials directory")
            .map(|e| e.expect("entry").path())
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|p| {
                let bytes = fs::read(&p).expect("read");
                (p, bytes)
            })
            .collect()
    };
    assert_eq!(before.len(), 7, "{before:?}");
    let list = s.join("schools.txt");
    write(
        &list,
        format!(
            "# the trust's schools\n{}\n\n  {}\n{}\n",
            names[0], names[1], names[2]
        )
        .as_bytes(),
    );
    let second = run(&["--schools", list.to_str().expect("utf-8 path")]);
    assert_success(&second, "garage-schools.sh run again");
    assert_eq!(
        String::from_utf8_lossy(&second.stdout),
        String::from_utf8_lossy(&first.stdout)
    );
    for (path, bytes) in &before {
        assert!(
            fs::read(path).expect("read") == *bytes,
            "{} changed on the second run",
            path.display()
        );
    }
    assert_eq!(fs::read_dir(&out_dir).expect("read").count(), before.len());
    let out = firesafe_as(&creds(&slugs[0]))
        .args(["--repo", &repo(&slugs[0]), "snapshots"])
        .env("FIRESAFE_KEY_FILE", &a_key)
        .output()
        .expect("run firesafe");
    assert_success(&out, "school A's snapshots after the second run");

    // Without a cluster to reach, one line says what to do.
    let out = Command::new(&script)
        .args(["--config"])
        .arg(s.join("no-such-garage.toml"))
        .arg("--garage")
        .arg(
            fs::read_to_string(g.dir.join("garage-bin"))
                .expect("garage-bin")
                .trim(),
        )
        .arg("--out")
        .arg(&out_dir)
        .arg("Oak Primary")
        .output()
        .expect("run scripts/garage-schools.sh");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("no Garage configuration") && err.contains("-c "),
        "{err}"
    );
}
