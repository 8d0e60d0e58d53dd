//! `beacon key|write` (at a school) and `fleet status` (at the trust): the status beacons a
//! school writes for the trust that looks after it, and the trust's view of every school.

use std::path::PathBuf;

use chrono::{Local, Utc};
use clap::{Args, Subcommand};
use firesafe::Result;
use firesafe::format::tree::printable;
use firesafe::schedule::fleet::Light;

use super::Outcome;
use super::args::{ConfigDir, StateDirFlag, state_help};

/// The `beacon` commands' long help.
pub(super) const BEACON_HELP: &str =
    "When site.toml gives trust_recipient (the trust's age1... key), every run, verification and
drill writes a status beacon, beacon/SCHEDULE, to each target of the schedule: per share the
verdict and its reasons, each copy's newest snapshot, the last drill and verification. It names
no file and holds no content; only the trust can read it, and it is signed with this school's
signing key so that someone who can write to the bucket cannot make the school look safe.

  key    print the public half of the signing key (made on first use) for the trust's
         fleet.toml
  write  write the schedule's beacon now

EXAMPLES:
  firesafe beacon key --config-dir /etc/firesafe
  firesafe beacon write nightly --config-dir /etc/firesafe";

/// The `fleet` command's long help.
pub(super) const FLEET_HELP: &str =
    "For a trust that looks after several schools. fleet.toml names each school, the targets
the trust can read (normally each school's offsite bucket, with read-only credentials in the
AWS_* variables), and the school's public signing key; key_file is the trust's age identity.

Each school's beacon is read, its signature checked, its age compared with what the school's
schedule allows, and every copy it counts on a target the trust can read confirmed there. A
school whose beacon is missing, unsigned, stale or contradicted by the store is never OK.
Exit status 1 when any school needs attention.

EXAMPLES:
  firesafe fleet status --fleet /etc/firesafe-fleet/fleet.toml
  firesafe fleet status --fleet fleet.toml --json";

#[derive(Subcommand, Debug)]
pub(super) enum BeaconCommand {
    /// Print the public half of this school's beacon signing key (made when there is none).
    Key {
        #[command(flatten)]
        config: ConfigDir,
    },
    /// Write the schedule's status beacon now.
    #[command(mut_arg("state_dir", |a| {
        a.help(state_help("Where the drill and verification records are read"))
    }))]
    Write {
        schedule: String,
        #[command(flatten)]
        config: ConfigDir,
        #[command(flatten)]
        state: StateDirFlag,
    },
}

#[derive(Subcommand, Debug)]
pub(super) enum FleetCommand {
    /// Every school's status, from its beacon, checked against the store.
    #[command(after_help = FLEET_HELP)]
    Status(FleetArgs),
    /// Write the trust board's report (PDF and HTML): every school on one page with its light,
    /// then a page for each school that needs attention.
    #[command(after_help = FLEET_REPORT_HELP)]
    Report {
        /// The fleet file.
        #[arg(long, default_value = "fleet.toml", value_name = "FILE")]
        fleet: PathBuf,
        /// Where to write: FILE.pdf and FILE.html.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Email the trust's IT team every school's status (`[email]` in fleet.toml): "3 of 30
    /// schools need attention: ...", with each one's reasons. Run it weekly from a timer.
    #[command(after_help = FLEET_EMAIL_HELP)]
    Email {
        /// The fleet file.
        #[arg(long, default_value = "fleet.toml", value_name = "FILE")]
        fleet: PathBuf,
        /// Print the message instead of sending it.
        #[arg(long)]
        dry_run: bool,
    },
    /// Make the trust's key (an age identity, readable by its owner only) and print the
    /// recipient to give each school as trust_recipient.
    Keygen {
        /// Where to write the new key; an existing file is never replaced.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

/// The `fleet email` command's long help.
pub(super) const FLEET_EMAIL_HELP: &str = "fleet.toml's [email] gives to (a list), from and
smtp_host, and optionally smtp_port, smtp_tls (starttls, tls or none), smtp_user (the password
comes from FIRESAFE_SMTP_PASSWORD) and smtp_ca_file. The message is sent whether or not a
school needs attention, so that a week without one is noticed too. Exit status 1 when it could
not be sent. docs/systemd/ has a weekly timer for it.

EXAMPLES:
  firesafe fleet email --fleet /etc/firesafe-fleet/fleet.toml
  firesafe fleet email --fleet fleet.toml --dry-run";

/// The `fleet report` command's long help.
pub(super) const FLEET_REPORT_HELP: &str = "EXAMPLES:
  firesafe fleet report --fleet fleet.toml --out trust-backups";

#[derive(Args, Debug)]
pub(super) struct FleetArgs {
    /// The fleet file.
    #[arg(long, default_value = "fleet.toml", value_name = "FILE")]
    fleet: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Also write Prometheus metrics (text format) to this file: per school whether it is OK
    /// and its beacon's age.
    #[arg(long, value_name = "FILE")]
    metrics: Option<PathBuf>,
}

pub(super) async fn beacon_cmd(c: BeaconCommand) -> Result<Outcome> {
    use firesafe::schedule::beacon;
    match c {
        BeaconCommand::Key { config } => {
            let config = config.load()?;
            let path = beacon::signing_key_path(&config);
            let key = beacon::signing_key(&path, true)?;
            println!("{}", firesafe::format::signing::public_hex(&key));
            eprintln!(
                "firesafe: the signing key is {}: keep it private, and give the line above to the trust for its fleet.toml (public_key)",
                path.display()
            );
            Ok(Outcome::Success)
        }
        BeaconCommand::Write {
            schedule,
            config,
            state,
        } => {
            let state = state.open(Some(&config))?;
            let loaded = config.load()?;
            let spec = loaded.schedule(&schedule)?;
            if loaded
                .site
                .as_ref()
                .is_none_or(|s| s.trust_recipient.is_none())
            {
                return Err(firesafe::Error::Usage(
                    "site.toml gives no trust_recipient: there is no trust to write a beacon for; add trust_recipient = \"age1...\" (the trust's key)".into(),
                ));
            }
            let notes = beacon::write_now(&loaded, spec, &state).await;
            for n in &notes {
                eprintln!("firesafe: warning: {}", printable(n));
            }
            println!(
                "status beacon of schedule {schedule} written{}",
                if notes.is_empty() {
                    " to every target"
                } else {
                    " (not everywhere: see above)"
                }
            );
            Ok(Outcome::clean_if(notes.is_empty()))
        }
    }
}

pub(super) async fn fleet_cmd(c: FleetCommand) -> Result<Outcome> {
    let a = match c {
        FleetCommand::Status(a) => a,
        FleetCommand::Keygen { out } => return keygen(&out),
        FleetCommand::Email { fleet, dry_run } => return email(&fleet, dry_run).await,
        FleetCommand::Report { fleet, out } => {
            super::paper::check_out(&out)?;
            let fleet = firesafe::config::fleet::load(&fleet)?;
            let now = Utc::now();
            let schools = firesafe::schedule::fleet::status(&fleet, now).await?;
            let doc = firesafe::paper::fleet::build(&fleet.trust, &schools, now);
            let (pdf, html) = super::paper::write_document(&out, &doc, false)?;
            println!("wrote {} and {}", pdf.display(), html.display());
            return Ok(Outcome::Success);
        }
    };
    let fleet = firesafe::config::fleet::load(&a.fleet)?;
    let now = Utc::now();
    let schools = firesafe::schedule::fleet::status(&fleet, now).await?;
    let attention = schools.iter().filter(|s| s.light != Light::Ok).count();
    if let Some(path) = &a.metrics {
        firesafe::schedule::alert::write_metrics(
            path,
            &firesafe::schedule::fleet::metrics(&schools, now),
        )?;
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&schools).expect("JSON"));
        return Ok(Outcome::clean_if(attention == 0));
    }
    let width = schools
        .iter()
        .map(|s| s.school.chars().count())
        .max()
        .unwrap_or(6)
        .max(6);
    println!(
        "{:<width$}  {:<13}  {:<16}  WHY",
        "SCHOOL", "VERDICT", "BEACON WRITTEN"
    );
    for s in &schools {
        let written = s
            .written
            .map(|w| w.with_timezone(&Local).format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_else(|| "-".into());
        println!(
            "{:<width$}  {:<13}  {:<16}  {}",
            printable(&s.school),
            s.light.word(),
            written,
            printable(&s.reasons.first().cloned().unwrap_or_default())
        );
        for r in s.reasons.iter().skip(1) {
            println!("{:<width$}  {:<13}  {:<16}  {}", "", "", "", printable(r));
        }
    }
    println!(
        "{} of {} {} attention ({})",
        attention,
        firesafe::plan::words::count(schools.len() as u64, "school", "schools"),
        firesafe::plan::words::noun(attention as u64, "needs", "need"),
        fleet.trust
    );
    Ok(Outcome::clean_if(attention == 0))
}

/// `fleet email`: every school's status, to the trust's IT team.
async fn email(path: &std::path::Path, dry_run: bool) -> Result<Outcome> {
    let fleet = firesafe::config::fleet::load(path)?;
    let now = Utc::now();
    let schools = firesafe::schedule::fleet::status(&fleet, now).await?;
    let (subject, body) = firesafe::schedule::fleet::email_text(&fleet.trust, &schools, now);
    if dry_run {
        println!("Subject: {subject}\n\n{body}");
        return Ok(Outcome::Success);
    }
    let Some(settings) = &fleet.email else {
        return Err(firesafe::Error::Usage(format!(
            "{} has no [email] section: give to, from and smtp_host there (see fleet.toml.example), or use --dry-run to see the message",
            path.display()
        )));
    };
    firesafe::schedule::alert::email_with(
        &settings.alerts(),
        &format!("{}: [email] needs to, from and smtp_host", path.display()),
        &subject,
        &body,
    )
    .await?;
    println!("sent \"{subject}\" to {}", settings.to.join(", "));
    Ok(Outcome::Success)
}

/// `fleet keygen --out FILE`: the trust's age identity, never over an existing file.
fn keygen(out: &std::path::Path) -> Result<Outcome> {
    let (_, recipient) = firesafe::ops::keys::create_identity_file(out)?;
    println!("{recipient}");
    eprintln!(
        "firesafe: the trust's key is {}: keep it private; give each school the line above as trust_recipient in its site.toml",
        out.display()
    );
    Ok(Outcome::Success)
}
