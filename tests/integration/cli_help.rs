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

/// Every subcommand's name, from the help of `firesafe` and of each command group.
fn subcommands() -> Vec<Vec<String>> {
    fn names(args: &[String]) -> Vec<String> {
        let out = firesafe().args(args).arg("--help").output().expect("run");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let Some(list) = text.split("Commands:\n").nth(1) else {
            return Vec::new();
        };
        list.lines()
            .take_while(|l| l.starts_with("  "))
            .filter_map(|l| l.split_whitespace().next())
            .filter(|n| *n != "help")
            .map(str::to_string)
            .collect()
    }
    let mut out = Vec::new();
    for top in names(&[]) {
        let path = vec![top.clone()];
        let subs = names(&path);
        if subs.is_empty() {
            out.push(path);
        } else {
            for s in subs {
                out.push(vec![top.clone(), s]);
            }
        }
    }
    out
}

/// On an 80-column terminal every example in every `--help` is one whole command (or continues
/// with `\`): no command wraps into a fragment that would run without its last options.
#[test]
fn help_examples_never_wrap_in_the_middle_of_a_command() {
    let commands = subcommands();
    assert!(commands.len() > 20, "{commands:?}");
    let mut broken = Vec::new();
    for cmd in &commands {
        let out = firesafe()
            .args(cmd)
            .arg("--help")
            .env("COLUMNS", "80")
            .output()
            .expect("run");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let Some(examples) = text.split("EXAMPLES:\n").nth(1) else {
            continue;
        };
        let mut continues = false;
        let mut in_command = false;
        for line in examples.lines() {
            let l = line.trim();
            if l.is_empty() {
                continues = false;
                in_command = false;
                continue;
            }
            let command = l.starts_with("firesafe ")
                || l.split_whitespace().take_while(|w| w.contains('=')).count() > 0
                    && l.contains("firesafe ");
            if continues || command {
                continues = l.ends_with('\\');
                in_command = true;
            } else if l.ends_with(':') || l.ends_with('?') || !in_command {
                in_command = false;
            } else {
                broken.push(format!("{}: {l:?}", cmd.join(" ")));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "examples wrapped mid-command:\n{}",
        broken.join("\n")
    );
}
