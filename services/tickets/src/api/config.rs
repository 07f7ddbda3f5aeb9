//! SLA administration: business calendars, escalation rules, categories
//! and the audit trail of their changes (previews are in `preview`). Every change
//! names a reason, is audited with who made it, bumps the configuration
//! version (every replica reloads it) and recomputes the running targets it
//! affects.
use chrono::{Datelike, NaiveDate};
use kefu_kit::{
    Error,
    auth::Principal,
    error::Violations,
    etag, page,
    parse::{self, ts},
};
use kefu_proto::tickets::v1 as pb;
use kefu_sla::{Calendar, CalendarSpec, HolidaySpec, MakeupSpec, calendar::DAY_NAMES};
use sqlx::AnyConnection;

use super::TicketsApi;
use crate::{domain, sla, store};

const REASON_MAX: usize = 500;
const CALENDAR_NAME_MAX: usize = 200;
const HOLIDAY_NAME_MAX: usize = 100;
const LABEL_MAX: usize = 40;
const CHANGES_LIST: &str = "config_changes";

/// The reason a change must give (kept in the audit trail).
fn reason(v: &mut Violations, raw: &str) -> String {
    v.check(parse::required_line("reason", raw, REASON_MAX)).unwrap_or_default()
}

/// A change that replaces a whole resource names the version it replaces
/// (`etag`, `If-Match`), so that nobody's change is lost unseen.
fn require_etag(v: &mut Violations, raw: &str) {
    if raw.trim().is_empty() {
        v.add("etag", "is required (If-Match): read the resource first and send its etag");
    }
}

/// Appends an audit entry for a configuration change.
pub(super) async fn audit(
    conn: &mut AnyConnection,
    api: &TicketsApi,
    p: &Principal,
    action: &str,
    subject: &str,
    detail: String,
    reason: &str,
) -> Result<(), Error> {
    let mut ev = kefu_kit::audit::Event::by(p, action, subject);
    ev.detail = detail;
    ev.purpose = reason;
    kefu_kit::audit::append(conn, &api.engine.audit_keys, ev).await?;
    Ok(())
}

// ------------------------------------------------------------ calendars

pub(super) fn calendar_id(field: &str, raw: &str) -> Result<String, Error> {
    let id = raw.trim();
    if id.is_empty()
        || id.len() > 64
        || !id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        return Err(Error::invalid(field, "use 1–64 characters of a–z, 0–9, - and _"));
    }
    Ok(id.to_owned())
}

fn hm(v: &mut Violations, field: &str, raw: &str) -> Option<String> {
    let s = raw.trim();
    let b = s.as_bytes();
    let ok = b.len() == 5
        && b[2] == b':'
        && [0, 1, 3, 4].iter().all(|i| b[*i].is_ascii_digit())
        && s[..2]
            .parse::<u32>()
            .ok()
            .zip(s[3..].parse::<u32>().ok())
            .is_some_and(|(h, m)| (h < 24 && m < 60) || (h == 24 && m == 0));
    if ok {
        Some(s.to_owned())
    } else {
        v.add(field, format!("{:?} is not a time of day (HH:MM, 00:00–24:00)", s.chars().take(16).collect::<String>()));
        None
    }
}

fn weekday(v: &mut Violations, field: &str, raw: &str) -> Option<String> {
    let d = raw.trim().to_ascii_lowercase();
    if DAY_NAMES.contains(&d.as_str()) {
        Some(d)
    } else {
        v.add(field, format!("{:?} is not one of {}", raw.chars().take(16).collect::<String>(), DAY_NAMES.join(", ")));
        None
    }
}

/// Holidays, make-up days and filing deadlines of a request, checked.
fn dated_parts(
    v: &mut Violations,
    prefix: &str,
    holidays: &[pb::Holiday],
    makeup: &[pb::MakeupDay],
    filing: &[pb::FilingDeadline],
) -> (Vec<HolidaySpec>, Vec<MakeupSpec>, Vec<NaiveDate>) {
    let mut hs = Vec::new();
    for (i, h) in holidays.iter().enumerate() {
        let f = format!("{prefix}holidays[{i}]");
        let name = v.check(parse::required_line(&format!("{f}.name"), &h.name, HOLIDAY_NAME_MAX));
        let from = v.check(parse::date(&format!("{f}.first_day"), &h.first_day));
        let to = if h.last_day.trim().is_empty() {
            from
        } else {
            v.check(parse::date(&format!("{f}.last_day"), &h.last_day))
        };
        if let (Some(name), Some(from), Some(to)) = (name, from, to) {
            if to < from || (to - from).num_days() > 60 {
                v.add(format!("{f}.last_day"), "must be on or after first_day, within 60 days");
            } else {
                hs.push(HolidaySpec { name, from, to });
            }
        }
    }
    let mut ms = Vec::new();
    for (i, m) in makeup.iter().enumerate() {
        let f = format!("{prefix}makeup_days[{i}]");
        let date = v.check(parse::date(&format!("{f}.date"), &m.date));
        let works_as = if m.works_as.trim().is_empty() {
            Some("mon".to_owned())
        } else {
            weekday(v, &format!("{f}.works_as"), &m.works_as)
        };
        let name = v.check(parse::line(&format!("{f}.name"), &m.name, HOLIDAY_NAME_MAX));
        if let (Some(date), Some(works_as), Some(name)) = (date, works_as, name) {
            ms.push(MakeupSpec { date, works_as, name });
        }
    }
    let mut ds = Vec::new();
    for (i, d) in filing.iter().enumerate() {
        if let Some(date) = v.check(parse::date(&format!("{prefix}filing_deadlines[{i}].date"), &d.date)) {
            ds.push(date);
        }
    }
    (hs, ms, ds)
}

/// A calendar as a request gives it, checked field by field and then as a
/// whole (overlapping intervals, a make-up day on a holiday, …).
fn spec_from_pb(c: &pb::BusinessCalendar) -> Result<CalendarSpec, Error> {
    let mut v = Violations::new();
    let id = v.check(calendar_id("calendar.id", &c.id)).unwrap_or_default();
    let name = v.check(parse::line("calendar.name", &c.name, CALENDAR_NAME_MAX)).unwrap_or_default();
    let time_zone = v.check(parse::required_line("calendar.time_zone", &c.time_zone, 64)).unwrap_or_default();
    let mut weekly = std::collections::BTreeMap::new();
    for d in DAY_NAMES {
        weekly.insert(d.to_owned(), Vec::new());
    }
    let mut seen = Vec::new();
    let mut any_hours = false;
    for (i, day) in c.weekly.iter().enumerate() {
        let f = format!("calendar.weekly[{i}]");
        let Some(d) = weekday(&mut v, &format!("{f}.weekday"), &day.weekday) else { continue };
        if seen.contains(&d) {
            v.add(format!("{f}.weekday"), format!("{d} is listed twice"));
            continue;
        }
        seen.push(d.clone());
        if day.intervals.len() > 8 {
            v.add(format!("{f}.intervals"), "at most 8 intervals a day");
            continue;
        }
        let mut ranges = Vec::new();
        for (j, iv) in day.intervals.iter().enumerate() {
            let start = hm(&mut v, &format!("{f}.intervals[{j}].start"), &iv.start);
            let end = hm(&mut v, &format!("{f}.intervals[{j}].end"), &iv.end);
            if let (Some(a), Some(b)) = (start, end) {
                if a >= b {
                    v.add(format!("{f}.intervals[{j}]"), format!("{a}–{b} ends before it starts"));
                } else {
                    ranges.push(format!("{a}-{b}"));
                }
            }
        }
        any_hours |= !ranges.is_empty();
        weekly.insert(d, ranges);
    }
    if !any_hours {
        v.add("calendar.weekly", "give the working hours of at least one weekday");
    }
    let lead = match c.filing_lead_minutes {
        0 => None,
        m if m < 0 || m as u32 > kefu_sla::calendar::MAX_FILING_LEAD_MINUTES => {
            v.add(
                "calendar.filing_lead_minutes",
                format!("must be 0 (one business day) to {}", kefu_sla::calendar::MAX_FILING_LEAD_MINUTES),
            );
            None
        }
        m => Some(m as u32),
    };
    let (holidays, makeup_days, filing_deadlines) =
        dated_parts(&mut v, "calendar.", &c.holidays, &c.makeup_days, &c.filing_deadlines);
    v.finish()?;
    let spec = CalendarSpec {
        id,
        name,
        time_zone,
        weekly,
        holidays,
        makeup_days,
        filing_deadlines,
        filing_lead_minutes: lead,
    };
    Calendar::from_spec(spec.clone()).map_err(|e| match e {
        // `weekly.mon` as the request spells it: the day's place in `weekly`.
        kefu_sla::CalendarError::Invalid { field, message } if field.starts_with("weekly.") => {
            let day = field.trim_start_matches("weekly.");
            match c.weekly.iter().position(|d| d.weekday.trim().eq_ignore_ascii_case(day)) {
                Some(i) => Error::invalid(format!("calendar.weekly[{i}].intervals"), message),
                None => Error::invalid("calendar.weekly", message),
            }
        }
        other => calendar_error("calendar.", other),
    })?;
    Ok(spec)
}

fn calendar_error(prefix: &str, e: kefu_sla::CalendarError) -> Error {
    match e {
        kefu_sla::CalendarError::Invalid { field, message } => Error::invalid(format!("{prefix}{field}"), message),
        other => Error::invalid(format!("{prefix}weekly"), other.to_string()),
    }
}

fn calendar_pb(cal: &Calendar, row: &store::CalendarRow, now_ms: i64) -> pb::BusinessCalendar {
    let spec = cal.spec();
    let weekly = DAY_NAMES
        .iter()
        .map(|d| pb::WorkingDay {
            weekday: (*d).to_owned(),
            intervals: spec
                .weekly
                .get(*d)
                .map(|v| {
                    v.iter()
                        .filter_map(|r| r.split_once('-'))
                        .map(|(a, b)| pb::WorkingInterval { start: a.trim().to_owned(), end: b.trim().to_owned() })
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect();
    let today = cal.date_of(kefu_sla::target::to_dt(now_ms));
    let mut outlook = Vec::new();
    let (mut y, mut m) = (today.year(), today.month());
    for _ in 0..13 {
        if let Some((d, provisional)) = cal.filing_deadline_or_provisional(y, m) {
            outlook.push(pb::FilingDeadline { date: parse::format_date(d), provisional });
        }
        (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    }
    pb::BusinessCalendar {
        id: row.id.clone(),
        name: spec.name.clone(),
        time_zone: spec.time_zone.clone(),
        weekly,
        holidays: spec
            .holidays
            .iter()
            .map(|h| pb::Holiday {
                name: h.name.clone(),
                first_day: parse::format_date(h.from),
                last_day: parse::format_date(h.to),
            })
            .collect(),
        makeup_days: spec
            .makeup_days
            .iter()
            .map(|m| pb::MakeupDay {
                date: parse::format_date(m.date),
                works_as: m.works_as.clone(),
                name: m.name.clone(),
            })
            .collect(),
        filing_deadlines: spec
            .filing_deadlines
            .iter()
            .map(|d| pb::FilingDeadline { date: parse::format_date(*d), provisional: false })
            .collect(),
        filing_lead_minutes: spec.filing_lead_minutes.map_or(0, |m| m as i32),
        is_default: row.is_default == 1,
        holiday_years: cal.holiday_years(),
        filing_outlook: outlook,
        etag: etag::of(row.version),
        update_time: ts(row.updated_at),
        updated_by: row.updated_by.clone(),
    }
}

fn row_calendar(row: &store::CalendarRow) -> Result<Calendar, Error> {
    Calendar::from_json(&row.body).map_err(|e| Error::Internal(anyhow::anyhow!("stored calendar {}: {e}", row.id)))
}

pub(super) async fn list_calendars(api: &TicketsApi) -> Result<pb::ListCalendarsResponse, Error> {
    let mut conn = api.reads.acquire().await?;
    let now = api.engine.now();
    let calendars = store::calendars(&mut conn)
        .await?
        .iter()
        .map(|row| Ok(calendar_pb(&row_calendar(row)?, row, now)))
        .collect::<Result<_, Error>>()?;
    Ok(pb::ListCalendarsResponse { calendars })
}

/// A stored calendar by the id in request field `field` (empty: the default).
async fn require_calendar(conn: &mut AnyConnection, field: &str, raw_id: &str) -> Result<store::CalendarRow, Error> {
    let id = if raw_id.trim().is_empty() {
        store::default_calendar_id(conn).await?.ok_or_else(|| Error::NotFound("no calendar is stored".into()))?
    } else {
        calendar_id(field, raw_id)?
    };
    store::get_calendar(conn, &id).await?.ok_or_else(|| Error::NotFound(format!("calendar {id}")))
}

pub(super) async fn get_calendar(api: &TicketsApi, r: pb::GetCalendarRequest) -> Result<pb::BusinessCalendar, Error> {
    let mut conn = api.reads.acquire().await?;
    let row = require_calendar(&mut conn, "id", &r.id).await?;
    Ok(calendar_pb(&row_calendar(&row)?, &row, api.engine.now()))
}

/// What a change did to a calendar, for the audit trail.
fn calendar_diff(before: Option<&CalendarSpec>, after: &CalendarSpec) -> String {
    let Some(b) = before else {
        return format!(
            "created: {} holidays, {} make-up days, {} filing deadlines",
            after.holidays.len(),
            after.makeup_days.len(),
            after.filing_deadlines.len()
        );
    };
    let mut parts = Vec::new();
    if b.weekly != after.weekly {
        let days: Vec<String> = DAY_NAMES
            .iter()
            .filter(|d| b.weekly.get(**d) != after.weekly.get(**d))
            .map(|d| {
                let show = |w: &CalendarSpec| w.weekly.get(*d).map(|v| v.join(",")).unwrap_or_default();
                format!("{d} [{}] → [{}]", show(b), show(after))
            })
            .collect();
        parts.push(format!("working hours {}", days.join("; ")));
    }
    if b.time_zone != after.time_zone {
        parts.push(format!("time zone {} → {}", b.time_zone, after.time_zone));
    }
    if b.name != after.name {
        parts.push("name".to_owned());
    }
    let added = after.holidays.iter().filter(|h| !b.holidays.contains(h)).count();
    let removed = b.holidays.iter().filter(|h| !after.holidays.contains(h)).count();
    if added + removed > 0 {
        parts.push(format!("holidays +{added} −{removed}"));
    }
    let added = after.makeup_days.iter().filter(|m| !b.makeup_days.contains(m)).count();
    let removed = b.makeup_days.iter().filter(|m| !after.makeup_days.contains(m)).count();
    if added + removed > 0 {
        parts.push(format!("make-up days +{added} −{removed}"));
    }
    let added: Vec<String> =
        after.filing_deadlines.iter().filter(|d| !b.filing_deadlines.contains(d)).map(|d| d.to_string()).collect();
    let removed: Vec<String> =
        b.filing_deadlines.iter().filter(|d| !after.filing_deadlines.contains(d)).map(|d| d.to_string()).collect();
    if !added.is_empty() || !removed.is_empty() {
        let shown: Vec<&str> = added.iter().take(12).map(String::as_str).collect();
        let gone: Vec<&str> = removed.iter().take(12).map(String::as_str).collect();
        parts.push(format!("filing deadlines +[{}] −[{}]", shown.join(", "), gone.join(", ")));
    }
    if b.filing_lead_minutes != after.filing_lead_minutes {
        parts.push(format!("filing lead {:?} → {:?} minutes", b.filing_lead_minutes, after.filing_lead_minutes));
    }
    if parts.is_empty() { "no change".to_owned() } else { parts.join("; ") }
}

pub(super) async fn create_calendar(
    api: &TicketsApi,
    p: &Principal,
    r: pb::CreateCalendarRequest,
) -> Result<pb::BusinessCalendar, Error> {
    let c = r.calendar.ok_or_else(|| Error::invalid("calendar", "is required"))?;
    let mut v = Violations::new();
    let why = reason(&mut v, &r.reason);
    let spec = v.check(spec_from_pb(&c));
    v.finish()?;
    let Some(spec) = spec else { return Err(Error::invalid("calendar", "is not valid")) };
    let body = serde_json::to_string(&spec).map_err(|e| Error::Internal(e.into()))?;
    let mut tx = api.pool.begin().await?;
    let row = store::CalendarRow {
        id: spec.id.clone(),
        body: body.clone(),
        is_default: i64::from(c.is_default),
        version: 1,
        updated_at: store::now_wall_ms(),
        updated_by: p.subject.clone(),
    };
    if !store::insert_calendar(&mut tx, &row).await? {
        // A retry of the same create returns the calendar as it is.
        let existing = require_calendar(&mut tx, "calendar.id", &spec.id).await?;
        let same = serde_json::from_str::<CalendarSpec>(&existing.body).is_ok_and(|s| s == spec);
        if same {
            drop(tx);
            return Ok(calendar_pb(&row_calendar(&existing)?, &existing, api.engine.now()));
        }
        return Err(Error::AlreadyExists(format!("calendar {} exists; update it with its etag", spec.id)));
    }
    if c.is_default {
        store::make_default(&mut tx, &spec.id).await?;
    }
    audit(&mut tx, api, p, "sla.calendar.create", &spec.id, calendar_diff(None, &spec), &why).await?;
    store::bump_config_version(&mut tx).await?;
    let row = require_calendar(&mut tx, "calendar.id", &spec.id).await?;
    tx.commit().await?;
    api.engine.refresh_after_change().await;
    Ok(calendar_pb(&row_calendar(&row)?, &row, api.engine.now()))
}

/// Who changes something, as what action, and why.
struct ChangeNote<'a> {
    by: &'a Principal,
    action: &'a str,
    reason: &'a str,
}

/// Writes a calendar's new form at the next version, audits and reloads.
async fn save_calendar(
    api: &TicketsApi,
    note: ChangeNote<'_>,
    mut tx: sqlx::Transaction<'static, sqlx::Any>,
    before: store::CalendarRow,
    spec: CalendarSpec,
    make_default: bool,
) -> Result<pb::BusinessCalendar, Error> {
    let ChangeNote { by: p, action, reason: why } = note;
    let old: Option<CalendarSpec> = serde_json::from_str(&before.body).ok();
    let detail = calendar_diff(old.as_ref(), &spec);
    let row = store::CalendarRow {
        id: before.id.clone(),
        body: serde_json::to_string(&spec).map_err(|e| Error::Internal(e.into()))?,
        is_default: i64::from(make_default || before.is_default == 1),
        version: before.version + 1,
        updated_at: store::now_wall_ms(),
        updated_by: p.subject.clone(),
    };
    if !store::update_calendar(&mut tx, &row).await? {
        return Err(Error::Aborted(format!("calendar {} was changed by someone else; reload it and retry", row.id)));
    }
    if make_default && before.is_default != 1 {
        store::make_default(&mut tx, &row.id).await?;
    }
    audit(&mut tx, api, p, action, &row.id, detail, why).await?;
    store::bump_config_version(&mut tx).await?;
    tx.commit().await?;
    api.engine.refresh_after_change().await;
    Ok(calendar_pb(&row_calendar(&row)?, &row, api.engine.now()))
}

pub(super) async fn update_calendar(
    api: &TicketsApi,
    p: &Principal,
    r: pb::UpdateCalendarRequest,
) -> Result<pb::BusinessCalendar, Error> {
    let c = r.calendar.ok_or_else(|| Error::invalid("calendar", "is required"))?;
    let mut v = Violations::new();
    let why = reason(&mut v, &r.reason);
    require_etag(&mut v, &r.etag);
    let spec = v.check(spec_from_pb(&c));
    v.finish()?;
    let Some(spec) = spec else { return Err(Error::invalid("calendar", "is not valid")) };
    let mut tx = api.pool.begin().await?;
    let before = require_calendar(&mut tx, "calendar.id", &spec.id).await?;
    etag::check("calendar", &r.etag, before.version)?;
    if before.is_default == 1 && !c.is_default {
        return Err(Error::FailedPrecondition(format!(
            "calendar {} is the default; make another calendar the default instead",
            before.id
        )));
    }
    let note = ChangeNote { by: p, action: "sla.calendar.update", reason: &why };
    save_calendar(api, note, tx, before, spec, c.is_default).await
}

pub(super) async fn extend_calendar(
    api: &TicketsApi,
    p: &Principal,
    r: pb::ExtendCalendarRequest,
) -> Result<pb::BusinessCalendar, Error> {
    let mut v = Violations::new();
    let why = reason(&mut v, &r.reason);
    let (holidays, makeup_days, filing_deadlines) =
        dated_parts(&mut v, "", &r.holidays, &r.makeup_days, &r.filing_deadlines);
    if holidays.is_empty() && makeup_days.is_empty() && filing_deadlines.is_empty() && v.is_empty() {
        v.add("holidays", "give holidays, make-up days or filing deadlines to add");
    }
    v.finish()?;
    let mut tx = api.pool.begin().await?;
    let before = require_calendar(&mut tx, "calendar_id", &r.calendar_id).await?;
    etag::check("calendar", &r.etag, before.version)?;
    let cur = row_calendar(&before)?;
    let extra = CalendarSpec {
        id: before.id.clone(),
        name: String::new(),
        time_zone: cur.spec().time_zone.clone(),
        weekly: Default::default(),
        holidays,
        makeup_days,
        filing_deadlines,
        filing_lead_minutes: None,
    };
    // Errors name the request's own items, not their place in the merged calendar.
    let mut v = Violations::new();
    let dates_only = CalendarSpec { filing_deadlines: Vec::new(), ..extra.clone() };
    match cur.extended(&dates_only) {
        Ok(merged) => {
            for (i, d) in extra.filing_deadlines.iter().enumerate() {
                if !merged.is_working_day(*d) {
                    v.add(format!("filing_deadlines[{i}].date"), format!("{d} is not a working day in this calendar"));
                }
            }
        }
        Err(_) => {
            for (i, m) in extra.makeup_days.iter().enumerate() {
                if cur.is_holiday(m.date) || extra.holidays.iter().any(|h| h.from <= m.date && m.date <= h.to) {
                    v.add(format!("makeup_days[{i}].date"), format!("{} is also a holiday", m.date));
                } else if cur.is_working_day(m.date) && !cur.spec().makeup_days.iter().any(|x| x.date == m.date) {
                    v.add(format!("makeup_days[{i}].date"), format!("{} is a working day already", m.date));
                }
            }
        }
    }
    v.finish()?;
    let next = cur.extended(&extra).map_err(|e| calendar_error("", e))?;
    let note = ChangeNote { by: p, action: "sla.calendar.extend", reason: &why };
    save_calendar(api, note, tx, before, next.spec().clone(), false).await
}

pub(super) async fn delete_calendar(
    api: &TicketsApi,
    p: &Principal,
    r: pb::DeleteCalendarRequest,
) -> Result<pb::DeleteCalendarResponse, Error> {
    let mut v = Violations::new();
    let id = v.check(calendar_id("id", &r.id));
    let why = reason(&mut v, &r.reason);
    require_etag(&mut v, &r.etag);
    v.finish()?;
    let id = id.unwrap_or_default();
    let mut tx = api.pool.begin().await?;
    let row = require_calendar(&mut tx, "id", &id).await?;
    etag::check("calendar", &r.etag, row.version)?;
    // Held until the end: a policy naming it waits, then finds it gone.
    store::lock_calendar(&mut tx, &id).await?;
    if row.is_default == 1 {
        return Err(Error::FailedPrecondition(format!("calendar {id} is the default; make another the default first")));
    }
    let users: Vec<String> = store::policies(&mut tx)
        .await?
        .iter()
        .filter_map(|b| serde_json::from_str::<kefu_sla::Policy>(b).ok())
        .filter(|p| p.calendar_id == id)
        .map(|p| p.id)
        .collect();
    if !users.is_empty() {
        return Err(Error::FailedPrecondition(format!(
            "policies {} count in calendar {id}; move them to another calendar first",
            users.join(", ")
        )));
    }
    if !store::delete_calendar(&mut tx, &id, row.version).await? {
        return Err(Error::Aborted(format!("calendar {id} was changed by someone else; reload it and retry")));
    }
    audit(&mut tx, api, p, "sla.calendar.delete", &id, "deleted".into(), &why).await?;
    store::bump_config_version(&mut tx).await?;
    tx.commit().await?;
    api.engine.refresh_after_change().await;
    Ok(pb::DeleteCalendarResponse {})
}

// ------------------------------------------------------------ escalation rules

fn rules_pb(r: &sla::EscalationRules, version: i64) -> pb::EscalationRules {
    pb::EscalationRules {
        warning_notify: r.warning_notify.clone(),
        breach_notify: r.breach_notify.clone(),
        breach_raises_priority: r.breach_raises_priority,
        second_level_after_seconds: r.second_level_after_secs,
        second_level_notify: r.second_level_notify.clone(),
        etag: etag::of(version),
    }
}

async fn stored_rules(conn: &mut AnyConnection) -> Result<sla::EscalationRules, Error> {
    match store::get_setting(conn, "escalation").await? {
        Some(json) => {
            serde_json::from_str(&json).map_err(|e| Error::Internal(anyhow::anyhow!("stored escalation rules: {e}")))
        }
        None => Ok(sla::EscalationRules::default()),
    }
}

pub(super) async fn get_rules(api: &TicketsApi) -> Result<pb::EscalationRules, Error> {
    let mut conn = api.reads.acquire().await?;
    let rules = stored_rules(&mut conn).await?;
    let version = store::counter(&mut conn, "escalation").await?;
    Ok(rules_pb(&rules, version))
}

pub(super) async fn update_rules(
    api: &TicketsApi,
    p: &Principal,
    r: pb::UpdateEscalationRulesRequest,
) -> Result<pb::EscalationRules, Error> {
    let given = r.rules.ok_or_else(|| Error::invalid("rules", "is required"))?;
    let mut v = Violations::new();
    let why = reason(&mut v, &r.reason);
    require_etag(&mut v, &r.etag);
    let rules = sla::EscalationRules {
        warning_notify: given.warning_notify.trim().to_owned(),
        breach_notify: given.breach_notify.trim().to_owned(),
        breach_raises_priority: given.breach_raises_priority,
        second_level_after_secs: given.second_level_after_seconds,
        second_level_notify: given.second_level_notify.trim().to_owned(),
    };
    for (field, message) in rules.validate() {
        v.add(format!("rules.{field}"), message);
    }
    v.finish()?;
    let mut tx = api.pool.begin().await?;
    let version = store::counter(&mut tx, "escalation").await?;
    etag::check("escalation rules", &r.etag, version)?;
    let before = stored_rules(&mut tx).await?;
    let json = serde_json::to_string(&rules).map_err(|e| Error::Internal(e.into()))?;
    store::put_setting(&mut tx, "escalation", &json).await?;
    let version = store::bump_counter(&mut tx, "escalation").await?;
    let detail = format!("{} → {}", serde_json::to_string(&before).unwrap_or_default(), json);
    audit(&mut tx, api, p, "sla.escalation.update", "sla:escalation", detail, &why).await?;
    tx.commit().await?;
    api.engine.refresh_after_change().await;
    Ok(rules_pb(&rules, version))
}

// ------------------------------------------------------------ categories

fn category_pb(c: &store::CategoryRow) -> pb::Category {
    pb::Category { code: c.code.clone(), label: c.label.clone(), active: c.active == 1 }
}

pub(super) async fn list_categories(
    api: &TicketsApi,
    r: pb::ListCategoriesRequest,
) -> Result<pb::ListCategoriesResponse, Error> {
    let mut conn = api.reads.acquire().await?;
    let list = store::categories(&mut conn, r.include_retired).await?;
    let version = store::counter(&mut conn, "categories").await?;
    Ok(pb::ListCategoriesResponse { categories: list.iter().map(category_pb).collect(), etag: etag::of(version) })
}

pub(super) async fn set_categories(
    api: &TicketsApi,
    p: &Principal,
    r: pb::SetCategoriesRequest,
) -> Result<pb::ListCategoriesResponse, Error> {
    let mut v = Violations::new();
    let why = reason(&mut v, &r.reason);
    require_etag(&mut v, &r.etag);
    let codes: Vec<String> = r.categories.iter().map(|c| c.code.clone()).collect();
    v.check(domain::category_list(&codes));
    let given: Vec<(String, String)> = r.categories.iter().map(|c| (c.code.clone(), c.label.clone())).collect();
    // `other` is always kept (with its label, or 其他).
    let list = kefu_kit::taxonomy::checked_list(&mut v, &given, LABEL_MAX, ("other", "其他"));
    v.finish()?;
    let mut tx = api.pool.begin().await?;
    let version = store::counter(&mut tx, "categories").await?;
    etag::check("categories", &r.etag, version)?;
    let before = store::categories(&mut tx, false).await?;
    store::replace_categories(&mut tx, &list).await?;
    store::bump_counter(&mut tx, "categories").await?;
    let added: Vec<&str> =
        list.iter().filter(|(c, _)| !before.iter().any(|b| b.code == *c)).map(|(c, _)| c.as_str()).collect();
    let retired: Vec<&str> =
        before.iter().filter(|b| !list.iter().any(|(c, _)| *c == b.code)).map(|b| b.code.as_str()).collect();
    let detail = format!("added [{}]; retired [{}]; {} active", added.join(", "), retired.join(", "), list.len());
    audit(&mut tx, api, p, "sla.categories.set", "sla:categories", detail, &why).await?;
    let after = store::categories(&mut tx, false).await?;
    let version = store::counter(&mut tx, "categories").await?;
    tx.commit().await?;
    Ok(pb::ListCategoriesResponse { categories: after.iter().map(category_pb).collect(), etag: etag::of(version) })
}

// ------------------------------------------------------------ changes

pub(super) async fn list_changes(
    api: &TicketsApi,
    r: pb::ListConfigChangesRequest,
) -> Result<pb::ListConfigChangesResponse, Error> {
    let mut v = Violations::new();
    let size = v.check(parse::page_size("page_size", r.page_size, 50, 200)).unwrap_or(50);
    let after = v.check(page::after(CHANGES_LIST, &r.page_token)).flatten();
    let subject = v.check(parse::line("subject", &r.subject, 64)).unwrap_or_default();
    v.finish()?;
    let after_seq = match after {
        Some(s) => {
            s.parse::<i64>().map_err(|_| Error::invalid("page_token", "is not a page token returned by this list"))?
        }
        None => 0,
    };
    let mut conn = api.reads.acquire().await?;
    let rows = kefu_kit::audit::list(&mut conn, (!subject.is_empty()).then_some(subject.as_str()), after_seq, size + 1)
        .await?;
    let (rows, more) = page::split(rows, size);
    let next_page_token = page::next(CHANGES_LIST, &rows, more, |e| e.seq.to_string());
    Ok(pb::ListConfigChangesResponse {
        changes: rows
            .into_iter()
            .map(|e| pb::ConfigChange {
                seq: e.seq,
                time: ts(e.at),
                actor: e.actor,
                actor_role: e.actor_role,
                action: e.action,
                subject: e.subject,
                detail: e.detail,
                reason: e.purpose,
            })
            .collect(),
        next_page_token,
    })
}
