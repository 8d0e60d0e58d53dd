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
struct Garage {
    dir: PathBuf,
    endpoints: Vec<String>,
    bucket: String,
    region: String,
    key_id: String,
    secret: String,
}

fn garage() -> Option<Garage> {
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

    fn script(&self, name: &str, args: &[&str]) {
        let out = Command::new(project_root().join("tests/scripts").join(name))
            .arg(&self.dir)
            .args(args)
            .output()
            .expect("run garage script");
        assert_success(&out, &format!("{name} {}", args.join(" ")));
    }

    /// Stops one node; it starts again when the guard is dropped.
    fn stop_node(&self, node: usize) -> NodeDown<'_> {
        self.script("garage-stop.sh", &["--node", &node.to_string()]);
        NodeDown {
            garage: self,
            node,
            up: false,
        }
    }
}

/// A stopped node, started again by `restart` or, if the test fails first, on drop.
struct NodeDown<'a> {
    garage: &'a Garage,
    node: usize,
    up: bool,
}

impl NodeDown<'_> {
    fn restart(mut self) {
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
    let down = g.stop_node(2);
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
