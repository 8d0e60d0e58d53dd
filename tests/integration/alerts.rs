//! After each run: a Prometheus metrics file, and a ping to a monitoring URL (success, or /fail
//! when the run is degraded). The ping goes to a real HTTP listener on 127.0.0.1.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use crate::support::*;

/// A minimal HTTP server on 127.0.0.1 that records request lines and answers 200.
fn listener() -> (String, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in l.incoming().take(20) {
            let Ok(mut s) = stream else { continue };
            let mut first = String::new();
            let mut r = BufReader::new(s.try_clone().expect("clone"));
            let _ = r.read_line(&mut first);
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
            }
            log.lock().expect("lock").push(first.trim().to_string());
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nOK");
        }
    });
    (format!("http://{addr}/ping/school-nightly"), seen)
}

#[test]
fn metrics_and_pings_follow_each_run() {
    let dir = example();
    let (url, seen) = listener();
    let sched = dir.path().join("schedules/nightly.toml");
    let mut text = fs::read_to_string(&sched).expect("read");
    text.push_str(&format!(
        "\n[alerts]\nping_url = \"{url}\"\nmetrics_file = \"metrics/firesafe.prom\"\n"
    ));
    fs::write(&sched, text).expect("write");
    let state = dir.path().join("state");
    let run = |args: &[&str]| {
        firesafe()
            .arg("run")
            .args(args)
            .arg("--config-dir")
            .arg(dir.path())
            .arg("--state-dir")
            .arg(&state)
            .output()
            .expect("run")
    };
    assert_success(&run(&["nightly", "--init"]), "first run");
    let metrics =
        fs::read_to_string(dir.path().join("metrics/firesafe.prom")).expect("metrics file");
    assert!(
        metrics.contains("firesafe_run_outcome{schedule=\"nightly\",outcome=\"complete\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("firesafe_verdict{schedule=\"nightly\",source=\"admin\"} 0"),
        "{metrics}"
    );
    assert!(metrics.contains("firesafe_copy_newest_timestamp_seconds{schedule=\"nightly\",source=\"curriculum\",target=\"offsite\"}"), "{metrics}");
    assert_eq!(
        seen.lock().expect("lock").as_slice(),
        ["GET /ping/school-nightly HTTP/1.1"]
    );

    // The offsite copy goes away: the run is degraded and the ping says so.
    fs::rename(dir.path().join("demo/offsite"), dir.path().join("away")).expect("move");
    let out = run(&["nightly"]);
    assert_exit(&out, 1, "degraded run");
    assert_eq!(
        seen.lock().expect("lock").last().map(String::as_str),
        Some("GET /ping/school-nightly/fail HTTP/1.1")
    );
    let metrics =
        fs::read_to_string(dir.path().join("metrics/firesafe.prom")).expect("metrics file");
    assert!(
        metrics.contains("outcome=\"degraded\"} 1")
            && metrics.contains("firesafe_verdict{schedule=\"nightly\",source=\"admin\"} 2"),
        "{metrics}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("school-nightly"),
        "the ping URL was printed: {stderr}"
    );
}
