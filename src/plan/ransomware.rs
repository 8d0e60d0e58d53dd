//! Ransomware signals: from what one backup saw against its parent snapshot, and the source's
//! own recent history, a score and plain reasons ([`Suspect`]), or nothing.
//!
//! Pure: the backup walk gathers an [`Observed`] (counts and a few example paths, never a list
//! of every file), the caller passes the [`SnapshotStats`] of the source's recent snapshots and
//! the [`Detection`] thresholds; [`score`] decides. The signals, and why each weighs what it
//! does, are in `docs/RANSOMWARE.md`.
//!
//! | signal | points | when |
//! |---|---|---|
//! | `content-changed-character` | up to 70 | files whose previous version had a signature or compressed, now neither |
//! | `ransom-extension` | 60 (20 below `min_files`) | new files with an extension of the shipped list |
//! | `ransom-note` | 60 (20 for one or two) | ransom-note names in 3 or more folders |
//! | `changed`, `removed`, `added` | 25, 20, 10 (together at most 40) | a share above `unusual_share` and far above the source's median |
//! | `new-extensions` | up to 25 | new files with extensions the parent snapshot never had |
//! | `renamed` | up to 25 | content that reappears under another extension |
//!
//! Volume alone never reaches the default threshold (50): a big tidy-up is not an attack.

use std::collections::{BTreeMap, HashSet};

use crate::format::snapshot::{Signal, SnapshotStats, Suspect};
use crate::format::tree::Look;

/// The shipped list of ransomware file extensions (`assets/ransomware-extensions.txt`).
pub const EXTENSIONS: &str = include_str!("../../assets/ransomware-extensions.txt");
/// The shipped list of ransom-note names (`assets/ransom-notes.txt`), `*` for any text.
pub const NOTES: &str = include_str!("../../assets/ransom-notes.txt");

/// Example paths kept per signal.
pub const EXAMPLES: usize = 5;

/// Bytes of a file's start that [`look`] examines.
pub const LOOK_BYTES: usize = 64 << 10;

/// The thresholds and extra names of the detection (a schedule's `[ransomware]` table).
#[derive(Clone, Debug, PartialEq)]
pub struct Detection {
    /// The score (0-100) from which a snapshot is suspect.
    pub threshold: u32,
    /// How many recent snapshots of the source the volume is compared with.
    pub history: usize,
    /// The least share of the files changed, removed or added that can count as unusual.
    pub unusual_share: f64,
    /// How many spreads (scaled median absolute deviations) above the median is unusual.
    pub spread: f64,
    /// The share of files turned to ciphertext-like content that gives the full 70 points.
    pub character_share: f64,
    /// Fewer files than this never make a signal on their own (a ransom-extension or
    /// ransom-note signal below it counts 20).
    pub min_files: u64,
    /// Extensions added to the shipped list (without the dot).
    pub extensions: Vec<String>,
    /// Ransom-note names added to the shipped list.
    pub notes: Vec<String>,
}

impl Default for Detection {
    fn default() -> Detection {
        Detection {
            threshold: 50,
            history: 10,
            unusual_share: 0.05,
            spread: 4.0,
            character_share: 0.01,
            min_files: 5,
            extensions: Vec::new(),
            notes: Vec::new(),
        }
    }
}

/// The name lists, ready to match.
#[derive(Clone, Debug)]
pub struct Names {
    extensions: HashSet<String>,
    notes: Vec<String>,
}

fn lines(text: &str) -> impl Iterator<Item = String> + '_ {
    text.lines()
        .map(str::trim)
        // A comment is `# ` and text: a note name may begin with `#` itself.
        .filter(|l| !l.is_empty() && *l != "#" && !l.starts_with("# "))
        .map(str::to_lowercase)
}

impl Names {
    pub fn new(d: &Detection) -> Names {
        let extensions = lines(EXTENSIONS)
            .chain(d.extensions.iter().map(|e| e.trim().to_lowercase()))
            .map(|e| e.trim_start_matches('.').to_string())
            .filter(|e| !e.is_empty())
            .collect();
        let notes = lines(NOTES)
            .chain(d.notes.iter().map(|n| n.trim().to_lowercase()))
            .filter(|n| !n.is_empty())
            .collect();
        Names { extensions, notes }
    }

    /// Whether `ext` (lowercase, without the dot) is a ransomware extension.
    pub fn ransom_extension(&self, ext: &str) -> bool {
        self.extensions.contains(ext)
    }

    /// Whether a file name is a ransom note's.
    pub fn ransom_note(&self, name: &str) -> bool {
        let name = name.to_lowercase();
        self.notes
            .iter()
            .any(|p| glob(p.as_bytes(), name.as_bytes()))
    }
}

/// `*` matches any text; everything else itself.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|i| glob(rest, &text[i..])),
        Some((c, rest)) => text.first() == Some(c) && glob(rest, &text[1..]),
    }
}

/// A file name's last extension, lowercase, without the dot: 1-16 letters or digits (`_` and
/// `-` too), and never the whole name (`.bashrc` has none).
pub fn extension(name: &[u8]) -> Option<String> {
    let dot = name.iter().rposition(|&b| b == b'.')?;
    let ext = &name[dot + 1..];
    (dot > 0
        && (1..=16).contains(&ext.len())
        && ext
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-'))
    .then(|| String::from_utf8_lossy(ext).to_lowercase())
}

/// How a file's start looks: its signature, or without one whether its first
/// [`LOOK_BYTES`] would compress. Compressibility is judged by the Shannon entropy of the byte
/// histogram (order 0), against what random bytes of that length give: `Dense` within 0.1 bit
/// of it, `Compressible` below 6 bits a byte. `None`: under 1 KiB, or in between.
pub fn look(start: &[u8]) -> Option<Look> {
    if let Some(sig) = signature(start) {
        return Some(sig);
    }
    let sample = &start[..start.len().min(LOOK_BYTES)];
    let n = sample.len();
    if n < 1024 {
        return None;
    }
    let mut counts = [0u32; 256];
    for &b in sample {
        counts[b as usize] += 1;
    }
    let nf = n as f64;
    let entropy: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / nf;
            -p * p.log2()
        })
        .sum();
    // The bias of the plug-in estimate for uniform bytes (Miller-Madow): (K-1)/(2n ln 2).
    let random = 8.0 - 255.0 / (2.0 * nf * std::f64::consts::LN_2);
    if entropy >= random - 0.1 {
        Some(Look::Dense)
    } else if entropy < 6.0 {
        Some(Look::Compressible)
    } else {
        None
    }
}

fn signature(b: &[u8]) -> Option<Look> {
    let starts = |s: &[u8]| b.starts_with(s);
    Some(
        if starts(b"PK\x03\x04") || starts(b"PK\x05\x06") || starts(b"PK\x07\x08") {
            Look::Zip
        } else if starts(b"%PDF") {
            Look::Pdf
        } else if starts(b"\xff\xd8\xff") {
            Look::Jpeg
        } else if starts(b"\x89PNG\r\n\x1a\n") {
            Look::Png
        } else if starts(b"GIF87a") || starts(b"GIF89a") {
            Look::Gif
        } else if starts(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1") {
            Look::Ole
        } else if starts(b"\x1f\x8b") {
            Look::Gzip
        } else if starts(b"7z\xbc\xaf\x27\x1c") {
            Look::SevenZip
        } else if starts(b"Rar!\x1a\x07") {
            Look::Rar
        } else if b.len() >= 8 && &b[4..8] == b"ftyp" {
            Look::Media
        } else if starts(b"RIFF") {
            Look::Riff
        } else if starts(b"ID3") {
            Look::Mp3
        } else if starts(b"BM") && b.len() >= 10 && b[6..10] == [0, 0, 0, 0] {
            Look::Bmp
        } else if starts(b"II*\0") || starts(b"MM\0*") {
            Look::Tiff
        } else if starts(b"SQLite format 3\0") {
            Look::Sqlite
        } else if starts(b"{\\rtf") {
            Look::Rtf
        } else {
            return None;
        },
    )
}

/// Whether a change from `before` to `after` is the character change of encryption: the old
/// start had a signature or compressed, the new one has neither.
pub fn turned_dense(before: Option<Look>, after: Option<Look>) -> bool {
    matches!(after, Some(Look::Dense))
        && before.is_some_and(|b| b.is_signature() || b == Look::Compressible)
}

/// A count with a few example paths.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tally {
    pub count: u64,
    pub examples: Vec<String>,
}

impl Tally {
    pub fn add(&mut self, path: impl FnOnce() -> String) {
        self.count += 1;
        if self.examples.len() < EXAMPLES {
            self.examples.push(path());
        }
    }

    pub fn add_n(&mut self, n: u64) {
        self.count += n;
    }
}

/// What one backup saw against its parent snapshot.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    /// Files in the parent snapshot; `None` without a parent (a first backup).
    pub parent_files: Option<u64>,
    /// Files in this snapshot.
    pub files: u64,
    /// Files at a path the parent had, read again.
    pub changed: Tally,
    /// Files at a path the parent did not have.
    pub new: Tally,
    /// Files of the parent missing now.
    pub removed: Tally,
    /// New files whose content (first blob) is a removed file's: moved or renamed.
    pub moved: u64,
    /// Of those, renamed to another extension.
    pub renamed: Tally,
    /// New files with an extension no file of the parent snapshot had, by extension.
    pub new_extensions: Tally,
    pub new_extension_counts: BTreeMap<String, u64>,
    /// New files with an extension of the ransomware list, by extension.
    pub ransom_extensions: Tally,
    pub ransom_extension_counts: BTreeMap<String, u64>,
    /// New files named like ransom notes, and in how many folders.
    pub notes: Tally,
    pub note_folders: u64,
    /// Files (changed in place, or renamed in their folder) whose previous version had a
    /// signature or compressed, and whose new version has neither.
    pub character: Tally,
    /// Files for which both looks were known (the character change's denominator).
    pub character_known: u64,
}

/// The three volume measures of one snapshot: changed, removed, added (not counting moves), as
/// shares of its files.
fn shares_of(stats: &SnapshotStats) -> [f64; 3] {
    let n = stats.files.max(1) as f64;
    [
        stats.files_changed as f64 / n,
        stats.files_removed.saturating_sub(stats.files_moved) as f64 / n,
        stats.files_new.saturating_sub(stats.files_moved) as f64 / n,
    ]
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// The share above which a measure is unusual for this source: `unusual_share` at least, and
/// `spread` scaled median absolute deviations (at least 1% each) above the median.
fn limit(history: &[f64], d: &Detection) -> f64 {
    let mut h = history.to_vec();
    let m = median(&mut h);
    let mut dev: Vec<f64> = h.iter().map(|x| (x - m).abs()).collect();
    let mad = median(&mut dev) * 1.4826;
    d.unusual_share.max(m + d.spread * mad.max(0.01))
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn percent(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

fn top(counts: &BTreeMap<String, u64>) -> String {
    let mut v: Vec<(&String, &u64)> = counts.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    v.iter()
        .take(3)
        .map(|(e, n)| format!(".{e} ({})", thousands(**n)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One scored signal: its points, and the signal as the snapshot records it.
struct Scored {
    points: u32,
    headline: String,
    signal: Signal,
}

fn scored(points: u32, kind: &str, headline: String, reason: String, t: &Tally) -> Scored {
    Scored {
        points,
        headline,
        signal: Signal {
            kind: kind.into(),
            reason,
            count: t.count,
            examples: t.examples.clone(),
        },
    }
}

/// Points in proportion to `share / full`, at most `max`.
fn scaled(max: u32, share: f64, full: f64) -> u32 {
    (max as f64 * (share / full).min(1.0)).round() as u32
}

/// The volume signals: changed, removed and added shares against the source's history.
fn volume(o: &Observed, history: &[SnapshotStats], d: &Detection, n: f64) -> Vec<Scored> {
    let past: Vec<[f64; 3]> = history.iter().map(shares_of).collect();
    let removed = Tally {
        count: o.removed.count.saturating_sub(o.moved),
        examples: o.removed.examples.clone(),
    };
    let added = Tally {
        count: o.new.count.saturating_sub(o.moved),
        examples: o.new.examples.clone(),
    };
    let measures = [
        ("changed", 25, &o.changed, "changed"),
        ("removed", 20, &removed, "removed"),
        ("added", 10, &added, "added"),
    ];
    let mut out = Vec::new();
    let mut budget = 40u32;
    for (i, (kind, points, tally, verb)) in measures.into_iter().enumerate() {
        let share = tally.count as f64 / n;
        let h: Vec<f64> = past.iter().map(|s| s[i]).collect();
        let lim = limit(&h, d);
        if share <= lim || budget == 0 {
            continue;
        }
        let points = points.min(budget);
        budget -= points;
        let usual = median(&mut h.clone());
        out.push(scored(
            points,
            kind,
            format!("{} of {} files {verb}", thousands(tally.count), thousands(n as u64)),
            format!(
                "{} of {} files were {verb} ({}), against a usual {} for this share over its last {} backups",
                thousands(tally.count),
                thousands(n as u64),
                percent(share),
                percent(usual),
                h.len()
            ),
            tally,
        ));
    }
    out
}

/// The content and name signals.
fn content(o: &Observed, d: &Detection, n: f64, parent: bool) -> Vec<Scored> {
    let mut out = Vec::new();
    let c = &o.character;
    if parent && c.count >= d.min_files {
        let full = (d.character_share * n).clamp(d.min_files as f64, 250.0);
        let points = scaled(70, c.count as f64, full);
        out.push(scored(
            points,
            "content-changed-character",
            format!("{} files now look encrypted", thousands(c.count)),
            format!(
                "{} files that began with a file signature or compressed well now have neither: their content looks encrypted",
                thousands(c.count)
            ),
            c,
        ));
    }
    let r = &o.ransom_extensions;
    if r.count > 0 {
        let points = if r.count >= d.min_files { 60 } else { 20 };
        out.push(scored(
            points,
            "ransom-extension",
            format!(
                "{} files named {}",
                thousands(r.count),
                top(&o.ransom_extension_counts)
            ),
            format!(
                "{} new files have an extension ransomware is known to use: {}",
                thousands(r.count),
                top(&o.ransom_extension_counts)
            ),
            r,
        ));
    }
    let t = &o.notes;
    if t.count > 0 {
        let points = if o.note_folders >= 3 || t.count >= d.min_files {
            60
        } else {
            20
        };
        out.push(scored(
            points,
            "ransom-note",
            format!("ransom notes in {} folders", thousands(o.note_folders)),
            format!(
                "{} new files in {} folders are named like ransom notes",
                thousands(t.count),
                thousands(o.note_folders)
            ),
            t,
        ));
    }
    let e = &o.new_extensions;
    if parent && e.count >= d.min_files {
        out.push(scored(
            scaled(25, e.count as f64 / n, d.unusual_share),
            "new-extensions",
            format!(
                "{} files with extensions never seen before",
                thousands(e.count)
            ),
            format!(
                "{} new files have extensions no file of the previous backup had: {}",
                thousands(e.count),
                top(&o.new_extension_counts)
            ),
            e,
        ));
    }
    let m = &o.renamed;
    if parent && m.count >= d.min_files {
        out.push(scored(
            scaled(25, m.count as f64 / n, d.unusual_share),
            "renamed",
            format!("{} files renamed to another extension", thousands(m.count)),
            format!(
                "{} files were removed and their content reappeared under another extension",
                thousands(m.count)
            ),
            m,
        ));
    }
    out
}

/// The verdict on one backup: `Some` when the signals together reach the threshold.
pub fn score(o: &Observed, history: &[SnapshotStats], d: &Detection) -> Option<Suspect> {
    let parent = o.parent_files.is_some();
    let n = o.parent_files.unwrap_or(0).max(o.files).max(1) as f64;
    let mut all = content(o, d, n, parent);
    if parent {
        all.extend(volume(o, history, d, n));
    }
    all.retain(|s| s.points > 0);
    all.sort_by_key(|s| std::cmp::Reverse(s.points));
    let total: u32 = all.iter().map(|s| s.points).sum::<u32>().min(100);
    if total < d.threshold.max(1) {
        return None;
    }
    let headline = all
        .iter()
        .take(2)
        .map(|s| s.headline.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    Some(Suspect {
        score: total,
        threshold: d.threshold,
        headline,
        signals: all.into_iter().map(|s| s.signal).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(n: u64) -> Tally {
        Tally {
            count: n,
            examples: (0..n.min(EXAMPLES as u64))
                .map(|i| format!("/s/f{i}"))
                .collect(),
        }
    }

    fn normal_history(files: u64) -> Vec<SnapshotStats> {
        [10u64, 25, 18, 30, 12, 22, 15, 28, 20, 16]
            .iter()
            .map(|&per_mille_x10| SnapshotStats {
                files,
                files_changed: files * per_mille_x10 / 1000,
                files_new: files / 200,
                ..Default::default()
            })
            .collect()
    }

    fn night(files: u64) -> Observed {
        Observed {
            parent_files: Some(files),
            files,
            changed: tally(files / 50),
            ..Default::default()
        }
    }

    #[test]
    fn a_normal_night_is_not_suspect() {
        let d = Detection::default();
        assert_eq!(score(&night(4000), &normal_history(4000), &d), None);
    }

    #[test]
    fn big_tidy_ups_alone_never_reach_the_threshold() {
        let d = Detection::default();
        let mut o = night(4000);
        o.changed = tally(2000);
        o.removed = tally(1500);
        o.new = tally(3000);
        assert_eq!(score(&o, &normal_history(4000), &d), None);
        // A moved folder: removed and new, but the same content.
        let mut o = night(4000);
        o.removed = tally(1000);
        o.new = tally(1000);
        o.moved = 1000;
        assert_eq!(score(&o, &normal_history(4000), &d), None);
    }

    #[test]
    fn encrypted_content_is_suspect_from_one_percent() {
        let d = Detection::default();
        let mut o = night(4000);
        o.character = tally(40);
        o.changed = tally(120);
        let s = score(&o, &normal_history(4000), &d).expect("suspect");
        assert!(s.score >= 70, "{s:?}");
        assert_eq!(s.signals[0].kind, "content-changed-character");
        assert_eq!(s.signals[0].count, 40);
        assert_eq!(s.signals[0].examples.len(), EXAMPLES);
        assert!(
            s.headline.contains("40 files now look encrypted"),
            "{}",
            s.headline
        );
        // Half a percent alone is not enough; with an unusual volume it is.
        o.character = tally(20);
        assert_eq!(score(&o, &normal_history(4000), &d), None);
        o.changed = tally(400);
        assert!(score(&o, &normal_history(4000), &d).is_some());
        // Fewer than min_files never count.
        o.character = tally(4);
        o.changed = tally(80);
        assert_eq!(score(&o, &normal_history(4000), &d), None);
    }

    #[test]
    fn ransom_names_are_suspect() {
        let d = Detection::default();
        let mut o = night(4000);
        o.notes = tally(30);
        o.note_folders = 30;
        let s = score(&o, &normal_history(4000), &d).expect("notes");
        assert_eq!(s.signals[0].kind, "ransom-note");
        let mut o = night(4000);
        o.ransom_extensions = tally(200);
        o.ransom_extension_counts.insert("locky".into(), 200);
        let s = score(&o, &normal_history(4000), &d).expect("extension");
        assert!(s.signals[0].reason.contains(".locky (200)"), "{s:?}");
        // One note in one folder: a mention, not an alarm.
        let mut o = night(4000);
        o.notes = tally(1);
        o.note_folders = 1;
        assert_eq!(score(&o, &normal_history(4000), &d), None);
    }

    #[test]
    fn a_first_backup_is_judged_by_names_only() {
        let d = Detection::default();
        let o = Observed {
            parent_files: None,
            files: 1000,
            new: tally(1000),
            character: tally(1000),
            ..Default::default()
        };
        assert_eq!(score(&o, &[], &d), None);
    }

    #[test]
    fn the_history_sets_the_limit() {
        let d = Detection::default();
        // A share where a tenth changes every night.
        let busy: Vec<SnapshotStats> = (0..10)
            .map(|i| SnapshotStats {
                files: 1000,
                files_changed: 95 + i,
                ..Default::default()
            })
            .collect();
        let l = limit(
            &busy.iter().map(|s| shares_of(s)[0]).collect::<Vec<_>>(),
            &d,
        );
        assert!(l > 0.13 && l < 0.15, "{l}");
        assert_eq!(limit(&[], &d), 0.05);
    }

    #[test]
    fn lists_match_names() {
        let names = Names::new(&Detection {
            extensions: vec![".Fs7k".into()],
            notes: vec!["OPEN_ME_*.html".into()],
            ..Default::default()
        });
        assert!(names.ransom_extension("locky"));
        assert!(names.ransom_extension("fs7k"));
        assert!(!names.ransom_extension("docx"));
        assert!(!names.ransom_extension("java"));
        assert!(names.ransom_note("HOW_TO_DECRYPT_FILES.txt"));
        assert!(names.ransom_note("_readme.txt"));
        assert!(names.ransom_note("#DECRYPT MY FILES#.html"));
        assert!(names.ransom_note("open_me_now.html"));
        assert!(!names.ransom_note("readme.txt"));
        assert!(!names.ransom_note("Year 7 reading list.docx"));
        assert_eq!(extension(b"report.DOCX").as_deref(), Some("docx"));
        assert_eq!(extension(b"a.docx.fs7k").as_deref(), Some("fs7k"));
        assert_eq!(extension(b".bashrc"), None);
        assert_eq!(extension(b"notes"), None);
        assert_eq!(extension(b"a.b c"), None);
    }

    fn noise(len: usize) -> Vec<u8> {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    #[test]
    fn looks_tell_signatures_text_and_ciphertext() {
        assert_eq!(look(b"PK\x03\x04rest"), Some(Look::Zip));
        assert_eq!(look(b"%PDF-1.7\n"), Some(Look::Pdf));
        assert_eq!(look(b"\xff\xd8\xff\xe0"), Some(Look::Jpeg));
        assert_eq!(look(b"\0\0\0\x18ftypheic"), Some(Look::Media));
        let text = "Year 7 homework: read chapter three and answer the questions.\n".repeat(100);
        assert_eq!(look(text.as_bytes()), Some(Look::Compressible));
        for len in [1024, 4096, 65536, 1 << 20] {
            assert_eq!(look(&noise(len)), Some(Look::Dense), "{len}");
        }
        assert_eq!(look(&noise(500)), None, "too short to tell");
        assert!(turned_dense(Some(Look::Zip), Some(Look::Dense)));
        assert!(turned_dense(Some(Look::Compressible), Some(Look::Dense)));
        assert!(!turned_dense(Some(Look::Dense), Some(Look::Dense)));
        assert!(!turned_dense(None, Some(Look::Dense)));
        assert!(!turned_dense(Some(Look::Zip), Some(Look::Zip)));
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(4312), "4,312");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }
}
