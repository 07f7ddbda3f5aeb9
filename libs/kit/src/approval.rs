//! Four eyes: a sensitive change (a bank account, an erasure, a disclosure
//! to a third party, a role grant) is proposed by one person and approved
//! by another, and every step is in the audit trail.
//!
//! A service keeps its approvals in the kit's table `kit_approvals` in its
//! own database. What an approval carries is the service's business: a
//! `summary` people read (never a sensitive value in the clear) and an
//! opaque `payload` (sealed by the service when it is sensitive). Two kinds
//! of use:
//! - a **change** is applied by the approver, in the transaction that marks
//!   the approval approved ([`approve`]), so "approved" means "done";
//! - a **grant** (a disclosure) is released to the person who asked, once,
//!   within [`GRANT_VALID_MS`] of its approval ([`use_grant`]).
//!
//! The rules, whatever the service: nobody approves their own proposal; a
//! proposal not decided within [`PENDING_MS`] expires; at most one pending
//! proposal per `kind` and `key`; only the proposer withdraws; each state
//! change is a conditional update, so two approvers racing decide once.
use sqlx::{AnyConnection, Row};

use crate::{Error, audit, auth::Principal};

/// How long a proposal waits for a decision: three days.
pub const PENDING_MS: i64 = 3 * 24 * 3600 * 1000;
/// How long an approved grant may be used: one day after its approval.
pub const GRANT_VALID_MS: i64 = 24 * 3600 * 1000;

/// The kit's table, created with the other kit tables in every database.
pub(crate) const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS kit_approvals (\
    id             TEXT PRIMARY KEY,\
    kind           TEXT NOT NULL,\
    dedupe_key     TEXT NOT NULL,\
    subject        TEXT NOT NULL,\
    summary        TEXT NOT NULL,\
    payload        TEXT NOT NULL,\
    reason         TEXT NOT NULL,\
    requested_by   TEXT NOT NULL,\
    requested_role TEXT NOT NULL,\
    requested_at   BIGINT NOT NULL,\
    expires_at     BIGINT NOT NULL,\
    state          TEXT NOT NULL,\
    decided_by     TEXT NOT NULL,\
    decided_role   TEXT NOT NULL,\
    decided_at     BIGINT,\
    note           TEXT NOT NULL,\
    used_at        BIGINT)",
    "CREATE UNIQUE INDEX IF NOT EXISTS kit_approvals_one_pending ON kit_approvals (kind, dedupe_key) \
     WHERE state = 'pending'",
    "CREATE INDEX IF NOT EXISTS kit_approvals_subject ON kit_approvals (subject, id)",
];

/// Where an approval is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Waiting for a second person.
    Pending,
    /// Approved: a change is applied; a grant may be used.
    Approved,
    Rejected,
    /// Withdrawn by the person who proposed it (or closed by an erasure).
    Withdrawn,
    /// Not decided in time, or a grant not used in time.
    Expired,
    /// A grant that was used.
    Used,
}

impl State {
    pub const ALL: [State; 6] =
        [State::Pending, State::Approved, State::Rejected, State::Withdrawn, State::Expired, State::Used];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Approved => "approved",
            State::Rejected => "rejected",
            State::Withdrawn => "withdrawn",
            State::Expired => "expired",
            State::Used => "used",
        }
    }

    fn parse(s: &str) -> Result<Self, Error> {
        State::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("stored approval state {s:?} is unknown")))
    }
}

/// An approval as stored, with its state as of the time it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    pub id: String,
    pub kind: String,
    pub subject: String,
    pub summary: String,
    pub payload: String,
    pub reason: String,
    pub requested_by: String,
    pub requested_role: String,
    pub requested_at: i64,
    pub expires_at: i64,
    pub state: State,
    pub decided_by: String,
    pub decided_role: String,
    pub decided_at: Option<i64>,
    pub note: String,
    pub used_at: Option<i64>,
}

impl Approval {
    /// The state at `now`: a pending proposal past its time, or an approved
    /// grant not used within [`GRANT_VALID_MS`], has expired.
    fn at(mut self, now: i64, grant: bool) -> Self {
        let grant_lapsed = grant && self.decided_at.is_some_and(|d| d + GRANT_VALID_MS <= now);
        if (self.state == State::Pending && self.expires_at <= now) || (self.state == State::Approved && grant_lapsed) {
            self.state = State::Expired;
        }
        self
    }
}

/// What a proposal asks for.
#[derive(Debug, Clone)]
pub struct Proposal<'a> {
    /// e.g. `customer.bank_account`, `customer.erasure`, `account.roles`.
    pub kind: &'a str,
    /// At most one pending proposal per kind and key (e.g. the customer, or
    /// the customer and the recipient).
    pub key: &'a str,
    /// What the audit entries are about: a customer id, an account id.
    pub subject: &'a str,
    /// What a person reads to decide; no sensitive value in the clear.
    pub summary: String,
    /// What the service needs to apply it; sealed when sensitive.
    pub payload: String,
    /// Why; required.
    pub reason: &'a str,
    /// A grant is used later by the proposer; a change is applied on approval.
    pub grant: bool,
}

const COLUMNS: &str = "id, kind, subject, summary, payload, reason, requested_by, requested_role, requested_at, \
                       expires_at, state, decided_by, decided_role, decided_at, note, used_at";

fn from_row(r: &sqlx::any::AnyRow) -> Result<Approval, Error> {
    let state: String = r.try_get(10)?;
    Ok(Approval {
        id: r.try_get(0)?,
        kind: r.try_get(1)?,
        subject: r.try_get(2)?,
        summary: r.try_get(3)?,
        payload: r.try_get(4)?,
        reason: r.try_get(5)?,
        requested_by: r.try_get(6)?,
        requested_role: r.try_get(7)?,
        requested_at: r.try_get(8)?,
        expires_at: r.try_get(9)?,
        state: State::parse(&state)?,
        decided_by: r.try_get(11)?,
        decided_role: r.try_get(12)?,
        decided_at: r.try_get(13)?,
        note: r.try_get(14)?,
        used_at: r.try_get(15)?,
    })
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

async fn record(
    conn: &mut AnyConnection,
    keys: &audit::AuditKeys,
    p: &Principal,
    action: &str,
    a: &Approval,
    why: &str,
) -> Result<(), Error> {
    let detail = format!("approval={} kind={} {}", a.id, a.kind, a.summary);
    let ev = audit::Event { detail, purpose: why, ..audit::Event::by(p, action, &a.subject) };
    audit::append(conn, keys, ev).await.map(drop)
}

/// Reads one approval (its state as of now). `grant` says whether the
/// service uses this kind as a grant.
pub async fn get(conn: &mut AnyConnection, id: &str, grant: impl Fn(&str) -> bool) -> Result<Approval, Error> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM kit_approvals WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| Error::NotFound(format!("approval {id}")))?;
    let a = from_row(&row)?;
    let is_grant = grant(&a.kind);
    Ok(a.at(now_ms(), is_grant))
}

/// Records a proposal by `p` inside the caller's transaction (audited as
/// `approval.propose`). A retry with the same `request_id` answers with the
/// same proposal; a second pending proposal of the same kind and key is
/// refused, naming the first.
pub async fn propose(
    conn: &mut AnyConnection,
    keys: &audit::AuditKeys,
    p: &Principal,
    proposal: Proposal<'_>,
    request_id: Option<(&str, &str)>,
) -> Result<Approval, Error> {
    let id = uuid::Uuid::now_v7().to_string();
    let grant = proposal.grant;
    if let Some((request_id, fingerprint)) = request_id
        && let crate::db::Claim::Existing(existing) =
            crate::db::claim_request_id(conn, "kit.approval", request_id, &id, fingerprint).await?
    {
        return get(conn, &existing, |_| grant).await;
    }
    let now = now_ms();
    // A pending proposal past its time no longer blocks a new one.
    sqlx::query(
        "UPDATE kit_approvals SET state = 'expired' \
         WHERE kind = $1 AND dedupe_key = $2 AND state = 'pending' AND expires_at <= $3",
    )
    .bind(proposal.kind)
    .bind(proposal.key)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    let pending: Option<(String, String)> = sqlx::query_as(
        "SELECT id, requested_by FROM kit_approvals WHERE kind = $1 AND dedupe_key = $2 AND state = 'pending'",
    )
    .bind(proposal.kind)
    .bind(proposal.key)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some((other, by)) = pending {
        return Err(Error::FailedPrecondition(format!(
            "approval {other} (proposed by {by}) for the same change is still pending: have it decided or withdrawn first"
        )));
    }
    let a = Approval {
        id,
        kind: proposal.kind.to_owned(),
        subject: proposal.subject.to_owned(),
        summary: proposal.summary,
        payload: proposal.payload,
        reason: proposal.reason.to_owned(),
        requested_by: p.subject.clone(),
        requested_role: p.primary_role().to_owned(),
        requested_at: now,
        expires_at: now + PENDING_MS,
        state: State::Pending,
        decided_by: String::new(),
        decided_role: String::new(),
        decided_at: None,
        note: String::new(),
        used_at: None,
    };
    let inserted = sqlx::query(
        "INSERT INTO kit_approvals (id, kind, dedupe_key, subject, summary, payload, reason, requested_by, \
         requested_role, requested_at, expires_at, state, decided_by, decided_role, decided_at, note, used_at) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,'pending','','',NULL,'',NULL)",
    )
    .bind(&a.id)
    .bind(&a.kind)
    .bind(proposal.key)
    .bind(&a.subject)
    .bind(&a.summary)
    .bind(&a.payload)
    .bind(&a.reason)
    .bind(&a.requested_by)
    .bind(&a.requested_role)
    .bind(a.requested_at)
    .bind(a.expires_at)
    .execute(&mut *conn)
    .await;
    match inserted {
        Ok(_) => {}
        // A concurrent proposal of the same change won the race.
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            return Err(Error::FailedPrecondition(
                "another proposal for the same change is pending: have it decided or withdrawn first".into(),
            ));
        }
        Err(e) => return Err(e.into()),
    }
    record(conn, keys, p, "approval.propose", &a, &a.reason).await?;
    Ok(a)
}

/// Why a decision on `a` by `p` is refused, if it is.
fn refuse_decision(a: &Approval, p: &Principal) -> Result<(), Error> {
    match a.state {
        State::Pending => {}
        State::Expired => {
            return Err(Error::FailedPrecondition(format!(
                "approval {} expired undecided; propose the change again",
                a.id
            )));
        }
        other => {
            return Err(Error::FailedPrecondition(format!("approval {} is already {}", a.id, other.as_str())));
        }
    }
    if a.requested_by == p.subject {
        return Err(Error::PermissionDenied(format!(
            "approval {} was proposed by you; another person must decide it (four eyes)",
            a.id
        )));
    }
    if p.is_api_key() || p.has_any(&[crate::auth::Role::Service]) {
        return Err(Error::PermissionDenied(
            "approvals are decided by people logged in as themselves, not by API keys or systems".into(),
        ));
    }
    Ok(())
}

/// Marks `id` approved by `p` inside the caller's transaction, which then
/// applies the change (for a change) and commits; a rollback leaves it
/// pending. Refused to the proposer, and when it is no longer pending.
pub async fn approve(
    conn: &mut AnyConnection,
    keys: &audit::AuditKeys,
    p: &Principal,
    id: &str,
    note: &str,
    grant: impl Fn(&str) -> bool,
) -> Result<Approval, Error> {
    decide(conn, keys, p, id, note, State::Approved, grant).await
}

/// Marks `id` rejected by `p` (not the proposer), with a note saying why.
pub async fn reject(
    conn: &mut AnyConnection,
    keys: &audit::AuditKeys,
    p: &Principal,
    id: &str,
    note: &str,
    grant: impl Fn(&str) -> bool,
) -> Result<Approval, Error> {
    decide(conn, keys, p, id, note, State::Rejected, grant).await
}

async fn decide(
    conn: &mut AnyConnection,
    keys: &audit::AuditKeys,
    p: &Principal,
    id: &str,
    note: &str,
    to: State,
    grant: impl Fn(&str) -> bool,
) -> Result<Approval, Error> {
    let a = get(conn, id, &grant).await?;
    refuse_decision(&a, p)?;
    let now = now_ms();
    let n = sqlx::query(
        "UPDATE kit_approvals SET state = $1, decided_by = $2, decided_role = $3, decided_at = $4, note = $5 \
         WHERE id = $6 AND state = 'pending' AND expires_at > $4 AND requested_by <> $2",
    )
    .bind(to.as_str())
    .bind(&p.subject)
    .bind(p.primary_role())
    .bind(now)
    .bind(note)
    .bind(id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if n == 0 {
        // Decided by someone else a moment ago, or it just expired.
        let fresh = get(conn, id, &grant).await?;
        refuse_decision(&fresh, p)?;
        return Err(Error::Aborted(format!("approval {id} changed while being decided; read it again")));
    }
    let decided = Approval {
        state: to,
        decided_by: p.subject.clone(),
        decided_role: p.primary_role().to_owned(),
        decided_at: Some(now),
        note: note.to_owned(),
        ..a
    };
    let action = if to == State::Approved { "approval.approve" } else { "approval.reject" };
    record(conn, keys, p, action, &decided, note).await?;
    Ok(decided)
}

/// Withdraws a pending proposal; only the person who proposed it may.
pub async fn withdraw(
    conn: &mut AnyConnection,
    keys: &audit::AuditKeys,
    p: &Principal,
    id: &str,
    grant: impl Fn(&str) -> bool,
) -> Result<Approval, Error> {
    let a = get(conn, id, &grant).await?;
    if a.requested_by != p.subject {
        return Err(Error::PermissionDenied(format!(
            "only {} who proposed approval {id} may withdraw it",
            a.requested_by
        )));
    }
    if a.state != State::Pending {
        return Err(Error::FailedPrecondition(format!("approval {id} is {}, not pending", a.state.as_str())));
    }
    let n = sqlx::query(
        "UPDATE kit_approvals SET state = 'withdrawn', decided_at = $1 WHERE id = $2 AND state = 'pending'",
    )
    .bind(now_ms())
    .bind(id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if n == 0 {
        return Err(Error::Aborted(format!("approval {id} was decided while being withdrawn; read it again")));
    }
    let out = Approval { state: State::Withdrawn, ..a };
    record(conn, keys, p, "approval.withdraw", &out, "").await?;
    Ok(out)
}

/// Uses an approved grant of `kind` once, by the person who proposed it,
/// inside the caller's transaction (audited as `approval.use`). Returns it
/// so the caller can check that it covers what is being done.
pub async fn use_grant(
    conn: &mut AnyConnection,
    keys: &audit::AuditKeys,
    p: &Principal,
    id: &str,
    kind: &str,
) -> Result<Approval, Error> {
    let a = get(conn, id, |_| true).await?;
    if a.kind != kind {
        return Err(Error::FailedPrecondition(format!("approval {id} is not for this kind of action ({kind})")));
    }
    if a.requested_by != p.subject {
        return Err(Error::PermissionDenied(format!(
            "approval {id} was granted to {}, who proposed it; it cannot be used by another person",
            a.requested_by
        )));
    }
    match a.state {
        State::Approved => {}
        State::Pending => {
            return Err(Error::FailedPrecondition(format!("approval {id} is still waiting for a second person")));
        }
        State::Used => return Err(Error::FailedPrecondition(format!("approval {id} was already used"))),
        State::Expired => {
            return Err(Error::FailedPrecondition(format!(
                "approval {id} expired (an approval is good for one day after it is given)"
            )));
        }
        other => return Err(Error::FailedPrecondition(format!("approval {id} is {}", other.as_str()))),
    }
    let now = now_ms();
    let n = sqlx::query("UPDATE kit_approvals SET state = 'used', used_at = $1 WHERE id = $2 AND state = 'approved'")
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    if n == 0 {
        return Err(Error::FailedPrecondition(format!("approval {id} was already used")));
    }
    let out = Approval { state: State::Used, used_at: Some(now), ..a };
    record(conn, keys, p, "approval.use", &out, "").await?;
    Ok(out)
}

/// Closes every open proposal about `subject` (pending ones, and approved
/// grants not yet used), e.g. when the customer is erased, dropping their
/// payloads; returns how many.
pub async fn close_open_of(
    conn: &mut AnyConnection,
    subject: &str,
    grant_kinds: &[&str],
    note: &str,
) -> Result<u64, Error> {
    let mut open = vec!["state = 'pending'".to_owned()];
    let mut binds: Vec<crate::db::Bind> = vec![note.into(), now_ms().into(), subject.into()];
    if !grant_kinds.is_empty() {
        let placeholders: Vec<String> = grant_kinds
            .iter()
            .map(|k| {
                binds.push((*k).into());
                format!("${}", binds.len())
            })
            .collect();
        open.push(format!("(state = 'approved' AND kind IN ({}))", placeholders.join(", ")));
    }
    let sql = format!(
        "UPDATE kit_approvals SET state = 'withdrawn', payload = '', note = $1, decided_at = $2 \
         WHERE subject = $3 AND ({})",
        open.join(" OR ")
    );
    Ok(crate::db::execute(conn, &sql, binds).await?)
}

/// Filters of [`list`].
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub subject: Option<String>,
    pub kinds: Vec<String>,
    /// As of now: `Pending` lists only those still open, `Expired` those
    /// whose time passed.
    pub state: Option<State>,
    /// Proposed by this person.
    pub requested_by: Option<String>,
}

/// Approvals newest first, `limit` of them, after `before_id` (a page).
pub async fn list(
    conn: &mut AnyConnection,
    filter: &Filter,
    before_id: Option<&str>,
    limit: i64,
    grant: impl Fn(&str) -> bool,
) -> Result<Vec<Approval>, Error> {
    let now = now_ms();
    let mut w = crate::db::Where::new();
    if let Some(s) = &filter.subject {
        w.and("subject = $?", s.clone());
    }
    if !filter.kinds.is_empty() {
        w.any_of("kind", filter.kinds.clone());
    }
    if let Some(by) = &filter.requested_by {
        w.and("requested_by = $?", by.clone());
    }
    match filter.state {
        None => {}
        Some(State::Pending) => {
            w.and("state = $?", "pending").and("expires_at > $?", now);
        }
        Some(State::Expired) => {
            // Numbers computed here, not input: written into the clause.
            w.and_sql(&format!(
                "(state = 'expired' OR (state = 'pending' AND expires_at <= {now}) \
                 OR (state = 'approved' AND decided_at <= {}))",
                now - GRANT_VALID_MS
            ));
        }
        Some(other) => {
            w.and("state = $?", other.as_str());
        }
    }
    if let Some(b) = before_id {
        w.and("id < $?", b.to_owned());
    }
    let limit_at = w.next_placeholder();
    let (clause, mut binds) = w.build();
    binds.push(limit.into());
    let sql = format!("SELECT {COLUMNS} FROM kit_approvals WHERE {clause} ORDER BY id DESC LIMIT ${limit_at}");
    let rows = crate::db::fetch_rows(conn, &sql, binds).await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let a = from_row(r)?;
        let is_grant = grant(&a.kind);
        let a = a.at(now, is_grant);
        // An approved grant that lapsed is listed as expired, not approved.
        if filter.state.is_none_or(|s| s == a.state) {
            out.push(a);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approval(state: State, expires_at: i64, decided_at: Option<i64>) -> Approval {
        Approval {
            id: "a".into(),
            kind: "k".into(),
            subject: "s".into(),
            summary: String::new(),
            payload: String::new(),
            reason: "r".into(),
            requested_by: "alice".into(),
            requested_role: "supervisor".into(),
            requested_at: 0,
            expires_at,
            state,
            decided_by: String::new(),
            decided_role: String::new(),
            decided_at,
            note: String::new(),
            used_at: None,
        }
    }

    #[test]
    fn a_pending_proposal_expires_at_its_time_and_a_grant_a_day_after_approval() {
        assert_eq!(approval(State::Pending, 100, None).at(99, false).state, State::Pending);
        assert_eq!(approval(State::Pending, 100, None).at(100, false).state, State::Expired);
        let approved = approval(State::Approved, 100, Some(50));
        assert_eq!(approved.clone().at(50 + GRANT_VALID_MS - 1, true).state, State::Approved);
        assert_eq!(approved.clone().at(50 + GRANT_VALID_MS, true).state, State::Expired);
        // An applied change stays approved.
        assert_eq!(approved.at(50 + GRANT_VALID_MS, false).state, State::Approved);
    }

    #[test]
    fn the_proposer_cannot_decide_their_own_proposal() {
        let a = approval(State::Pending, i64::MAX, None);
        let alice = Principal { subject: "alice".into(), roles: vec![crate::auth::Role::Supervisor] };
        let bob = Principal { subject: "bob".into(), roles: vec![crate::auth::Role::Supervisor] };
        assert!(matches!(refuse_decision(&a, &alice), Err(Error::PermissionDenied(_))));
        assert!(refuse_decision(&a, &bob).is_ok());
        let done = approval(State::Rejected, i64::MAX, Some(1));
        assert!(matches!(refuse_decision(&done, &bob), Err(Error::FailedPrecondition(_))));
    }
}
