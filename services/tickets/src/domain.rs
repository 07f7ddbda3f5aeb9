//! Ticket rules: statuses and their transitions, priorities, categories,
//! filing periods, progress. No I/O.
use chrono::NaiveDate;
use kefu_kit::Error;
use kefu_proto::tickets::v1 as pb;

/// How a request names a ticket: by id, or by its number (`KF-000042`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketRef {
    Id(String),
    Number(String),
}

impl std::fmt::Display for TicketRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Id(s) | Self::Number(s) => f.write_str(s),
        }
    }
}

/// A ticket number: `KF-` and at least six digits.
pub fn is_ticket_number(s: &str) -> bool {
    s.strip_prefix("KF-").is_some_and(|d| (6..=12).contains(&d.len()) && d.chars().all(|c| c.is_ascii_digit()))
}

/// A ticket id or number from a request.
pub fn ticket_ref(field: &str, raw: &str) -> Result<TicketRef, Error> {
    let t = raw.trim();
    let upper = t.to_ascii_uppercase();
    if is_ticket_number(&upper) {
        return Ok(TicketRef::Number(upper));
    }
    kefu_kit::parse::id(field, t)
        .map(TicketRef::Id)
        .map_err(|_| Error::invalid(field, "is not a ticket id or number (KF-000042)"))
}

/// A checklist entry of a business request (a material or a step), as stored.
#[derive(serde::Serialize, serde::Deserialize, Debug, Default, Clone, PartialEq, Eq)]
pub struct Item {
    pub name: String,
    pub done: bool,
}

/// The categories a firm starts with (the list is configurable).
pub const DEFAULT_CATEGORIES: &[&str] =
    &["tax_filing", "bookkeeping", "tax_policy", "tax_registration", "invoice_application", "other"];

/// A category from `known`; empty means `other`.
pub fn category(field: &str, raw: &str, known: &[String]) -> Result<String, Error> {
    let c = raw.trim();
    if c.is_empty() {
        return Ok("other".into());
    }
    if known.iter().any(|k| k == c) {
        Ok(c.to_owned())
    } else {
        Err(Error::invalid(field, format!("{c:?} is not one of {}", known.join(", "))))
    }
}

/// Validates a new category list; `other` is always kept.
pub fn category_list(raw: &[String]) -> Result<Vec<String>, Error> {
    let mut out: Vec<String> = Vec::new();
    for (i, c) in raw.iter().enumerate() {
        let c = c.trim();
        if c.is_empty()
            || c.len() > 40
            || !c.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_')
        {
            return Err(Error::invalid(format!("categories[{i}].code"), "use 1–40 characters of a–z, 0–9 and _"));
        }
        if !out.iter().any(|o| o == c) {
            out.push(c.to_owned());
        }
    }
    if out.is_empty() || out.len() > 50 {
        return Err(Error::invalid("categories", "give 1 to 50 categories"));
    }
    if !out.iter().any(|c| c == "other") {
        out.push("other".into());
    }
    Ok(out)
}

/// An enum value of a ticket as people read it (the label table's Chinese),
/// for the texts the timeline keeps.
pub fn zh<E: kefu_proto::ProtoEnum + TryFrom<i32>>(v: i64) -> &'static str {
    E::try_from(v as i32).map_or("—", kefu_proto::ProtoEnum::label_zh)
}

pub fn kind_name(k: i64) -> &'static str {
    match pb::TicketKind::try_from(k as i32) {
        Ok(pb::TicketKind::BusinessRequest) => "business_request",
        Ok(pb::TicketKind::Feedback) => "feedback",
        _ => "consultation",
    }
}

pub use kefu_kit::channel::{CHANNEL_NAMES, channel_name};

/// The names SLA policies match priorities by: tickets' priorities, and
/// complaints' severities (low, medium, high, critical).
pub const PRIORITY_NAMES: &[&str] = &["low", "normal", "high", "urgent", "medium", "critical"];
/// Where complaints come from (SLA policies may match them).
pub const COMPLAINT_SOURCES: &[&str] = &["customer", "regulator_referral", "hotline_referral", "ticket_escalation"];
/// The record kinds SLA policies match (tickets' kinds, phone calls, complaints).
pub const RECORD_KINDS: &[&str] = &["consultation", "business_request", "feedback", "phone_contact", "complaint"];

pub fn priority_name(p: i64) -> &'static str {
    match pb::Priority::try_from(p as i32) {
        Ok(pb::Priority::Low) => "low",
        Ok(pb::Priority::High) => "high",
        Ok(pb::Priority::Urgent) => "urgent",
        _ => "normal",
    }
}

/// One level up, capped at urgent.
pub fn raise(p: i64) -> i64 {
    (p + 1).clamp(pb::Priority::Low as i64, pb::Priority::Urgent as i64)
}

pub fn status_name(s: i64) -> &'static str {
    match pb::Status::try_from(s as i32) {
        Ok(pb::Status::New) => "new",
        Ok(pb::Status::Open) => "open",
        Ok(pb::Status::PendingCustomer) => "pending_customer",
        Ok(pb::Status::PendingInternal) => "pending_internal",
        Ok(pb::Status::Solved) => "solved",
        Ok(pb::Status::Closed) => "closed",
        _ => "unspecified",
    }
}

/// The workflow: which status may follow which.
pub fn transition(from: pb::Status, to: pb::Status, reopen: bool) -> Result<(), Error> {
    use pb::Status::*;
    let ok = match (from, to) {
        (Closed, _) => false,
        (Solved, Open) => reopen,
        (Solved, Closed) => true,
        (Solved, _) => false,
        (_, New | Unspecified) => false,
        (a, b) if a == b => false,
        (New | Open | PendingCustomer | PendingInternal, Open | PendingCustomer | PendingInternal | Solved) => true,
        (New | Open | PendingCustomer | PendingInternal, Closed) => false,
        _ => false,
    };
    if ok {
        Ok(())
    } else if from == Closed {
        Err(Error::FailedPrecondition("the ticket is closed; open a follow-up ticket instead".into()))
    } else if from == Solved && to == Open && !reopen {
        Err(Error::FailedPrecondition("the ticket is solved; set reopen to reopen it".into()))
    } else {
        Err(Error::FailedPrecondition(format!(
            "a ticket cannot go from {} to {}",
            status_name(from as i64),
            status_name(to as i64)
        )))
    }
}

/// A filing period: "2026-09" (month) or "2026-Q3" (quarter). Returns the
/// (year, month) the period ends in.
pub fn filing_period_end(raw: &str) -> Result<(i32, u32), Error> {
    let bad = || Error::invalid("filing_period", format!("{raw:?} is not YYYY-MM or YYYY-Qn"));
    let (y, rest) = raw.trim().split_once('-').ok_or_else(bad)?;
    let year: i32 = y.parse().map_err(|_| bad())?;
    if !(2000..=2100).contains(&year) {
        return Err(bad());
    }
    if let Some(q) = rest.strip_prefix('Q').or_else(|| rest.strip_prefix('q')) {
        let q: u32 = q.parse().map_err(|_| bad())?;
        if !(1..=4).contains(&q) {
            return Err(bad());
        }
        return Ok((year, q * 3));
    }
    let m: u32 = rest.parse().map_err(|_| bad())?;
    if !(1..=12).contains(&m) {
        return Err(bad());
    }
    Ok((year, m))
}

/// Start of a local date as Unix ms (UTC+8).
pub fn day_start_ms(d: NaiveDate, zone: chrono_tz::Tz) -> i64 {
    use chrono::TimeZone;
    let midnight = d.and_hms_opt(0, 0, 0).unwrap_or_default();
    // The first instant of the local day (a zone that skips midnight starts
    // the day at the first valid time after it).
    match zone.from_local_datetime(&midnight) {
        chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => t.timestamp_millis(),
        chrono::LocalResult::None => zone
            .from_local_datetime(&(midnight + chrono::Duration::hours(1)))
            .earliest()
            .map_or_else(|| midnight.and_utc().timestamp_millis(), |t| t.timestamp_millis()),
    }
}

/// Share of materials received and steps done, 0–100.
pub fn progress(materials: &[pb::Material], steps: &[pb::Step]) -> i32 {
    let total = materials.len() + steps.len();
    if total == 0 {
        return 0;
    }
    let done = materials.iter().filter(|m| m.received).count() + steps.iter().filter(|s| s.done).count();
    (done * 100 / total) as i32
}

#[cfg(test)]
mod tests {
    use super::*;
    use pb::Status::*;

    #[test]
    fn workflow_transitions() {
        assert!(transition(New, Open, false).is_ok());
        assert!(transition(Open, PendingCustomer, false).is_ok());
        assert!(transition(PendingCustomer, Open, false).is_ok());
        assert!(transition(PendingInternal, Solved, false).is_ok());
        assert!(transition(Solved, Closed, false).is_ok());
        assert!(transition(Solved, Open, true).is_ok());
        assert!(transition(Solved, Open, false).is_err());
        assert!(transition(Closed, Open, true).is_err());
        assert!(transition(Open, Closed, false).is_err());
        assert!(transition(Open, Open, false).is_err());
        assert!(transition(Open, New, false).is_err());
    }

    #[test]
    fn filing_periods() {
        assert_eq!(filing_period_end("2026-09").unwrap(), (2026, 9));
        assert_eq!(filing_period_end("2026-Q3").unwrap(), (2026, 9));
        assert_eq!(filing_period_end("2026-Q4").unwrap(), (2026, 12));
        for bad in ["2026-13", "2026-Q5", "26-01", "", "2026"] {
            assert!(filing_period_end(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tickets_are_named_by_id_or_number() {
        let id = uuid::Uuid::now_v7().to_string();
        assert_eq!(ticket_ref("id", &id).unwrap(), TicketRef::Id(id));
        assert_eq!(ticket_ref("id", " kf-000042 ").unwrap(), TicketRef::Number("KF-000042".into()));
        for bad in ["", "KF-42", "KF-00004a", "ticket 1", "\0"] {
            assert!(ticket_ref("id", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn every_channel_has_a_policy_name() {
        use kefu_kit::parse::ProtoEnum;
        for (n, _) in kefu_proto::common::v1::Channel::VALUES.iter().filter(|(n, _)| *n != 0) {
            assert!(CHANNEL_NAMES.contains(&channel_name(i64::from(*n))), "{n}");
        }
    }

    #[test]
    fn priority_rises_to_urgent() {
        assert_eq!(raise(pb::Priority::Normal as i64), pb::Priority::High as i64);
        assert_eq!(raise(pb::Priority::Urgent as i64), pb::Priority::Urgent as i64);
    }
}

/// What erased personal data is replaced with.
pub const ERASED: &str = "[已删除]";

/// `text` with email addresses and runs of seven or more digits (phone, ID
/// and bank numbers, spaces and dashes allowed between digits) replaced by
/// [`ERASED`].
/// The phone-like numbers in `text`: runs of 7 or more digits (full-width
/// digits counted), spaces and dashes between them dropped.
pub fn phone_numbers_in(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut run = String::new();
    let mut flush = |run: &mut String| {
        if run.len() >= 7 {
            out.push(std::mem::take(run));
        }
        run.clear();
    };
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let digit = if ('０'..='９').contains(&c) { char::from(b'0' + (c as u32 - '０' as u32) as u8) } else { c };
        if digit.is_ascii_digit() {
            run.push(digit);
        } else if (c == ' ' || c == '-') && !run.is_empty() && chars.peek().is_some_and(|n| n.is_ascii_digit()) {
            // A separator inside a number.
        } else {
            flush(&mut run);
        }
    }
    flush(&mut run);
    out
}

pub fn redact_identifiers(text: &str) -> String {
    // Full-width digits (１３８…) count as digits.
    let narrow: String = text
        .chars()
        .map(|c| if ('０'..='９').contains(&c) { char::from(b'0' + (c as u32 - '０' as u32) as u8) } else { c })
        .collect();
    redact_numbers(&redact_emails(&narrow))
}

fn redact_emails(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let is_email_char = |c: char| c.is_ascii_alphanumeric() || "._%+-".contains(c);
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '@' {
            let mut start = out.len();
            for (pos, c) in out.char_indices().rev() {
                if !is_email_char(c) {
                    break;
                }
                start = pos;
            }
            let mut end = i + 1;
            while end < chars.len() && is_email_char(chars[end]) {
                end += 1;
            }
            if start < out.len() && end > i + 1 {
                out.truncate(start);
                out.push_str(ERASED);
                i = end;
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

fn redact_numbers(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        // The digits of an identifier such as a ticket number (KF-000012)
        // are kept as they are.
        if chars[i].is_ascii_digit() && i >= 2 && chars[i - 1] == '-' && chars[i - 2].is_ascii_alphabetic() {
            let run = chars[i..].iter().take_while(|c| c.is_ascii_digit()).count();
            if run <= 6 {
                out.extend(&chars[i..i + run]);
                i += run;
                continue;
            }
        }
        if chars[i].is_ascii_digit() {
            // Digits with single spaces or dashes between them.
            let (mut k, mut end, mut digits) = (i, i, 0);
            while k < chars.len() {
                if chars[k].is_ascii_digit() {
                    digits += 1;
                    k += 1;
                    end = k;
                } else if matches!(chars[k], ' ' | '-') && k + 1 < chars.len() && chars[k + 1].is_ascii_digit() {
                    k += 1;
                } else {
                    break;
                }
            }
            // An 18-character ID number ends in X.
            if digits == 17 && end < chars.len() && matches!(chars[end], 'X' | 'x') {
                end += 1;
                digits += 1;
            }
            if digits >= 7 {
                out.push_str(ERASED);
            } else {
                out.extend(&chars[i..end]);
            }
            i = end;
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod redaction_tests {
    use super::*;

    #[test]
    fn emails_and_long_numbers_are_blotted_out_and_the_rest_kept() {
        assert_eq!(
            redact_identifiers("王先生 138-0013-8000 / wang.fang+kf@example.cn 要求 9月增值税申报"),
            "王先生 [已删除] / [已删除] 要求 9月增值税申报"
        );
        assert_eq!(
            redact_identifiers("身份证 11010519491231002X，电话 021 6888 1234"),
            "身份证 [已删除]，电话 [已删除]"
        );
        assert_eq!(redact_identifiers("KF-000012 2026-12 申报"), "KF-000012 2026-12 申报", "short numbers stay");
        assert_eq!(redact_identifiers("a@ b"), "a@ b", "not an address");
        assert_eq!(redact_identifiers(""), "");
        assert_eq!(redact_identifiers("tel13800138000号"), "tel[已删除]号", "numbers glued to words too");
        assert_eq!(redact_identifiers("Tel-13800138000"), "Tel-[已删除]", "only short identifier numbers are kept");
        assert_eq!(redact_identifiers("电话１３８００１３８０００"), "电话[已删除]", "full-width digits");
    }
}

#[test]
fn phone_like_numbers_are_found_with_their_separators_dropped() {
    assert_eq!(
        crate::domain::phone_numbers_in("请回电 139-1234-5678 或 ０２１ 1234 5678，工单 KF-000012"),
        vec!["13912345678".to_owned(), "02112345678".to_owned()]
    );
    assert!(crate::domain::phone_numbers_in("邮件 a@b.cn，金额 123456").is_empty());
}
