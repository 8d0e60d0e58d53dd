//! `site.toml`: who the backups belong to and whom to call. Optional; the governors' report takes
//! its title from the school's name, and the recovery sheet lists the contacts.
//!
//! ```toml
//! school = "Hollybank Primary School"
//!
//! [[contacts]]
//! name = "Sam Okafor"
//! role = "IT technician"
//! phone = "01632 960 123"
//! email = "it@hollybank.example.sch.uk"
//! ```

use std::path::Path;

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
