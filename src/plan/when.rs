//! Reading the times people write when they ask for a snapshot: `2026-11-20`,
//! `2026-11-20 18:00`, `yesterday`, `last friday 18:00`, `3 hours ago`.
//!
//! Words and relative forms are read by the `interim` crate, in the time zone of the `now`
//! passed in (the caller's local zone). What this module adds is precision: a written time names
//! a span, not an instant. A date without a time is the whole of that day, a time without seconds
//! the whole of that minute, so that "the newest snapshot at or before 2026-11-20" includes the
//! evening's backup, and `18:00` includes a snapshot started at 18:00:12, as listings show it.

use chrono::{DateTime, Duration, TimeZone, Timelike, Utc};
use interim::{Dialect, Interval};

/// The span of time a written date or time names: from its first to its last nanosecond.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// Reads a date or time written by a person, relative to `now` and in its time zone.
///
/// - a date alone (`2026-11-20`, `yesterday`, `friday`, `last friday`, `20 November 2026`)
///   spans that whole day;
/// - a date and time (`2026-11-20 18:00`, `yesterday 6pm`, `last friday 18:00:30`) spans that
///   minute, or that second when seconds are given, or that microsecond when a fraction is
///   (`2026-11-20 18:00:30.250000`);
/// - a time alone (`18:00`) is today at that time;
/// - a weekday or a date without a year that would fall after `now` means the last one before it
///   (`friday` on a Monday is three days ago, as `last friday` is);
/// - a duration ago (`3 hours ago`, `2 days ago`) and `now` are one instant.
///
/// The error is a sentence naming the text, for a one-line message.
pub fn parse<Tz: TimeZone>(text: &str, now: &DateTime<Tz>) -> Result<Span, String> {
    let text = text.trim();
    let unreadable = |why: &dyn std::fmt::Display| {
        format!(
            "\"{text}\" is not a date or time firesafe can read ({why}); write it as 2026-11-20, \"2026-11-20 18:00\", yesterday or \"last friday 18:00\""
        )
    };
    if text.is_empty() {
        return Err(unreadable(&"it is empty"));
    }
    let read = |t: &str| interim::parse_date_string(t, now.clone(), Dialect::Uk);
    let mut text = text.to_string();
    let mut at = read(&text).map_err(|e| unreadable(&e))?;
    // Backups are in the past: a weekday or a date without a year that falls after now (which is
    // how `interim` reads `friday`) means the last one, unless the text asks for a future one.
    let lower = text.to_ascii_lowercase();
    if at > *now
        && !["next", "this", "tomorrow"]
            .iter()
            .any(|w| lower.starts_with(w))
        && let Ok(earlier) = read(&format!("last {text}"))
    {
        text = format!("last {text}");
        at = earlier;
    }
    let text = text.as_str();
    let instant = |t: DateTime<Tz>| {
        let t = t.with_timezone(&Utc);
        Span { start: t, end: t }
    };
    if text.eq_ignore_ascii_case("now")
        || matches!(interim::parse_duration(text), Ok(Interval::Seconds(_)))
    {
        return Ok(instant(at));
    }
    // Whether the text gave a time: the same text with a time of day added reads differently
    // when it had none (the added time takes the place of midnight or of `now`'s time).
    let day_end = read(&format!("{text} 23:59:59"));
    if let Ok(end) = day_end
        && end != at
        && end.time().hour() == 23
    {
        let start = read(&format!("{text} 00:00:00"))
            .unwrap_or_else(|_| end.clone() - Duration::seconds(86_399));
        return Ok(Span {
            start: start.with_timezone(&Utc),
            end: end.with_timezone(&Utc) + Duration::nanoseconds(999_999_999),
        });
    }
    let start = at.with_timezone(&Utc);
    let last = match (at.second(), at.nanosecond()) {
        (0, 0) => Duration::seconds(59) + Duration::nanoseconds(999_999_999),
        (_, 0) => Duration::nanoseconds(999_999_999),
        // A fraction of a second is read to the microsecond.
        _ => Duration::nanoseconds(999),
    };
    Ok(Span {
        start,
        end: start + last,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::FixedOffset;
    use chrono_tz::Europe::London;

    /// Monday 23 November 2026, 14:30:15 in London (GMT).
    fn now() -> DateTime<chrono_tz::Tz> {
        London.with_ymd_and_hms(2026, 11, 23, 14, 30, 15).unwrap()
    }

    fn local(s: &str) -> DateTime<Utc> {
        let naive = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap();
        London
            .from_local_datetime(&naive)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn span(text: &str) -> (DateTime<Utc>, DateTime<Utc>) {
        let s = parse(text, &now()).unwrap_or_else(|e| panic!("{text}: {e}"));
        (s.start, s.end)
    }

    #[test]
    fn a_date_alone_is_the_whole_day() {
        for text in [
            "2026-11-20",
            "20 November 2026",
            "friday",
            "last friday",
            "Nov 20",
        ] {
            assert_eq!(
                span(text),
                (
                    local("2026-11-20 00:00:00"),
                    local("2026-11-20 23:59:59.999999999")
                ),
                "{text}"
            );
        }
        assert_eq!(
            span("yesterday"),
            (
                local("2026-11-22 00:00:00"),
                local("2026-11-22 23:59:59.999999999")
            )
        );
        assert_eq!(
            span("today"),
            (
                local("2026-11-23 00:00:00"),
                local("2026-11-23 23:59:59.999999999")
            )
        );
    }

    #[test]
    fn a_time_spans_its_minute_or_second() {
        for text in ["2026-11-20 18:00", "last friday 18:00", "friday 6pm"] {
            assert_eq!(
                span(text),
                (
                    local("2026-11-20 18:00:00"),
                    local("2026-11-20 18:00:59.999999999")
                ),
                "{text}"
            );
        }
        assert_eq!(
            span("2026-11-20 18:00:30"),
            (
                local("2026-11-20 18:00:30"),
                local("2026-11-20 18:00:30.999999999")
            )
        );
        assert_eq!(
            span("2026-11-20 18:00:30.250001"),
            (
                local("2026-11-20 18:00:30.250001"),
                local("2026-11-20 18:00:30.250001999")
            )
        );
        assert_eq!(span("yesterday 07:15").0, local("2026-11-22 07:15:00"));
    }

    #[test]
    fn durations_ago_are_instants() {
        let (start, end) = span("3 hours ago");
        assert_eq!(start, local("2026-11-23 11:30:15"));
        assert_eq!(start, end);
        assert_eq!(span("now").0, now().with_timezone(&Utc));
    }

    #[test]
    fn summer_time_is_read_in_the_zone() {
        // 1 July is BST (UTC+1): 18:00 local is 17:00 UTC.
        let (start, _) = span("2026-07-01 18:00");
        assert_eq!(
            start,
            FixedOffset::east_opt(3600)
                .unwrap()
                .with_ymd_and_hms(2026, 7, 1, 18, 0, 0)
                .unwrap()
                .with_timezone(&Utc)
        );
    }

    #[test]
    fn unreadable_text_is_refused_with_the_text() {
        for bad in [
            "",
            "the day the server died",
            "2026-13-45",
            "2026-11-20 18:00 rubbish",
        ] {
            let e = parse(bad, &now()).unwrap_err();
            assert!(
                e.contains(&format!("\"{bad}\"")) && e.contains("2026-11-20"),
                "{e}"
            );
        }
    }
}
