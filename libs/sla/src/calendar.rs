//! Business calendars: a time zone, working intervals per weekday (several a
//! day), dated holidays and dated make-up working days (調休) that work with
//! a chosen weekday's intervals. Business time is the overlap with working
//! intervals, counted in the calendar's zone.
use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// The calendar China's firms start from: office hours, 2025–2026 statutory
/// holidays and make-up days, and the monthly filing deadlines.
pub const CHINA_DEFAULT_JSON: &str = include_str!("../data/cn.json");

/// The longest walk `add`/`sub` take before giving up (no working time).
const MAX_WALK_DAYS: i64 = 366 * 30;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CalendarError {
    #[error("calendar has no working time")]
    NoWorkingTime,
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("instant out of the supported range")]
    OutOfRange,
}

/// A calendar failure as a service answers it: a calendar without working
/// time is the firm's to fix (FAILED_PRECONDITION); anything else is internal.
pub fn to_error(e: CalendarError) -> kefu_kit::Error {
    match e {
        CalendarError::NoWorkingTime => kefu_kit::Error::FailedPrecondition(
            "the calendar has no working time; a due time cannot be computed".into(),
        ),
        other => kefu_kit::Error::Internal(anyhow::anyhow!("calendar: {other}")),
    }
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> CalendarError {
    CalendarError::Invalid { field: field.into(), message: message.into() }
}

/// The JSON form of a calendar (what a firm edits).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CalendarSpec {
    pub id: String,
    #[serde(default)]
    pub name: String,
    pub time_zone: String,
    /// `mon`..`sun` → `["09:00-12:00", "13:00-18:00"]`; `24:00` ends a day.
    pub weekly: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub holidays: Vec<HolidaySpec>,
    #[serde(default)]
    pub makeup_days: Vec<MakeupSpec>,
    /// The filing deadline of each month the firm has loaded (the tax
    /// authority's 征期 table), one date per month. Also read in the older
    /// form `{"2026": [12 deadline days]}`.
    #[serde(default, deserialize_with = "filing_dates")]
    pub filing_deadlines: Vec<NaiveDate>,
    /// How far before the filing deadline's close of business a tax-filing
    /// request is due, in business minutes; absent: one business day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filing_lead_minutes: Option<u32>,
}

/// Reads filing deadlines as a list of dates, or in the older form of a
/// year mapped to its twelve deadline days.
fn filing_dates<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<NaiveDate>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Form {
        Dates(Vec<NaiveDate>),
        ByYear(BTreeMap<String, Vec<u32>>),
    }
    match Form::deserialize(d)? {
        Form::Dates(v) => Ok(v),
        Form::ByYear(map) => {
            let mut out = Vec::new();
            for (year, days) in map {
                let y: i32 = year.parse().map_err(|_| serde::de::Error::custom(format!("{year:?} is not a year")))?;
                if days.len() != 12 {
                    return Err(serde::de::Error::custom(format!(
                        "filing_deadlines.{year} needs 12 days, one per month"
                    )));
                }
                for (m, day) in days.iter().enumerate() {
                    let month = m as u32 + 1;
                    out.push(
                        NaiveDate::from_ymd_opt(y, month, *day).ok_or_else(|| {
                            serde::de::Error::custom(format!("{y}-{month:02}-{day:02} is not a date"))
                        })?,
                    );
                }
            }
            Ok(out)
        }
    }
}

/// The longest filing lead a calendar may set (five 8-hour days).
pub const MAX_FILING_LEAD_MINUTES: u32 = 5 * 8 * 60;

/// A day a due date crossed without counting it, or a make-up day it
/// counted (what a preview explains).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DayNote {
    /// A statutory holiday (its name).
    Holiday(NaiveDate, String),
    /// A weekday with no working hours (a weekend).
    RestDay(NaiveDate),
    /// A make-up working day (its name, the weekday it works as).
    MakeupDay(NaiveDate, String, Weekday),
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct HolidaySpec {
    #[serde(default)]
    pub name: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MakeupSpec {
    pub date: NaiveDate,
    /// Whose intervals the day works with (`mon`..`sun`).
    pub works_as: String,
    #[serde(default)]
    pub name: String,
}

/// A working interval as seconds of the local day, `start < end <= 86400`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Interval {
    pub start: u32,
    pub end: u32,
}

/// A validated calendar.
#[derive(Debug, Clone)]
pub struct Calendar {
    pub id: String,
    pub name: String,
    tz: Tz,
    weekly: [Vec<Interval>; 7],
    holidays: BTreeMap<NaiveDate, String>,
    makeup: BTreeMap<NaiveDate, Weekday>,
    filing: BTreeMap<(i32, u32), u32>,
    spec: CalendarSpec,
}

/// Weekday names as a calendar spells them, Monday first.
pub const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn weekday_of(name: &str) -> Option<Weekday> {
    DAY_NAMES.iter().position(|d| *d == name).and_then(|i| Weekday::try_from(i as u8).ok())
}

fn parse_hm(field: &str, s: &str) -> Result<u32, CalendarError> {
    let (h, m) = s.trim().split_once(':').ok_or_else(|| invalid(field, format!("{s:?} is not HH:MM")))?;
    let h: u32 = h.parse().map_err(|_| invalid(field, format!("{s:?} is not HH:MM")))?;
    let m: u32 = m.parse().map_err(|_| invalid(field, format!("{s:?} is not HH:MM")))?;
    if m >= 60 || h > 24 || (h == 24 && m != 0) {
        return Err(invalid(field, format!("{s:?} is not a time of day")));
    }
    Ok(h * 3600 + m * 60)
}

impl Calendar {
    pub fn china_default() -> Result<Self, CalendarError> {
        Self::from_json(CHINA_DEFAULT_JSON)
    }

    pub fn from_json(text: &str) -> Result<Self, CalendarError> {
        let spec: CalendarSpec = serde_json::from_str(text).map_err(|e| invalid("calendar", e.to_string()))?;
        Self::from_spec(spec)
    }

    pub fn from_spec(spec: CalendarSpec) -> Result<Self, CalendarError> {
        if spec.id.trim().is_empty() || spec.id.len() > 64 {
            return Err(invalid("id", "is required (at most 64 characters)"));
        }
        let tz: Tz = spec
            .time_zone
            .parse()
            .map_err(|_| invalid("time_zone", format!("{:?} is not an IANA time zone", spec.time_zone)))?;
        let mut weekly: [Vec<Interval>; 7] = Default::default();
        for (day, ranges) in &spec.weekly {
            let wd = weekday_of(day).ok_or_else(|| invalid("weekly", format!("{day:?} is not mon..sun")))?;
            let mut v = Vec::new();
            for r in ranges {
                let field = format!("weekly.{day}");
                let (a, b) = r.split_once('-').ok_or_else(|| invalid(&field, format!("{r:?} is not HH:MM-HH:MM")))?;
                let (start, end) = (parse_hm(&field, a)?, parse_hm(&field, b)?);
                if start >= end {
                    return Err(invalid(&field, format!("{r:?} ends before it starts")));
                }
                v.push(Interval { start, end });
            }
            v.sort();
            if v.windows(2).any(|w| w[0].end > w[1].start) {
                return Err(invalid(format!("weekly.{day}"), "intervals overlap"));
            }
            weekly[wd.num_days_from_monday() as usize] = v;
        }
        if spec.name.chars().count() > 200 {
            return Err(invalid("name", "at most 200 characters"));
        }
        if spec.holidays.len() > 2000 || spec.makeup_days.len() > 2000 || spec.filing_deadlines.len() > 1200 {
            return Err(invalid("calendar", "at most 2,000 holidays, 2,000 make-up days and 1,200 filing deadlines"));
        }
        let mut holidays = BTreeMap::new();
        for (i, h) in spec.holidays.iter().enumerate() {
            if h.to < h.from || (h.to - h.from).num_days() > 60 {
                return Err(invalid(format!("holidays[{i}]"), "to must be on or after from, within 60 days"));
            }
            if h.name.chars().count() > 100 {
                return Err(invalid(format!("holidays[{i}].name"), "at most 100 characters"));
            }
            let mut d = h.from;
            while d <= h.to {
                holidays.insert(d, h.name.clone());
                d = d.succ_opt().ok_or(CalendarError::OutOfRange)?;
            }
        }
        let mut makeup = BTreeMap::new();
        for (i, m) in spec.makeup_days.iter().enumerate() {
            let wd = weekday_of(&m.works_as)
                .ok_or_else(|| invalid(format!("makeup_days[{i}].works_as"), "is not mon..sun"))?;
            if holidays.contains_key(&m.date) {
                return Err(invalid(format!("makeup_days[{i}]"), "is also a holiday"));
            }
            // A make-up day turns a rest day into a working one.
            if !weekly[m.date.weekday().num_days_from_monday() as usize].is_empty() {
                return Err(invalid(format!("makeup_days[{i}].date"), format!("{} is a working day already", m.date)));
            }
            if makeup.insert(m.date, wd).is_some() {
                return Err(invalid(format!("makeup_days[{i}].date"), format!("{} is listed twice", m.date)));
            }
        }
        let mut filing = BTreeMap::new();
        for (i, d) in spec.filing_deadlines.iter().enumerate() {
            if filing.insert((d.year(), d.month()), d.day()).is_some() {
                return Err(invalid(
                    format!("filing_deadlines[{i}]"),
                    format!("a second deadline for {}-{:02}", d.year(), d.month()),
                ));
            }
        }
        if let Some(lead) = spec.filing_lead_minutes
            && lead > MAX_FILING_LEAD_MINUTES
        {
            return Err(invalid(
                "filing_lead_minutes",
                format!("at most {MAX_FILING_LEAD_MINUTES} (five 8-hour days)"),
            ));
        }
        let cal = Self { id: spec.id.clone(), name: spec.name.clone(), tz, weekly, holidays, makeup, filing, spec };
        // An official deadline is a working day (the authority moves it off
        // rest days); one on a rest day of this calendar is a typing error.
        for (i, d) in cal.spec.filing_deadlines.iter().enumerate() {
            if !cal.is_working_day(*d) {
                return Err(invalid(
                    format!("filing_deadlines[{i}]"),
                    format!("{d} is not a working day in this calendar"),
                ));
            }
        }
        Ok(cal)
    }

    pub fn spec(&self) -> &CalendarSpec {
        &self.spec
    }

    pub fn time_zone(&self) -> Tz {
        self.tz
    }

    /// A 24/7 calendar in UTC (for calendar-clock metrics and tests).
    pub fn always_open() -> Self {
        let mut weekly = BTreeMap::new();
        for d in DAY_NAMES {
            weekly.insert(d.to_owned(), vec!["00:00-24:00".to_owned()]);
        }
        let spec = CalendarSpec {
            id: "24x7".into(),
            name: "always open".into(),
            time_zone: "UTC".into(),
            weekly,
            holidays: vec![],
            makeup_days: vec![],
            filing_deadlines: vec![],
            filing_lead_minutes: None,
        };
        // The spec above is valid by construction.
        Self::from_spec(spec).unwrap_or_else(|_| unreachable!("24x7 calendar is valid"))
    }

    /// Merges another spec's holidays, make-up days and filing deadlines in
    /// (how a firm adds next year's published dates without a release): a
    /// holiday starting on the same day, a make-up day on the same date and
    /// a deadline in the same month replace the ones there.
    pub fn extended(&self, extra: &CalendarSpec) -> Result<Self, CalendarError> {
        let mut spec = self.spec.clone();
        spec.holidays.retain(|h| !extra.holidays.iter().any(|e| e.from == h.from));
        spec.holidays.extend(extra.holidays.iter().cloned());
        spec.holidays.sort_by_key(|h| h.from);
        spec.makeup_days.retain(|m| !extra.makeup_days.iter().any(|e| e.date == m.date));
        spec.makeup_days.extend(extra.makeup_days.iter().cloned());
        spec.makeup_days.sort_by_key(|m| m.date);
        spec.filing_deadlines
            .retain(|d| !extra.filing_deadlines.iter().any(|e| (e.year(), e.month()) == (d.year(), d.month())));
        spec.filing_deadlines.extend(extra.filing_deadlines.iter().copied());
        spec.filing_deadlines.sort();
        Self::from_spec(spec)
    }

    pub fn is_holiday(&self, d: NaiveDate) -> bool {
        self.holidays.contains_key(&d)
    }

    /// Years for which statutory holidays are loaded (the official dates
    /// the State Council publishes each year).
    pub fn holiday_years(&self) -> Vec<i32> {
        let mut years: Vec<i32> = self.holidays.keys().map(|d| d.year()).collect();
        years.dedup();
        years
    }

    /// The working intervals of a local date.
    pub fn intervals_on(&self, d: NaiveDate) -> &[Interval] {
        if self.holidays.contains_key(&d) {
            return &[];
        }
        let wd = self.makeup.get(&d).copied().unwrap_or_else(|| d.weekday());
        &self.weekly[wd.num_days_from_monday() as usize]
    }

    pub fn is_working_day(&self, d: NaiveDate) -> bool {
        !self.intervals_on(d).is_empty()
    }

    /// Business length of a normal Monday: what "one business day" means.
    pub fn business_day(&self) -> Duration {
        let secs: u32 = self.weekly[0].iter().map(|i| i.end - i.start).sum();
        if secs == 0 {
            let max = self.weekly.iter().map(|v| v.iter().map(|i| i.end - i.start).sum::<u32>()).max().unwrap_or(0);
            return Duration::seconds(i64::from(max));
        }
        Duration::seconds(i64::from(secs))
    }

    fn has_any_working_time(&self) -> bool {
        self.weekly.iter().any(|v| !v.is_empty())
            || self.makeup.values().any(|wd| !self.weekly[wd.num_days_from_monday() as usize].is_empty())
    }

    fn local_date(&self, t: DateTime<Utc>) -> NaiveDate {
        t.with_timezone(&self.tz).date_naive()
    }

    /// The UTC instant of `secs` seconds into local date `d`.
    fn instant(&self, d: NaiveDate, secs: u32) -> DateTime<Utc> {
        let base = NaiveDateTime::new(d, NaiveTime::MIN) + Duration::seconds(i64::from(secs));
        match self.tz.from_local_datetime(&base) {
            LocalResult::Single(t) => t.with_timezone(&Utc),
            LocalResult::Ambiguous(a, _) => a.with_timezone(&Utc),
            // In a DST gap the wall-clock time does not exist: use the
            // instant the gap ends.
            LocalResult::None => {
                let mut probe = base;
                for _ in 0..8 {
                    probe += Duration::minutes(30);
                    if let Some(t) = self.tz.from_local_datetime(&probe).earliest() {
                        return t.with_timezone(&Utc);
                    }
                }
                Utc.from_utc_datetime(&base)
            }
        }
    }

    /// Working intervals of a local date as UTC instants.
    fn day_spans(&self, d: NaiveDate) -> impl Iterator<Item = (DateTime<Utc>, DateTime<Utc>)> + '_ {
        self.intervals_on(d).iter().map(move |i| (self.instant(d, i.start), self.instant(d, i.end)))
    }

    /// Business time between two instants (zero when `b <= a`).
    pub fn business_between(&self, a: DateTime<Utc>, b: DateTime<Utc>) -> Duration {
        if b <= a {
            return Duration::zero();
        }
        let mut total = Duration::zero();
        let mut d = self.local_date(a).pred_opt().unwrap_or(NaiveDate::MIN);
        let last = self.local_date(b).succ_opt().unwrap_or(NaiveDate::MAX);
        while d <= last {
            for (s, e) in self.day_spans(d) {
                let (s, e) = (s.max(a), e.min(b));
                if e > s {
                    total += e - s;
                }
            }
            match d.succ_opt() {
                Some(n) => d = n,
                None => break,
            }
        }
        total
    }

    /// The instant `dur` of business time after `start`. Starting outside
    /// working time counts from the next opening; a result on a boundary
    /// between intervals is the earlier wall-clock instant (an interval's
    /// end, not the next one's start).
    pub fn add(&self, start: DateTime<Utc>, dur: Duration) -> Result<DateTime<Utc>, CalendarError> {
        if dur <= Duration::zero() {
            return Ok(start);
        }
        if !self.has_any_working_time() {
            return Err(CalendarError::NoWorkingTime);
        }
        let mut remaining = dur;
        let mut d = self.local_date(start).pred_opt().ok_or(CalendarError::OutOfRange)?;
        for _ in 0..MAX_WALK_DAYS {
            for (s, e) in self.day_spans(d) {
                let s = s.max(start);
                if e <= s {
                    continue;
                }
                let avail = e - s;
                if remaining <= avail {
                    return Ok(s + remaining);
                }
                remaining -= avail;
            }
            d = d.succ_opt().ok_or(CalendarError::OutOfRange)?;
        }
        Err(CalendarError::NoWorkingTime)
    }

    /// The instant `dur` of business time before `end`, with the same
    /// boundary rule as [`Calendar::add`]: landing on an interval's start
    /// gives the previous interval's end.
    pub fn sub(&self, end: DateTime<Utc>, dur: Duration) -> Result<DateTime<Utc>, CalendarError> {
        if dur < Duration::zero() {
            return self.add(end, -dur);
        }
        if !self.has_any_working_time() {
            return Err(CalendarError::NoWorkingTime);
        }
        let mut remaining = dur;
        let mut d = self.local_date(end).succ_opt().ok_or(CalendarError::OutOfRange)?;
        let mut landed_on_start = dur.is_zero();
        for _ in 0..MAX_WALK_DAYS {
            let spans: Vec<_> = self.day_spans(d).collect();
            for (s, e) in spans.into_iter().rev() {
                let e = e.min(end);
                if e <= s {
                    continue;
                }
                if landed_on_start {
                    // The earliest wall-clock instant with this business time.
                    return Ok(e);
                }
                let avail = e - s;
                if remaining < avail {
                    return Ok(e - remaining);
                }
                remaining -= avail;
                if remaining.is_zero() {
                    landed_on_start = true;
                }
            }
            d = d.pred_opt().ok_or(CalendarError::OutOfRange)?;
        }
        Err(CalendarError::NoWorkingTime)
    }

    /// End of the last working interval on a local date (close of business).
    pub fn close_of_business(&self, d: NaiveDate) -> Option<DateTime<Utc>> {
        self.intervals_on(d).last().map(|i| self.instant(d, i.end))
    }

    /// The filing deadline that closes a period ending in `(year, month)`:
    /// the deadline day of the following month, if the calendar has it.
    pub fn filing_deadline_for_period_ending(&self, year: i32, month: u32) -> Option<NaiveDate> {
        let (y, m) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
        let day = self.filing.get(&(y, m))?;
        NaiveDate::from_ymd_opt(y, m, *day)
    }

    /// The deadline day of a month's filing window, e.g. (2026, 10) → 26 Oct.
    pub fn filing_deadline_in(&self, year: i32, month: u32) -> Option<NaiveDate> {
        let day = self.filing.get(&(year, month))?;
        NaiveDate::from_ymd_opt(year, month, *day)
    }

    /// A conservative deadline for a month whose official one is not
    /// loaded: the 15th, moved to the next working day when it is a rest
    /// day, without the extensions the authority adds for long holidays —
    /// never later than the official date, which starts from the same rule.
    pub fn provisional_filing_deadline_in(&self, year: i32, month: u32) -> Option<NaiveDate> {
        let mut d = NaiveDate::from_ymd_opt(year, month, 15)?;
        for _ in 0..31 {
            if self.is_working_day(d) {
                return Some(d);
            }
            d = d.succ_opt()?;
        }
        None
    }

    /// The month's deadline: the official one when loaded (`false`), else
    /// the provisional one (`true`).
    pub fn filing_deadline_or_provisional(&self, year: i32, month: u32) -> Option<(NaiveDate, bool)> {
        match self.filing_deadline_in(year, month) {
            Some(d) => Some((d, false)),
            None => self.provisional_filing_deadline_in(year, month).map(|d| (d, true)),
        }
    }

    /// How far before a filing deadline's close of business a filing
    /// request is due: the calendar's lead, else one business day.
    pub fn filing_lead(&self) -> Duration {
        self.spec.filing_lead_minutes.map_or_else(|| self.business_day(), |m| Duration::minutes(i64::from(m)))
    }

    /// The days between two instants' local dates (inclusive) that business
    /// time skipped — holidays and rest days — and the make-up days it
    /// counted, in date order; at most `limit`.
    pub fn crossed(&self, from: DateTime<Utc>, to: DateTime<Utc>, limit: usize) -> Vec<DayNote> {
        let mut out = Vec::new();
        let (mut d, last) = (self.local_date(from), self.local_date(to));
        while d <= last && out.len() < limit {
            if let Some(name) = self.holidays.get(&d) {
                out.push(DayNote::Holiday(d, name.clone()));
            } else if let Some(wd) = self.makeup.get(&d) {
                let name =
                    self.spec.makeup_days.iter().find(|m| m.date == d).map(|m| m.name.clone()).unwrap_or_default();
                out.push(DayNote::MakeupDay(d, name, *wd));
            } else if self.intervals_on(d).is_empty() {
                out.push(DayNote::RestDay(d));
            }
            match d.succ_opt() {
                Some(n) => d = n,
                None => break,
            }
        }
        out
    }

    /// The local date of an instant in the calendar's zone.
    pub fn date_of(&self, t: DateTime<Utc>) -> NaiveDate {
        self.local_date(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cn() -> Calendar {
        Calendar::china_default().unwrap()
    }

    /// Local (Asia/Shanghai) wall-clock time as UTC.
    fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        chrono_tz::Asia::Shanghai.with_ymd_and_hms(y, m, d, h, min, 0).unwrap().with_timezone(&Utc)
    }

    fn hours(h: i64) -> Duration {
        Duration::hours(h)
    }

    #[test]
    fn ships_the_2026_spring_festival_and_national_day() {
        let c = cn();
        let d = |m, day| NaiveDate::from_ymd_opt(2026, m, day).unwrap();
        // Make-up Saturday 14 Feb works; 15–23 Feb is off; Saturday 28 Feb works.
        assert!(c.is_working_day(d(2, 13)));
        assert!(c.is_working_day(d(2, 14)));
        for day in 15..=23 {
            assert!(!c.is_working_day(d(2, day)), "Feb {day}");
        }
        assert!(c.is_working_day(d(2, 24)));
        assert!(c.is_working_day(d(2, 28)));
        assert!(!c.is_working_day(d(3, 1)), "ordinary Sunday");
        assert!(c.is_working_day(d(9, 20)), "make-up Sunday before National Day");
        for day in 1..=7 {
            assert!(!c.is_working_day(d(10, day)));
        }
        assert!(c.is_working_day(d(10, 10)), "make-up Saturday after National Day");
        assert!(!c.is_working_day(d(1, 2)) && c.is_working_day(d(1, 4)));
    }

    #[test]
    fn due_times_across_the_2026_holidays() {
        let c = cn();
        // Friday 13 Feb 17:00 + 2 business hours: 1h on Friday, 1h on make-up Saturday 14 Feb.
        assert_eq!(c.add(at(2026, 2, 13, 17, 0), hours(2)).unwrap(), at(2026, 2, 14, 10, 0));
        // Saturday 14 Feb 17:00 + 2h: 1h that day, then the holiday, then Tuesday 24 Feb 10:00.
        assert_eq!(c.add(at(2026, 2, 14, 17, 0), hours(2)).unwrap(), at(2026, 2, 24, 10, 0));
        // Created during the holiday: counts from the next opening.
        assert_eq!(c.add(at(2026, 2, 18, 11, 0), hours(1)).unwrap(), at(2026, 2, 24, 10, 0));
        // Lunch break is not business time.
        assert_eq!(c.add(at(2026, 3, 2, 11, 30), hours(1)).unwrap(), at(2026, 3, 2, 13, 30));
        // 30 Sep 2026 (Wed) 17:00 + 18h: 1h Wed, Oct 1–7 off, 8h Thu 8 Oct, 8h Fri 9 Oct, 1h make-up Sat 10 Oct.
        assert_eq!(c.add(at(2026, 9, 30, 17, 0), hours(18)).unwrap(), at(2026, 10, 10, 10, 0));
        assert_eq!(c.business_between(at(2026, 2, 13, 9, 0), at(2026, 2, 24, 9, 0)), hours(16), "Fri 13 + Sat 14");
    }

    #[test]
    fn boundaries_give_the_earliest_wall_clock_instant() {
        let c = cn();
        // Friday 16 Oct 2026 17:00 + 1h: 18:00 Friday, not 09:00 Monday.
        assert_eq!(c.add(at(2026, 10, 16, 17, 0), hours(1)).unwrap(), at(2026, 10, 16, 18, 0));
        // 11:00 + 1h: 12:00 (the morning's end), not 13:00.
        assert_eq!(c.add(at(2026, 10, 16, 11, 0), hours(1)).unwrap(), at(2026, 10, 16, 12, 0));
        // Backwards: Monday 26 Oct 18:00 - one business day: Friday 23 Oct 18:00.
        assert_eq!(c.sub(at(2026, 10, 26, 18, 0), c.business_day()).unwrap(), at(2026, 10, 23, 18, 0));
        // Backwards to a lunch boundary: 13:00 + 0 → 12:00.
        assert_eq!(c.sub(at(2026, 10, 16, 14, 0), hours(1)).unwrap(), at(2026, 10, 16, 12, 0));
    }

    #[test]
    fn filing_deadlines_ship_as_data() {
        let c = cn();
        assert_eq!(c.filing_deadline_in(2026, 10), NaiveDate::from_ymd_opt(2026, 10, 26));
        assert_eq!(c.filing_deadline_for_period_ending(2026, 9), NaiveDate::from_ymd_opt(2026, 10, 26));
        assert_eq!(c.filing_deadline_for_period_ending(2025, 12), NaiveDate::from_ymd_opt(2026, 1, 20));
        assert_eq!(c.filing_deadline_in(2025, 2), NaiveDate::from_ymd_opt(2025, 2, 20));
        assert_eq!(c.filing_deadline_in(2027, 1), None);
        assert_eq!(c.close_of_business(NaiveDate::from_ymd_opt(2026, 10, 26).unwrap()), Some(at(2026, 10, 26, 18, 0)));
    }

    #[test]
    fn provisional_deadlines_are_never_later_than_the_official_ones() {
        let c = cn();
        let mut checked = 0;
        for y in [2025, 2026] {
            for m in 1..=12 {
                let official = c.filing_deadline_in(y, m).unwrap();
                let provisional = c.provisional_filing_deadline_in(y, m).unwrap();
                assert!(provisional <= official, "{y}-{m}: {provisional} after {official}");
                assert!(c.is_working_day(provisional));
                checked += 1;
            }
        }
        assert_eq!(checked, 24);
        // The 15th on a Sunday moves to Monday; during the Spring Festival, past it.
        assert_eq!(c.provisional_filing_deadline_in(2026, 11), NaiveDate::from_ymd_opt(2026, 11, 16));
        assert_eq!(c.provisional_filing_deadline_in(2026, 2), NaiveDate::from_ymd_opt(2026, 2, 24));
        assert_eq!(
            c.filing_deadline_or_provisional(2027, 1),
            Some((NaiveDate::from_ymd_opt(2027, 1, 15).unwrap(), true))
        );
        assert_eq!(
            c.filing_deadline_or_provisional(2026, 10),
            Some((NaiveDate::from_ymd_opt(2026, 10, 26).unwrap(), false))
        );
    }

    #[test]
    fn filing_lead_defaults_to_a_business_day_and_is_configurable() {
        let c = cn();
        assert_eq!(c.filing_lead(), hours(8));
        let mut spec = c.spec().clone();
        spec.filing_lead_minutes = Some(120);
        assert_eq!(Calendar::from_spec(spec.clone()).unwrap().filing_lead(), hours(2));
        spec.filing_lead_minutes = Some(MAX_FILING_LEAD_MINUTES + 1);
        assert!(
            matches!(Calendar::from_spec(spec), Err(CalendarError::Invalid { field, .. }) if field == "filing_lead_minutes")
        );
    }

    #[test]
    fn crossed_names_the_holidays_rest_days_and_make_up_days() {
        let c = cn();
        let notes = c.crossed(at(2026, 9, 30, 17, 0), at(2026, 10, 10, 10, 0), 50);
        let d = |m, day| NaiveDate::from_ymd_opt(2026, m, day).unwrap();
        assert!(notes.iter().any(|n| matches!(n, DayNote::Holiday(day, name) if *day == d(10, 1) && !name.is_empty())));
        assert!(notes.iter().any(|n| matches!(n, DayNote::MakeupDay(day, _, Weekday::Mon) if *day == d(10, 10))));
        assert!(
            !notes.iter().any(|n| matches!(n, DayNote::RestDay(day) if *day == d(10, 8))),
            "8 Oct is a working day"
        );
        assert_eq!(c.holiday_years(), vec![2025, 2026]);
    }

    #[test]
    fn old_and_new_filing_forms_read_the_same_and_duplicates_are_refused() {
        let old = Calendar::china_default().unwrap();
        let json = serde_json::to_string(old.spec()).unwrap();
        assert!(json.contains("\"2026-10-26\""), "written as dates");
        let again = Calendar::from_json(&json).unwrap();
        assert_eq!(again.filing_deadline_in(2026, 10), old.filing_deadline_in(2026, 10));
        let mut spec = old.spec().clone();
        spec.filing_deadlines.push(NaiveDate::from_ymd_opt(2026, 10, 20).unwrap());
        assert!(
            matches!(Calendar::from_spec(spec), Err(CalendarError::Invalid { field, .. }) if field.starts_with("filing_deadlines["))
        );
    }

    #[test]
    fn extension_adds_next_years_dates() {
        let c = cn();
        let extra = CalendarSpec {
            id: "x".into(),
            name: String::new(),
            time_zone: "Asia/Shanghai".into(),
            weekly: BTreeMap::new(),
            holidays: vec![HolidaySpec {
                name: "元旦".into(),
                from: NaiveDate::from_ymd_opt(2027, 1, 1).unwrap(),
                to: NaiveDate::from_ymd_opt(2027, 1, 1).unwrap(),
            }],
            makeup_days: vec![],
            filing_deadlines: [1, 3].iter().map(|m| NaiveDate::from_ymd_opt(2027, *m, 15).unwrap()).collect(),
            filing_lead_minutes: None,
        };
        let c2 = c.extended(&extra).unwrap();
        assert!(!c2.is_working_day(NaiveDate::from_ymd_opt(2027, 1, 1).unwrap()));
        // A corrected holiday (same first day) replaces the one there.
        let mut fix = extra.clone();
        fix.holidays[0].to = NaiveDate::from_ymd_opt(2027, 1, 3).unwrap();
        fix.filing_deadlines = vec![NaiveDate::from_ymd_opt(2027, 3, 16).unwrap()];
        let c3 = c2.extended(&fix).unwrap();
        assert!(!c3.is_working_day(NaiveDate::from_ymd_opt(2027, 1, 3).unwrap()));
        assert_eq!(c3.spec().holidays.iter().filter(|h| h.from.year() == 2027).count(), 1);
        assert_eq!(c3.filing_deadline_in(2027, 3), NaiveDate::from_ymd_opt(2027, 3, 16));
        assert_eq!(c2.filing_deadline_in(2027, 3), NaiveDate::from_ymd_opt(2027, 3, 15));
    }

    #[test]
    fn bad_specs_name_the_field_and_empty_calendars_do_not_hang() {
        let mut spec = cn().spec().clone();
        spec.time_zone = "Mars/Olympus".into();
        assert!(matches!(Calendar::from_spec(spec), Err(CalendarError::Invalid { field, .. }) if field == "time_zone"));
        let mut spec = cn().spec().clone();
        spec.weekly.insert("mon".into(), vec!["18:00-09:00".into()]);
        assert!(
            matches!(Calendar::from_spec(spec), Err(CalendarError::Invalid { field, .. }) if field == "weekly.mon")
        );
        let mut spec = cn().spec().clone();
        spec.weekly.insert("funday".into(), vec![]);
        assert!(Calendar::from_spec(spec).is_err());
        let mut spec = cn().spec().clone();
        for d in DAY_NAMES {
            spec.weekly.insert(d.into(), vec![]);
        }
        spec.makeup_days.clear();
        spec.filing_deadlines.clear();
        let closed = Calendar::from_spec(spec).unwrap();
        assert_eq!(closed.add(at(2026, 1, 5, 9, 0), hours(1)), Err(CalendarError::NoWorkingTime));
        assert_eq!(closed.sub(at(2026, 1, 5, 9, 0), hours(1)), Err(CalendarError::NoWorkingTime));
    }

    #[test]
    fn always_open_has_no_gap_at_midnight() {
        let c = Calendar::always_open();
        let t = Utc.with_ymd_and_hms(2026, 3, 1, 23, 30, 0).unwrap();
        assert_eq!(c.add(t, hours(1)).unwrap(), t + hours(1));
        assert_eq!(c.business_between(t, t + hours(48)), hours(48));
    }

    fn instants() -> impl Strategy<Value = DateTime<Utc>> {
        // 2025-01-01 .. 2026-12-31, minute resolution.
        (0i64..(730 * 24 * 60))
            .prop_map(|m| Utc.with_ymd_and_hms(2024, 12, 31, 16, 0, 0).unwrap() + Duration::minutes(m))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn round_trip_business_between_add(start in instants(), mins in 0i64..(60 * 24 * 20)) {
            let c = cn();
            let d = Duration::minutes(mins);
            let due = c.add(start, d).unwrap();
            prop_assert_eq!(c.business_between(start, due), d);
            prop_assert!(due >= start);
        }

        #[test]
        fn due_is_never_inside_a_closed_period_unless_zero(start in instants(), mins in 1i64..(60 * 24 * 10)) {
            let c = cn();
            let due = c.add(start, Duration::minutes(mins)).unwrap();
            // The minute before the due time is business time.
            prop_assert_eq!(c.business_between(due - Duration::minutes(1), due), Duration::minutes(1));
        }

        #[test]
        fn sub_inverts_add_on_business_time(start in instants(), mins in 1i64..(60 * 24 * 10)) {
            let c = cn();
            let d = Duration::minutes(mins);
            let due = c.add(start, d).unwrap();
            let back = c.sub(due, d).unwrap();
            prop_assert_eq!(c.business_between(back, due), d);
            // Same position in business time as the start, at its earliest instant.
            prop_assert_eq!(c.business_between(back.min(start), back.max(start)), Duration::zero());
            prop_assert!(back <= start);
        }

        #[test]
        fn business_time_is_additive(a in instants(), x in 0i64..100_000, y in 0i64..100_000) {
            let c = cn();
            let b = a + Duration::minutes(x);
            let e = b + Duration::minutes(y);
            prop_assert_eq!(c.business_between(a, e), c.business_between(a, b) + c.business_between(b, e));
        }

        #[test]
        fn holidays_apply_to_the_local_date(h in 0u32..24) {
            // 1 Oct 2026 is a holiday in Shanghai: no instant of that local day is business time,
            // including the hours that are still 30 Sep in UTC.
            let c = cn();
            let t = at(2026, 10, 1, h, 0);
            prop_assert_eq!(c.business_between(t, t + Duration::minutes(59)), Duration::zero());
        }
    }
}
