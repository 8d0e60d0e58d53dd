//! A download that drops halfway (the link to the offsite store fails mid-pack) is resumed
//! where it stopped, not started again and not given up: a restore after a fire comes back
//! whole over a flaky line.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use crate::support::*;

/// tests/scripts/cutting-proxy.py in front of the suite's S3 server: it cuts the first large
/// download after 1 MiB.
struct CuttingProxy {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn cutting_proxy(dir: &std::path::Path) -> CuttingProxy {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL");
    let upstream = endpoint
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse::<u16>().ok())
        .unwrap_or_else(|| panic!("no port in AWS_ENDPOINT_URL {endpoint}"));
    let log = dir.join("proxy.log");
    let python = std::env::var("FIRESAFE_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut child = Command::new(python)
        .arg(project_root().join("tests/scripts/cutting-proxy.py"))
        .arg(upstream.to_string())
        .arg(&log)
        .stdout(Stdio::piped())
        .spawn()
        .expect("cutting-proxy.py");
    let mut ready = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut ready)
        .expect("read");
    let port = ready
        .trim()
        .strip_prefix("ready ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("cutting-proxy.py said {ready:?}"));
    CuttingProxy { child, port, log }
}

#[test]
fn a_download_cut_halfway_is_resumed_where_it_stopped() {
    if !backends().contains(&Backend::S3) {
        eprintln!("skipped: needs FIRESAFE_TEST_S3=1 (tests/run.sh)");
        return;
    }
    // Packs of 4 MiB, so that each pack download is one large GET.
    let repo = Repo::with_args(Backend::S3, &["--pack-size", "4"]);
    let share = repo.path("share");
    let files: Vec<(String, Vec<u8>)> = (0..3)
        .map(|i| (format!("lesson-{i}.mp4"), noise(40 + i, 3_000_000)))
        .collect();
    for (name, bytes) in &files {
        write(&share.join(name), bytes);
    }
    repo.backup(&share, "curriculum");

    let proxy = cutting_proxy(repo.dir.path());
    let to = repo.path("restored");
    let out = repo
        .cmd()
        .args(["restore", "latest", "--source", "curriculum", "--to"])
        .arg(&to)
        .env(
            "AWS_ENDPOINT_URL",
            format!("http://127.0.0.1:{}", proxy.port),
        )
        .output()
        .expect("run");
    let log = std::fs::read_to_string(&proxy.log).unwrap_or_default();
    assert_success(&out, &format!("restore through a link that drops\n{log}"));
    for (name, bytes) in &files {
        let got = std::fs::read(to.join("share").join(name)).expect("restored file");
        assert!(&got == bytes, "{name} differs after the resumed download");
    }
    // The cut happened, and the same object was asked for again from where it stopped.
    let cut = log
        .lines()
        .find(|l| l.starts_with("cut GET "))
        .unwrap_or_else(|| panic!("no download was cut: {log}"));
    let path = cut
        .strip_prefix("cut GET ")
        .and_then(|r| r.split(' ').next())
        .expect("path");
    let resumed = format!("GET {path} range=bytes=1048576-");
    assert!(
        log.lines().any(|l| l.starts_with(&resumed)),
        "the cut download was not resumed at byte 1048576: {log}"
    );
}
