//! `fleet.toml`: the schools a trust looks after, for `firesafe fleet`. Each school names where
//! its status beacon is, the targets the trust can read to confirm it, and the school's public
//! signing key. The trust's own age identity (`key_file`) reads the beacons; it opens no
//! school's data.
//!
//! ```toml
//! trust = "Riverside Academy Trust"
//! key_file = "trust.key"            # relative to this file's directory
//!
//! [[school]]
//! name = "Oak Primary"
//! schedule = "nightly"              # the default
//! public_key = "3b6a27bc..."        # from `firesafe beacon key` at the school
//! beacon = "offsite"                # which of the targets below holds the beacon (the first)
//! [school.targets.offsite]
//! kind = "s3"
//! bucket = "oak-primary"
//! prefix = "firesafe"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::store::target::Location;

/// A whole fleet.toml.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fleet {
    /// The trust's name, for the report.
    pub trust: String,
    /// The trust's age identity file, which reads the beacons.
    pub key_file: PathBuf,
    #[serde(default, rename = "school")]
    pub schools: Vec<School>,
    /// Where `fleet email` sends its message ("3 of 30 schools need attention: ...").
    pub email: Option<FleetEmail>,
    /// The directory fleet.toml is in (relative paths are read from there).
    #[serde(skip)]
    pub dir: PathBuf,
}

/// `[email]`: who `fleet email` writes to, and through which SMTP server. The password for
/// smtp_user comes from FIRESAFE_SMTP_PASSWORD, never from this file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetEmail {
    pub to: Vec<String>,
    pub from: String,
    pub smtp_host: String,
    pub smtp_port: Option<u16>,
    #[serde(default)]
    pub smtp_tls: crate::config::SmtpTls,
    pub smtp_user: Option<String>,
    /// An extra CA certificate (PEM) to trust for the SMTP server; relative to fleet.toml.
    pub smtp_ca_file: Option<PathBuf>,
}

impl FleetEmail {
    /// The same settings in the form a schedule's `[alerts]` gives them.
    pub fn alerts(&self) -> crate::config::AlertsSpec {
        crate::config::AlertsSpec {
            email_to: self.to.clone(),
            email_from: Some(self.from.clone()),
            smtp_host: Some(self.smtp_host.clone()),
            smtp_port: self.smtp_port,
            smtp_tls: self.smtp_tls,
            smtp_user: self.smtp_user.clone(),
            smtp_ca_file: self.smtp_ca_file.clone(),
            ..Default::default()
        }
    }
}

/// One school.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct School {
    pub name: String,
    #[serde(default = "nightly")]
    pub schedule: String,
    /// The school's beacon signing key, public half: 64 hex digits.
    pub public_key: String,
    /// Which target holds the beacon (default: the first, in name order).
    pub beacon: Option<String>,
    /// The school's targets the trust can read, by the school's names for them.
    pub targets: BTreeMap<String, FleetTarget>,
}

fn nightly() -> String {
    "nightly".into()
}

/// A target the trust reads: a folder or an S3 bucket and prefix (credentials from the
/// environment, as for any S3 target).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetTarget {
    pub kind: String,
    pub path: Option<PathBuf>,
    pub bucket: Option<String>,
    #[serde(default)]
    pub prefix: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
}

impl School {
    /// The target holding the beacon.
    pub fn beacon_target(&self) -> Option<(&str, &FleetTarget)> {
        match &self.beacon {
            Some(name) => self.targets.get_key_value(name),
            None => self.targets.iter().next(),
        }
        .map(|(n, t)| (n.as_str(), t))
    }
}

impl FleetTarget {
    /// Where it is; a relative path is read from `dir`.
    pub fn location(&self, dir: &Path) -> Location {
        match (self.kind.as_str(), &self.path) {
            ("path", Some(p)) if p.is_relative() => Location::Path(dir.join(p)),
            ("path", Some(p)) => Location::Path(p.clone()),
            _ => Location::S3 {
                bucket: self.bucket.clone().unwrap_or_default(),
                prefix: self.prefix.trim_matches('/').to_string(),
                endpoint: self.endpoint.clone(),
                region: self.region.clone(),
            },
        }
    }
}

/// Reads and checks fleet.toml; every problem is named with the school it is in.
pub fn load(path: &Path) -> Result<Fleet> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::Config(vec![format!(
            "{}: cannot read the fleet file ({e}); give --fleet FILE (see fleet.toml.example)",
            path.display()
        )])
    })?;
    let mut fleet: Fleet = toml::from_str(&text)
        .map_err(|e| Error::Config(vec![format!("{}: {}", path.display(), e.message())]))?;
    fleet.dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    if fleet.key_file.is_relative() {
        fleet.key_file = fleet.dir.join(&fleet.key_file);
    }
    if let Some(ca) = fleet.email.as_mut().and_then(|e| e.smtp_ca_file.as_mut())
        && ca.is_relative()
    {
        *ca = fleet.dir.join(&*ca);
    }
    let mut problems = Vec::new();
    if let Some(e) = &fleet.email
        && e.to.is_empty()
    {
        problems.push(format!(
            "{}: [email]: to is empty; give the addresses to write to, or leave [email] out",
            path.display()
        ));
    }
    let mut names = std::collections::HashSet::new();
    for s in &fleet.schools {
        let at = format!("{}: school \"{}\"", path.display(), s.name);
        if !names.insert(s.name.as_str()) {
            problems.push(format!(
                "{at}: two schools have this name; give each its own"
            ));
        }
        if let Err(why) = crate::format::signing::parse_public(&s.public_key) {
            problems.push(format!("{at}: key public_key: {why}"));
        }
        if s.targets.is_empty() {
            problems.push(format!(
                "{at}: no targets: give [school.targets.NAME] for the store its beacon is on"
            ));
        }
        if let Some(b) = &s.beacon
            && !s.targets.contains_key(b)
        {
            problems.push(format!(
                "{at}: key beacon: no target \"{b}\" under [school.targets]"
            ));
        }
        for (name, t) in &s.targets {
            let ok = match t.kind.as_str() {
                "path" => t.path.is_some(),
                "s3" => t.bucket.is_some(),
                _ => false,
            };
            if !ok {
                problems.push(format!(
                    "{at}: target \"{name}\": give kind = \"path\" with path, or kind = \"s3\" with bucket"
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(fleet)
    } else {
        Err(Error::Config(problems))
    }
}
