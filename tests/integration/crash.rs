//! A backup killed at any instant leaves a repository that `check` accepts, and the next backup
//! completes and restores correctly.

use std::process::Stdio;
use std::time::Instant;

use crate::support::*;

#[test]
fn sigkill_at_several_points_leaves_a_valid_repository() {
    for backend in backends() {
        let repo = Repo::new(backend);
        let share = repo.path("share");
        for i in 0..12u64 {
            write(
                &share.join(format!("video {i}.mp4")),
                &noise(500 + i, 4_000_000),
            );
        }
        for i in 0..200u64 {
            write(
                &share.join(format!("docs/letter {i}.txt")),
                format!("letter {i}\n").repeat(300).as_bytes(),
            );
        }
        // First, how long an uninterrupted backup takes, in a scratch repository.
        let probe = Repo::new(backend);
        let t = Instant::now();
        probe.backup(&share, "probe");
        let full = t.elapsed();

        let mut interrupted = 0;
        for step in 1..=6u32 {
            let delay = full.mul_f64(f64::from(step) / 8.0);
            let mut child = repo
                .cmd()
                .arg("backup")
                .arg(&share)
                .args(["--source", "share"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn");
            std::thread::sleep(delay);
            if child.try_wait().expect("wait").is_none() {
                interrupted += 1;
            }
            child.kill().expect("kill");
            let _ = child.wait();
            let out = repo.run(&["check"]);
            assert_exit(&out, 0, &format!("check after kill {step} at {delay:?}"));
        }
        assert!(
            interrupted >= 3,
            "only {interrupted} of 6 kills landed during a backup (a full one takes {full:?})"
        );

        repo.backup(&share, "share");
        let out = repo.run(&["check", "--read-data"]);
        assert_exit(&out, 0, "check --read-data after the completed backup");
        let to = repo.path("restored");
        assert_success(&repo.restore("latest", &to), "restore");
        assert_same_tree(&share, &to.join("share"));
    }
}
