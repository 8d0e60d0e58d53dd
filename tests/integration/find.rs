//! Finding the versions of a file across snapshots, the history of one path, comparing two
//! snapshots, and naming a snapshot by the time it was taken.

use std::fs;
use std::process::Output;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::support::*;

const PLAN: &str = "share/year7/plan.docx";

/// Six snapshots of one share: `year7/plan.docx` holds `first` in snapshots 1 to 3, `second` in
/// 4 and 5, and is deleted before 6. `notes.txt` says which snapshot it is in ("notes N"), so a
/// restore of it shows which snapshot a time selected.
struct Six {
    repo: Repo,
    ids: Vec<String>,
    times: Vec<String>,
    first: Vec<u8>,
    second: Vec<u8>,
}

fn six(backend: Backend) -> Six {
    let repo = Repo::new(backend);
    let share = repo.path("share");
    let plan = share.join("year7/plan.docx");
    let (first, second) = (noise(41, 300_000), noise(42, 210_000));
    write(&plan, &first);
    set_mtime(&plan, 1_790_000_000, 0);
    write(&share.join("archive/2019/old.txt"), b"never changes");
    for n in 1..=6 {
        if n == 4 {
            write(&plan, &second);
            set_mtime(&plan, 1_790_100_000, 0);
            write(&share.join("year8/new.txt"), b"a new folder");
        }
        if n == 6 {
            fs::remove_file(&plan).expect("remove");
        }
        write(&share.join("notes.txt"), format!("notes {n}").as_bytes());
        repo.backup(&share, "curriculum");
    }
    let list: Value = serde_json::from_str(&repo.ok(&["snapshots", "--json"])).expect("JSON");
    let list = list.as_array().expect("array");
    assert_eq!(list.len(), 6);
    Six {
        ids: list.iter().map(|s| text(&s["id"])).collect(),
        times: list.iter().map(|s| text(&s["start"])).collect(),
        repo,
        first,
        second,
    }
}

fn text(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("not a string: {v}"))
        .to_string()
}

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// A time, in UTC with microseconds, that is at or after `start` and before any later snapshot
/// (they are at least milliseconds apart).
fn just_after(start: &str) -> String {
    let t: DateTime<Utc> = start.parse().expect("RFC 3339 time");
    (t + chrono::Duration::microseconds(1))
        .format("%Y-%m-%d %H:%M:%S%.6f")
        .to_string()
}

/// `firesafe` with the time zone set, so that the times written are read in it.
fn in_zone(repo: &Repo, zone: &str, args: &[&str]) -> Output {
    repo.cmd().env("TZ", zone).args(args).output().expect("run")
}

/// Restores one file from `what` (SNAPSHOT:PATH) and returns its bytes.
fn restored(repo: &Repo, zone: &str, what: &str, extra: &[&str], name: &str) -> Vec<u8> {
    let to = repo.path(&format!("restore-{}", rand::random::<u32>()));
    let to_s = to.to_str().expect("utf8");
    let mut args = vec!["restore", what, "--to", to_s];
    args.extend(extra);
    let out = in_zone(repo, zone, &args);
    assert_success(&out, &args.join(" "));
    fs::read(to.join(name)).expect("restored file")
}

/// Checks the two versions of `plan.docx` as `find` and `versions` report them.
fn assert_two_versions(six: &Six, report: &Value) {
    let versions = report["versions"].as_array().expect("versions");
    assert_eq!(versions.len(), 2, "{report:#}");
    let seen = |v: &Value| -> Vec<String> {
        v["snapshots"]
            .as_array()
            .expect("snapshots")
            .iter()
            .map(|s| text(&s["snapshot"]))
            .collect()
    };
    let (one, two) = (&versions[0], &versions[1]);
    for v in [one, two] {
        assert_eq!(v["path"], "/share/year7/plan.docx");
        assert_eq!(v["source"], "curriculum");
        assert_eq!(v["type"], "file");
    }
    assert_eq!(seen(one), six.ids[0..3]);
    assert_eq!(one["size"], 300_000);
    assert_eq!(text(&one["first_seen"]), six.times[0]);
    assert_eq!(text(&one["last_seen"]), six.times[2]);
    assert_eq!(text(&one["ended"]["snapshot"]), six.ids[3]);
    assert_eq!(text(&one["ended"]["time"]), six.times[3]);
    assert_eq!(one["ended"]["reason"], "changed");
    assert_eq!(seen(two), six.ids[3..5]);
    assert_eq!(two["size"], 210_000);
    assert_eq!(text(&two["first_seen"]), six.times[3]);
    assert_eq!(text(&two["last_seen"]), six.times[4]);
    assert_eq!(text(&two["ended"]["snapshot"]), six.ids[5]);
    assert_eq!(two["ended"]["reason"], "deleted");
}

#[test]
fn a_changed_then_deleted_file_has_two_versions_each_restorable() {
    for backend in backends() {
        let six = six(backend);
        let repo = &six.repo;

        let found = json(&repo.ok(&["find", "PLAN.DOCX", "--json"]));
        assert_two_versions(&six, &found);
        assert_eq!(found["snapshots"], 6);
        // Whole-path patterns and case sensitivity reach the same file, or nothing.
        let by_path = json(&repo.ok(&["find", "share/*/plan.*", "--json"]));
        assert_two_versions(&six, &by_path);
        let err = assert_exit(
            &repo.run(&["find", "PLAN.DOCX", "--case-sensitive"]),
            2,
            "case-sensitive find",
        );
        assert!(err.contains("nothing matches \"PLAN.DOCX\""), "{err}");

        let history = json(&repo.ok(&["versions", PLAN, "--source", "curriculum", "--json"]));
        assert_two_versions(&six, &history);
        let shown = repo.ok(&["versions", &format!("/{PLAN}")]);
        assert!(
            shown.contains(&format!("changed in {}", &six.ids[3][..8]))
                && shown.contains(&format!("gone in {}", &six.ids[5][..8]))
                && shown.contains("2 versions of /share/year7/plan.docx in 6 snapshots"),
            "{shown}"
        );

        // Each version back, by the time of a snapshot that holds it and by its id.
        let what = |spec: &str| format!("{spec}:{PLAN}");
        let at_third = format!("curriculum@{}", just_after(&six.times[2]));
        let at_fifth = just_after(&six.times[4]);
        assert!(restored(repo, "UTC", &what(&at_third), &[], "plan.docx") == six.first);
        assert!(
            restored(
                repo,
                "UTC",
                &what("latest"),
                &["--source", "curriculum", "--as-of", &at_fifth],
                "plan.docx"
            ) == six.second
        );
        assert!(restored(repo, "UTC", &what(&six.ids[0][..8]), &[], "plan.docx") == six.first);
        assert!(restored(repo, "UTC", &what(&six.ids[4][..10]), &[], "plan.docx") == six.second);
        // The version's time range ends where the file is gone.
        let out = repo.run(&[
            "restore",
            &what(&six.ids[5][..8]),
            "--to",
            repo.path("gone").to_str().expect("utf8"),
        ]);
        let err = assert_exit(&out, 2, "restore of the deleted file");
        assert!(err.contains("is not in snapshot"), "{err}");
    }
}

#[test]
fn a_snapshot_is_named_by_the_time_it_was_taken() {
    let six = six(Backend::Local);
    let repo = &six.repo;
    let notes = |spec: &str, extra: &[&str], zone: &str| {
        let bytes = restored(
            repo,
            zone,
            &format!("{spec}:share/notes.txt"),
            extra,
            "notes.txt",
        );
        String::from_utf8(bytes).expect("utf8")
    };
    for (n, time) in six.times.iter().enumerate() {
        let chosen = notes(&format!("curriculum@{}", just_after(time)), &[], "UTC");
        assert_eq!(chosen, format!("notes {}", n + 1), "at {time}");
    }
    // A date alone is the whole of that day in the local time zone: every snapshot was taken
    // today, so that day selects the newest, in any zone.
    for zone in ["UTC", "Pacific/Kiritimati", "America/Anchorage"] {
        let tz: chrono_tz::Tz = zone.parse().expect("zone");
        let last: DateTime<Utc> = six.times[5].parse().expect("time");
        let day = last.with_timezone(&tz).date_naive();
        let first: DateTime<Utc> = six.times[0].parse().expect("time");
        if first.with_timezone(&tz).date_naive() != day {
            continue; // the backups straddled midnight there
        }
        assert_eq!(notes(&format!("curriculum@{day}"), &[], zone), "notes 6");
        assert_eq!(
            notes("latest", &["--as-of", &day.to_string()], zone),
            "notes 6"
        );
        let before = day - chrono::Days::new(1);
        let out = in_zone(repo, zone, &["ls", &format!("curriculum@{before}")]);
        let err = assert_exit(&out, 2, "a date before the first snapshot");
        one_line(&err);
        assert!(
            err.contains(&format!(
                "no snapshot of source \"curriculum\" was taken at or before {before} 23:59:59"
            )) && err.contains("the first was taken"),
            "{err}"
        );
    }
    // `ls` and `diff` take the same names.
    let listed = in_zone(
        repo,
        "UTC",
        &[
            "ls",
            &format!("curriculum@{}", just_after(&six.times[0])),
            "share/year7",
        ],
    );
    assert_success(&listed, "ls by time");
    assert!(String::from_utf8_lossy(&listed.stdout).contains("/share/year7/plan.docx"));
}

#[test]
fn diff_lists_what_was_added_removed_and_modified() {
    let six = six(Backend::Local);
    let repo = &six.repo;
    let report = json(&repo.ok(&["diff", &six.ids[2][..8], &six.ids[3][..8], "--json"]));
    let changes: Vec<(String, String, String)> = report["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| (text(&c["path"]), text(&c["change"]), text(&c["type"])))
        .collect();
    let expect = |p: &str, c: &str, t: &str| (p.to_string(), c.to_string(), t.to_string());
    assert_eq!(
        changes,
        vec![
            expect("/share/notes.txt", "modified", "file"),
            expect("/share/year7/plan.docx", "modified", "file"),
            expect("/share/year8", "added", "dir"),
            expect("/share/year8/new.txt", "added", "file"),
        ],
        "{report:#}"
    );
    let plan = &report["changes"][1];
    assert_eq!(plan["size_before"], 300_000);
    assert_eq!(plan["size_after"], 210_000);
    assert_eq!(plan["what"], serde_json::json!(["content", "mtime"]));
    assert_eq!(
        (&report["added"], &report["removed"], &report["modified"]),
        (&Value::from(2), &Value::from(0), &Value::from(2))
    );
    assert_eq!(report["bytes_added"], 12);
    assert_eq!(text(&report["from"]["snapshot"]), six.ids[2]);
    assert!(
        report["trees_skipped"].as_u64().expect("count") >= 1,
        "the unchanged archive folder is skipped: {report:#}"
    );

    let text_out = repo.ok(&["diff", &six.ids[4][..8], "latest"]);
    assert!(
        text_out.contains("- file")
            && text_out.contains("/share/year7/plan.docx")
            && text_out.contains("M file")
            && text_out.contains("0 added (0 B), 1 removed (")
            && text_out.contains("), 1 modified"),
        "{text_out}"
    );

    let only = json(&repo.ok(&[
        "diff",
        &six.ids[2][..8],
        &six.ids[3][..8],
        "share/year7",
        "--json",
    ]));
    assert_eq!(
        only["changes"].as_array().expect("changes").len(),
        1,
        "{only:#}"
    );
    let same = json(&repo.ok(&["diff", &six.ids[0][..8], &six.ids[0][..8], "--json"]));
    assert!(same["changes"].as_array().expect("changes").is_empty());
    assert_eq!(same["trees_read"], 0, "identical roots are not read");
}

fn one_line(err: &str) {
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    assert!(err.starts_with("firesafe: error: "), "{err}");
}

#[test]
fn bad_input_gets_a_clear_message() {
    let repo = Repo::new(Backend::Local);
    let share = repo.path("share");
    write(&share.join("a.txt"), b"a");
    repo.backup(&share, "curriculum");
    let cases: &[(&[&str], &str)] = &[
        (
            &["versions", "share/no/such.docx"],
            "/share/no/such.docx is in none of the 1 snapshot;",
        ),
        (
            &["find", "*.xlsx", "--source", "curriculum"],
            "nothing matches \"*.xlsx\" in the 1 snapshot searched of source \"curriculum\"",
        ),
        (&["find", "report[12"], "has a '[' without its ']'"),
        (
            &["find", "a.txt", "--since", "tomorrow"],
            "no snapshot to search in that time",
        ),
        (&["ls", "curriculum@2001-01-01"], "the first was taken"),
        (
            &["ls", "admin@2001-01-01"],
            "no snapshot of source \"admin\" in this repository",
        ),
        (
            &["ls", "curriculum@the day the server died"],
            "\"the day the server died\" is not a date or time firesafe can read",
        ),
        (
            &["ls", "deadbeef", "--as-of", "yesterday"],
            "--as-of picks a snapshot by time, so it goes with `latest`",
        ),
        (
            &["diff", "latest", "latest", "share/nothing"],
            "share/nothing is in neither snapshot",
        ),
    ];
    for (args, message) in cases {
        let err = assert_exit(&repo.run(args), 2, &args.join(" "));
        one_line(&err);
        assert!(err.contains(message), "{}: {err}", args.join(" "));
    }
}
