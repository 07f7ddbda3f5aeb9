//! Monitoring (ISO 10002's last step): what complaints are about, where
//! they come from, how fast they are handled, and what they cost; and each
//! staff member's figures for the performance service.
use std::collections::BTreeMap;

use chrono::{NaiveDate, TimeZone};
use kefu_kit::{Error, error::Violations, parse};
use kefu_proto::{
    ProtoEnum,
    common::v1::Channel,
    complaints::v1::{self as pb, ComplaintState as S},
};

use super::ComplaintsApi;
use crate::{domain, store};

/// The longest period one request covers (about five years).
const MAX_DAYS: i64 = 5 * 366;

/// `[from, to)` in Unix ms for the inclusive local dates.
fn period(api: &ComplaintsApi, from: &str, to: &str) -> Result<(i64, i64), Error> {
    let mut v = Violations::new();
    let f = v.check(parse::date("from_date", from));
    let t = v.check(parse::date("to_date", to));
    if let (Some(f), Some(t)) = (f, t) {
        if t < f {
            v.add("to_date", "is before from_date");
        } else if (t - f).num_days() > MAX_DAYS {
            v.add("to_date", "the period is longer than five years");
        }
    }
    v.finish()?;
    let (Some(f), Some(t)) = (f, t) else { return Err(Error::invalid("from_date", "is required")) };
    let start = |d: NaiveDate| {
        api.zone
            .from_local_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default())
            .earliest()
            .map(|x| x.timestamp_millis())
            .unwrap_or(0)
    };
    Ok((start(f), start(t.succ_opt().unwrap_or(t))))
}

fn counts(map: BTreeMap<String, (String, i64)>) -> Vec<pb::Count> {
    let mut v: Vec<pb::Count> = map.into_iter().map(|(key, (label, count))| pb::Count { key, label, count }).collect();
    v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
    v
}

fn bump(map: &mut BTreeMap<String, (String, i64)>, key: &str, label: &str) {
    if key.is_empty() {
        return;
    }
    map.entry(key.to_owned()).or_insert_with(|| (label.to_owned(), 0)).1 += 1;
}

fn root_cause_label(r: pb::RootCause) -> &'static str {
    match r {
        pb::RootCause::Person => "人员",
        pb::RootCause::Process => "流程",
        pb::RootCause::System => "系统",
        pb::RootCause::Policy => "制度",
        pb::RootCause::External => "外部",
        pb::RootCause::Unspecified => "",
    }
}

fn channel_label(c: Channel) -> &'static str {
    match c {
        Channel::Phone => "电话",
        Channel::Wechat => "微信",
        Channel::Email => "电子邮件",
        Channel::Sms => "短信",
        Channel::OnlineChat => "在线咨询",
        Channel::InPerson => "当面",
        Channel::Letter => "信函",
        Channel::Unspecified => "",
    }
}

fn severity_label(s: pb::Severity) -> &'static str {
    match s {
        pb::Severity::Low => "低",
        pb::Severity::Medium => "中",
        pb::Severity::High => "高",
        pb::Severity::Critical => "严重",
        pb::Severity::Unspecified => "",
    }
}

fn source_label(s: pb::ComplaintSource) -> &'static str {
    match s {
        pb::ComplaintSource::Customer => "客户直接投诉",
        pb::ComplaintSource::RegulatorReferral => "监管部门转办",
        pb::ComplaintSource::HotlineReferral => "热线转办",
        pb::ComplaintSource::TicketEscalation => "工单升级",
        pb::ComplaintSource::Unspecified => "未指定",
    }
}

/// Median and 90th percentile (nearest rank) of durations in ms, in hours.
fn durations(mut ms: Vec<i64>) -> pb::Durations {
    if ms.is_empty() {
        return pb::Durations::default();
    }
    ms.sort_unstable();
    let rank = |q: f64| {
        let i = ((q * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1;
        ms[i] as f64 / 3_600_000.0
    };
    pb::Durations { count: ms.len() as i64, median_hours: rank(0.5), p90_hours: rank(0.9) }
}

pub(super) async fn complaint_stats(
    api: &ComplaintsApi,
    r: pb::GetComplaintStatsRequest,
) -> Result<pb::ComplaintStats, Error> {
    let (from, to) = period(api, &r.from_date, &r.to_date)?;
    let mut conn = api.reads.acquire().await?;
    let rows = store::received_between(&mut conn, from, to).await?;
    let mut out = pb::ComplaintStats { received: rows.len() as i64, ..Default::default() };
    let (mut by_cat, mut by_root, mut by_dept, mut by_staff, mut by_channel, mut by_sev) =
        (BTreeMap::new(), BTreeMap::new(), BTreeMap::new(), BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    let mut by_source = BTreeMap::new();
    let now = api.now();
    let (mut with_finding, mut upheld, mut repeats, mut rated, mut rating_sum) = (0i64, 0i64, 0i64, 0i64, 0i64);
    for c in &rows {
        bump(&mut by_cat, &c.category, &c.category_label);
        let root = pb::RootCause::try_from(c.root_cause as i32).unwrap_or(pb::RootCause::Unspecified);
        if root != pb::RootCause::Unspecified {
            bump(&mut by_root, root.name(), root_cause_label(root));
        }
        bump(&mut by_dept, &c.responsible_department, "");
        // The staff member complained about, else the one the finding holds responsible.
        let staff = if c.subject_kind == i64::from(pb::SubjectKind::Staff as i32) && !c.subject.is_empty() {
            c.subject.as_str()
        } else {
            c.responsible_staff.as_str()
        };
        bump(&mut by_staff, staff, "");
        let channel = Channel::try_from(c.channel as i32).unwrap_or(Channel::Unspecified);
        bump(&mut by_channel, channel.name(), channel_label(channel));
        let sev = pb::Severity::try_from(c.severity as i32).unwrap_or(pb::Severity::Unspecified);
        bump(&mut by_sev, sev.name(), severity_label(sev));
        let source = pb::ComplaintSource::try_from(c.source as i32).unwrap_or(pb::ComplaintSource::Unspecified);
        bump(&mut by_source, source.name(), source_label(source));
        if let Some(due) = c.referral_due_at {
            match c.decision_at {
                Some(d) if d <= due => out.referrals_answered_in_time += 1,
                _ if now > due => out.referrals_overdue += 1,
                _ => {}
            }
        }
        if let Some(u) = c.upheld {
            with_finding += 1;
            upheld += u;
        }
        repeats += i64::from(!c.repeat_of.is_empty());
        out.compensation_paid_fen += c.compensation_paid_fen;
        out.open += i64::from(domain::is_open(S::try_from(c.state as i32).unwrap_or(S::Unspecified)));
        out.anonymous += c.anonymous;
        if c.satisfaction > 0 {
            rated += 1;
            rating_sum += c.satisfaction;
        }
    }
    let received_at: std::collections::HashMap<&str, i64> =
        rows.iter().map(|c| (c.id.as_str(), c.received_at)).collect();
    let time_to = |entered: std::collections::HashMap<String, i64>| {
        durations(entered.iter().filter_map(|(id, at)| received_at.get(id.as_str()).map(|r| (at - r).max(0))).collect())
    };
    // An opinion given at once acknowledges the complaint too.
    let (ack, opinion, closed) = (S::Acknowledged as i64, S::PreliminaryOpinionGiven as i64, S::Closed as i64);
    out.to_acknowledgement = Some(time_to(store::first_entered(&mut conn, (ack, opinion), from, to).await?));
    out.to_preliminary_opinion = Some(time_to(store::first_entered(&mut conn, (opinion, opinion), from, to).await?));
    out.to_closure = Some(time_to(store::first_entered(&mut conn, (closed, closed), from, to).await?));
    out.by_category = counts(by_cat);
    out.by_root_cause = counts(by_root);
    out.by_department = counts(by_dept);
    out.by_staff = counts(by_staff);
    out.by_channel = counts(by_channel);
    out.by_severity = counts(by_sev);
    out.by_source = counts(by_source);
    out.upheld_rate = if with_finding > 0 { upheld as f64 / with_finding as f64 } else { 0.0 };
    out.repeat_rate = if out.received > 0 { repeats as f64 / out.received as f64 } else { 0.0 };
    out.ratings = rated;
    out.average_satisfaction = if rated > 0 { rating_sum as f64 / rated as f64 } else { 0.0 };
    let today =
        api.zone.timestamp_millis_opt(api.now()).single().map(|t| t.format("%Y-%m-%d").to_string()).unwrap_or_default();
    out.corrective_actions_overdue = store::overdue_actions(&mut conn, &today).await?;
    Ok(out)
}

pub(super) async fn staff_stats(
    api: &ComplaintsApi,
    r: pb::GetStaffComplaintStatsRequest,
) -> Result<pb::StaffComplaintStats, Error> {
    let staff = parse::required_line("staff", &r.staff, 64)?;
    let (from, to) = period(api, &r.from_date, &r.to_date)?;
    let mut conn = api.reads.acquire().await?;
    let (received, upheld, about_attitude) = store::staff_counts(&mut conn, &staff, from, to).await?;
    Ok(pb::StaffComplaintStats { staff, received, upheld, about_attitude })
}
