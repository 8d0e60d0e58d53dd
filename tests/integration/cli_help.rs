//! Every command explains itself.

use crate::support::*;

#[test]
fn every_command_has_help_a_technician_can_follow() {
    let top = firesafe().arg("--help").output().expect("run");
    assert_success(&top, "--help");
    let text = String::from_utf8_lossy(&top.stdout);
    for word in [
        "init",
        "backup",
        "snapshots",
        "ls",
        "restore",
        "check",
        "key",
        "FIRESAFE_KEY_FILE",
        "EXIT STATUS",
    ] {
        assert!(text.contains(word), "--help lacks {word}:\n{text}");
    }
    for cmd in [
        &["init"][..],
        &["backup"],
        &["snapshots"],
        &["ls"],
        &["restore"],
        &["check"],
        &["key", "add"],
    ] {
        let out = firesafe().args(cmd).arg("--help").output().expect("run");
        assert_success(&out, &format!("{cmd:?} --help"));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("EXAMPLES"),
            "{cmd:?} --help has no examples:\n{text}"
        );
        assert!(text.contains("firesafe"), "{cmd:?}");
    }
    for cmd in [&["key", "list"][..], &["key", "remove"]] {
        assert_success(
            &firesafe().args(cmd).arg("--help").output().expect("run"),
            "key help",
        );
    }
}
