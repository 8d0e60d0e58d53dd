//! `suspect list|accept|confirm|lift`: snapshots the backup marked as possible ransomware, and
//! the technician's decision about each, on one copy (`--repo`) or every copy of a schedule's
//! (`--schedule`).

use chrono::Local;
use clap::{Args, Subcommand};
use firesafe::Result;
use firesafe::format::snapshot::Verdict;
use firesafe::format::tree::printable;
use firesafe::ops::suspect::{self, SuspectEntry};
use firesafe::store::snapshot::Catalog;

use super::Outcome;
use super::args::{ConfigDir, open, unlock_from_env};

/// The `suspect` commands' long help.
pub(super) const HELP: &str =
    "A backup that sees signs of ransomware in what changed (many files changed or renamed
to one new extension, ransom notes) still saves its snapshot, as evidence, but marks it SUSPECT:
`status` says SUSPECT (exit 1), an alert goes out, and `prune` forgets nothing of that source
until a technician decides. SOURCE@clean names the newest clean snapshot taken outside every
incident (from a snapshot that is not clean until its hold is lifted), for ls, diff and restore.

  accept   a false alarm (a big reorganisation, a new file type): the snapshot is clean again
           and pruning resumes.
  confirm  a real attack: the snapshot stays suspect and prune keeps every older snapshot of
           the source until the hold is lifted.
  lift     after a confirmed attack is dealt with: prune may forget old snapshots again (the
           attacked snapshot is never a restore point).

Each decision is kept in the repository (decisions/ID) with who made it, on which machine,
when and why (--note). With --schedule it is written to every copy that opens; a copy that is
down is named (exit 1) and the next run or sync carries the decision there.

EXAMPLES:
  firesafe suspect list --schedule nightly
  firesafe --repo /mnt/nas/firesafe diff admin@clean latest
  firesafe suspect accept 1a2b3c4d --schedule nightly --note \\
      \"year-end archive renamed by the bursar\"
  firesafe suspect confirm 1a2b3c4d --schedule nightly --note \\
      \"ransom note found on the admin PC\"
  firesafe restore --schedule nightly admin@clean --to /srv/admin-restored
  firesafe suspect lift 1a2b3c4d --schedule nightly --note \\
      \"share restored, machines rebuilt\"";

// `--schedule NAME` instead of `--repo`, and the configuration directory it is read from.
#[derive(Args, Debug)]
#[command(mut_arg("config_dir", |a| a.help("With --schedule: the directory holding targets/ and schedules/")))]
pub(super) struct Scope {
    /// Read (and write decisions to) every target of this schedule instead of --repo. The key
    /// comes from FIRESAFE_KEY_FILE or the schedule's.
    #[arg(long, value_name = "NAME")]
    schedule: Option<String>,
    #[command(flatten)]
    config: ConfigDir,
}

#[derive(Args, Debug)]
pub(super) struct DecideArgs {
    /// The snapshot: its id or first digits, from `firesafe suspect list`.
    snapshot: String,
    /// Why (kept in the repository with your login name and the time).
    #[arg(long, value_name = "TEXT")]
    note: String,
    #[command(flatten)]
    scope: Scope,
}

#[derive(Subcommand, Debug)]
pub(super) enum SuspectCommand {
    /// List suspect snapshots, their reasons and the decisions about them.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        scope: Scope,
    },
    /// A false alarm: the snapshot counts as clean again, and pruning resumes.
    Accept(DecideArgs),
    /// A real attack: the snapshot stays suspect and prune holds the source until `lift`.
    Confirm(DecideArgs),
    /// After a confirmed attack: lift the hold on pruning (the snapshot stays suspect).
    Lift(DecideArgs),
}

pub(super) async fn suspect_cmd(url: Option<&str>, c: SuspectCommand) -> Result<Outcome> {
    let (args, verdict) = match c {
        SuspectCommand::List { json, scope } => return list_cmd(url, &scope, json).await,
        SuspectCommand::Accept(a) => (a, Verdict::Accepted),
        SuspectCommand::Confirm(a) => (a, Verdict::Confirmed),
        SuspectCommand::Lift(a) => (a, Verdict::Lifted),
    };
    let Some(name) = &args.scope.schedule else {
        let repo = open(url).await?;
        let catalog = Catalog::load(&repo).await?;
        let decision = suspect::decide(&catalog, &args.snapshot, verdict, &args.note)?;
        let (id, bytes) = firesafe::store::decisions::seal(&repo, &decision);
        suspect::record(&repo, id, bytes).await?;
        println!(
            "{} snapshot {} ({}) on {}: decision {} recorded",
            done_word(verdict),
            decision.snapshot.short(),
            printable(&decision.source),
            repo.target().name(),
            id.short()
        );
        println!("the schedule's next run or sync carries the decision to its other copies");
        return Ok(Outcome::Success);
    };
    let config = args.scope.config.load()?;
    let schedule = config.schedule(name)?;
    let unlock = match unlock_from_env()? {
        Some(u) => u,
        None => config.schedule_key(schedule)?,
    };
    let d = firesafe::schedule::suspect::decide(
        &config,
        schedule,
        &unlock,
        &args.snapshot,
        verdict,
        &args.note,
    )
    .await?;
    println!(
        "{} snapshot {} ({}): decision {} recorded on {}",
        done_word(verdict),
        d.decision.snapshot.short(),
        printable(&d.decision.source),
        d.id.short(),
        d.done.join(", ")
    );
    for n in &d.not_reached {
        println!("NOT CHANGED: {n}");
    }
    if d.not_reached.is_empty() {
        return Ok(Outcome::Success);
    }
    println!(
        "the next `firesafe run {name}` or `firesafe sync {name}` carries the decision to the copies not changed"
    );
    Ok(Outcome::Findings)
}

fn done_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Accepted => "accepted (a false alarm, clean again)",
        Verdict::Confirmed => "confirmed as an attack (prune holds the source)",
        Verdict::Lifted => "hold lifted on",
    }
}

async fn list_cmd(url: Option<&str>, scope: &Scope, json: bool) -> Result<Outcome> {
    let (entries, notes) = match &scope.schedule {
        None => {
            let repo = open(url).await?;
            (suspect::list(&Catalog::load(&repo).await?), Vec::new())
        }
        Some(name) => {
            let config = scope.config.load()?;
            let schedule = config.schedule(name)?;
            let unlock = match unlock_from_env()? {
                Some(u) => u,
                None => config.schedule_key(schedule)?,
            };
            firesafe::schedule::suspect::list(&config, schedule, &unlock).await?
        }
    };
    for n in &notes {
        eprintln!("firesafe: warning: {n}");
    }
    let holding = entries.iter().any(|e| e.holds);
    if json {
        println!("{}", serde_json::to_string_pretty(&entries).expect("JSON"));
        return Ok(Outcome::clean_if(!holding));
    }
    if entries.is_empty() {
        println!("no suspect snapshots");
    }
    for e in &entries {
        print_entry(e);
    }
    Ok(Outcome::clean_if(!holding))
}

fn print_entry(e: &SuspectEntry) {
    println!(
        "{}  {}  {:<14} {}{}",
        e.short_id,
        e.taken.with_timezone(&Local).format("%Y-%m-%d %H:%M"),
        printable(&e.source),
        e.standing,
        match (e.score, e.threshold) {
            (Some(s), Some(t)) => format!(" (score {s}, threshold {t})"),
            _ => String::new(),
        }
    );
    if !e.headline.is_empty() {
        println!("    {}", printable(&e.headline));
    }
    for s in &e.signals {
        println!("    - {}", printable(&s.reason));
        for x in &s.examples {
            println!("        {}", printable(x));
        }
    }
    for d in &e.decisions {
        println!(
            "    {} by {} on {}, {}: {}",
            match d.verdict {
                Verdict::Accepted => "accepted",
                Verdict::Confirmed => "confirmed",
                Verdict::Lifted => "lifted",
            },
            printable(&d.who),
            printable(&d.host),
            d.time.with_timezone(&Local).format("%Y-%m-%d %H:%M"),
            printable(&d.note)
        );
    }
    if e.holds {
        println!(
            "    -> decide: `firesafe suspect accept {id} --note ...` (false alarm) or `firesafe suspect confirm {id} --note ...`",
            id = e.short_id
        );
    }
}
