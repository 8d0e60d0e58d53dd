//! The scheduler and graceful stops: a missed run runs once at start-up, two runs of a schedule
//! never overlap, and SIGTERM leaves a repository the next run continues from.

use std::fs;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::*;

fn sigterm(child: &std::process::Child) {
    // SAFETY: sending a signal to our own child process.
    let rc = unsafe { nix::libc::kill(child.id() as i32, nix::libc::SIGTERM) };
    assert_eq!(rc, 0, "kill failed");
}

#[test]
fn a_missed_run_runs_once_at_start_up() {
    let dir = example();
    let state = dir.path().join("state");
    let run = firesafe()
        .args(["run", "nightly", "--init", "--config-dir"])
        .arg(dir.path())
        .arg("--state-dir")
        .arg(&state)
        .output()
        .expect("run");
    assert_success(&run, "first run");
    // The machine was off: the last scheduled run handled was three days ago.
    let three_days_ago = chrono::Utc::now() - chrono::Duration::days(3);
    let st = firesafe::store::state::ScheduleState {
        last_scheduled: Some(three_days_ago),
        ..Default::default()
    };
    fs::write(
        state.join("schedules/nightly.json"),
        serde_json::to_vec(&st).expect("json"),
    )
    .expect("write");

    let mut daemon = firesafe()
        .args(["daemon", "--log-format", "json", "--config-dir"])
        .arg(dir.path())
        .arg("--state-dir")
        .arg(&state)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn daemon");
    let sm = firesafe::store::state::StateDir::open(&state).expect("state");
    let t = Instant::now();
    while sm.history().expect("history").len() < 2 {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "the catch-up run did not happen"
        );
        assert!(
            daemon.try_wait().expect("wait").is_none(),
            "the daemon exited"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    sigterm(&daemon);
    let out = daemon.wait_with_output().expect("wait");
    assert!(out.status.success(), "daemon exit {:?}", out.status);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()),
        "not JSON lines:\n{log}"
    );
    assert!(log.contains("a run was missed"), "{log}");

    let history = sm.history().expect("history");
    assert_eq!(history.len(), 2, "{history:?}");
    let catch_up = &history[1];
    assert_eq!(catch_up.outcome, "complete", "{catch_up:?}");
    let scheduled = catch_up.scheduled_for.expect("scheduled time");
    // The latest 02:00 London time before now, and only that one.
    assert!(
        scheduled > chrono::Utc::now() - chrono::Duration::hours(25),
        "{scheduled}"
    );
    assert_eq!(
        sm.load("nightly").expect("state").last_scheduled,
        Some(scheduled)
    );
}

#[test]
fn two_runs_of_one_schedule_never_overlap() {
    let dir = example();
    let state = dir.path().join("state");
    let sm = firesafe::store::state::StateDir::open(&state).expect("state");
    let lock = sm.try_lock("nightly").expect("lock").expect("free");
    let out = firesafe()
        .args(["run", "nightly", "--init", "--config-dir"])
        .arg(dir.path())
        .arg("--state-dir")
        .arg(&state)
        .output()
        .expect("run");
    let err = assert_exit(&out, 2, "run while another holds the lock");
    assert!(err.contains("already running"), "{err}");
    assert!(
        !dir.path().join("demo/nas/config").exists(),
        "the refused run wrote something"
    );
    drop(lock);
    let out = firesafe()
        .args(["run", "nightly", "--init", "--config-dir"])
        .arg(dir.path())
        .arg("--state-dir")
        .arg(&state)
        .output()
        .expect("run");
    assert_success(&out, "run after the lock is released");
}

#[test]
fn sigterm_mid_backup_stores_what_was_read_and_the_next_run_continues() {
    let repo = Repo::new(Backend::Local);
    let share = repo.path("share");
    for i in 0..40u64 {
        write(
            &share.join(format!("video {i:02}.mp4")),
            &noise(900 + i, 3_000_000),
        );
    }
    let child = repo
        .cmd()
        .arg("backup")
        .arg(&share)
        .args(["--source", "share"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Wait until some packs are stored, then ask it to stop.
    let t = Instant::now();
    while repo.keys_under("data").len() < 3 {
        assert!(t.elapsed() < Duration::from_secs(60), "no packs appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    sigterm(&child);
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "the backup finished before SIGTERM landed; the test needs a larger share"
    );
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("interrupted") && err.contains("stored and indexed"),
        "{err}"
    );
    assert!(
        repo.keys_under("snapshots").is_empty(),
        "an interrupted backup wrote a snapshot"
    );
    // What was stored is indexed: check finds no unindexed packs and no problems.
    let check = repo.ok(&["check"]);
    assert!(!check.contains("listed by no index object"), "{check}");
    // The next backup reuses it and completes.
    let second = repo.backup(&share, "share");
    let json: serde_json::Value =
        serde_json::from_str(&repo.ok(&["snapshots", "--json"])).expect("json");
    assert!(json[0]["stats"]["bytes_read"].as_u64().expect("read") > 0);
    assert!(
        json[0]["stats"]["bytes_added"].as_u64().expect("added") < 120_000_000,
        "the second backup stored everything again"
    );
    let to = repo.path("restored");
    assert_success(&repo.restore(&second, &to), "restore");
    assert_same_tree(&share, &to.join("share"));
}

/// A scheduled time that comes while a run started by hand holds the schedule's lock waits for
/// it, then runs, and is recorded for that time (not called missed later).
#[test]
fn a_fire_that_meets_a_manual_run_waits_and_is_recorded() {
    let dir = example();
    let state = dir.path().join("state");
    let run = firesafe()
        .args(["run", "nightly", "--init", "--config-dir"])
        .arg(dir.path())
        .arg("--state-dir")
        .arg(&state)
        .output()
        .expect("run");
    assert_success(&run, "first run");
    let st = firesafe::store::state::ScheduleState {
        last_scheduled: Some(chrono::Utc::now() - chrono::Duration::days(2)),
        ..Default::default()
    };
    fs::write(
        state.join("schedules/nightly.json"),
        serde_json::to_vec(&st).expect("json"),
    )
    .expect("write");
    let sm = firesafe::store::state::StateDir::open(&state).expect("state");
    // A run by hand is going: the test holds the schedule's lock.
    let lock = sm.try_lock("nightly").expect("lock").expect("free");
    let daemon = firesafe()
        .args(["daemon", "--log-format", "json", "--config-dir"])
        .arg(dir.path())
        .arg("--state-dir")
        .arg(&state)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn daemon");
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        sm.history().expect("history").len(),
        1,
        "no run while the lock is held"
    );
    drop(lock);
    let t = Instant::now();
    while sm.history().expect("history").len() < 2 {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "the waiting run did not happen"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    sigterm(&daemon);
    let out = daemon.wait_with_output().expect("wait");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("waits for it to end"), "{log}");
    let history = sm.history().expect("history");
    assert_eq!(
        history[1].outcome,
        firesafe::store::state::RunOutcome::Complete,
        "{history:?}"
    );
    assert_eq!(
        sm.load("nightly").expect("state").last_scheduled,
        history[1].scheduled_for
    );
}
