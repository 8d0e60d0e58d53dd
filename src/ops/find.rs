//! Finding files and folders by name across snapshots, and the history of one path.
//!
//! Both answer "which versions of this file exist, and when did it change or disappear". A
//! *version* is one state of one path in one source: the same kind, content (a file's blob list,
//! a folder's tree id, a symlink's target), size and modification time. A version is reported
//! once, with every snapshot that holds it (consecutive or not), the first and last of them, and
//! the first later snapshot of its source where the path changed or no longer exists.
//!
//! Trees are content-addressed, so what lies beneath a tree is the same in every snapshot that
//! holds it. The search remembers, per tree id, the matches found beneath it: a folder unchanged
//! across 200 snapshots is read and searched once, and each later snapshot reads only the trees
//! on the paths to what changed. A pattern with a `/` matches whole paths, which depend on where
//! a tree sits, so its matches are remembered per tree id and folder path instead.
//!
//! The search keeps its own stack of folders, and the bounds of [`crate::store::walk`]: trees
//! nested deeper, or shared far more, than a backup writes are refused.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::format::tree::{Name, Node, NodeKind, Tree};
use crate::id::Id;
use crate::plan::words::count_s;
use crate::store::blobs::BlobReader;
use crate::store::snapshot::Listed;
use crate::store::walk::Trees;

/// What to search for, and in which snapshots.
#[derive(Clone, Debug, Default)]
pub struct FindOptions {
    /// A glob (`*`, `?`, `[a-z]`, `**`). Without a `/` it matches the last component of a path;
    /// with one, the whole path (from the backed-up folder's name, with or without a leading `/`).
    pub pattern: String,
    pub case_sensitive: bool,
    /// Only snapshots of this source.
    pub source: Option<String>,
    /// Only snapshots taken at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only snapshots taken at or before this time.
    pub until: Option<DateTime<Utc>>,
}

/// The path whose history to show, and in which snapshots.
#[derive(Clone, Debug, Default)]
pub struct VersionsOptions {
    /// A path inside the snapshots, as `firesafe ls` shows it (`curriculum/year7/plan.docx`).
    pub path: String,
    /// Only snapshots of this source.
    pub source: Option<String>,
}

/// A snapshot, as a version refers to it.
#[derive(Clone, Debug, Serialize)]
pub struct Seen {
    pub snapshot: Id,
    pub time: DateTime<Utc>,
}

/// Why a version ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Ending {
    /// The path holds another version.
    Changed,
    /// The path no longer exists.
    Deleted,
}

/// The first snapshot after a version's last appearance that no longer holds it.
#[derive(Clone, Debug, Serialize)]
pub struct Ended {
    pub snapshot: Id,
    pub time: DateTime<Utc>,
    pub reason: Ending,
}

/// One version of one path.
#[derive(Clone, Debug, Serialize)]
pub struct Version {
    pub source: String,
    /// Path inside the snapshot, starting with `/`.
    pub path: String,
    #[serde(rename = "type")]
    pub kind: NodeKind,
    pub size: u64,
    pub mtime: DateTime<Utc>,
    /// Every snapshot searched that holds this version, oldest first.
    pub snapshots: Vec<Seen>,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// `None` when the newest snapshot of the source that was searched still holds it.
    pub ended: Option<Ended>,
}

/// What `find` found.
#[derive(Clone, Debug, Serialize)]
pub struct FindReport {
    /// Snapshots searched.
    pub snapshots: usize,
    /// Distinct trees read; every other tree was known by its id.
    pub trees_read: usize,
    /// Sorted by source, path and first appearance.
    pub versions: Vec<Version>,
}

/// The history of one path.
#[derive(Clone, Debug, Serialize)]
pub struct VersionsReport {
    pub path: String,
    /// Snapshots searched.
    pub snapshots: usize,
    /// Sorted by source and first appearance.
    pub versions: Vec<Version>,
}

/// Searches the names in `snapshots` (oldest first, as [`crate::store::snapshot::Catalog`] holds
/// them) selected by `options`. Finding nothing is an error ([`Error::NotFound`]), so that the
/// message says what was searched.
pub async fn find(
    reader: &BlobReader<'_>,
    snapshots: &[Listed],
    options: &FindOptions,
) -> Result<FindReport> {
    let glob = Glob::new(&options.pattern, options.case_sensitive).map_err(Error::Usage)?;
    let chosen: Vec<&Listed> = snapshots
        .iter()
        .filter(|l| {
            options
                .source
                .as_ref()
                .is_none_or(|s| &l.snapshot.source == s)
        })
        .filter(|l| options.since.is_none_or(|t| l.snapshot.start >= t))
        .filter(|l| options.until.is_none_or(|t| l.snapshot.start <= t))
        .collect();
    if chosen.is_empty() {
        return Err(Error::NotFound(format!(
            "no snapshot{} to search{}; `firesafe snapshots` lists them",
            of_source(options.source.as_deref()),
            if options.since.is_some() || options.until.is_some() {
                " in that time"
            } else {
                ""
            }
        )));
    }
    let mut search = Search {
        trees: Trees::new(reader, String::new()),
        glob: &glob,
        memo: HashMap::new(),
        trees_read: 0,
    };
    let mut history = History::new(&chosen);
    for (at, listed) in chosen.iter().enumerate() {
        search.trees.next_walk(listed.id.short());
        let found = search.beneath(listed.snapshot.tree).await?;
        for f in found.iter() {
            history.add(at, &f.path, &f.state);
        }
    }
    if history.versions.is_empty() {
        return Err(Error::NotFound(format!(
            "nothing matches \"{}\" in the {} searched{}; a pattern without '/' matches names (* any characters, ? one), with '/' whole paths",
            options.pattern,
            count_s(chosen.len() as u64, "snapshot"),
            of_source(options.source.as_deref()),
        )));
    }
    Ok(FindReport {
        snapshots: chosen.len(),
        trees_read: search.trees_read,
        versions: history.finish(),
    })
}

/// The versions of one path across `snapshots` (oldest first). A path in no snapshot is an error
/// ([`Error::NotFound`]).
pub async fn versions(
    reader: &BlobReader<'_>,
    snapshots: &[Listed],
    options: &VersionsOptions,
) -> Result<VersionsReport> {
    let parts: Vec<&str> = options
        .path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.is_empty() {
        return Err(Error::Usage(
            "give a path inside the snapshots, as `firesafe ls` shows it (curriculum/year7/plan.docx)".into(),
        ));
    }
    let path = format!("/{}", parts.join("/"));
    let chosen: Vec<&Listed> = snapshots
        .iter()
        .filter(|l| {
            options
                .source
                .as_ref()
                .is_none_or(|s| &l.snapshot.source == s)
        })
        .collect();
    // What the rest of the path leads to below a tree at a depth: the same in every snapshot
    // holding that tree.
    let mut below: HashMap<(Id, usize), Option<Arc<State>>> = HashMap::new();
    let mut history = History::new(&chosen);
    for (at, listed) in chosen.iter().enumerate() {
        let mut walked = Vec::new();
        let (mut tree, mut depth) = (listed.snapshot.tree, 0);
        let found = loop {
            if let Some(known) = below.get(&(tree, depth)) {
                break known.clone();
            }
            walked.push((tree, depth));
            let listing = reader.tree(&tree).await?;
            match listing.find(parts[depth].as_bytes()) {
                Some(node) if depth + 1 == parts.len() => break Some(Arc::new(State::of(node))),
                Some(Node {
                    kind: NodeKind::Dir,
                    subtree: Some(sub),
                    ..
                }) => (tree, depth) = (*sub, depth + 1),
                _ => break None,
            }
        };
        for key in walked {
            below.insert(key, found.clone());
        }
        if let Some(state) = found {
            history.add(at, &path, &state);
        }
    }
    if history.versions.is_empty() {
        return Err(Error::NotFound(format!(
            "{path} is in none of the {}{}; `firesafe find NAME` searches by name",
            count_s(chosen.len() as u64, "snapshot"),
            of_source(options.source.as_deref())
        )));
    }
    Ok(VersionsReport {
        path,
        snapshots: chosen.len(),
        versions: history.finish(),
    })
}

fn of_source(source: Option<&str>) -> String {
    source.map_or(String::new(), |s| format!(" of source \"{s}\""))
}

/// What makes a version: two nodes at one path with equal states are the same version.
#[derive(Debug, PartialEq, Eq, Hash)]
struct State {
    kind: NodeKind,
    size: u64,
    mtime: (i64, u32),
    content: Content,
}

#[derive(Debug, PartialEq, Eq, Hash)]
enum Content {
    Blobs(Vec<Id>),
    Tree(Id),
    Target(Name),
    Nothing,
}

impl State {
    fn of(node: &Node) -> State {
        State {
            kind: node.kind,
            size: node.size,
            mtime: (node.mtime, node.mtime_nsec),
            content: match (&node.subtree, &node.target) {
                (Some(tree), _) => Content::Tree(*tree),
                (None, Some(target)) => Content::Target(target.clone()),
                (None, None) if node.content.is_empty() => Content::Nothing,
                (None, None) => Content::Blobs(node.content.clone()),
            },
        }
    }
}

/// A match beneath a tree: its path relative to that tree (starting with `/`) and its state.
struct Found {
    path: String,
    state: Arc<State>,
}

/// A tree being searched: its memo key, its folder's path, its entries and how far the search
/// has got through them, and the matches beneath it so far.
struct Frame {
    key: (Id, Option<String>),
    dir: String,
    tree: Arc<Tree>,
    next: usize,
    found: Vec<Found>,
}

struct Search<'s, 'a> {
    trees: Trees<'s, 'a>,
    glob: &'s Glob,
    /// Matches beneath a tree, by tree id (and folder path, for whole-path patterns).
    memo: HashMap<(Id, Option<String>), Arc<Vec<Found>>>,
    trees_read: usize,
}

impl Search<'_, '_> {
    /// Every match beneath the root tree `root`. The search keeps its own stack of folders
    /// (never the call stack), each folder's matches are remembered once found, and the walk
    /// keeps the bounds of [`crate::store::walk`].
    async fn beneath(&mut self, root: Id) -> Result<Arc<Vec<Found>>> {
        let mut stack: Vec<Frame> = Vec::new();
        // The matches beneath the subfolder just searched (the entry before `next`).
        let mut done: Option<Arc<Vec<Found>>> = match self.open(root, String::new(), 0).await? {
            Ok(frame) => {
                stack.push(frame);
                None
            }
            Err(known) => return Ok(known),
        };
        while let Some(frame) = stack.last_mut() {
            if let Some(inner) = done.take() {
                let name = frame.tree.entries[frame.next - 1].name.display();
                frame.found.extend(inner.iter().map(|f| Found {
                    path: format!("/{name}{}", f.path),
                    state: Arc::clone(&f.state),
                }));
                self.trees.within(frame.found.len() as u64)?;
            }
            let Some(node) = frame.tree.entries.get(frame.next) else {
                let frame = stack.pop().expect("a frame");
                let found = Arc::new(frame.found);
                self.memo.insert(frame.key, Arc::clone(&found));
                if stack.is_empty() {
                    return Ok(found);
                }
                done = Some(found);
                continue;
            };
            frame.next += 1;
            let name = node.name.display();
            let path = format!("{}/{name}", frame.dir);
            let hit = if self.glob.whole_path {
                self.glob.matches(&path[1..])
            } else {
                self.glob.matches(&name)
            };
            if hit {
                frame.found.push(Found {
                    path: format!("/{name}"),
                    state: Arc::new(State::of(node)),
                });
            }
            if let (NodeKind::Dir, Some(sub)) = (node.kind, node.subtree) {
                let level = stack.len();
                match self.open(sub, path, level).await? {
                    Ok(child) => stack.push(child),
                    Err(known) => done = Some(known),
                }
            }
        }
        unreachable!("the root frame returns")
    }

    /// The frame for searching tree `id` at folder `dir`, or its matches when already known.
    async fn open(
        &mut self,
        id: Id,
        dir: String,
        level: usize,
    ) -> Result<std::result::Result<Frame, Arc<Vec<Found>>>> {
        let key = (id, self.glob.whole_path.then(|| dir.clone()));
        if let Some(known) = self.memo.get(&key) {
            return Ok(Err(Arc::clone(known)));
        }
        let tree = self.trees.tree(&id, level, &dir).await?;
        self.trees.listed(tree.entries.len())?;
        self.trees_read += 1;
        Ok(Ok(Frame {
            key,
            dir,
            tree,
            next: 0,
            found: Vec::new(),
        }))
    }
}

/// Appearances of paths, snapshot by snapshot, gathered into versions.
struct History<'c> {
    snapshots: &'c [&'c Listed],
    versions: Vec<Gathered>,
    by_state: HashMap<(String, String, Arc<State>), usize>,
    /// Positions (in `snapshots`) of the snapshots holding a path, by source and path.
    present: HashMap<(String, String), Vec<usize>>,
}

struct Gathered {
    source: String,
    path: String,
    state: Arc<State>,
    seen: Vec<usize>,
}

impl<'c> History<'c> {
    fn new(snapshots: &'c [&'c Listed]) -> History<'c> {
        History {
            snapshots,
            versions: Vec::new(),
            by_state: HashMap::new(),
            present: HashMap::new(),
        }
    }

    /// Records that the snapshot at position `at` holds `path` in `state`.
    fn add(&mut self, at: usize, path: &str, state: &Arc<State>) {
        let source = &self.snapshots[at].snapshot.source;
        let key = (source.clone(), path.to_string(), Arc::clone(state));
        let next = self.versions.len();
        let v = *self.by_state.entry(key).or_insert(next);
        if v == next {
            self.versions.push(Gathered {
                source: source.clone(),
                path: path.to_string(),
                state: Arc::clone(state),
                seen: Vec::new(),
            });
        }
        self.versions[v].seen.push(at);
        self.present
            .entry((source.clone(), path.to_string()))
            .or_default()
            .push(at);
    }

    fn finish(self) -> Vec<Version> {
        let mut by_source: HashMap<&str, Vec<usize>> = HashMap::new();
        for (at, l) in self.snapshots.iter().enumerate() {
            by_source.entry(&l.snapshot.source).or_default().push(at);
        }
        let seen = |at: usize| Seen {
            snapshot: self.snapshots[at].id,
            time: self.snapshots[at].snapshot.start,
        };
        let mut out: Vec<Version> = self
            .versions
            .iter()
            .map(|g| {
                let (first, last) = (g.seen[0], g.seen[g.seen.len() - 1]);
                let order = &by_source[g.source.as_str()];
                let ended = order.iter().find(|&&at| at > last).map(|&at| {
                    let still_there = self.present[&(g.source.clone(), g.path.clone())]
                        .binary_search(&at)
                        .is_ok();
                    let s = seen(at);
                    Ended {
                        snapshot: s.snapshot,
                        time: s.time,
                        reason: if still_there {
                            Ending::Changed
                        } else {
                            Ending::Deleted
                        },
                    }
                });
                Version {
                    source: g.source.clone(),
                    path: g.path.clone(),
                    kind: g.state.kind,
                    size: g.state.size,
                    mtime: DateTime::from_timestamp(g.state.mtime.0, g.state.mtime.1)
                        .unwrap_or_default(),
                    snapshots: g.seen.iter().map(|&at| seen(at)).collect(),
                    first_seen: seen(first).time,
                    last_seen: seen(last).time,
                    ended,
                }
            })
            .collect();
        out.sort_by(|a, b| {
            (&a.source, &a.path, a.first_seen).cmp(&(&b.source, &b.path, b.first_seen))
        });
        out
    }
}

/// A shell-style glob: `*` any run of characters but `/`, `**` any run including `/`, `?` one
/// character but `/`, `[abc]`, `[a-z]` and `[!a-z]` one of (or none of) a set, `\` quotes the
/// next character.
#[derive(Clone, Debug)]
pub struct Glob {
    tokens: Vec<Token>,
    case_sensitive: bool,
    /// The pattern has a `/`: it matches whole paths rather than names.
    pub whole_path: bool,
}

#[derive(Clone, Debug)]
enum Token {
    Char(char),
    One,
    Star,
    Stars,
    Set {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl Glob {
    pub fn new(pattern: &str, case_sensitive: bool) -> Result<Glob, String> {
        let whole_path = pattern.contains('/');
        let text = if case_sensitive {
            pattern.to_string()
        } else {
            pattern.to_lowercase()
        };
        let text = if whole_path {
            text.trim_start_matches('/')
        } else {
            &text
        };
        if text.is_empty() {
            return Err("the pattern is empty; give a name or a glob such as '*.docx'".into());
        }
        let mut tokens = Vec::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            tokens.push(match c {
                '*' if chars.peek() == Some(&'*') => {
                    chars.next();
                    Token::Stars
                }
                '*' => Token::Star,
                '?' => Token::One,
                '\\' => Token::Char(chars.next().unwrap_or('\\')),
                '[' => {
                    let negated = matches!(chars.peek(), Some('!' | '^'));
                    if negated {
                        chars.next();
                    }
                    let mut ranges = Vec::new();
                    let mut closed = false;
                    while let Some(c) = chars.next() {
                        if c == ']' && !ranges.is_empty() {
                            closed = true;
                            break;
                        }
                        let c = if c == '\\' { chars.next().unwrap_or(c) } else { c };
                        let mut ahead = chars.clone();
                        if ahead.next() == Some('-') && ahead.peek().is_some_and(|&e| e != ']') {
                            chars.next();
                            let end = chars.next().expect("peeked");
                            ranges.push((c, end));
                        } else {
                            ranges.push((c, c));
                        }
                    }
                    if !closed {
                        return Err(format!(
                            "the pattern \"{pattern}\" has a '[' without its ']'; write \\[ for a bracket"
                        ));
                    }
                    Token::Set { negated, ranges }
                }
                c => Token::Char(c),
            });
        }
        Ok(Glob {
            tokens,
            case_sensitive,
            whole_path,
        })
    }

    /// Whether `text` (a name, or a path without its leading `/`) matches.
    pub fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = if self.case_sensitive {
            text.chars().collect()
        } else {
            text.to_lowercase().chars().collect()
        };
        // reach[j]: the tokens so far can consume exactly text[..j].
        let mut reach = vec![false; text.len() + 1];
        reach[0] = true;
        for token in &self.tokens {
            let mut next = vec![false; text.len() + 1];
            match token {
                Token::Star | Token::Stars => {
                    let mut open = false;
                    for j in 0..=text.len() {
                        open |= reach[j];
                        next[j] = open;
                        if matches!(token, Token::Star) && text.get(j) == Some(&'/') {
                            open = false;
                        }
                    }
                }
                _ => {
                    for j in 0..text.len() {
                        if reach[j] && single(token, text[j]) {
                            next[j + 1] = true;
                        }
                    }
                }
            }
            reach = next;
        }
        reach[text.len()]
    }
}

/// Whether one character matches a one-character token.
fn single(token: &Token, c: char) -> bool {
    match token {
        Token::Char(p) => *p == c,
        Token::One => c != '/',
        Token::Set { negated, ranges } => {
            c != '/' && ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
        }
        Token::Star | Token::Stars => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, text: &str) -> bool {
        Glob::new(pattern, false).unwrap().matches(text)
    }

    #[test]
    fn globs_match_names() {
        assert!(m("*.docx", "Fractions.DOCX"));
        assert!(m("fractions.docx", "fractions.docx"));
        assert!(!m("*.docx", "fractions.doc"));
        assert!(m("report-?.txt", "report-7.txt"));
        assert!(!m("report-?.txt", "report-17.txt"));
        assert!(m("report-[0-9][0-9].txt", "report-17.txt"));
        assert!(!m("report-[!1]*.txt", "report-17.txt"));
        assert!(m("*", ""));
        assert!(m("a*b*c", "axxbyyc"));
        assert!(!m("a*b*c", "axxbyy"));
        assert!(m("\\*", "*"));
        assert!(!m("\\*", "x"));
        assert!(m("[]x]", "]"));
    }

    #[test]
    fn case_sensitivity_is_a_choice() {
        let g = Glob::new("Plan*.docx", true).unwrap();
        assert!(g.matches("Plan 1.docx"));
        assert!(!g.matches("plan 1.docx"));
        assert!(m("CAFÉ*", "café notes"));
    }

    #[test]
    fn slashes_make_whole_path_patterns() {
        let g = Glob::new("/curriculum/year7/*.docx", false).unwrap();
        assert!(g.whole_path);
        assert!(g.matches("curriculum/year7/plan.docx"));
        assert!(!g.matches("curriculum/year7/old/plan.docx"));
        let deep = Glob::new("curriculum/**/plan.docx", false).unwrap();
        assert!(deep.matches("curriculum/year7/old/plan.docx"));
        assert!(deep.matches("curriculum/x/plan.docx"));
        assert!(!Glob::new("*.docx", false).unwrap().whole_path);
        assert!(!m("year7*", "year7/plan.docx"));
    }

    #[test]
    fn bad_patterns_are_refused() {
        assert!(Glob::new("", false).is_err());
        assert!(Glob::new("/", false).is_err());
        let e = Glob::new("report[12", false).unwrap_err();
        assert!(e.contains("report[12"), "{e}");
    }
}
