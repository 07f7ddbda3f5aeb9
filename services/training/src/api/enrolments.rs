//! Enrolment: self or assigned, approval, the waitlist in order, withdrawal
//! handing the seat on, attendance once within the check-in window.
//! Every change to one session's enrolments queues on the session's row.
use chrono::TimeZone;
use kefu_kit::{
    Error,
    auth::Principal,
    error::Violations,
    parse::{self, ts, ts_opt},
};
use kefu_proto::training::v1::{self as pb, EnrolmentState as E, SessionState};

use super::{MANAGES, READS_ALL, TrainingApi, sessions::state_of};
use crate::{
    domain::{self, HalfHours},
    store::{self, EnrolmentRow, SessionRow},
};

fn state(e: &EnrolmentRow) -> E {
    E::try_from(e.state as i32).unwrap_or(E::Unspecified)
}

fn code(s: E) -> i64 {
    i64::from(s as i32)
}

/// The enrolment as answered, with its place on the waitlist.
async fn enrolment_pb(conn: &mut sqlx::AnyConnection, e: &EnrolmentRow) -> Result<pb::Enrolment, Error> {
    let roster =
        if state(e) == E::Waitlisted { store::enrolments_of_session(conn, &e.session_id).await? } else { Vec::new() };
    Ok(enrolment_in(e, &roster))
}

/// The enrolment as answered, its waitlist place read from its session's
/// roster (in enrolment order).
fn enrolment_in(e: &EnrolmentRow, roster: &[EnrolmentRow]) -> pb::Enrolment {
    let waitlist_position = if state(e) == E::Waitlisted {
        let waiting = roster.iter().filter(|x| state(x) == E::Waitlisted);
        waiting.take_while(|x| x.id != e.id).count() + 1
    } else {
        0
    };
    pb::Enrolment {
        id: e.id.clone(),
        session_id: e.session_id.clone(),
        staff_id: e.staff_id.clone(),
        state: e.state as i32,
        assigned_by: e.assigned_by.clone(),
        approved_by: e.approved_by.clone(),
        waitlist_position: i32::try_from(waitlist_position).unwrap_or(i32::MAX),
        enrol_time: ts(e.enrolled_at),
        check_in_time: ts_opt(e.check_in_at),
        complete_time: ts_opt(e.complete_at),
        hours_credited: HalfHours(e.hours_x2).hours(),
    }
}

/// Seats taken in a session now.
async fn seated(conn: &mut sqlx::AnyConnection, session_id: &str) -> Result<i64, Error> {
    let seated: Vec<i64> = domain::SEATED.iter().map(|e| code(*e)).collect();
    Ok(store::seat_counts(conn, session_id, &seated, code(E::Waitlisted)).await?.0)
}

/// A seat if one is free, else a place on the waitlist; refused when both
/// are full.
async fn place(tx: &mut sqlx::AnyConnection, s: &SessionRow) -> Result<E, Error> {
    let seated: Vec<i64> = domain::SEATED.iter().map(|e| code(*e)).collect();
    let (taken, waiting) = store::seat_counts(tx, &s.id, &seated, code(E::Waitlisted)).await?;
    let next = domain::seat_or_wait(taken, s.capacity);
    if next == E::Waitlisted && waiting >= s.waitlist_capacity {
        return Err(Error::FailedPrecondition(format!(
            "the session is full: all {} seats are taken and {} of {} waitlist places",
            s.capacity, waiting, s.waitlist_capacity
        )));
    }
    Ok(next)
}

/// What a change needs of its session's time.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Until {
    /// Enrolment, approval, withdrawal: before the session starts.
    Start,
    /// Attendance: until it ends.
    End,
}

/// The session, taken for a change, that still takes it.
async fn open_session(tx: &mut sqlx::AnyConnection, id: &str, now: i64, until: Until) -> Result<SessionRow, Error> {
    let s = store::lock_session(tx, id).await?.ok_or_else(|| Error::NotFound(format!("session {id}")))?;
    match state_of(&s) {
        SessionState::Scheduled if until == Until::Start && now >= s.start_at => Err(Error::FailedPrecondition(
            "the session has started: enrolments no longer change (attendance is checked in)".into(),
        )),
        SessionState::Scheduled if now <= s.end_at => Ok(s),
        SessionState::Scheduled => Err(Error::FailedPrecondition("the session is over".into())),
        SessionState::Cancelled => Err(Error::FailedPrecondition("the session was cancelled".into())),
        _ => Err(Error::FailedPrecondition("the session is completed".into())),
    }
}

/// Gives free seats to the first on the waitlist, in order.
async fn fill_seats(tx: &mut sqlx::AnyConnection, s: &SessionRow) -> Result<(), Error> {
    let mut free = s.capacity - seated(tx, &s.id).await?;
    for mut e in store::enrolments_of_session(tx, &s.id).await? {
        if free <= 0 {
            break;
        }
        if state(&e) == E::Waitlisted {
            e.state = code(E::Enrolled);
            store::save_enrolment(tx, &e).await?;
            free -= 1;
        }
    }
    Ok(())
}

pub(super) async fn enrol(
    api: &TrainingApi,
    p: &Principal,
    token: Option<&str>,
    r: pb::EnrolRequest,
) -> Result<pb::Enrolment, Error> {
    let mut v = Violations::new();
    let session_id = v.check(parse::id("session_id", &r.session_id)).unwrap_or_default();
    let staff = v.check(parse::line("staff_id", &r.staff_id, 64)).unwrap_or_default();
    v.finish()?;
    let staff = if staff.is_empty() { p.subject.clone() } else { staff };
    let assigned = staff != p.subject;
    if assigned && !p.has_any(MANAGES) {
        return Err(Error::PermissionDenied(
            "staff_id: agents enrol themselves; supervisors and HR assign others".into(),
        ));
    }
    if assigned {
        api.peers.directory.check(token, &[("staff_id", &staff, kefu_kit::directory::Accept::Person)]).await?;
    }
    let now = api.now();
    let mut tx = api.pool.begin().await?;
    let s = open_session(&mut tx, &session_id, now, Until::Start).await?;
    if s.trainer == staff {
        return Err(Error::invalid("staff_id", "the session's trainer does not enrol in it"));
    }
    let existing = store::enrolment_of(&mut tx, &s.id, &staff).await?;
    if let Some(e) = &existing
        && !matches!(state(e), E::Withdrawn | E::Cancelled)
    {
        // Enrolled already: a retry answers with the enrolment.
        let out = enrolment_pb(&mut tx, e).await?;
        tx.commit().await?;
        return Ok(out);
    }
    let course = store::course(&mut tx, &s.course_id)
        .await?
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("course {} of session {} is missing", s.course_id, s.id)))?;
    let first =
        if course.requires_approval == 1 && !assigned { E::PendingApproval } else { place(&mut tx, &s).await? };
    let row = EnrolmentRow {
        id: existing.as_ref().map_or_else(|| uuid::Uuid::now_v7().to_string(), |e| e.id.clone()),
        session_id: s.id.clone(),
        staff_id: staff,
        state: code(first),
        assigned_by: if assigned { p.subject.clone() } else { String::new() },
        approved_by: String::new(),
        // Enrolling again goes to the back of the waitlist.
        enrolled_at: now,
        check_in_at: None,
        complete_at: None,
        hours_x2: 0,
    };
    if existing.is_some() {
        store::save_enrolment(&mut tx, &row).await?;
    } else {
        store::insert_enrolment(&mut tx, &row).await?;
    }
    let out = enrolment_pb(&mut tx, &row).await?;
    tx.commit().await?;
    Ok(out)
}

/// An enrolment and its session, taken for a change by a caller `may`
/// make it (others: not found, whatever the session's state).
async fn taken(
    tx: &mut sqlx::AnyConnection,
    id: &str,
    now: i64,
    until: Until,
    may: impl Fn(&EnrolmentRow, &SessionRow) -> bool,
) -> Result<(EnrolmentRow, SessionRow), Error> {
    let e = store::enrolment(tx, id).await?.ok_or_else(|| Error::NotFound(format!("enrolment {id}")))?;
    let seen = store::session(tx, &e.session_id).await?.ok_or_else(|| Error::NotFound(format!("enrolment {id}")))?;
    if !may(&e, &seen) {
        return Err(Error::NotFound(format!("enrolment {id}")));
    }
    let s = open_session(tx, &e.session_id, now, until).await?;
    // Read again under the session's row: the state it had may have moved.
    let e = store::enrolment(tx, id).await?.ok_or_else(|| Error::NotFound(format!("enrolment {id}")))?;
    Ok((e, s))
}

pub(super) async fn approve(
    api: &TrainingApi,
    p: &Principal,
    r: pb::ApproveEnrolmentRequest,
) -> Result<pb::Enrolment, Error> {
    let id = parse::id("id", &r.id)?;
    let now = api.now();
    let mut tx = api.pool.begin().await?;
    let (mut e, s) = taken(&mut tx, &id, now, Until::Start, |_, _| true).await?;
    if e.staff_id == p.subject {
        return Err(Error::PermissionDenied("nobody approves their own enrolment".into()));
    }
    domain::require_state(state(&e), &[E::PendingApproval], "approval")?;
    e.state = code(place(&mut tx, &s).await?);
    e.approved_by = p.subject.clone();
    // Approved now: a place on the waitlist is behind those already waiting.
    e.enrolled_at = now;
    store::save_enrolment(&mut tx, &e).await?;
    let out = enrolment_pb(&mut tx, &e).await?;
    tx.commit().await?;
    Ok(out)
}

pub(super) async fn withdraw(
    api: &TrainingApi,
    p: &Principal,
    r: pb::WithdrawEnrolmentRequest,
) -> Result<pb::Enrolment, Error> {
    let id = parse::id("id", &r.id)?;
    let mut tx = api.pool.begin().await?;
    let (mut e, s) =
        taken(&mut tx, &id, api.now(), Until::Start, |e, _| e.staff_id == p.subject || p.has_any(MANAGES)).await?;
    domain::require_state(state(&e), &domain::WITHDRAWABLE, "withdrawal")?;
    e.state = code(E::Withdrawn);
    store::save_enrolment(&mut tx, &e).await?;
    // The seat goes to the first on the waitlist.
    fill_seats(&mut tx, &s).await?;
    let out = enrolment_pb(&mut tx, &e).await?;
    tx.commit().await?;
    Ok(out)
}

pub(super) async fn check_in(api: &TrainingApi, p: &Principal, r: pb::CheckInRequest) -> Result<pb::Enrolment, Error> {
    let id = parse::id("id", &r.id)?;
    let now = api.now();
    let mut tx = api.pool.begin().await?;
    let (mut e, s) = taken(&mut tx, &id, now, Until::End, |e, s| {
        e.staff_id == p.subject || s.trainer == p.subject || p.has_any(MANAGES)
    })
    .await?;
    if let Some(at) = e.check_in_at {
        let when = chrono_tz::Asia::Shanghai
            .timestamp_millis_opt(at)
            .single()
            .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default();
        return Err(Error::FailedPrecondition(format!("already checked in at {when} (Beijing time)")));
    }
    domain::require_state(state(&e), &[E::Enrolled], "check-in")?;
    if !domain::check_in_open(s.start_at, s.end_at, now) {
        return Err(Error::FailedPrecondition(
            "check-in opens 30 minutes before the session starts and closes when it ends".into(),
        ));
    }
    e.state = code(E::Attended);
    e.check_in_at = Some(now);
    store::save_enrolment(&mut tx, &e).await?;
    let out = enrolment_pb(&mut tx, &e).await?;
    tx.commit().await?;
    Ok(out)
}

pub(super) async fn list(
    api: &TrainingApi,
    p: &Principal,
    r: pb::ListEnrolmentsRequest,
) -> Result<pb::ListEnrolmentsResponse, Error> {
    let mut v = Violations::new();
    let session_id = v.check(parse::opt_id("session_id", &r.session_id)).flatten();
    let staff = v.check(parse::line("staff_id", &r.staff_id, 64)).unwrap_or_default();
    if session_id.is_some() && !staff.is_empty() {
        v.add("session_id", "give a session or a staff member, not both");
    }
    v.finish()?;
    let mut conn = api.reads.acquire().await?;
    let enrolments = match session_id {
        Some(id) => {
            let s = store::session(&mut conn, &id).await?.ok_or_else(|| Error::NotFound(format!("session {id}")))?;
            let all = store::enrolments_of_session(&mut conn, &s.id).await?;
            let sees_all = p.has_any(READS_ALL) || s.trainer == p.subject;
            all.iter().filter(|e| sees_all || e.staff_id == p.subject).map(|e| enrolment_in(e, &all)).collect()
        }
        None => {
            let staff = super::staff_for(p, "staff_id", &staff, READS_ALL)?;
            let rows = store::enrolments_of_staff(&mut conn, &staff).await?;
            let mut out = Vec::with_capacity(rows.len());
            for e in &rows {
                out.push(enrolment_pb(&mut conn, e).await?);
            }
            out
        }
    };
    Ok(pb::ListEnrolmentsResponse { enrolments })
}
