//! The crontab dialect of schedules: five fields, read as crontab reads them, translated into
//! the `cron` crate's expressions (which count weekdays from 1 = Sunday and AND the day fields).

use std::str::FromStr;

/// Parses a five-field crontab expression.
pub fn cron_schedule(expr: &str) -> std::result::Result<cron::Schedule, String> {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "\"{expr}\" has {} fields; write the five crontab fields: minute hour day-of-month month day-of-week (for example \"0 2 * * *\")",
            fields.len()
        ));
    }
    // crontab runs when either day field matches if both are restricted; the cron library
    // would need both, so such an expression is refused rather than run less often than meant.
    if fields[2] != "*" && fields[2] != "?" && fields[4] != "*" && fields[4] != "?" {
        return Err(format!(
            "\"{expr}\" restricts both the day of the month and the day of the week; crontab would run on either, which firesafe does not support: use \"*\" for one of them (or two schedules)"
        ));
    }
    let weekdays = crontab_weekdays(fields[4])
        .map_err(|why| format!("\"{expr}\": day of week \"{}\": {why}", fields[4]))?;
    let rewritten = format!(
        "0 {} {} {} {} {weekdays}",
        fields[0], fields[1], fields[2], fields[3]
    );
    cron::Schedule::from_str(&rewritten)
        .map_err(|e| format!("\"{expr}\" is not a valid cron expression ({e})"))
}

const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// Rewrites a crontab day-of-week field (0 or 7 = Sunday, 1 = Monday, ... 6 = Saturday, or
/// names) as a list of day names. The `cron` library numbers days from 1 = Sunday, so passing
/// crontab numbers through would move every weekday schedule one day earlier.
fn crontab_weekdays(field: &str) -> std::result::Result<String, String> {
    let day = |t: &str| -> std::result::Result<usize, String> {
        if let Ok(n) = t.parse::<usize>() {
            return match n {
                0..=6 => Ok(n),
                7 => Ok(0),
                _ => Err(format!("{n} is not a day (0-7, 0 and 7 are Sunday)")),
            };
        }
        DAY_NAMES
            .iter()
            .position(|d| d.eq_ignore_ascii_case(t))
            .ok_or_else(|| format!("\"{t}\" is not a day (0-7 or SUN-SAT)"))
    };
    let mut days = [false; 7];
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<usize>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("\"{s}\" is not a step"))?,
            ),
            None => (item, 1),
        };
        // Ranges are taken in crontab numbering, where 7 (Sunday) may end one: 5-7 is Fri-Sun.
        let (from, to) = match range {
            "*" | "?" => (0, 6),
            r => match r.split_once('-') {
                Some((a, b)) => {
                    let a = day(a)?;
                    let b = if b == "7" { 7 } else { day(b)? };
                    if b < a {
                        return Err(format!("the range {r} runs backwards"));
                    }
                    (a, b)
                }
                None => {
                    let d = day(r)?;
                    (d, if step > 1 { 7 } else { d })
                }
            },
        };
        for d in (from..=to).step_by(step) {
            days[d % 7] = true;
        }
    }
    if days.iter().all(|d| *d) {
        return Ok("*".into());
    }
    Ok(DAY_NAMES
        .iter()
        .zip(days)
        .filter(|(_, on)| *on)
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(","))
}

#[cfg(test)]
mod cron_tests {
    use super::*;
    use chrono::{Datelike, Weekday};

    fn days(expr: &str) -> Vec<Weekday> {
        let mut out: Vec<Weekday> = cron_schedule(expr)
            .expect("valid")
            .after(
                &"2026-11-22T12:00:00Z"
                    .parse::<chrono::DateTime<chrono::Utc>>()
                    .expect("time"),
            )
            .take(7)
            .map(|t| t.weekday())
            .collect();
        out.sort_by_key(|d| d.num_days_from_sunday());
        out.dedup();
        out
    }

    #[test]
    fn crontab_weekdays_mean_what_crontab_means() {
        use Weekday::*;
        assert_eq!(days("0 2 * * 1-5"), [Mon, Tue, Wed, Thu, Fri]);
        assert_eq!(days("0 6 * * 0"), [Sun]);
        assert_eq!(days("0 6 * * 7"), [Sun]);
        assert_eq!(days("0 6 * * 5-7"), [Sun, Fri, Sat]);
        assert_eq!(days("0 6 * * mon,wed"), [Mon, Wed]);
        assert_eq!(days("0 6 * * */2"), [Sun, Tue, Thu, Sat]);
        assert_eq!(days("0 6 * * 1-5/2"), [Mon, Wed, Fri]);
        assert_eq!(days("0 6 * * 5/2"), [Sun, Fri]);
        assert!(cron_schedule("0 2 1 * 1").is_err());
        assert_eq!(days("0 6 * * *").len(), 7);
        assert!(cron_schedule("0 6 * * 8").is_err());
        assert!(cron_schedule("0 6 * * 5-1").is_err());
    }
}
