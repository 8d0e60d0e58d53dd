//! `[ransomware]` in a schedule: the thresholds of the detection each backup runs, validated.

use serde::Deserialize;

/// `[ransomware]` in a schedule: the thresholds of the detection each backup runs (see
/// `docs/RANSOMWARE.md`); every key is optional.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RansomwareSpec {
    /// `false` turns detection off for the schedule's sources.
    pub enabled: bool,
    /// The score (1-100) from which a snapshot is suspect (default 50).
    pub threshold: u32,
    /// Recent snapshots of a source its volume is compared with (default 10).
    pub history: usize,
    /// Percent of the files changed, removed or added that can count as unusual (default 5).
    pub unusual_percent: f64,
    /// Spreads above the source's median that are unusual (default 4).
    pub spread: f64,
    /// Percent of the files turned to ciphertext-like content for the full 70 points (default 1).
    pub character_percent: f64,
    /// Fewer files than this never make a signal on their own (default 5).
    pub min_files: u64,
    /// Extensions added to the shipped list (`["fs7k"]`).
    pub extensions: Vec<String>,
    /// Ransom-note names added to the shipped list, `*` for any text.
    pub notes: Vec<String>,
}

impl Default for RansomwareSpec {
    fn default() -> Self {
        let d = crate::plan::ransomware::Detection::default();
        RansomwareSpec {
            enabled: true,
            threshold: d.threshold,
            history: d.history,
            unusual_percent: d.unusual_share * 100.0,
            spread: d.spread,
            character_percent: d.character_share * 100.0,
            min_files: d.min_files,
            extensions: d.extensions,
            notes: d.notes,
        }
    }
}

impl RansomwareSpec {
    /// The backup's detection options; `None` when turned off.
    pub fn detection(&self) -> Option<crate::plan::ransomware::Detection> {
        self.enabled.then(|| crate::plan::ransomware::Detection {
            threshold: self.threshold,
            history: self.history,
            unusual_share: self.unusual_percent / 100.0,
            spread: self.spread,
            character_share: self.character_percent / 100.0,
            min_files: self.min_files,
            extensions: self.extensions.clone(),
            notes: self.notes.clone(),
        })
    }

    /// What is wrong with the table: (key, why).
    pub(super) fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if !(1..=100).contains(&self.threshold) {
            out.push((
                "threshold",
                "[ransomware] key threshold: give a score from 1 to 100 (default 50)".into(),
            ));
        }
        if self.history == 0 {
            out.push((
                "history",
                "[ransomware] key history: compare with at least 1 snapshot (default 10)".into(),
            ));
        }
        for (key, v) in [
            ("unusual_percent", self.unusual_percent),
            ("character_percent", self.character_percent),
        ] {
            if !(v > 0.0 && v <= 100.0) {
                out.push((
                    key,
                    format!("[ransomware] key {key}: give a percentage above 0 and at most 100"),
                ));
            }
        }
        if !(self.spread.is_finite() && self.spread >= 0.0) {
            out.push((
                "spread",
                "[ransomware] key spread: give a number of spreads, 0 or more (default 4)".into(),
            ));
        }
        if self.min_files == 0 {
            out.push((
                "min_files",
                "[ransomware] key min_files: give at least 1 (default 5)".into(),
            ));
        }
        for e in &self.extensions {
            let e = e.trim().trim_start_matches('.');
            if e.is_empty() || e.contains('/') || e.contains('.') || e.len() > 16 {
                out.push(("extensions", format!("[ransomware] key extensions: \"{e}\" is not one file extension (write \"locked\" or \".locked\")")));
            }
        }
        if self
            .notes
            .iter()
            .any(|n| n.trim().is_empty() || n.contains('/'))
        {
            out.push((
                "notes",
                "[ransomware] key notes: give file names (no folders), `*` for any text".into(),
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::ransomware::Detection;

    #[test]
    fn absent_keys_are_the_defaults_and_enabled_false_turns_it_off() {
        let spec: RansomwareSpec = toml::from_str("").unwrap();
        assert_eq!(spec.detection(), Some(Detection::default()));
        assert!(spec.problems().is_empty());
        let off: RansomwareSpec = toml::from_str("enabled = false").unwrap();
        assert_eq!(off.detection(), None);
        let own: RansomwareSpec =
            toml::from_str("threshold = 60\nextensions = [\".fs7k\"]\nnotes = [\"OPEN_ME*\"]")
                .unwrap();
        let d = own.detection().unwrap();
        assert_eq!((d.threshold, d.extensions[0].as_str()), (60, ".fs7k"));
        assert!(toml::from_str::<RansomwareSpec>("treshold = 60").is_err());
    }

    #[test]
    fn bad_values_are_named_by_key() {
        let spec: RansomwareSpec = toml::from_str(
            "threshold = 0\nunusual_percent = 0\nextensions = [\"tar.gz\"]\nnotes = [\"a/b\"]",
        )
        .unwrap();
        let keys: Vec<&str> = spec.problems().iter().map(|(k, _)| *k).collect();
        assert_eq!(
            keys,
            ["threshold", "unusual_percent", "extensions", "notes"]
        );
    }
}
