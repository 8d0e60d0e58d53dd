//! README.md's first hour runs as written: every command of its demo section, in order, against
//! a fresh demo, each succeeding. (The section's `/tmp/firesafe-demo-*` paths are moved into the
//! test's own directory.)

use crate::support::*;

/// The first `sh` block after the heading `## The first hour, with the demo`.
fn first_hour() -> String {
    let readme = std::fs::read_to_string(project_root().join("README.md")).expect("README.md");
    let section = readme
        .split("## The first hour, with the demo")
        .nth(1)
        .expect("the README has its first-hour section");
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a sh block");
    block.to_string()
}

#[test]
fn the_readme_first_hour_runs_as_written() {
    let dir = example();
    let d = dir.path();
    let first = firesafe()
        .env("FIRESAFE_STATE_DIR", d.join("state"))
        .args(["run", "nightly", "--init"])
        .current_dir(d)
        .output()
        .expect("run");
    assert_success(&first, "the README's first command");
    let block = first_hour();
    let commands: Vec<&str> = block
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .collect();
    assert!(commands.len() >= 10, "{block}");
    let out_dir = d.join("out");
    std::fs::create_dir(&out_dir).expect("mkdir");
    let mut script = format!(
        "set -euo pipefail\nfiresafe() {{ {} \"$@\"; }}\n",
        env!("CARGO_BIN_EXE_firesafe")
    );
    for c in &commands {
        let c = c.replace("/tmp/firesafe-demo-", &format!("{}/", out_dir.display()));
        script.push_str(&format!("echo \"+ {}\" >&2\n{c}\n", c.replace('"', "'")));
    }
    let out = std::process::Command::new("bash")
        .args(["-c", &script])
        .current_dir(d)
        .env("FIRESAFE_STATE_DIR", d.join("state"))
        .env_remove("FIRESAFE_KEY_FILE")
        .env_remove("FIRESAFE_REPO")
        .output()
        .expect("bash");
    assert_success(&out, "the README's first hour");
    let restored = out_dir.join("restore/unit-2-plan.txt");
    assert_eq!(
        std::fs::read(&restored).expect("the restored worksheet"),
        std::fs::read(d.join("demo/shares/curriculum/units/unit-2-plan.txt")).expect("original")
    );
    assert!(out_dir.join("report.pdf").exists() && out_dir.join("sheet.pdf").exists());
}
