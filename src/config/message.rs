//! Configuration messages: what a configuration error may say. Shared by the loader and
//! `site.toml`, below both.

/// A parse error's message without the values it quotes: a value given under the wrong key or
/// of the wrong type may be a secret (`max_age_hours = "hunter2"` gives `invalid type: string
/// "hunter2"`), and configuration errors go to logs and emails.
pub(crate) fn without_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut chars = message.chars();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '"' {
            // Skip to the closing quote; the value is not shown.
            let mut escaped = false;
            for c in chars.by_ref() {
                match c {
                    '\\' if !escaped => escaped = true,
                    '"' if !escaped => break,
                    _ => escaped = false,
                }
            }
            out.push_str("(value not shown)\"");
        }
    }
    out
}
