//! `key list`: the key envelopes of one copy, or of every copy of a schedule's with the copies
//! holding each, as a table or as JSON.

use chrono::Local;
use firesafe::format::crypto;
use firesafe::ops::keys::KeyEntry;

use super::Outcome;

/// Each key of a schedule's repository and which copies hold it, as a table or as JSON.
/// `Findings` when some copy lacks a key another holds, or could not be read.
pub(super) fn print_schedule_keys(
    list: &firesafe::schedule::keys::ScheduleKeys,
    schedule: &str,
    json: bool,
) -> Outcome {
    let level = list.not_reached.is_empty()
        && list
            .keys
            .iter()
            .all(|k| k.copies.len() == list.copies.len());
    if json {
        println!("{}", serde_json::to_string_pretty(list).expect("JSON"));
        return Outcome::clean_if(level);
    }
    println!(
        "{:<8}  {:<10}  {:<24}  {:<62}  COPIES",
        "ID", "KIND", "LABEL", "FINGERPRINT (PUBLIC KEY)"
    );
    for h in &list.keys {
        let k = &h.entry;
        let copies = if h.copies.len() == list.copies.len() {
            h.copies.join(", ")
        } else {
            format!(
                "{} only — run `firesafe sync {schedule}`",
                h.copies.join(", ")
            )
        };
        println!(
            "{:<8}  {:<10}  {:<24}  {:<62}  {copies}{}",
            k.id.short(),
            k.kind,
            firesafe::format::tree::printable(&k.label),
            k.recipient.as_deref().unwrap_or("-"),
            work_factor(k, &format!("firesafe key passwd --schedule {schedule}")),
        );
    }
    for n in &list.not_reached {
        println!("NOT READ: {n}");
    }
    Outcome::clean_if(level)
}

/// The key envelopes as a table, or as JSON.
pub(super) fn print_keys(list: &[KeyEntry], json: bool) {
    if json {
        println!("{}", serde_json::to_string_pretty(list).expect("JSON"));
        return;
    }
    println!(
        "{:<8}  {:<10}  {:<16}  {:<19}  LABEL",
        "ID", "KIND", "HOST", "ADDED (LOCAL TIME)"
    );
    for k in list {
        println!(
            "{:<8}  {:<10}  {:<16}  {:<19}  {}{}{}{}",
            k.id.short(),
            k.kind,
            k.host.clone().unwrap_or_default(),
            k.created
                .map(|c| c
                    .with_timezone(&Local)
                    .format("%Y-%m-%d %H:%M:%S")
                    .to_string())
                .unwrap_or_default(),
            firesafe::format::tree::printable(&k.label),
            k.recipient
                .as_ref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default(),
            if k.current { "  [in use]" } else { "" },
            work_factor(k, "firesafe key passwd"),
        );
    }
}

/// What `key list` says of a passphrase key's work factor, after two spaces: `scrypt 2^17` for
/// one made with the current factor; for another, what it costs and the `passwd` command (with
/// the key's id) that moves it; nothing for other kinds of key.
fn work_factor(k: &KeyEntry, passwd: &str) -> String {
    use crypto::{MAX_SCRYPT_LOG_N, SCRYPT_LOG_N};
    let Some(n) = k.scrypt_log_n else {
        return String::new();
    };
    if k.too_costly() {
        return format!(
            "  [never tried: scrypt work factor 2^{n}, above the maximum 2^{MAX_SCRYPT_LOG_N}]"
        );
    }
    if !k.outdated() {
        return format!("  scrypt 2^{n}");
    }
    let cost = match crypto::scrypt_memory(n) >> 20 {
        mib if n < SCRYPT_LOG_N => format!("weaker than new keys', {mib} MiB to open"),
        mib if mib >= 1024 => format!("{} GiB to open", mib / 1024),
        mib => format!("{mib} MiB to open"),
    };
    format!(
        "  scrypt 2^{n} ({cost}; `{passwd} {}` moves it to 2^{SCRYPT_LOG_N})",
        k.id.short()
    )
}
