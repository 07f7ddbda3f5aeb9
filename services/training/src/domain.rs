//! Training rules: hours in exact half-hour units, course codes, the
//! enrolment state machine, sessions' check-in window, plans' progress,
//! certificates' validity and the continuing-education pace. No I/O.
use chrono::{Datelike, NaiveDate};
use kefu_kit::Error;
use kefu_proto::training::v1::EnrolmentState as E;

/// Hours kept exactly, as a count of half hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct HalfHours(pub i64);

impl HalfHours {
    /// Hours as given (0.5 steps, within `min..=max` hours).
    pub fn parse(field: &str, hours: f64, min: f64, max: f64) -> Result<Self, Error> {
        if !hours.is_finite() || hours < min || hours > max {
            return Err(Error::invalid(field, format!("must be {min} to {max} hours")));
        }
        let halves = hours * 2.0;
        if (halves - halves.round()).abs() > 1e-9 {
            return Err(Error::invalid(field, "is counted in half hours (e.g. 1.5)"));
        }
        // In range and whole: the cast is exact.
        Ok(Self(halves.round() as i64))
    }

    pub fn hours(self) -> f64 {
        self.0 as f64 / 2.0
    }
}

/// A course code: 2–32 letters, digits and '-', kept in upper case.
pub fn course_code(field: &str, raw: &str) -> Result<String, Error> {
    let c = raw.trim().to_ascii_uppercase();
    let ok = (2..=32).contains(&c.len())
        && c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
        && !c.starts_with('-')
        && !c.ends_with('-');
    if !ok {
        return Err(Error::invalid(field, "is not a course code (2–32 letters, digits and '-', e.g. TAX-2027-01)"));
    }
    Ok(c)
}

/// A material's link: https only (no scripts, no local files).
pub fn material_url(field: &str, raw: &str) -> Result<String, Error> {
    let u = raw.trim();
    let ok = u.len() <= 500
        && u.strip_prefix("https://").is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
        && !u.chars().any(|c| c.is_whitespace() || c.is_control());
    if !ok {
        return Err(Error::invalid(field, "is not an https:// link (at most 500 characters)"));
    }
    Ok(u.to_owned())
}

/// States that hold a seat.
pub const SEATED: [E; 3] = [E::Enrolled, E::Attended, E::Completed];
/// States a person can still withdraw from.
pub const WITHDRAWABLE: [E; 3] = [E::PendingApproval, E::Enrolled, E::Waitlisted];

/// How long before the start a check-in opens.
pub const CHECK_IN_OPENS_MS: i64 = 30 * 60 * 1000;

/// Whether `now` is within a session's check-in window.
pub fn check_in_open(start: i64, end: i64, now: i64) -> bool {
    now >= start - CHECK_IN_OPENS_MS && now <= end
}

/// The longest session (a multi-day external course).
pub const SESSION_MAX_MS: i64 = 14 * 24 * 3600 * 1000;

/// The state an enrolment starts in, or goes to on approval: a seat if
/// one is free, else the waitlist.
pub fn seat_or_wait(seated: i64, capacity: i64) -> E {
    if seated < capacity { E::Enrolled } else { E::Waitlisted }
}

/// Refuses an enrolment step from a state it does not start from, naming
/// the state.
pub fn require_state(state: E, allowed: &[E], step: &str) -> Result<(), Error> {
    if allowed.contains(&state) {
        return Ok(());
    }
    Err(Error::FailedPrecondition(format!("the enrolment is {}; {step} is not possible", label(state))))
}

/// An enrolment state's Chinese label.
pub fn label(state: E) -> &'static str {
    match state {
        E::Unspecified => "未知",
        E::PendingApproval => "待审批",
        E::Enrolled => "已报名",
        E::Waitlisted => "候补中",
        E::Attended => "已签到",
        E::Completed => "已完成",
        E::Absent => "缺勤",
        E::Withdrawn => "已退出",
        E::Cancelled => "已取消",
    }
}

/// The quarter (1–4) of a date.
pub fn quarter(d: NaiveDate) -> i32 {
    (d.month0() / 3 + 1) as i32
}

/// A certificate's dates: issued not after `today`; an expiry after the issue.
pub fn certificate_dates(
    issue: NaiveDate,
    expiry: Option<NaiveDate>,
    today: NaiveDate,
) -> Result<(), Vec<(&'static str, String)>> {
    let mut bad = Vec::new();
    if issue > today {
        bad.push(("certificate.issue_date", "is in the future".to_owned()));
    }
    if let Some(e) = expiry
        && e <= issue
    {
        bad.push(("certificate.expiry_date", format!("{e} is not after the issue date {issue}")));
    }
    if bad.is_empty() { Ok(()) } else { Err(bad) }
}

/// Whether a certificate has expired by `day`.
pub fn expired(expiry: Option<NaiveDate>, day: NaiveDate) -> bool {
    expiry.is_some_and(|e| e < day)
}

/// Continuing-education pace: the hours expected by `today` of a yearly
/// requirement (pro rata by day of the year), and whether `earned` falls
/// behind it. Exact: compared in half hours × days.
pub fn ce_pace(required: HalfHours, earned: HalfHours, today: NaiveDate) -> (f64, bool) {
    let days_in_year = if NaiveDate::from_ymd_opt(today.year(), 2, 29).is_some() { 366 } else { 365 };
    let day = i64::from(today.ordinal());
    let expected = required.0 as f64 / 2.0 * day as f64 / days_in_year as f64;
    (expected, earned.0 * days_in_year < required.0 * day)
}

/// Days from `today` to `day` (negative: past).
pub fn days_between(today: NaiveDate, day: NaiveDate) -> i32 {
    i32::try_from((day - today).num_days()).unwrap_or(if day > today { i32::MAX } else { i32::MIN })
}

/// A plan's share of its target hours delivered (0 when nothing is targeted).
pub fn hours_share(delivered: HalfHours, target_per_person: HalfHours, headcount: i64) -> f64 {
    let target = target_per_person.0 * headcount;
    if target <= 0 { 0.0 } else { delivered.0 as f64 / target as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn hours_are_exact_half_hours_within_bounds() {
        assert_eq!(HalfHours::parse("hours", 1.5, 0.5, 200.0).unwrap(), HalfHours(3));
        assert_eq!(HalfHours::parse("hours", 200.0, 0.5, 200.0).unwrap().hours(), 200.0);
        assert!(HalfHours::parse("hours", 1.25, 0.5, 200.0).unwrap_err().to_string().contains("half hours"));
        assert!(HalfHours::parse("hours", 0.0, 0.5, 200.0).is_err());
        assert!(HalfHours::parse("hours", f64::NAN, 0.5, 200.0).is_err());
        assert!(HalfHours::parse("hours", 1e300, 0.5, 200.0).is_err());
    }

    #[test]
    fn course_codes_and_links_are_checked() {
        assert_eq!(course_code("c", " tax-2027-01 ").unwrap(), "TAX-2027-01");
        for bad in ["", "x", "-AB", "AB-", "税务课", "A B"] {
            assert!(course_code("c", bad).is_err(), "{bad}");
        }
        assert!(material_url("u", "https://intranet.example.cn/slides.pdf").is_ok());
        for bad in ["http://x.cn", "javascript:alert(1)", "https://", "https:///etc", "https://a b"] {
            assert!(material_url("u", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_seat_while_one_is_free_then_the_waitlist() {
        assert_eq!(seat_or_wait(1, 2), E::Enrolled);
        assert_eq!(seat_or_wait(2, 2), E::Waitlisted);
        let err = require_state(E::Attended, &[E::Enrolled], "check-in").unwrap_err().to_string();
        assert!(err.contains("已签到") && err.contains("check-in"), "{err}");
    }

    #[test]
    fn check_in_opens_half_an_hour_before_and_closes_at_the_end() {
        let (start, end) = (1_000_000_000, 1_000_000_000 + 3_600_000);
        assert!(!check_in_open(start, end, start - CHECK_IN_OPENS_MS - 1));
        assert!(check_in_open(start, end, start - CHECK_IN_OPENS_MS));
        assert!(check_in_open(start, end, end));
        assert!(!check_in_open(start, end, end + 1));
    }

    #[test]
    fn certificates_expire_after_issue_and_not_before() {
        assert!(certificate_dates(d(2024, 5, 1), Some(d(2027, 5, 1)), d(2026, 12, 1)).is_ok());
        let bad = certificate_dates(d(2027, 1, 1), Some(d(2026, 1, 1)), d(2026, 12, 1)).unwrap_err();
        let fields: Vec<_> = bad.iter().map(|(f, _)| *f).collect();
        assert_eq!(fields, vec!["certificate.issue_date", "certificate.expiry_date"]);
        assert!(expired(Some(d(2026, 11, 30)), d(2026, 12, 1)));
        assert!(!expired(Some(d(2026, 12, 1)), d(2026, 12, 1)), "valid on its last day");
        assert!(!expired(None, d(2099, 1, 1)));
    }

    #[test]
    fn ce_pace_is_pro_rata_and_exact() {
        // 90 hours a year; on 1 July (day 182 of 365) 44.88 are expected.
        let (expected, behind) = ce_pace(HalfHours(180), HalfHours(89), d(2027, 7, 1));
        assert!((expected - 90.0 * 182.0 / 365.0).abs() < 1e-9);
        assert!(behind);
        let (_, behind) = ce_pace(HalfHours(180), HalfHours(90), d(2027, 7, 1));
        assert!(!behind, "45 hours by 1 July keep pace");
        assert!(!ce_pace(HalfHours(0), HalfHours(0), d(2027, 12, 31)).1);
        assert_eq!(quarter(d(2027, 4, 1)), 2);
        assert_eq!(days_between(d(2027, 1, 1), d(2026, 12, 31)), -1);
        assert!((hours_share(HalfHours(30), HalfHours(10), 3) - 1.0).abs() < 1e-12);
        assert_eq!(hours_share(HalfHours(5), HalfHours(0), 3), 0.0);
    }
}
