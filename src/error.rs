//! The one public error type. Each variant is something a caller can act on, and each message
//! says what happened, to what, and what to do about it, on one line.

use std::path::PathBuf;

/// Everything that can stop an operation. Findings (a damaged pack seen by `check`, a file that
/// could not be read during a backup) are not errors: they are reported in the operation's report.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A storage operation failed after retries: what failed and what to do first, then which
    /// operation it was.
    #[error("target \"{target}\": {detail} (while trying to {op} {path})")]
    Target {
        target: String,
        op: &'static str,
        path: String,
        detail: String,
        transient: bool,
    },

    /// The target answers, but holds no repository.
    #[error(
        "target \"{target}\" holds no firesafe repository (no config object); check the --repo location, or run `firesafe --repo {target} init` to create one"
    )]
    NotARepository { target: String },

    /// `init` found a repository already there.
    #[error(
        "target \"{target}\" already holds a firesafe repository; nothing was changed (use a new location to create another)"
    )]
    AlreadyInitialised { target: String },

    /// Something the user named does not exist (a snapshot, a path inside one).
    #[error("{0}")]
    NotFound(String),

    /// A stored object failed an integrity check.
    #[error(
        "{what} {id} on target \"{target}\" is damaged: {detail}; run `firesafe check --read-data` to see what it affects"
    )]
    Corrupt {
        what: &'static str,
        id: String,
        target: String,
        detail: String,
    },

    /// No key envelope opens with the key given.
    #[error("{0}")]
    WrongKey(String),

    /// A local file or directory could not be used.
    #[error("{path}: {op}: {source}")]
    Local {
        path: PathBuf,
        op: &'static str,
        source: std::io::Error,
    },

    /// Bad arguments or a request that would lose data.
    #[error("{0}")]
    Usage(String),

    /// Problems in the configuration files, each naming its file, line and key.
    #[error(
        "the configuration has {} {}: {}",
        .0.len(),
        if .0.len() == 1 { "problem" } else { "problems" },
        .0.join("; ")
    )]
    Config(Vec<String>),

    /// Stopped by a signal; what was stored is kept and the next run continues from it.
    #[error("{0}")]
    Interrupted(String),

    /// Another process holds a lock on a target that this operation cannot share.
    #[error("{0}")]
    Busy(String),

    /// A repository written by a newer or unknown format.
    #[error("{0}")]
    Format(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether trying again later might succeed (a target that was briefly down).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Target {
                transient: true,
                ..
            }
        )
    }

    pub fn local(path: impl Into<PathBuf>, op: &'static str, source: std::io::Error) -> Error {
        Error::Local {
            path: path.into(),
            op,
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_problems_are_counted_in_words() {
        // Spelt out by hand here: the base layer may not use `plan::words`.
        let one = Error::Config(vec!["nightly.toml:3:1: key cron: not a schedule".into()]);
        assert_eq!(
            one.to_string(),
            "the configuration has 1 problem: nightly.toml:3:1: key cron: not a schedule"
        );
        let two = Error::Config(vec!["a".into(), "b".into()]);
        assert_eq!(two.to_string(), "the configuration has 2 problems: a; b");
    }
}
