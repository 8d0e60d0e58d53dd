//! The architecture as a test: the layer rules of `src/lib.rs`, read from the source itself, so
//! that the layers cannot erode. Each folder of the library is a layer and may import only the
//! layers below it (and itself); only `store/target/` sees `object_store`; no two files import
//! each other, directly or round a circle; files and functions stay short enough to read.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The library's folders in layer order, and what each may import besides itself.
/// `base` is `error.rs`, `id.rs` and `lib.rs` (the crate root's re-exports).
const LAYERS: &[(&str, &[&str])] = &[
    ("base", &[]),
    ("format", &["base"]),
    ("plan", &["base", "format"]),
    ("store", &["base", "format", "plan"]),
    ("ops", &["base", "format", "plan", "store"]),
    ("config", &["base", "format", "plan", "store", "ops"]),
    (
        "schedule",
        &["base", "format", "plan", "store", "ops", "config"],
    ),
    (
        "paper",
        &[
            "base", "format", "plan", "store", "ops", "config", "schedule",
        ],
    ),
];

/// Files allowed over 1,000 lines, and why a reader is better served by one file.
const LONG_FILES: &[(&str, &str)] = &[];

/// Non-test functions over 100 lines allowed in the whole crate (the library and `cli/`).
const MAX_LONG_FUNCTIONS: usize = 8;

struct Source {
    /// Path below `src/`, e.g. `ops/backup.rs`.
    rel: String,
    /// The module path, e.g. `["ops", "backup"]`.
    module: Vec<String>,
    /// The file's lines before its `#[cfg(test)]` module, with comments removed.
    code: Vec<String>,
    lines: usize,
}

fn sources() -> Vec<Source> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&root, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let rel = path
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            let mut module: Vec<String> = rel
                .trim_end_matches(".rs")
                .split('/')
                .map(str::to_string)
                .collect();
            if module.last().is_some_and(|m| m == "mod" || m == "lib") {
                module.pop();
            }
            let mut code = Vec::new();
            for line in text.lines() {
                if line.starts_with("#[cfg(test)]") {
                    break;
                }
                code.push(strip_comment(line));
            }
            Source {
                rel,
                module,
                code,
                lines: text.lines().count(),
            }
        })
        .collect()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The line without string contents and without a `//` comment.
fn strip_comment(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => {
                    in_string = false;
                    out.push('"');
                }
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push('"');
            }
            '/' if chars.peek() == Some(&'/') => break,
            '\'' => {
                // A char literal ('{', '\n') is dropped; a lifetime ('a) is kept.
                let rest: String = chars.clone().take(3).collect();
                if let Some(escaped) = rest.strip_prefix('\\') {
                    let end = escaped.find('\'').map(|i| i + 2).unwrap_or(0);
                    for _ in 0..end {
                        chars.next();
                    }
                } else if rest.chars().nth(1) == Some('\'') {
                    chars.next();
                    chars.next();
                } else {
                    out.push(c);
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// The layer a library file belongs to.
fn layer(module: &[String]) -> &str {
    match module.first().map(String::as_str) {
        None | Some("error" | "id") => "base",
        Some(folder) => folder,
    }
}

/// Every `crate::a::b` path in the code, as module paths (`super::` resolved).
fn references(src: &Source) -> BTreeSet<Vec<String>> {
    let mut out = BTreeSet::new();
    let parent: Vec<String> = if src.rel.ends_with("mod.rs") || src.rel == "lib.rs" {
        src.module.clone()
    } else {
        src.module[..src.module.len() - 1].to_vec()
    };
    for line in &src.code {
        for (prefix, base) in [("crate::", Vec::new()), ("super::", parent.clone())] {
            let mut rest = line.as_str();
            while let Some(i) = rest.find(prefix) {
                let boundary = rest[..i]
                    .chars()
                    .last()
                    .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == ':'));
                let after = &rest[i + prefix.len()..];
                let path: String = after
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                if boundary {
                    let mut full = base.clone();
                    full.extend(
                        path.split("::")
                            .filter(|s| !s.is_empty())
                            .map(str::to_string),
                    );
                    out.insert(full);
                }
                rest = after;
            }
        }
    }
    out
}

/// The file that a module path lands in: the longest prefix that is a file of the crate.
fn file_of<'a>(path: &[String], modules: &'a BTreeMap<Vec<String>, String>) -> Option<&'a str> {
    (0..=path.len())
        .rev()
        .find_map(|n| modules.get(&path[..n]).map(String::as_str))
}

fn library() -> Vec<Source> {
    sources()
        .into_iter()
        .filter(|s| !s.rel.starts_with("cli/") && s.rel != "main.rs")
        .collect()
}

#[test]
fn imports_point_down_only() {
    let lib = library();
    let modules: BTreeMap<Vec<String>, String> = lib
        .iter()
        .map(|s| (s.module.clone(), s.rel.clone()))
        .collect();
    let allowed: BTreeMap<&str, &[&str]> = LAYERS.iter().copied().collect();
    let mut broken = Vec::new();
    for src in &lib {
        let from = layer(&src.module);
        let Some(may) = allowed.get(from) else {
            broken.push(format!(
                "{}: folder {from} is not in the layer table",
                src.rel
            ));
            continue;
        };
        for r in references(src) {
            let Some(file) = file_of(&r, &modules) else {
                continue;
            };
            let to =
                layer(&modules.iter().find(|(_, f)| *f == file).unwrap().0.clone()).to_string();
            if to != from && !may.contains(&to.as_str()) {
                broken.push(format!(
                    "{} ({from}) imports {} ({to})",
                    src.rel,
                    r.join("::")
                ));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "imports that point up:\n{}",
        broken.join("\n")
    );
}

#[test]
fn only_store_target_sees_object_store() {
    let found: Vec<String> = sources()
        .iter()
        .filter(|s| !s.rel.starts_with("store/target/"))
        .filter(|s| s.code.iter().any(|l| l.contains("object_store::")))
        .map(|s| s.rel.clone())
        .collect();
    assert!(
        found.is_empty(),
        "object_store used outside store/target/: {found:?}"
    );
}

#[test]
fn no_import_circles() {
    let lib = library();
    let modules: BTreeMap<Vec<String>, String> = lib
        .iter()
        .map(|s| (s.module.clone(), s.rel.clone()))
        .collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for src in &lib {
        let to = edges.entry(src.rel.clone()).or_default();
        for r in references(src) {
            if let Some(file) = file_of(&r, &modules)
                && file != src.rel
                && !(file == "lib.rs" && r.len() <= 1)
            {
                to.insert(file.to_string());
            }
        }
    }
    // Depth-first search; a grey node met again closes a circle.
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        colour: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
        circles: &mut Vec<String>,
    ) {
        colour.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for m in edges.get(n).into_iter().flatten() {
            match colour.get(m.as_str()).copied().unwrap_or(0) {
                0 => visit(m, edges, colour, stack, circles),
                1 => {
                    let at = stack.iter().position(|s| s == m).unwrap();
                    circles.push(format!("{} -> {m}", stack[at..].join(" -> ")));
                }
                _ => {}
            }
        }
        stack.pop();
        colour.insert(n.to_string(), 2);
    }
    let mut colour = BTreeMap::new();
    let mut circles = Vec::new();
    for n in edges.keys() {
        if !colour.contains_key(n) {
            visit(n, &edges, &mut colour, &mut Vec::new(), &mut circles);
        }
    }
    assert!(
        circles.is_empty(),
        "import circles:\n{}",
        circles.join("\n")
    );
}

#[test]
fn files_are_short_enough_to_read() {
    let mut long = Vec::new();
    for src in sources() {
        let limit = if src.rel.starts_with("cli/") {
            400
        } else {
            1000
        };
        if src.lines > limit && !LONG_FILES.iter().any(|(f, _)| *f == src.rel) {
            long.push(format!("{}: {} lines (limit {limit})", src.rel, src.lines));
        }
    }
    assert!(
        long.is_empty(),
        "files over their limit:\n{}",
        long.join("\n")
    );
}

/// Each non-test function's length in lines, by matching its braces.
fn function_lengths(src: &Source) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let code = &src.code;
    let mut i = 0;
    while i < code.len() {
        let line = code[i].trim_start();
        let words: Vec<&str> = line.split_whitespace().collect();
        let fn_at = words.iter().position(|w| *w == "fn");
        let is_fn = fn_at.is_some_and(|at| {
            words[..at].iter().all(|w| {
                w.starts_with("pub") || matches!(*w, "async" | "unsafe" | "const" | "extern")
            })
        });
        if !is_fn {
            i += 1;
            continue;
        }
        let name: String = words[fn_at.unwrap() + 1]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let (mut depth, mut opened, mut end) = (0i64, false, None);
        for (j, l) in code.iter().enumerate().skip(i) {
            for c in l.chars() {
                match c {
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => depth -= 1,
                    ';' if !opened && depth == 0 => {
                        end = Some(j);
                    }
                    _ => {}
                }
                if end.is_some() || (opened && depth == 0) {
                    break;
                }
            }
            if end.is_some() {
                break;
            }
            if opened && depth == 0 {
                end = Some(j);
                break;
            }
        }
        let end = end.unwrap_or(code.len() - 1);
        if opened {
            out.push((format!("{}:{} {name}", src.rel, i + 1), end - i + 1));
        }
        // Functions nested inside are counted as part of this one.
        i = end + 1;
    }
    out
}

#[test]
fn few_functions_are_long() {
    let mut long: Vec<(String, usize)> = sources()
        .iter()
        .flat_map(function_lengths)
        .filter(|(_, n)| *n > 100)
        .collect();
    long.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    let list: Vec<String> = long.iter().map(|(f, n)| format!("{n:>4} {f}")).collect();
    assert!(
        long.len() <= MAX_LONG_FUNCTIONS,
        "{} functions over 100 lines (at most {MAX_LONG_FUNCTIONS}):\n{}",
        long.len(),
        list.join("\n")
    );
}

#[test]
fn the_layer_table_finds_what_it_should() {
    // The checks above are only worth something if they see the code: a known import of each
    // kind must be found.
    let lib = library();
    let backup = lib.iter().find(|s| s.rel == "ops/backup.rs").unwrap();
    assert!(
        references(backup)
            .iter()
            .any(|r| r.starts_with(&["store".to_string()])),
        "ops/backup.rs should be seen importing store"
    );
    let target = lib.iter().find(|s| s.rel == "store/target/mod.rs").unwrap();
    assert!(target.code.iter().any(|l| l.contains("object_store::")));
    assert!(lib.iter().flat_map(function_lengths).count() > 300);
    assert_eq!(strip_comment("let a = '{'; // {"), "let a = ; ");
}
