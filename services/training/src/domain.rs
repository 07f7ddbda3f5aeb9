//! Training rules: hours in exact half-hour units, course codes, the
//! enrolment state machine, sessions' check-in window, plans' progress,
//! certificates' validity and the continuing-education pace. No I/O.
use chrono::{Datelike, NaiveDate};
use kefu_kit::Error;
use kefu_proto::training::v1::{EnrolmentState as E, QuestionKind as Q};

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
    code(field, raw, "course code", "TAX-2027-01")
}

/// A career level's code, written like a course code (e.g. CS-2).
pub fn level_code(field: &str, raw: &str) -> Result<String, Error> {
    code(field, raw, "level code", "CS-2")
}

fn code(field: &str, raw: &str, what: &str, example: &str) -> Result<String, Error> {
    let c = raw.trim().to_ascii_uppercase();
    let ok = (2..=32).contains(&c.len())
        && c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
        && !c.starts_with('-')
        && !c.ends_with('-');
    if !ok {
        return Err(Error::invalid(field, format!("is not a {what} (2–32 letters, digits and '-', e.g. {example})")));
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
    Err(Error::FailedPrecondition(format!("the enrolment is {}; {step} is not possible", name(state))))
}

/// An enrolment state in the words of error messages.
pub fn name(state: E) -> &'static str {
    match state {
        E::Unspecified => "in no known state",
        E::PendingApproval => "waiting for approval",
        E::Enrolled => "enrolled",
        E::Waitlisted => "on the waitlist",
        E::Attended => "checked in",
        E::Completed => "completed",
        E::Absent => "marked absent",
        E::Withdrawn => "withdrawn",
        E::Cancelled => "cancelled",
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
/// requirement, pro rata by day from the later of 1 January and `since`
/// (a certificate issued this year owes only its share), and whether
/// `earned` falls behind it. Exact: compared in half hours × days.
pub fn ce_pace(required: HalfHours, earned: HalfHours, since: NaiveDate, today: NaiveDate) -> (f64, bool) {
    let days_in_year = if NaiveDate::from_ymd_opt(today.year(), 2, 29).is_some() { 366 } else { 365 };
    let first = if since.year() == today.year() { i64::from(since.ordinal()) } else { 1 };
    let days = (i64::from(today.ordinal()) - first + 1).max(0);
    let expected = required.0 as f64 / 2.0 * days as f64 / days_in_year as f64;
    (expected, earned.0 * days_in_year < required.0 * days)
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

// -------------------------------------------------------------------- exams

/// The options of a true/false question.
pub const TRUE_FALSE: [&str; 2] = ["正确", "错误"];

/// A question's options and correct indexes, checked for its kind: the
/// problems by field (`options`, `correct`).
pub fn question_shape(kind: Q, options: &[String], correct: &[i32]) -> Vec<(&'static str, String)> {
    let mut bad = Vec::new();
    let n = options.len();
    match kind {
        Q::SingleChoice | Q::MultipleChoice if !(2..=8).contains(&n) => {
            bad.push(("options", "a choice question has 2 to 8 options".to_owned()));
        }
        Q::TrueFalse if !options.is_empty() && options != TRUE_FALSE.map(str::to_owned).as_slice() => {
            bad.push(("options", "a true/false question's options are 正确 and 错误 (or leave them out)".to_owned()));
        }
        Q::ShortAnswer if n > 0 => bad.push(("options", "a short answer has no options".to_owned())),
        _ => {}
    }
    let options_n = if kind == Q::TrueFalse { 2 } else { n };
    let mut sorted: Vec<i32> = correct.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let in_range = correct.iter().all(|&i| i >= 0 && (i as usize) < options_n);
    match kind {
        Q::ShortAnswer if !correct.is_empty() => {
            bad.push(("correct", "a short answer is marked by a person; give an answer guide".to_owned()));
        }
        Q::SingleChoice | Q::TrueFalse if correct.len() != 1 || !in_range => {
            bad.push(("correct", format!("give the one correct option (0 to {})", options_n.saturating_sub(1))));
        }
        Q::MultipleChoice if correct.is_empty() || !in_range || sorted.len() != correct.len() => {
            bad.push(("correct", format!("give the correct options once each (0 to {})", options_n.saturating_sub(1))));
        }
        _ => {}
    }
    bad
}

/// An answer's chosen options, checked against the question (none chosen:
/// unanswered, which is allowed); why they cannot be an answer to it.
pub fn chosen_ok(kind: Q, options_n: usize, chosen: &[i32]) -> Result<(), String> {
    if chosen.iter().any(|&i| i < 0 || i as usize >= options_n) {
        return Err(format!("options are 0 to {}", options_n.saturating_sub(1)));
    }
    let mut sorted = chosen.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.len() != chosen.len() {
        return Err("an option is chosen once".into());
    }
    match kind {
        Q::SingleChoice | Q::TrueFalse if chosen.len() > 1 => Err("choose one option".into()),
        Q::ShortAnswer if !chosen.is_empty() => Err("a short answer is written, not chosen".into()),
        _ => Ok(()),
    }
}

/// Points a choice answer wins: all of them for exactly the correct
/// options, none otherwise (no partial credit).
pub fn score_choice(correct: &[i32], chosen: &[i32], points: i64) -> i64 {
    let mut a = correct.to_vec();
    let mut b = chosen.to_vec();
    a.sort_unstable();
    b.sort_unstable();
    if !b.is_empty() && a == b { points } else { 0 }
}

/// Whether `awarded` of `total` points reaches a pass mark in percent (exact).
pub fn passed(awarded: i64, total: i64, pass_mark: i64) -> bool {
    total > 0 && awarded * 100 >= pass_mark * total
}

/// A score in percent.
pub fn percent(awarded: i64, total: i64) -> f64 {
    if total <= 0 { 0.0 } else { awarded as f64 * 100.0 / total as f64 }
}

/// One question's share of points in one attempt, for item analysis.
#[derive(Debug, Clone, Copy)]
pub struct ItemResult {
    pub awarded: i64,
    pub points: i64,
}

/// Difficulty (share of points won) and discrimination (difficulty among
/// the top 27 % of attempts minus the bottom 27 %) of one question, from
/// `(attempt score, this question's result)` of the attempts that were
/// asked it, and the scores of every attempt (which rank the groups).
pub fn item_stats(all_scores: &[f64], results: &[(f64, ItemResult)]) -> (f64, f64) {
    let share = |rs: &mut dyn Iterator<Item = &ItemResult>| {
        let (won, of) = rs.fold((0i64, 0i64), |(w, o), r| (w + r.awarded, o + r.points));
        if of == 0 { 0.0 } else { won as f64 / of as f64 }
    };
    let difficulty = share(&mut results.iter().map(|(_, r)| r));
    let mut sorted = all_scores.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n < 2 {
        return (difficulty, 0.0);
    }
    let k = ((n as f64 * 0.27).round() as usize).clamp(1, n / 2);
    let (low_cut, high_cut) = (sorted[k - 1], sorted[n - k]);
    let upper = share(&mut results.iter().filter(|(s, _)| *s >= high_cut).map(|(_, r)| r));
    let lower = share(&mut results.iter().filter(|(s, _)| *s <= low_cut).map(|(_, r)| r));
    (difficulty, upper - lower)
}

// ------------------------------------------------------------ career paths

/// Performance grades, best first.
pub const GRADES: [&str; 4] = ["A", "B", "C", "D"];

/// A grade as written (A–D, upper case), or empty for none.
pub fn grade(field: &str, raw: &str) -> Result<String, Error> {
    let g = raw.trim().to_ascii_uppercase();
    if g.is_empty() || GRADES.contains(&g.as_str()) {
        Ok(g)
    } else {
        Err(Error::invalid(field, "is a performance grade: A, B, C or D (or empty)"))
    }
}

/// Full months from `since` to `today` (a month counts on its day of the
/// month; 31 January to 28 February is not yet one).
pub fn months_between(since: NaiveDate, today: NaiveDate) -> i64 {
    if today < since {
        return 0;
    }
    let mut months = i64::from(today.year() - since.year()) * 12 + i64::from(today.month()) - i64::from(since.month());
    if today.day() < since.day() {
        months -= 1;
    }
    months.max(0)
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
        assert!(err.contains("checked in") && err.contains("check-in"), "{err}");
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
        let (expected, behind) = ce_pace(HalfHours(180), HalfHours(89), d(2020, 1, 1), d(2027, 7, 1));
        assert!((expected - 90.0 * 182.0 / 365.0).abs() < 1e-9);
        assert!(behind);
        let (_, behind) = ce_pace(HalfHours(180), HalfHours(90), d(2020, 1, 1), d(2027, 7, 1));
        assert!(!behind, "45 hours by 1 July keep pace");
        assert!(!ce_pace(HalfHours(0), HalfHours(0), d(2020, 1, 1), d(2027, 12, 31)).1);
        // Issued on 1 July: owes nothing for the half year before.
        let (expected, behind) = ce_pace(HalfHours(180), HalfHours(0), d(2027, 7, 1), d(2027, 7, 1));
        assert!((expected - 90.0 / 365.0).abs() < 1e-9);
        assert!(behind);
        assert!(!ce_pace(HalfHours(180), HalfHours(1), d(2027, 7, 1), d(2027, 7, 1)).1);
        assert_eq!(quarter(d(2027, 4, 1)), 2);
        assert_eq!(days_between(d(2027, 1, 1), d(2026, 12, 31)), -1);
        assert!((hours_share(HalfHours(30), HalfHours(10), 3) - 1.0).abs() < 1e-12);
        assert_eq!(hours_share(HalfHours(5), HalfHours(0), 3), 0.0);
    }

    #[test]
    fn question_shapes_are_checked_per_kind() {
        let opts = |n: usize| (0..n).map(|i| format!("选项{i}")).collect::<Vec<_>>();
        assert!(question_shape(Q::SingleChoice, &opts(4), &[2]).is_empty());
        assert!(question_shape(Q::MultipleChoice, &opts(4), &[0, 3]).is_empty());
        assert!(question_shape(Q::TrueFalse, &[], &[1]).is_empty());
        assert!(question_shape(Q::ShortAnswer, &[], &[]).is_empty());
        let fields = |b: Vec<(&'static str, String)>| b.into_iter().map(|(f, _)| f).collect::<Vec<_>>();
        assert_eq!(fields(question_shape(Q::SingleChoice, &opts(1), &[0, 1])), vec!["options", "correct"]);
        assert_eq!(fields(question_shape(Q::MultipleChoice, &opts(3), &[1, 1])), vec!["correct"]);
        assert_eq!(fields(question_shape(Q::TrueFalse, &opts(2), &[2])), vec!["options", "correct"]);
        assert_eq!(fields(question_shape(Q::ShortAnswer, &opts(2), &[0])), vec!["options", "correct"]);
    }

    #[test]
    fn answers_are_all_or_nothing_and_pass_marks_exact() {
        assert!(chosen_ok(Q::SingleChoice, 4, &[1, 2]).is_err());
        assert!(chosen_ok(Q::MultipleChoice, 4, &[1, 1]).is_err());
        assert!(chosen_ok(Q::MultipleChoice, 4, &[4]).is_err());
        assert!(chosen_ok(Q::TrueFalse, 2, &[]).is_ok(), "unanswered");
        assert_eq!(score_choice(&[0, 3], &[3, 0], 5), 5);
        assert_eq!(score_choice(&[0, 3], &[0], 5), 0, "no partial credit");
        assert_eq!(score_choice(&[1], &[], 5), 0);
        assert!(passed(60, 100, 60));
        assert!(!passed(59, 100, 60));
        assert!(passed(2, 3, 66) && !passed(2, 3, 67), "2/3 is 66.67 %");
        assert!(!passed(0, 0, 0));
        assert!((percent(2, 3) - 66.666_666_666_666_67).abs() < 1e-9);
    }

    #[test]
    fn item_analysis_ranks_upper_and_lower_groups() {
        // Ten attempts scoring 10..100; the question is won by the top half only.
        let scores: Vec<f64> = (1..=10).map(|i| f64::from(i) * 10.0).collect();
        let results: Vec<(f64, ItemResult)> =
            scores.iter().map(|&s| (s, ItemResult { awarded: if s > 50.0 { 2 } else { 0 }, points: 2 })).collect();
        let (difficulty, discrimination) = item_stats(&scores, &results);
        assert!((difficulty - 0.5).abs() < 1e-12);
        assert!((discrimination - 1.0).abs() < 1e-12, "{discrimination}");
        // Everyone wins it: easy, and it does not tell the groups apart.
        let all: Vec<(f64, ItemResult)> = scores.iter().map(|&s| (s, ItemResult { awarded: 1, points: 1 })).collect();
        assert_eq!(item_stats(&scores, &all), (1.0, 0.0));
        assert_eq!(item_stats(&[50.0], &[(50.0, ItemResult { awarded: 1, points: 2 })]), (0.5, 0.0));
    }

    #[test]
    fn months_in_a_level_count_whole_months() {
        assert_eq!(months_between(d(2025, 3, 10), d(2026, 3, 10)), 12);
        assert_eq!(months_between(d(2025, 3, 10), d(2026, 3, 9)), 11);
        assert_eq!(months_between(d(2026, 1, 31), d(2026, 2, 28)), 0);
        assert_eq!(months_between(d(2026, 5, 1), d(2026, 4, 1)), 0);
        assert_eq!(grade("g", " b ").unwrap(), "B");
        assert!(grade("g", "E").is_err());
        assert_eq!(grade("g", "").unwrap(), "");
    }
}
