//! Bounded parsing of request fields, the same in every service: each
//! function takes the field's path (for the violation) and the raw value, and
//! returns a value that is known to be in range, or a field violation that
//! says what is wrong. Handlers collect them with [`crate::error::Violations`].
use chrono::NaiveDate;
pub use kefu_proto::ProtoEnum;
use prost_types::Timestamp;

use crate::Error;

/// Earliest instant accepted: 1970-01-01T00:00:00Z.
pub const MIN_SECONDS: i64 = 0;
/// Latest instant accepted: 9999-12-31T23:59:59Z.
pub const MAX_SECONDS: i64 = 253_402_300_799;

/// A protobuf timestamp as Unix milliseconds, in years 1970–9999.
pub fn timestamp(field: &str, t: &Timestamp) -> Result<i64, Error> {
    if !(0..1_000_000_000).contains(&t.nanos) {
        return Err(Error::invalid(field, format!("nanos {} is outside 0..999999999", t.nanos)));
    }
    if !(MIN_SECONDS..=MAX_SECONDS).contains(&t.seconds) {
        return Err(Error::invalid(
            field,
            format!("seconds {} is outside 1970-01-01T00:00:00Z..9999-12-31T23:59:59Z", t.seconds),
        ));
    }
    Ok(t.seconds * 1000 + i64::from(t.nanos / 1_000_000))
}

/// An optional timestamp (absent stays `None`).
pub fn opt_timestamp(field: &str, t: Option<&Timestamp>) -> Result<Option<i64>, Error> {
    t.map(|t| timestamp(field, t)).transpose()
}

/// A required timestamp.
pub fn required_timestamp(field: &str, t: Option<&Timestamp>) -> Result<i64, Error> {
    opt_timestamp(field, t)?.ok_or_else(|| Error::invalid(field, "is required"))
}

/// Unix milliseconds as a protobuf timestamp.
pub fn to_timestamp(ms: i64) -> Timestamp {
    Timestamp { seconds: ms.div_euclid(1000), nanos: (ms.rem_euclid(1000) * 1_000_000) as i32 }
}

/// `Some` timestamp, for optional proto fields.
pub fn ts(ms: i64) -> Option<Timestamp> {
    Some(to_timestamp(ms))
}

/// An optional instant as an optional proto field.
pub fn ts_opt(ms: Option<i64>) -> Option<Timestamp> {
    ms.map(to_timestamp)
}

/// Free text: trimmed, at most `max_chars` characters, no control characters
/// but line feed, carriage return and tab. Empty is allowed.
pub fn text(field: &str, raw: &str, max_chars: usize) -> Result<String, Error> {
    let s = raw.trim();
    if let Some(c) = s.chars().find(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        return Err(Error::invalid(field, format!("contains the control character U+{:04X}", u32::from(c))));
    }
    let n = s.chars().count();
    if n > max_chars {
        return Err(Error::invalid(field, format!("is {n} characters; at most {max_chars}")));
    }
    Ok(s.to_owned())
}

/// Like [`text`], but must not be empty.
pub fn required_text(field: &str, raw: &str, max_chars: usize) -> Result<String, Error> {
    let s = text(field, raw, max_chars)?;
    if s.is_empty() {
        return Err(Error::invalid(field, "is required"));
    }
    Ok(s)
}

/// One line of text: [`text`] without line breaks or tabs.
pub fn line(field: &str, raw: &str, max_chars: usize) -> Result<String, Error> {
    let s = text(field, raw, max_chars)?;
    if s.contains(['\n', '\r', '\t']) {
        return Err(Error::invalid(field, "must be a single line"));
    }
    Ok(s)
}

/// Refuses a value a spreadsheet would run as a formula when it is exported
/// to CSV or Excel (one that begins with `=`, `+`, `-` or `@`): names and
/// labels people type never do, and formula injection is how exports attack
/// the people who open them.
pub fn no_formula(field: &str, value: String) -> Result<String, Error> {
    match value.chars().next() {
        Some(c @ ('=' | '+' | '-' | '@')) => {
            Err(Error::invalid(field, format!("must not begin with {c:?}: spreadsheets would run it as a formula")))
        }
        _ => Ok(value),
    }
}

/// Text for a spreadsheet cell that no spreadsheet runs as a formula: one
/// that begins with `=`, `+`, `-` or `@` (or a tab or carriage return
/// before them) is written with a leading `'`, as spreadsheets quote text.
/// For exports of what people typed freely (comments, reasons), where
/// refusing it ([`no_formula`]) is not an option.
pub fn defuse_formula(value: &str) -> String {
    match value.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{value}"),
        _ => value.to_owned(),
    }
}

/// A single line, refused if a spreadsheet would run it ([`no_formula`]).
pub fn label(field: &str, raw: &str, max_chars: usize) -> Result<String, Error> {
    no_formula(field, line(field, raw, max_chars)?)
}

/// A single line that must not be empty (after trimming, as [`line`] trims).
pub fn required_line(field: &str, raw: &str, max_chars: usize) -> Result<String, Error> {
    let s = line(field, raw, max_chars)?;
    if s.is_empty() {
        return Err(Error::invalid(field, "is required"));
    }
    Ok(s)
}

/// Tags, labels and similar short names: at most `max_count`, each a
/// non-empty line of at most `max_chars`; duplicates are dropped, order kept.
/// Every bad tag is named (`field[i]`).
pub fn tags(field: &str, raw: &[String], max_count: usize, max_chars: usize) -> Result<Vec<String>, Error> {
    if raw.len() > max_count {
        return Err(Error::invalid(field, format!("has {} entries; at most {max_count}", raw.len())));
    }
    let mut v = crate::error::Violations::new();
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for (i, t) in raw.iter().enumerate() {
        if let Some(t) =
            v.check(line(&format!("{field}[{i}]"), t, max_chars).and_then(|t| {
                if t.is_empty() { Err(Error::invalid(format!("{field}[{i}]"), "is empty")) } else { Ok(t) }
            }))
            && !out.contains(&t)
        {
            out.push(t);
        }
    }
    v.finish()?;
    Ok(out)
}

/// A protobuf enum value. `0` (unspecified) takes `default`, or is refused
/// when there is none; an unknown number is refused. Either error lists the
/// valid names.
pub fn enumeration<E: ProtoEnum>(field: &str, raw: i32, default: Option<E>) -> Result<E, Error> {
    if raw == 0 {
        return default.ok_or_else(|| Error::invalid(field, format!("is required; one of {}", valid_names::<E>())));
    }
    E::try_from(raw)
        .map_err(|_| Error::invalid(field, format!("{raw} is not a {}; one of {}", E::NAME, valid_names::<E>())))
}

/// The names a client may send for `E` (the unspecified value left out).
pub fn valid_names<E: ProtoEnum>() -> String {
    E::VALUES.iter().filter(|(n, _)| *n != 0).map(|(n, s)| format!("{s} ({n})")).collect::<Vec<_>>().join(", ")
}

/// A resource id (UUID), normalised to its lowercase hyphenated form.
pub fn id(field: &str, raw: &str) -> Result<String, Error> {
    let t = raw.trim();
    if t.is_empty() {
        return Err(Error::invalid(field, "is required"));
    }
    uuid::Uuid::parse_str(t).map(|u| u.to_string()).map_err(|_| {
        let shown: String = t.chars().take(64).collect();
        Error::invalid(field, format!("{shown:?} is not a valid id"))
    })
}

/// An optional id: empty stays `None`.
pub fn opt_id(field: &str, raw: &str) -> Result<Option<String>, Error> {
    if raw.trim().is_empty() { Ok(None) } else { id(field, raw).map(Some) }
}

/// A page size: 0 means `default`, larger than `max` is capped, negative is refused.
pub fn page_size(field: &str, raw: i32, default: i64, max: i64) -> Result<i64, Error> {
    match raw {
        0 => Ok(default),
        n if n < 0 => Err(Error::invalid(field, "must not be negative")),
        n => Ok(i64::from(n).min(max)),
    }
}

/// A civil date `YYYY-MM-DD` in years 1970–9999.
pub fn date(field: &str, raw: &str) -> Result<NaiveDate, Error> {
    let d = NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
        .map_err(|_| Error::invalid(field, format!("{:?} is not a date (YYYY-MM-DD)", truncate(raw, 32))))?;
    if !(1970..=9999).contains(&chrono::Datelike::year(&d)) {
        return Err(Error::invalid(field, "must be in the years 1970–9999"));
    }
    Ok(d)
}

/// A civil date as stored and sent: `YYYY-MM-DD`.
pub fn format_date(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

#[cfg(test)]
mod tests {
    use kefu_proto::common::v1::Channel;

    use super::*;

    #[test]
    fn exported_text_that_would_run_as_a_formula_is_quoted() {
        assert_eq!(defuse_formula("=HYPERLINK(\"http://x\")"), "'=HYPERLINK(\"http://x\")");
        assert_eq!(defuse_formula("+1"), "'+1");
        assert_eq!(defuse_formula("-2"), "'-2");
        assert_eq!(defuse_formula("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(defuse_formula("\t=1"), "'\t=1");
        assert_eq!(defuse_formula("服务认真"), "服务认真");
        assert_eq!(defuse_formula(""), "");
    }

    #[test]
    fn timestamps_outside_years_1970_to_9999_are_refused() {
        for seconds in [-1, 9_223_372_036_854_776, i64::MAX, 1 << 62, MAX_SECONDS + 1] {
            let e = timestamp("time", &Timestamp { seconds, nanos: 0 }).expect_err("out of range");
            assert!(e.to_string().contains("time: seconds"), "{e}");
        }
        assert!(timestamp("t", &Timestamp { seconds: 0, nanos: -1 }).is_err());
        assert!(timestamp("t", &Timestamp { seconds: 0, nanos: 1_000_000_000 }).is_err());
        assert_eq!(
            timestamp("t", &Timestamp { seconds: MAX_SECONDS, nanos: 999_999_999 }).ok(),
            Some(MAX_SECONDS * 1000 + 999)
        );
        assert_eq!(to_timestamp(-1), Timestamp { seconds: -1, nanos: 999_000_000 });
    }

    #[test]
    fn text_refuses_control_characters_and_overlong_values() {
        assert!(text("f", "a\0b", 10).expect_err("nul").to_string().contains("U+0000"));
        assert!(text("f", "a\u{1b}[31m", 10).expect_err("esc").to_string().contains("U+001B"));
        assert_eq!(text("f", " 第一行\n第二行\t ", 10).ok().as_deref(), Some("第一行\n第二行"));
        assert!(text("f", "一二三四五六", 5).expect_err("long").to_string().contains("at most 5"));
        assert!(required_text("f", "  ", 5).is_err());
        assert!(line("f", "a\nb", 5).is_err());
    }

    #[test]
    fn tags_are_bounded_in_count_and_length_and_each_bad_one_is_named() {
        let many: Vec<String> = (0..51).map(|i| format!("t{i}")).collect();
        assert!(tags("tags", &many, 50, 32).is_err());
        let e = tags("tags", &["ok".into(), "x".repeat(33), String::new()], 50, 32).expect_err("bad");
        let s = e.to_string();
        assert!(s.contains("tags[1]") && s.contains("tags[2]"), "{s}");
        assert_eq!(
            tags("tags", &["a".into(), "a".into(), "b".into()], 50, 32).ok(),
            Some(vec!["a".into(), "b".into()])
        );
    }

    #[test]
    fn enum_errors_list_the_valid_names() {
        let e = enumeration::<Channel>("channel", 99, None).expect_err("unknown");
        let s = e.to_string();
        assert!(
            s.contains("99 is not a Channel") && s.contains("CHANNEL_WECHAT (2)") && !s.contains("UNSPECIFIED"),
            "{s}"
        );
        assert!(enumeration::<Channel>("channel", 0, None).expect_err("required").to_string().contains("is required"));
        assert_eq!(enumeration("channel", 0, Some(Channel::Email)).ok(), Some(Channel::Email));
    }

    #[test]
    fn ids_and_dates_are_checked() {
        assert!(id("id", "").is_err());
        assert!(id("id", "nope").is_err());
        let u = uuid::Uuid::now_v7();
        assert_eq!(id("id", &u.to_string().to_uppercase()).ok(), Some(u.to_string()));
        assert_eq!(opt_id("id", " ").ok(), Some(None));
        assert!(date("d", "2026-02-30").is_err());
        assert!(date("d", "0001-01-01").is_err());
        assert_eq!(date("d", "2026-10-01").map(format_date).ok().as_deref(), Some("2026-10-01"));
        assert_eq!(page_size("p", 0, 50, 500).ok(), Some(50));
        assert_eq!(page_size("p", 9999, 50, 500).ok(), Some(500));
        assert!(page_size("p", -1, 50, 500).is_err());
    }
}
