//! Words for people: counts with the right plural, and durations in one style. Every message
//! that counts things or says how long something took goes through here, so that "1 files" or
//! "1 minutes" cannot be printed.

/// "1 file", "3 files", "0 files": `n` and the noun in the form `n` needs.
pub fn count(n: u64, singular: &str, plural: &str) -> String {
    format!("{n} {}", noun(n, singular, plural))
}

/// The noun alone, in the form `n` needs: "file" or "files".
pub fn noun<'a>(n: u64, singular: &'a str, plural: &'a str) -> &'a str {
    if n == 1 { singular } else { plural }
}

/// "1 file", "3 files": a regular noun (plural with an "s").
pub fn count_s(n: u64, singular: &str) -> String {
    if n == 1 {
        format!("1 {singular}")
    } else {
        format!("{n} {singular}s")
    }
}

/// A duration: "under a minute" (only below 60 seconds), "1 minute", "12 minutes", "3 hours
/// 20 minutes", "2 days 4 hours".
pub fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as i64;
    let unit = |n: i64, u: &str| count_s(n as u64, u);
    match s {
        0..60 => "under a minute".into(),
        60..3570 => unit((s + 30) / 60, "minute"),
        3570..3600 => unit(1, "hour"),
        3600..172_800 => {
            let (h, m) = (s / 3600, (s % 3600) / 60);
            if m == 0 {
                unit(h, "hour")
            } else {
                format!("{} {}", unit(h, "hour"), unit(m, "minute"))
            }
        }
        _ => {
            let (d, h) = (s / 86_400, (s % 86_400) / 3600);
            if h == 0 {
                unit(d, "day")
            } else {
                format!("{} {}", unit(d, "day"), unit(h, "hour"))
            }
        }
    }
}

/// How old something is, in the largest sensible unit: "4 minutes", "1 hour", "3 days".
pub fn age(seconds: i64) -> String {
    let minutes = seconds.max(0) / 60;
    let hours = minutes / 60;
    if hours >= 48 {
        count_s((hours / 24) as u64, "day")
    } else if hours >= 1 {
        count_s(hours as u64, "hour")
    } else {
        count_s(minutes as u64, "minute")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_take_the_plural_they_need() {
        assert_eq!(count_s(0, "file"), "0 files");
        assert_eq!(count_s(1, "file"), "1 file");
        assert_eq!(count_s(2, "file"), "2 files");
        assert_eq!(count(1, "copy", "copies"), "1 copy");
        assert_eq!(count(3, "copy", "copies"), "3 copies");
        assert_eq!(noun(1, "point needs", "points need"), "point needs");
    }

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(duration(0.0), "under a minute");
        assert_eq!(duration(59.0), "under a minute");
        assert_eq!(duration(60.0), "1 minute");
        assert_eq!(duration(61.0), "1 minute");
        assert_eq!(duration(150.0), "3 minutes");
        assert_eq!(duration(3600.0), "1 hour");
        assert_eq!(duration(3600.0 + 20.0 * 60.0), "1 hour 20 minutes");
        assert_eq!(duration(3.0 * 3600.0 + 60.0), "3 hours 1 minute");
        assert_eq!(duration(2.0 * 86_400.0 + 4.0 * 3600.0), "2 days 4 hours");
        assert_eq!(age(30), "0 minutes");
        assert_eq!(age(60), "1 minute");
        assert_eq!(age(3600), "1 hour");
        assert_eq!(age(49 * 3600), "2 days");
    }
}
