//! By when: the due and warning instants a ticket (or a plain duration)
//! would get from a start, and why — the holidays, rest days and make-up
//! days crossed and whether the filing deadline decided it — in a Chinese
//! sentence an agent can read out.
use chrono::{Datelike, NaiveDate, TimeZone};
use kefu_kit::{
    Error,
    error::Violations,
    parse::{self, ts},
};
use kefu_proto::tickets::v1 as pb;
use kefu_sla::{Calendar, ClockKind, DayNote, Facts, Metric, MetricRule, Target, TargetKey, policy};

use super::{TicketsApi, config::calendar_id};
use crate::domain;

/// How far from now a preview may start (two years).
const PREVIEW_SPAN_MS: i64 = 2 * 366 * 24 * 3600 * 1000;
/// Days a preview explains at most.
const CROSSED_MAX: usize = 60;

const WEEKDAYS_ZH: [&str; 7] = ["周一", "周二", "周三", "周四", "周五", "周六", "周日"];

fn zh_date(d: NaiveDate) -> String {
    format!("{}月{}日", d.month(), d.day())
}

fn zh_duration(secs: i64, clock: ClockKind, cal: &Calendar) -> String {
    let day = cal.business_day().num_seconds().max(1);
    let unit = if clock == ClockKind::Business { "工作" } else { "" };
    if clock == ClockKind::Business && secs % day == 0 && secs >= day {
        return format!("{} 个工作日", secs / day);
    }
    if secs % 3600 == 0 {
        format!("{} {}小时", secs / 3600, unit)
    } else if secs % 60 == 0 {
        format!("{} {}分钟", secs / 60, unit)
    } else {
        format!("{secs} {}秒", unit)
    }
}

/// The crossed days as one Chinese sentence: holidays by name and range,
/// how many rest days, which make-up days were worked.
fn zh_crossed(notes: &[DayNote]) -> String {
    let mut holidays: Vec<(String, NaiveDate, NaiveDate)> = Vec::new();
    let mut rest = 0;
    let mut makeup = Vec::new();
    for n in notes {
        match n {
            DayNote::Holiday(d, name) => match holidays.last_mut() {
                Some((last_name, _, to)) if last_name == name && to.succ_opt() == Some(*d) => *to = *d,
                _ => holidays.push((name.clone(), *d, *d)),
            },
            DayNote::RestDay(_) => rest += 1,
            DayNote::MakeupDay(d, name, _) => {
                makeup.push(if name.is_empty() { zh_date(*d) } else { format!("{}（{name}）", zh_date(*d)) });
            }
        }
    }
    let mut parts = Vec::new();
    for (name, from, to) in holidays {
        let days = (to - from).num_days() + 1;
        let name = if name.is_empty() { "节假日".to_owned() } else { name };
        if from == to {
            parts.push(format!("{name} {}", zh_date(from)));
        } else {
            parts.push(format!("{name} {}至{}（{days} 天）", zh_date(from), zh_date(to)));
        }
    }
    if rest > 0 {
        parts.push(format!("休息日 {rest} 天"));
    }
    let mut out = if parts.is_empty() { String::new() } else { format!("跳过{}", parts.join("、")) };
    if !makeup.is_empty() {
        if !out.is_empty() {
            out.push('；');
        }
        out.push_str(&format!("调休上班 {}", makeup.join("、")));
    }
    out
}

pub(super) async fn preview(api: &TicketsApi, r: pb::PreviewDueDateRequest) -> Result<pb::DueDatePreview, Error> {
    let mut v = Violations::new();
    let start = v.check(parse::opt_timestamp("start_time", r.start_time.as_ref())).flatten();
    let period = r.filing_period.trim().to_owned();
    if !period.is_empty() {
        v.check(domain::filing_period_end(&period));
    }
    if r.duration_seconds < 0 || r.duration_seconds > 366 * 24 * 3600 {
        v.add("duration_seconds", "must be between 0 and a year");
    }
    let cfg = api.engine.config();
    let now = api.engine.now();
    let start = start.unwrap_or(now);
    if (start - now).abs() > PREVIEW_SPAN_MS {
        v.add("start_time", "must be within two years of now");
    }
    let (rule, policy_id, calendar_id) = if r.duration_seconds > 0 {
        let clock = match r.clock.as_str() {
            "" | "business" => ClockKind::Business,
            "calendar" => ClockKind::Calendar,
            other => {
                v.add("clock", format!("{:?} is not business or calendar", other.chars().take(16).collect::<String>()));
                ClockKind::Business
            }
        };
        let calendar_id = if r.calendar_id.trim().is_empty() {
            cfg.default_calendar.clone()
        } else {
            match v.check(calendar_id("calendar_id", &r.calendar_id)) {
                Some(id) if cfg.calendars.contains_key(&id) => id,
                Some(id) => {
                    v.add("calendar_id", format!("no calendar {id}"));
                    id
                }
                None => String::new(),
            }
        };
        let metric_name = if r.metric.trim().is_empty() { "resolution" } else { r.metric.trim() };
        let metric = Metric::parse(metric_name).unwrap_or_else(|| {
            v.add("metric", format!("{:?} is not a metric", metric_name.chars().take(32).collect::<String>()));
            Metric::Resolution
        });
        let rule = MetricRule {
            metric,
            duration_secs: r.duration_seconds,
            clock,
            warn_percent: 80,
            rings: None,
            seconds_per_ring: None,
        };
        v.finish()?;
        (rule, String::new(), calendar_id)
    } else {
        let kind = v.check(parse::enumeration::<pb::TicketKind>("kind", r.kind, Some(pb::TicketKind::Consultation)));
        let channel = v.check(parse::enumeration::<kefu_proto::common::v1::Channel>(
            "channel",
            r.channel,
            Some(kefu_proto::common::v1::Channel::Email),
        ));
        let priority = v.check(parse::enumeration::<pb::Priority>("priority", r.priority, Some(pb::Priority::Normal)));
        let category = v.check(parse::line("category", &r.category, 40)).unwrap_or_default();
        let category = if category.is_empty() { "other".to_owned() } else { category };
        let tier = v.check(parse::line("tier", &r.tier, 32)).unwrap_or_default();
        let tier = if tier.is_empty() { "standard".to_owned() } else { tier };
        if !r.calendar_id.trim().is_empty() {
            v.add("calendar_id", "only with duration_seconds: a policy counts in its own calendar");
        }
        let default_metric = if kind == Some(pb::TicketKind::Feedback) { "feedback_reply" } else { "resolution" };
        let metric_name = if r.metric.trim().is_empty() { default_metric } else { r.metric.trim() };
        let metric = Metric::parse(metric_name);
        if metric.is_none() {
            v.add("metric", format!("{:?} is not a metric", metric_name.chars().take(32).collect::<String>()));
        }
        v.finish()?;
        let (Some(kind), Some(channel), Some(priority), Some(metric)) = (kind, channel, priority, metric) else {
            return Err(Error::invalid("kind", "is not valid"));
        };
        let kind_name = domain::kind_name(i64::from(kind as i32));
        let facts = Facts {
            record_kind: kind_name,
            channel: domain::channel_name(i64::from(channel as i32)),
            category: &category,
            priority: domain::priority_name(i64::from(priority as i32)),
            tier: &tier,
            source: "",
        };
        let policy = policy::first_match(&cfg.policies, &facts)
            .ok_or_else(|| Error::FailedPrecondition("no SLA policy matches; add a catch-all policy".into()))?;
        let rule = policy.rule(metric).cloned().ok_or_else(|| {
            Error::FailedPrecondition(format!("policy {} has no {} target", policy.id, metric.as_str()))
        })?;
        (rule, policy.id.clone(), cfg.calendar_id_of(policy))
    };
    let cal = cfg.calendar(&calendar_id);
    let cap = if rule.metric == Metric::Resolution { cfg.filing_cap(&calendar_id, &period)? } else { None };
    let key = TargetKey { record_id: "preview".into(), metric: rule.metric, cycle: 1 };
    let cal_err = |e: kefu_sla::CalendarError| Error::FailedPrecondition(format!("calendar {calendar_id}: {e}"));
    let uncapped = Target::start(key.clone(), &rule, start, None, &cal).map_err(cal_err)?;
    let target = Target::start(key, &rule, start, cap.as_ref().map(|c| c.cap_ms), &cal).map_err(cal_err)?;
    let due = target.due_at.unwrap_or(start);
    let capped = cap.is_some() && target.due_at != uncapped.due_at;
    let crossed = if rule.clock == ClockKind::Business {
        cal.crossed(kefu_sla::target::to_dt(start), kefu_sla::target::to_dt(due), CROSSED_MAX)
    } else {
        Vec::new()
    };
    let tz = cal.time_zone();
    // What a person reads out: the date with its weekday, in the zone's name.
    let zone = if tz == chrono_tz::Asia::Shanghai { "北京时间".to_owned() } else { tz.name().to_owned() };
    let local = |ms: i64| {
        tz.timestamp_millis_opt(ms)
            .single()
            .map(|t| {
                let wd = WEEKDAYS_ZH[t.weekday().num_days_from_monday() as usize];
                format!("{}年{}月{}日（{wd}）{}", t.year(), t.month(), t.day(), t.format("%H:%M"))
            })
            .unwrap_or_default()
    };
    let mut explanation = if capped {
        let policy_due = uncapped.due_at.unwrap_or(due);
        format!(
            "自{zone} {} 起计 {}，本应于 {} 办结；",
            local(start),
            zh_duration(rule.duration_secs, rule.clock, &cal),
            local(policy_due)
        )
    } else {
        format!(
            "自{zone} {} 起计 {}，于 {} 办结",
            local(start),
            zh_duration(rule.duration_secs, rule.clock, &cal),
            local(due)
        )
    };
    if let Some(c) = &cap {
        let lead = zh_duration(cal.filing_lead().num_minutes() * 60, ClockKind::Business, &cal);
        let provisional = if c.provisional { "（暂定：官方征期尚未载入）" } else { "" };
        if capped && due <= start {
            explanation.push_str(&format!(
                "申报截止日为 {}{provisional}，须在截止日前 {lead}办结，该时间已过：请立即办理",
                c.deadline
            ));
        } else if capped {
            explanation.push_str(&format!(
                "因申报截止日为 {}{provisional}，须在截止日前 {lead}办结，即 {} 前",
                c.deadline,
                local(due)
            ));
        } else {
            explanation.push_str(&format!("；申报截止日 {}{provisional}，不影响办结时间", c.deadline));
        }
    }
    let crossed_text = zh_crossed(&crossed);
    if !crossed_text.is_empty() {
        explanation.push_str(&format!("；{crossed_text}"));
    }
    // Years the due date reaches whose statutory holidays are not loaded.
    let loaded = cal.holiday_years();
    let (from_year, to_year) =
        (cal.date_of(kefu_sla::target::to_dt(start)).year(), cal.date_of(kefu_sla::target::to_dt(due)).year());
    let missing: Vec<String> = (from_year..=to_year).filter(|y| !loaded.contains(y)).map(|y| y.to_string()).collect();
    if !missing.is_empty() {
        explanation.push_str(&format!("；注意：{} 年的法定节假日尚未载入，按平常工作日计算", missing.join("、")));
    }
    explanation.push('。');
    Ok(pb::DueDatePreview {
        start_time: ts(start),
        due_time: ts(due),
        warning_time: parse::ts_opt(target.warn_at),
        policy_id,
        calendar_id,
        metric: rule.metric.as_str().to_owned(),
        duration_seconds: rule.duration_secs,
        clock: if rule.clock == ClockKind::Business { "business" } else { "calendar" }.to_owned(),
        cap_time: parse::ts_opt(cap.as_ref().map(|c| c.cap_ms)),
        filing_deadline: cap.as_ref().map(|c| c.deadline.clone()).unwrap_or_default(),
        filing_deadline_provisional: cap.as_ref().is_some_and(|c| c.provisional),
        capped_by_filing: capped,
        crossed: crossed
            .iter()
            .map(|n| match n {
                DayNote::Holiday(d, name) => {
                    pb::CrossedDay { date: parse::format_date(*d), kind: "holiday".into(), name: name.clone() }
                }
                DayNote::RestDay(d) => pb::CrossedDay {
                    date: parse::format_date(*d),
                    kind: "rest_day".into(),
                    name: WEEKDAYS_ZH[d.weekday().num_days_from_monday() as usize].into(),
                },
                DayNote::MakeupDay(d, name, _) => {
                    pb::CrossedDay { date: parse::format_date(*d), kind: "makeup_day".into(), name: name.clone() }
                }
            })
            .collect(),
        explanation,
    })
}
