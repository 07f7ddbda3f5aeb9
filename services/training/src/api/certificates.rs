//! Staff certificates, what is due (expiry, continuing-education pace), and
//! one person's training figures for the performance service.
use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use kefu_kit::{Error, auth::Principal, error::Violations, parse};
use kefu_proto::training::v1::{self as pb, EnrolmentState as E, ReminderKind};

use super::{READS_ALL, TrainingApi, staff_for};
use crate::{
    domain::{self, HalfHours},
    store::{self, CertificateRow},
};

fn dates(c: &CertificateRow) -> (Option<NaiveDate>, Option<NaiveDate>) {
    let parse = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
    (parse(&c.issue_date), c.expiry_date.as_deref().and_then(parse))
}

fn certificate_pb(c: &CertificateRow, today: NaiveDate) -> pb::Certificate {
    let (_, expiry) = dates(c);
    pb::Certificate {
        id: c.id.clone(),
        staff_id: c.staff_id.clone(),
        name: c.name.clone(),
        kind: c.kind as i32,
        number: c.number.clone(),
        issuer: c.issuer.clone(),
        issue_date: c.issue_date.clone(),
        expiry_date: c.expiry_date.clone().unwrap_or_default(),
        annual_ce_hours: HalfHours(c.ce_x2).hours(),
        expired: domain::expired(expiry, today),
        recorded_by: c.recorded_by.clone(),
    }
}

pub(super) async fn record(
    api: &TrainingApi,
    p: &Principal,
    token: Option<&str>,
    r: pb::RecordCertificateRequest,
) -> Result<pb::Certificate, Error> {
    let c = r.certificate.unwrap_or_default();
    let today = api.today();
    let mut v = Violations::new();
    let staff = v.check(parse::required_line("certificate.staff_id", &c.staff_id, 64));
    let name = v.check(parse::required_line("certificate.name", &c.name, 64));
    let kind = v.check(parse::enumeration::<pb::CertificateKind>("certificate.kind", c.kind, None));
    let number = v.check(parse::required_line("certificate.number", &c.number, 64));
    let issuer = v.check(parse::required_line("certificate.issuer", &c.issuer, 200));
    let issue = v.check(parse::date("certificate.issue_date", &c.issue_date));
    let expiry = if c.expiry_date.trim().is_empty() {
        None
    } else {
        v.check(parse::date("certificate.expiry_date", &c.expiry_date))
    };
    let ce = v.check(HalfHours::parse("certificate.annual_ce_hours", c.annual_ce_hours, 0.0, 500.0));
    if let Some(issue) = issue
        && let Err(bad) = domain::certificate_dates(issue, expiry, today)
    {
        for (field, why) in bad {
            v.add(field, why);
        }
    }
    v.finish()?;
    let (Some(staff), Some(name), Some(kind), Some(number), Some(issuer), Some(issue), Some(ce)) =
        (staff, name, kind, number, issuer, issue, ce)
    else {
        return Err(Error::invalid("certificate", "is not valid"));
    };
    api.peers
        .directory
        .check(token, &[("certificate.staff_id", &staff, kefu_kit::directory::Accept::KnownPerson)])
        .await?;
    let row = CertificateRow {
        id: uuid::Uuid::now_v7().to_string(),
        staff_id: staff,
        name,
        kind: i64::from(kind as i32),
        number,
        issuer,
        issue_date: parse::format_date(issue),
        expiry_date: expiry.map(parse::format_date),
        ce_x2: ce.0,
        recorded_by: p.subject.clone(),
        recorded_at: api.now(),
    };
    let mut tx = api.pool.begin().await?;
    if !store::insert_certificate(&mut tx, &row).await? {
        let existing = store::certificate_by_number(&mut tx, &row.name, &row.number)
            .await?
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("certificate {} is taken but missing", row.number)))?;
        // The same certificate again (a retry) is the certificate; another under its number is refused.
        let same = (&existing.staff_id, existing.kind, &existing.issuer, &existing.issue_date)
            == (&row.staff_id, row.kind, &row.issuer, &row.issue_date)
            && (&existing.expiry_date, existing.ce_x2) == (&row.expiry_date, row.ce_x2);
        if !same {
            return Err(Error::AlreadyExists(format!(
                "{} {} is recorded already (for {})",
                existing.name, existing.number, existing.staff_id
            )));
        }
        return Ok(certificate_pb(&existing, today));
    }
    tx.commit().await?;
    Ok(certificate_pb(&row, today))
}

pub(super) async fn list(
    api: &TrainingApi,
    p: &Principal,
    r: pb::ListCertificatesRequest,
) -> Result<pb::ListCertificatesResponse, Error> {
    let mut conn = api.reads.acquire().await?;
    let staff = if r.staff_id.trim().is_empty() && p.has_any(READS_ALL) {
        None
    } else {
        Some(staff_for(p, "staff_id", &r.staff_id, READS_ALL)?)
    };
    let today = api.today();
    let rows = store::certificates(&mut conn, staff.as_deref()).await?;
    Ok(pb::ListCertificatesResponse { certificates: rows.iter().map(|c| certificate_pb(c, today)).collect() })
}

/// Hours of training completed per person in `[from, to)`.
async fn hours_by_staff(
    conn: &mut sqlx::AnyConnection,
    staff: Option<&str>,
    from: i64,
    to: i64,
) -> Result<BTreeMap<String, HalfHours>, Error> {
    let mut out: BTreeMap<String, HalfHours> = BTreeMap::new();
    for (who, _, halves, _) in store::completions(conn, staff, from, to, i64::from(E::Completed as i32)).await? {
        out.entry(who).or_default().0 += halves;
    }
    Ok(out)
}

pub(super) async fn due(
    api: &TrainingApi,
    p: &Principal,
    r: pb::ListDueRemindersRequest,
) -> Result<pb::ListDueRemindersResponse, Error> {
    let within = if r.within_days == 0 { 60 } else { r.within_days };
    if !(1..=365).contains(&within) {
        return Err(Error::invalid("within_days", "must be 1 to 365 days (0: 60)"));
    }
    let staff = if r.staff_id.trim().is_empty() && p.has_any(READS_ALL) {
        None
    } else {
        Some(staff_for(p, "staff_id", &r.staff_id, READS_ALL)?)
    };
    let today = api.today();
    let mut conn = api.reads.acquire().await?;
    let certs = store::certificates(&mut conn, staff.as_deref()).await?;
    let mut out = Vec::new();
    // The largest yearly requirement among each person's valid certificates.
    let mut required: BTreeMap<String, &CertificateRow> = BTreeMap::new();
    // A certificate renewed (the same name held by the person until a later
    // date, or for good) is not due.
    let renewed = |c: &CertificateRow, e: NaiveDate| {
        certs
            .iter()
            .any(|o| o.id != c.id && o.staff_id == c.staff_id && o.name == c.name && dates(o).1.is_none_or(|oe| oe > e))
    };
    for c in &certs {
        let (_, expiry) = dates(c);
        if let Some(e) = expiry
            && !renewed(c, e)
        {
            let days = domain::days_between(today, e);
            if days <= within {
                let expired = days < 0;
                out.push(pb::DueReminder {
                    kind: if expired { ReminderKind::CertificateExpired } else { ReminderKind::CertificateExpiring }
                        as i32,
                    staff_id: c.staff_id.clone(),
                    certificate_id: c.id.clone(),
                    certificate_name: c.name.clone(),
                    due_date: parse::format_date(e),
                    days_left: days,
                    summary: if expired {
                        format!("{}证书已于 {} 过期 {} 天", c.name, e, -days)
                    } else {
                        format!("{}证书将于 {} 到期，剩 {} 天", c.name, e, days)
                    },
                    ..Default::default()
                });
            }
        }
        if c.ce_x2 > 0 && !domain::expired(expiry, today) {
            let slot = required.entry(c.staff_id.clone()).or_insert(c);
            if c.ce_x2 > slot.ce_x2 {
                *slot = c;
            }
        }
    }
    if !required.is_empty() {
        let year_start = NaiveDate::from_ymd_opt(today.year(), 1, 1).unwrap_or(today);
        let year_end = NaiveDate::from_ymd_opt(today.year(), 12, 31).unwrap_or(today);
        let earned =
            hours_by_staff(&mut conn, staff.as_deref(), api.start_of(year_start), api.start_of(year_end) + 86_400_000)
                .await?;
        for (who, c) in required {
            let have = earned.get(&who).copied().unwrap_or_default();
            let since = dates(c).0.unwrap_or(year_start);
            let (expected, behind) = domain::ce_pace(HalfHours(c.ce_x2), have, since, today);
            if behind {
                out.push(pb::DueReminder {
                    kind: ReminderKind::CeHoursBehind as i32,
                    staff_id: who,
                    certificate_id: c.id.clone(),
                    certificate_name: c.name.clone(),
                    due_date: parse::format_date(year_end),
                    days_left: domain::days_between(today, year_end),
                    hours_required: HalfHours(c.ce_x2).hours(),
                    hours_earned: have.hours(),
                    hours_expected: expected,
                    summary: format!(
                        "{} 年继续教育已完成 {} 学时，按进度应达 {:.1} 学时（{}要求全年 {} 学时）",
                        today.year(),
                        have.hours(),
                        expected,
                        c.name,
                        HalfHours(c.ce_x2).hours()
                    ),
                });
            }
        }
    }
    out.sort_by(|a, b| a.days_left.cmp(&b.days_left).then_with(|| a.staff_id.cmp(&b.staff_id)));
    Ok(pb::ListDueRemindersResponse { reminders: out })
}

pub(super) async fn staff_stats(
    api: &TrainingApi,
    r: pb::GetStaffTrainingStatsRequest,
) -> Result<pb::StaffTrainingStats, Error> {
    let mut v = Violations::new();
    let staff = v.check(parse::required_line("staff_id", &r.staff_id, 64));
    let from = v.check(parse::date("from_date", &r.from_date));
    let to = v.check(parse::date("to_date", &r.to_date));
    if let (Some(f), Some(t)) = (from, to) {
        if t < f {
            v.add("to_date", "is before from_date");
        } else if (t - f).num_days() > 366 {
            v.add("to_date", "a period is at most a year");
        }
    }
    v.finish()?;
    let (Some(staff), Some(from), Some(to)) = (staff, from, to) else {
        return Err(Error::invalid("staff_id", "is required"));
    };
    let (start, end) = (api.start_of(from), api.start_of(to) + 86_400_000);
    let mut conn = api.reads.acquire().await?;
    let done = store::completions(&mut conn, Some(&staff), start, end, i64::from(E::Completed as i32)).await?;
    let hours = HalfHours(done.iter().map(|(_, _, h, _)| h).sum());
    let mut courses: Vec<&str> = done.iter().map(|(_, c, _, _)| c.as_str()).collect();
    courses.sort_unstable();
    courses.dedup();
    let absent = store::absences(&mut conn, &staff, start, end, i64::from(E::Absent as i32)).await?;
    let (mut held, mut expired) = (0, 0);
    for c in store::certificates(&mut conn, Some(&staff)).await? {
        let (issue, expiry) = dates(&c);
        if issue.is_some_and(|i| i > to) {
            continue;
        }
        if domain::expired(expiry, to) {
            expired += 1;
        } else {
            held += 1;
        }
    }
    let finished = [i64::from(pb::AttemptState::Scored as i32), i64::from(pb::AttemptState::Expired as i32)];
    let exams = store::finished_attempts(&mut conn, &staff, start, end, &finished).await?;
    let average_exam_score = if exams.is_empty() {
        0.0
    } else {
        exams.iter().map(|a| domain::percent(a.points_awarded, a.points_total)).sum::<f64>() / exams.len() as f64
    };
    Ok(pb::StaffTrainingStats {
        exams_taken: i32::try_from(exams.len()).unwrap_or(i32::MAX),
        average_exam_score,
        staff_id: staff,
        from_date: parse::format_date(from),
        to_date: parse::format_date(to),
        hours: hours.hours(),
        courses_completed: i32::try_from(courses.len()).unwrap_or(i32::MAX),
        sessions_absent: i32::try_from(absent).unwrap_or(i32::MAX),
        certificates_held: held,
        certificates_expired: expired,
    })
}
