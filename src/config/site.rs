//! `site.toml`: who the backups belong to, whom to call, and where the things a restore after a
//! fire needs are kept. Optional; the governors' report takes its title from the school's name,
//! and the recovery sheet prints the rest (saying plainly what is not filled in).
//!
//! ```toml
//! school = "Hollybank Primary School"
//! credentials_kept = "Sealed envelope in the fire safe, with this sheet"
//! recovery_key_kept = "Encrypted USB stick in the fire safe, labelled FIRESAFE KEY"
//! firesafe_source = "USB stick in the fire safe, with the source and a built copy"
//!
//! [[contacts]]
//! name = "Sam Okafor"
//! role = "IT technician"
//! phone = "01632 960 123"
//! email = "it@hollybank.example.sch.uk"
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// `site.toml` in the configuration directory.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteSpec {
    /// The school's (or organisation's) name, as it should appear on reports.
    pub school: String,
    /// Whom to call in a disaster, in order.
    #[serde(default)]
    pub contacts: Vec<Contact>,
    /// Where the storage credentials (the NAS login, the object storage access key) are kept, in
    /// words: never the credentials themselves.
    #[serde(default)]
    pub credentials_kept: Option<String>,
    /// Where the recovery key (the key kept apart from the server) is kept, in words.
    #[serde(default)]
    pub recovery_key_kept: Option<String>,
    /// Where to get firesafe on a new machine (a copy of its source or of the program).
    #[serde(default)]
    pub firesafe_source: Option<String>,
    /// The age recipient (`age1...`) of the trust that looks after this school: each run,
    /// verification and drill then writes a status beacon for it (`firesafe fleet`).
    #[serde(default)]
    pub trust_recipient: Option<String>,
    /// Where the school's beacon signing key is kept (default: beacon-signing.key in the
    /// configuration directory).
    #[serde(default)]
    pub beacon_signing_key: Option<PathBuf>,
}

/// The optional fields a restore after a fire needs: (key, what it says, an example).
pub const KEPT_FIELDS: [(&str, &str, &str); 3] = [
    (
        "credentials_kept",
        "where the storage credentials are kept",
        "\"Sealed envelope in the fire safe\"",
    ),
    (
        "recovery_key_kept",
        "where the recovery key is kept",
        "\"Encrypted USB stick in the fire safe\"",
    ),
    (
        "firesafe_source",
        "where to get firesafe",
        "\"USB stick in the fire safe, with the source and a built copy\"",
    ),
];

impl SiteSpec {
    /// The value of one of [`KEPT_FIELDS`], when filled in.
    pub fn kept(&self, field: &str) -> Option<&str> {
        match field {
            "credentials_kept" => self.credentials_kept.as_deref(),
            "recovery_key_kept" => self.recovery_key_kept.as_deref(),
            "firesafe_source" => self.firesafe_source.as_deref(),
            _ => None,
        }
        .map(str::trim)
        .filter(|v| !v.is_empty())
    }
}

/// Warnings (not failures) for `config check`: each of [`KEPT_FIELDS`] not filled in, since the
/// recovery sheet then says "Not filled in" where a restore after a fire needs it.
pub fn warnings(dir: &Path, site: Option<&SiteSpec>) -> Vec<String> {
    let path = dir.join("site.toml");
    KEPT_FIELDS
        .iter()
        .filter(|(key, ..)| site.and_then(|s| s.kept(key)).is_none())
        .map(|(key, what, example)| {
            format!(
                "{}: warning: {key} is not set: the recovery sheet will say it does not know {what} (set {key} = {example})",
                path.display()
            )
        })
        .collect()
}

/// One person to call.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    pub name: String,
    /// What they do (`IT technician`, `Headteacher`, `Trust IT service desk`).
    pub role: String,
    #[serde(default)]
    pub phone: String,
    #[serde(default)]
    pub email: String,
}

/// Reads `DIR/site.toml`: `None` when there is none, or each problem as `file:line:column:
/// message`.
pub fn load(dir: &Path) -> Result<Option<SiteSpec>, Vec<String>> {
    let path = dir.join("site.toml");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(vec![format!("{}: cannot read: {e}", path.display())]),
    };
    let at = |offset: usize| {
        let before = &text[..offset.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let col = offset.min(text.len()) - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        format!("{}:{line}:{col}", path.display())
    };
    match toml::from_str::<SiteSpec>(&text) {
        Ok(site) => {
            let mut problems = Vec::new();
            if site.school.trim().is_empty() {
                let offset = text.find("school").unwrap_or(0);
                problems.push(format!(
                    "{}: key school: give the school's name (school = \"Hollybank Primary School\")",
                    at(offset)
                ));
            }
            for c in &site.contacts {
                if c.phone.trim().is_empty() && c.email.trim().is_empty() {
                    let offset = text.find(&format!("\"{}\"", c.name)).unwrap_or(0);
                    problems.push(format!(
                        "{}: contacts: {} has neither a phone number nor an email address; give at least one",
                        at(offset),
                        c.name
                    ));
                }
            }
            if problems.is_empty() {
                Ok(Some(site))
            } else {
                Err(problems)
            }
        }
        Err(e) => Err(vec![match e.span() {
            Some(s) => format!(
                "{}: {}",
                at(s.start),
                crate::config::message::without_values(e.message().trim())
            ),
            None => format!(
                "{}: {}",
                path.display(),
                crate::config::message::without_values(e.message().trim())
            ),
        }]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_named_with_their_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("site.toml"),
            "school = \"A School\"\n\n[[contacts]]\nname = \"A\"\nrole = \"B\"\nphone = \"1\"\nmobile = \"2\"\n",
        )
        .expect("write");
        let problems = load(dir.path()).expect_err("unknown field");
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].contains("site.toml:7:1") && problems[0].contains("mobile"),
            "{problems:?}"
        );
        std::fs::remove_file(dir.path().join("site.toml")).expect("rm");
        assert!(load(dir.path()).expect("none").is_none());
    }
}
