//! A trust's 30 schools on one Garage cluster: each school has its own bucket and key
//! (scripts/garage-schools.sh), its nightly runs go 8 at a time, and one node of the cluster is
//! stopped midway. Every run still completes, `fleet status` with the trust's read-only key
//! still shows every school OK, and when the node is back the cluster is whole again and the
//! trust's view, read through the returned node, is unchanged.
//!
//! Why one node down costs no write: tests/scripts/garage-start.sh runs 3 nodes, each in its
//! own zone, with `replication_factor = 3` and `consistency_mode = "consistent"`. Every object
//! and every metadata entry is then kept on all 3 nodes, and Garage answers a write once a
//! write quorum of them has stored it and a read once a read quorum has answered: in
//! consistent mode the read quorum is ceil(3 / 2) = 2 and the write quorum is 3 + 1 - 2 = 2, so
//! that any read meets the newest write on at least one node. With one node stopped, 2 nodes
//! are left for every partition: both quorums are still met, so every request succeeds, and
//! the stopped node catches up from the others when it returns.
//!
//! What that does not cover is the address the schools use: each school's credentials name one
//! S3 endpoint, node 0's (garage-schools.sh writes the one address given to it, and a target
//! names one endpoint), and a stopped endpoint refuses every request whatever the quorum. So
//! the node stopped here is node 2, never the endpoint; a trust would put the nodes behind one
//! address (a load balancer or DNS) so that no single node is the schools' way in.
//!
//! The cluster is the suite's (FIRESAFE_TEST_GARAGE_*; skipped without it, as in garage.rs),
//! shared with garage.rs's tests: the buckets and keys carry a name of this run's own, and a
//! node is stopped only under the cluster's outage lock.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::garage::{Garage, NodeDown, credentials, firesafe_as, garage};
use crate::support::*;

/// The trust's schools.
const SCHOOLS: usize = 30;
/// Nightly runs at once.
const AT_ONCE: usize = 8;
/// Runs that have finished when the node is stopped.
const BEFORE_OUTAGE: usize = 10;
/// Schools whose runs may start before the node is stopped; the others wait for it.
const FIRST_WAVE: usize = 14;
/// The node stopped: not node 0, the S3 endpoint every school's credentials name.
const STOPPED: usize = 2;

/// One school: its name, its bucket, its configuration directory and its credentials.
struct School {
    name: String,
    bucket: String,
    dir: tempfile::TempDir,
    creds: Vec<(String, String)>,
}

#[test]
fn thirty_schools_back_up_through_a_node_outage_and_the_trust_sees_them_all_ok() {
    let Some(g) = garage() else { return };
    let started = Instant::now();
    let work = tempfile::tempdir().expect("tempdir");
    let w = work.path();
    let tag = format!("{:08x}", rand::random::<u32>());
    let trust_key = format!("trust-{tag}");
    let names: Vec<String> = (1..=SCHOOLS)
        .map(|i| format!("Academy {i:02} {tag}"))
        .collect();
    let buckets = provision(&g, &names, &w.join("credentials"), &trust_key);
    let out = firesafe()
        .args(["fleet", "keygen", "--out"])
        .arg(w.join("trust.key"))
        .output()
        .expect("run firesafe");
    assert_success(&out, "fleet keygen");
    let recipient = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let schools: Vec<School> = names
        .iter()
        .zip(buckets)
        .map(|(name, bucket)| school(name, bucket, &w.join("credentials"), &recipient))
        .collect();
    eprintln!("provisioned {SCHOOLS} schools in {:?}", started.elapsed());

    let (outs, mut down) = nightly_runs(&g, &schools);
    eprintln!("nightly runs done in {:?}", started.elapsed());
    for (s, out) in schools.iter().zip(&outs) {
        assert_run_complete(s, out);
    }

    // The trust's view, with the node still down.
    let trust = credentials(&w.join("credentials").join(format!("{trust_key}.env")));
    let fleet = fleet_toml(w, "fleet.toml", &schools, None);
    assert_all_ok(&fleet_status(&trust, &fleet), &schools, "with a node down");

    // The node returns: connected, every partition on all three nodes again.
    down.restart();
    for node in [0, STOPPED] {
        let h = wait_for_health(&g, node, "the cluster to be whole again", |h| {
            h["status"] == "healthy"
                && h["storageNodes"] == 3
                && h["storageNodesUp"] == 3
                && h["partitionsAllOk"] == h["partitions"]
        });
        assert_eq!(h["connectedNodes"], 3, "node {node}: {h:#}");
    }
    // And the returned node answers for what was written while it was away.
    let fleet = fleet_toml(
        w,
        "fleet-via-returned.toml",
        &schools,
        Some(&g.endpoints[STOPPED]),
    );
    assert_all_ok(
        &fleet_status(&trust, &fleet),
        &schools,
        "read through the returned node",
    );
    drop(down);
    eprintln!("whole test in {:?}", started.elapsed());
}

/// Each school's bucket and key, and the trust's read-only key, made by garage-schools.sh: the
/// first school alone (which makes the trust's key), then the others in 5 batches at once.
/// Returns each school's bucket, from the [[school]] entries the script prints.
fn provision(g: &Garage, names: &[String], out_dir: &Path, trust_key: &str) -> Vec<String> {
    let run = |batch: &[String]| {
        Command::new(project_root().join("scripts/garage-schools.sh"))
            .arg("--cluster")
            .arg(&g.dir)
            .arg("--out")
            .arg(out_dir)
            .args(["--trust-key", trust_key])
            .args(batch)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run scripts/garage-schools.sh")
    };
    let first = run(&names[..1]).wait_with_output().expect("wait");
    let mut outs = vec![first];
    let rest: Vec<_> = names[1..]
        .chunks(names.len().div_ceil(5))
        .map(run)
        .collect();
    outs.extend(
        rest.into_iter()
            .map(|c| c.wait_with_output().expect("wait")),
    );
    let mut listed = Vec::new();
    for out in &outs {
        assert_success(out, "garage-schools.sh");
        let fragment: toml::Value =
            toml::from_str(&String::from_utf8_lossy(&out.stdout)).expect("a TOML fragment");
        for s in fragment["school"].as_array().expect("[[school]]") {
            let name = s["name"].as_str().expect("name").to_string();
            let bucket = s["targets"]["offsite"]["bucket"].as_str().expect("bucket");
            listed.push((name, bucket.to_string()));
        }
    }
    let listed_names: Vec<&str> = listed.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        listed_names, names,
        "one [[school]] entry per school, in order"
    );
    listed.into_iter().map(|(_, b)| b).collect()
}

/// A school's configuration: its site.toml naming the trust, the onsite NAS (a local folder)
/// and its Garage bucket offsite (the target file garage-schools.sh wrote for it), the nightly
/// schedule, and a small share of its own.
fn school(name: &str, bucket: String, creds_dir: &Path, recipient: &str) -> School {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path();
    let slug = bucket.strip_prefix("school-").expect("school-NAME");
    write(
        &p.join("site.toml"),
        format!("school = \"{name}\"\ntrust_recipient = \"{recipient}\"\n").as_bytes(),
    );
    write(
        &p.join("targets/nas.toml"),
        b"kind = \"path\"\nlocation = \"onsite\"\nmedium = \"nas\"\npath = \"nas\"\nrequire_mount = false\n",
    );
    let cloud = fs::read(creds_dir.join(format!("{slug}-cloud.toml"))).expect("cloud.toml");
    write(&p.join("targets/offsite.toml"), &cloud);
    write(
        &p.join("schedules/nightly.toml"),
        b"cron = \"0 2 * * *\"\ntimezone = \"Europe/London\"\n\
          targets = [\"nas\", \"offsite\"]\nkey_file = \"school.key\"\n\n\
          [[sources]]\nname = \"office\"\npath = \"share\"\n\n\
          [policy]\nmin_copies = 2\nmin_media = 2\nmin_offsite = 1\nmax_age_hours = 26\n\
          live_data_counts = false\n",
    );
    let seed = u64::from(name.bytes().map(u32::from).sum::<u32>());
    write(
        &p.join("share/letters/to parents.txt"),
        format!("Dear parents of {name},\n").repeat(40).as_bytes(),
    );
    write(&p.join("share/minutes.txt"), b"governors' minutes\n");
    write(&p.join("share/photos/sports day.jpg"), &noise(seed, 60_000));
    School {
        name: name.to_string(),
        creds: credentials(&creds_dir.join(format!("{slug}.env"))),
        bucket,
        dir,
    }
}

/// Every school's `run nightly --init`, AT_ONCE at a time. Once BEFORE_OUTAGE runs have finished
/// (some may still be running), node STOPPED is stopped, and the schools after FIRST_WAVE start
/// only then. Returns each run's output, and the stopped node.
fn nightly_runs<'g>(g: &'g Garage, schools: &[School]) -> (Vec<Output>, NodeDown<'g>) {
    let next = AtomicUsize::new(0);
    let finished = AtomicUsize::new(0);
    let released = AtomicBool::new(false);
    let run = |s: &School| {
        firesafe_as(&s.creds)
            .args(["run", "nightly", "--init", "--config-dir"])
            .arg(s.dir.path())
            .arg("--state-dir")
            .arg(s.dir.path().join("state"))
            .output()
            .expect("run firesafe")
    };
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..AT_ONCE)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        if i >= schools.len() {
                            return done;
                        }
                        while i >= FIRST_WAVE && !released.load(Ordering::SeqCst) {
                            std::thread::sleep(Duration::from_millis(50));
                        }
                        done.push((i, run(&schools[i])));
                        finished.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        while finished.load(Ordering::SeqCst) < BEFORE_OUTAGE {
            std::thread::sleep(Duration::from_millis(50));
        }
        // The waiting runs go ahead however this ends (a failure here must not leave them
        // waiting for ever).
        let release = Release(&released);
        let down = g.stop_node(STOPPED);
        let at_stop = finished.load(Ordering::SeqCst);
        // Node 0 sees the node gone, and still a write quorum for every partition.
        wait_for_health(g, 0, "node 0 to see the node down", |h| {
            h["status"] == "degraded"
                && h["storageNodesUp"] == 2
                && h["partitionsQuorum"] == h["partitions"]
        });
        drop(release);
        let mut outs: Vec<(usize, Output)> = workers
            .into_iter()
            .flat_map(|w| w.join().expect("a worker panicked"))
            .collect();
        outs.sort_by_key(|(i, _)| *i);
        eprintln!(
            "{at_stop} of {} runs had finished when node {STOPPED} stopped",
            schools.len()
        );
        (outs.into_iter().map(|(_, o)| o).collect(), down)
    })
}

/// Sets the flag when dropped.
struct Release<'a>(&'a AtomicBool);

impl Drop for Release<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn assert_run_complete(s: &School, out: &Output) {
    assert_success(out, &format!("{}'s nightly run", s.name));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("run of schedule nightly: complete") && !stdout.contains("NOT UPDATED"),
        "{}: {stdout}",
        s.name
    );
    let history = fs::read_to_string(s.dir.path().join("state/history.jsonl")).expect("history");
    let runs: Vec<serde_json::Value> = history
        .lines()
        .map(|l| serde_json::from_str(l).expect("a history line"))
        .collect();
    assert_eq!(runs.len(), 1, "{}: {history}", s.name);
    assert_eq!(runs[0]["schedule"], "nightly", "{}: {history}", s.name);
    assert_eq!(runs[0]["outcome"], "complete", "{}: {history}", s.name);
}

/// The trust's fleet.toml over every school's bucket (through `endpoint` when given, else the
/// one in the trust's credentials).
fn fleet_toml(w: &Path, file: &str, schools: &[School], endpoint: Option<&str>) -> PathBuf {
    let mut text = String::from("trust = \"Riverside Academy Trust\"\nkey_file = \"trust.key\"\n");
    for s in schools {
        let out = firesafe()
            .args(["beacon", "key", "--config-dir"])
            .arg(s.dir.path())
            .output()
            .expect("run firesafe");
        assert_success(&out, "beacon key");
        text.push_str(&format!(
            "\n[[school]]\nname = \"{}\"\npublic_key = \"{}\"\n[school.targets.offsite]\n\
             kind = \"s3\"\nbucket = \"{}\"\nprefix = \"firesafe\"\n",
            s.name,
            String::from_utf8_lossy(&out.stdout).trim(),
            s.bucket
        ));
        if let Some(e) = endpoint {
            text.push_str(&format!("endpoint = \"{e}\"\n"));
        }
    }
    let path = w.join(file);
    write(&path, text.as_bytes());
    path
}

fn fleet_status(trust: &[(String, String)], fleet: &Path) -> Output {
    firesafe_as(trust)
        .args(["fleet", "status", "--json", "--fleet"])
        .arg(fleet)
        .output()
        .expect("run firesafe")
}

/// `fleet status --json` says every school is OK, from its own signed beacon, its one share OK
/// with its offsite copy confirmed.
fn assert_all_ok(out: &Output, schools: &[School], when: &str) {
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "fleet status {when}: {e}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(out.status.code(), Some(0), "fleet status {when}: {json:#}");
    let seen = json.as_array().expect("an array");
    assert_eq!(seen.len(), schools.len(), "fleet status {when}: {json:#}");
    for (s, v) in schools.iter().zip(seen) {
        assert_eq!(v["school"], s.name.as_str(), "{when}: {v:#}");
        assert_eq!(v["light"], "OK", "{when}: {v:#}");
        assert_eq!(v["reasons"], serde_json::json!([]), "{when}: {v:#}");
        let b = &v["beacon"];
        assert_eq!(b["school"], s.name.as_str(), "{when}: {v:#}");
        let shares = b["shares"].as_array().expect("shares");
        assert_eq!(shares.len(), 1, "{when}: {v:#}");
        assert_eq!(shares[0]["name"], "office", "{when}: {v:#}");
        assert_eq!(shares[0]["verdict"], "OK", "{when}: {v:#}");
        let offsite = shares[0]["copies"]
            .as_array()
            .expect("copies")
            .iter()
            .find(|c| c["target"] == "offsite")
            .unwrap_or_else(|| panic!("{when}: no offsite copy: {v:#}"));
        assert_eq!(offsite["counted"], true, "{when}: {v:#}");
        assert!(offsite["snapshot"].is_string(), "{when}: {v:#}");
    }
}

/// Node `node`'s view of the cluster (the admin API's GetClusterHealth).
fn health(g: &Garage, node: usize) -> serde_json::Value {
    let nd = g.dir.join(format!("node{node}"));
    let config = fs::read_to_string(nd.join("garage.toml")).expect("garage.toml");
    let token = config
        .lines()
        .find_map(|l| l.strip_prefix("admin_token = "))
        .expect("admin_token")
        .trim_matches('"');
    let url = fs::read_to_string(nd.join("admin-url")).expect("admin-url");
    let out = Command::new("curl")
        .args(["-sS", "-H"])
        .arg(format!("Authorization: Bearer {token}"))
        .arg(format!("{}/v2/GetClusterHealth", url.trim()))
        .output()
        .expect("run curl");
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

/// Waits (up to 2 minutes) until node `node`'s view of the cluster satisfies `ok`, and returns
/// it; a view that never does is a failure.
fn wait_for_health(
    g: &Garage,
    node: usize,
    what: &str,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let end = Instant::now() + Duration::from_secs(120);
    loop {
        let h = health(g, node);
        if ok(&h) {
            return h;
        }
        assert!(
            Instant::now() < end,
            "waited 2 minutes for {what}; node {node} says: {h:#}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}
