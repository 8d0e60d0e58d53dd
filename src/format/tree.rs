//! Trees: one directory's listing, stored as a blob.
//!
//! A tree holds one [`Node`] per entry, sorted by name bytes, serialised as JSON. A directory's
//! node names its own tree by blob id (`subtree`); a file's node lists its content blobs in order.
//! Names live only here, inside encrypted packs.
//!
//! Whoever holds the repository key can write any tree, so readers bound what a tree may be:
//! at most [`MAX_TREE_BYTES`] of JSON, and at most [`MAX_DEPTH`] folders below the folder a
//! backup read (`store::walk` refuses deeper trees, and bounds how far shared subtrees expand).

use std::collections::HashSet;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::id::Id;

/// The deepest folder a backup descends into, counted from the backed-up path (which is 1); a
/// folder below it is recorded empty. Tree walks follow trees at most this deep below the
/// snapshot's root tree (plus one: the empty tree a too-deep folder is recorded with), and
/// refuse a deeper one as forged or damaged.
pub const MAX_DEPTH: usize = 1000;

/// The largest tree blob (its JSON) a reader accepts: 1 GiB, about three million entries of
/// the usual size (a node is 250-350 bytes). A larger one is refused unread, as forged or
/// damaged.
pub const MAX_TREE_BYTES: usize = 1 << 30;

/// A file name or symlink target: bytes, as Unix has them. Serialised as a JSON string when it is
/// valid UTF-8, and as an array of byte values otherwise.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Name(pub Vec<u8>);

impl Name {
    pub fn from_os(s: &OsStr) -> Name {
        Name(s.as_bytes().to_vec())
    }

    pub fn as_os(&self) -> &OsStr {
        OsStr::from_bytes(&self.0)
    }

    /// For display: lossy UTF-8.
    pub fn display(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }

    /// Whether the name is safe as one path component: not empty, `.` or `..`, and without `/`
    /// or NUL.
    pub fn is_safe_component(&self) -> bool {
        !self.0.is_empty()
            && self.0 != b"."
            && self.0 != b".."
            && !self.0.contains(&b'/')
            && !self.0.contains(&0)
    }
}

impl std::fmt::Debug for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.display())
    }
}

impl Serialize for Name {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(&self.0) {
            Ok(text) => s.serialize_str(text),
            Err(_) => self.0.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Name, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Bytes(Vec<u8>),
        }
        Ok(match Raw::deserialize(d)? {
            Raw::Text(t) => Name(t.into_bytes()),
            Raw::Bytes(b) => Name(b),
        })
    }
}

/// What kind of entry a node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    Chardev,
    Blockdev,
}

/// One extended attribute.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Xattr {
    pub name: Name,
    /// The value as hex.
    pub value: String,
}

/// One directory entry and its metadata.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    pub name: Name,
    #[serde(rename = "type")]
    pub kind: NodeKind,
    /// Permission bits, including setuid, setgid and sticky (`st_mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Modification time: seconds since 1970 (UTC) and nanoseconds.
    pub mtime: i64,
    pub mtime_nsec: u32,
    /// Status change time, for change detection only.
    pub ctime: i64,
    pub ctime_nsec: u32,
    pub inode: u64,
    pub device: u64,
    /// Hard link count at backup time; files with more than one link and the same device and
    /// inode are restored as hard links to each other.
    pub links: u64,
    /// File size in bytes (files only; 0 otherwise).
    #[serde(default)]
    pub size: u64,
    /// Symlink target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Name>,
    /// Device number of a character or block device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdev: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub xattrs: Vec<Xattr>,
    /// File content, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content: Vec<Id>,
    /// A directory's own tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtree: Option<Id>,
    /// What the start of a file's content looked like when it was read: a known file signature,
    /// or (without one) whether it compresses. Lets the next backup see a file whose content
    /// changed character (a document turned into ciphertext) without reading the old version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub look: Option<Look>,
}

/// The look of a file's first bytes ([`Node::look`]): a file signature (magic number), or for
/// a file without one, [`Look::Compressible`] (it would compress well) or [`Look::Dense`] (it
/// would not: compressed or encrypted data). Stored as a short lowercase word; a word this
/// version does not know reads as [`Look::Other`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Look {
    /// ZIP, and what is built on it: Office (docx, xlsx, pptx), OpenDocument, jar, epub.
    Zip,
    Pdf,
    Jpeg,
    Png,
    Gif,
    /// OLE compound files: old Office (doc, xls, ppt), msi, password-protected Office files.
    Ole,
    Gzip,
    SevenZip,
    Rar,
    /// ISO media (mp4, mov, m4a, heic): `ftyp` at offset 4.
    Media,
    /// RIFF (wav, avi, webp).
    Riff,
    Mp3,
    Bmp,
    Tiff,
    Sqlite,
    Rtf,
    /// No signature, and the start compresses well (text, uncompressed formats).
    Compressible,
    /// No signature, and the start does not compress: compressed or encrypted data.
    Dense,
    /// A word written by a later version.
    Other,
}

const LOOKS: [(Look, &str); 19] = [
    (Look::Zip, "zip"),
    (Look::Pdf, "pdf"),
    (Look::Jpeg, "jpeg"),
    (Look::Png, "png"),
    (Look::Gif, "gif"),
    (Look::Ole, "ole"),
    (Look::Gzip, "gzip"),
    (Look::SevenZip, "7z"),
    (Look::Rar, "rar"),
    (Look::Media, "media"),
    (Look::Riff, "riff"),
    (Look::Mp3, "mp3"),
    (Look::Bmp, "bmp"),
    (Look::Tiff, "tiff"),
    (Look::Sqlite, "sqlite"),
    (Look::Rtf, "rtf"),
    (Look::Compressible, "compressible"),
    (Look::Dense, "dense"),
    (Look::Other, "other"),
];

impl Look {
    pub fn word(self) -> &'static str {
        LOOKS
            .iter()
            .find(|(l, _)| *l == self)
            .map_or("other", |(_, w)| w)
    }

    /// Whether it is a file signature (not [`Look::Compressible`], [`Look::Dense`] or
    /// [`Look::Other`]).
    pub fn is_signature(self) -> bool {
        !matches!(self, Look::Compressible | Look::Dense | Look::Other)
    }
}

impl Serialize for Look {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.word())
    }
}

impl<'de> Deserialize<'de> for Look {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Look, D::Error> {
        let word = String::deserialize(d)?;
        Ok(LOOKS
            .iter()
            .find(|(_, w)| *w == word)
            .map_or(Look::Other, |(l, _)| *l))
    }
}

/// One directory's listing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tree {
    pub entries: Vec<Node>,
}

impl Tree {
    /// Sorts entries by name and serialises the tree.
    pub fn encode(&mut self) -> Vec<u8> {
        self.entries.sort_by(|a, b| a.name.cmp(&b.name));
        serde_json::to_vec(self).expect("serialising a tree")
    }

    /// Parses a tree and refuses names that could escape a restore directory.
    pub fn decode(bytes: &[u8]) -> Result<Tree, String> {
        let tree: Tree =
            serde_json::from_slice(bytes).map_err(|e| format!("tree is not valid ({e})"))?;
        if tree.entries.windows(2).any(|w| w[0].name >= w[1].name) {
            return Err("tree entries are not sorted by name, or a name appears twice".into());
        }
        let mut seen = HashSet::new();
        for node in &tree.entries {
            if !node.name.is_safe_component() {
                return Err(format!(
                    "tree holds an unsafe entry name {:?} (empty, '.', '..', or containing '/' or NUL)",
                    node.name
                ));
            }
            if !seen.insert(&node.name) {
                return Err(format!("tree holds the name {:?} twice", node.name));
            }
            match node.kind {
                NodeKind::Dir if node.subtree.is_none() => {
                    return Err(format!("directory {:?} has no tree", node.name));
                }
                NodeKind::Symlink if node.target.is_none() => {
                    return Err(format!("symlink {:?} has no target", node.name));
                }
                _ => {}
            }
        }
        Ok(tree)
    }

    pub fn find(&self, name: &[u8]) -> Option<&Node> {
        self.entries
            .binary_search_by(|n| n.name.0.as_slice().cmp(name))
            .ok()
            .map(|i| &self.entries[i])
    }
}

/// A name or path as it may be shown to a person: control characters (a newline, an escape
/// sequence) and invisible format characters (bidirectional overrides and isolates, zero-width
/// characters, line and paragraph separators) are written as escapes (`\n`, `\u{1b}`,
/// `\u{202e}`), so that a name a pupil chose cannot break a line of output, forge one
/// (`firesafe: error: ...`), move the terminal's cursor, or show its letters in another order.
/// `--json` output needs none of this: it keeps names exact.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(disguises) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if disguises(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Whether a character, shown as it is, could hide or rearrange the text around it: a control
/// character, or one of Unicode's invisible format characters; and the backslash, so that a
/// name holding `\n` is told from one holding a newline.
fn disguises(c: char) -> bool {
    c.is_control()
        || c == '\\'
        || matches!(
            c,
            '\u{00ad}'                  // soft hyphen
            | '\u{061c}'                // Arabic letter mark
            | '\u{180e}'                // Mongolian vowel separator
            | '\u{200b}'..='\u{200f}'   // zero-width space, joiners, LRM, RLM
            | '\u{2028}'..='\u{202e}'   // line and paragraph separators, embeddings, overrides
            | '\u{2060}'..='\u{2064}'   // word joiner, invisible operators
            | '\u{2066}'..='\u{206f}'   // isolates, deprecated format characters
            | '\u{feff}'                // zero-width no-break space (BOM)
            | '\u{fff9}'..='\u{fffb}'   // interlinear annotation
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &[u8]) -> Node {
        Node {
            name: Name(name.to_vec()),
            kind: NodeKind::File,
            mode: 0o644,
            uid: 0,
            gid: 0,
            user: None,
            group: None,
            mtime: 0,
            mtime_nsec: 0,
            ctime: 0,
            ctime_nsec: 0,
            inode: 1,
            device: 1,
            links: 1,
            size: 0,
            target: None,
            rdev: None,
            xattrs: vec![],
            content: vec![],
            subtree: None,
            look: None,
        }
    }

    #[test]
    fn names_round_trip_including_non_utf8() {
        let mut t = Tree {
            entries: vec![
                node(b"b"),
                node(b"caf\xc3\xa9 notes.docx"),
                node(b"bad\xff"),
            ],
        };
        let bytes = t.encode();
        let back = Tree::decode(&bytes).unwrap();
        assert_eq!(back, t);
        assert!(back.find(b"bad\xff").is_some());
    }

    #[test]
    fn looks_round_trip_and_unknown_words_read_as_other() {
        let mut t = Tree {
            entries: vec![node(b"a"), node(b"b")],
        };
        t.entries[0].look = Some(Look::Zip);
        let bytes = t.encode();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains(r#""look":"zip""#), "{text}");
        assert_eq!(text.matches("look").count(), 1, "absent when unknown");
        assert_eq!(Tree::decode(&bytes).unwrap(), t);
        let later = text.replace(r#""look":"zip""#, r#""look":"quantum""#);
        let back = Tree::decode(later.as_bytes()).unwrap();
        assert_eq!(back.entries[0].look, Some(Look::Other));
    }

    #[test]
    fn unsafe_names_are_refused() {
        for bad in [&b".."[..], b".", b"a/b", b"", b"x\0"] {
            let mut t = Tree {
                entries: vec![node(bad)],
            };
            assert!(Tree::decode(&t.encode()).is_err(), "{bad:?}");
        }
        let mut dup = Tree {
            entries: vec![node(b"a"), node(b"a")],
        };
        assert!(Tree::decode(&dup.encode()).is_err());
    }

    #[test]
    fn printable_escapes_controls_and_invisible_format_characters() {
        assert_eq!(printable("plain name.txt"), "plain name.txt");
        assert_eq!(
            printable("caf\u{e9} \u{65e5}\u{672c}"),
            "caf\u{e9} \u{65e5}\u{672c}"
        );
        assert_eq!(printable("a\nb\x1b[2J"), "a\\nb\\u{1b}[2J");
        // "invoice_\u{202e}fdp.exe" shows as "invoice_exe.pdf" in a terminal.
        assert_eq!(
            printable("invoice_\u{202e}fdp.exe"),
            "invoice_\\u{202e}fdp.exe"
        );
        for c in [
            '\u{202a}', '\u{202d}', '\u{2066}', '\u{2069}', '\u{200b}', '\u{200f}', '\u{2028}',
            '\u{feff}', '\u{061c}',
        ] {
            let shown = printable(&format!("x{c}y")).into_owned();
            assert_eq!(shown, format!("x\\u{{{:x}}}y", c as u32), "{c:?}");
        }
    }
}
