//! The `kefu.complaints.v1.ComplaintService` gRPC API: thin handlers that
//! parse requests into domain values, run the rule, read and write through
//! `store` in one transaction, and convert back.
mod access;
mod attachments;
mod audit;
mod categories;
mod deadlines;
mod investigation;
mod stats;

pub use access::ACCESS;
use chrono::{Datelike, TimeZone};
use kefu_kit::{
    Error,
    auth::{Principal, Role},
    client::CallContext,
    db,
    error::Violations,
    etag, page,
    parse::{self, ts, ts_opt},
    rpc::{Res, answer, call},
};
use kefu_proto::{
    common::v1::Channel,
    complaints::v1::{self as pb, complaint_service_server::ComplaintService},
    customers::v1::{self as cpb, customer_service_client::CustomerServiceClient},
    tickets::v1::{self as tpb, ticket_service_client::TicketServiceClient},
};
use sqlx::AnyPool;
use tonic::Request;

use crate::{
    domain::{self, ComplaintRef},
    store::{self, ComplaintRow, HistoryRow},
};

const TEXT_MAX: usize = 10_000;
const LINE_MAX: usize = 200;
const NAME_MAX: usize = 64;
const LIST: &str = "complaints";
const IDEMPOTENCY_SCOPE: &str = "complaints.record";
/// The largest refund or compensation asked for: 100 million yuan, in fen.
const AMOUNT_MAX_FEN: i64 = 10_000_000_000;

pub struct ComplaintsApi {
    pub(crate) pool: AnyPool,
    pub(crate) reads: AnyPool,
    customers: tonic::transport::Channel,
    tickets: tonic::transport::Channel,
    /// The staff directory: handlers, owners and the staff complained about.
    pub(crate) directory: kefu_kit::directory::Directory,
    /// The firm's time zone (numbers count per year there).
    pub(crate) zone: chrono_tz::Tz,
    clock: std::sync::Arc<dyn kefu_sla::Clock>,
    pub(crate) deadlines: std::sync::Arc<crate::sla::Deadlines>,
    holds: std::sync::Arc<crate::holds::LegalHolds>,
    blobs: kefu_kit::blob::Blobs,
    /// The audit trail's keys (reads in the clear, category changes).
    audit_keys: kefu_kit::audit::AuditKeys,
    pub(crate) shutdown: tokio_util::sync::CancellationToken,
}

/// Where the services complaints calls are.
pub struct Peers<'a> {
    pub customers: &'a str,
    pub tickets: &'a str,
    pub staff: &'a str,
}

impl ComplaintsApi {
    pub fn new(
        pool: AnyPool,
        peers: Peers<'_>,
        deadlines: std::sync::Arc<crate::sla::Deadlines>,
        holds: std::sync::Arc<crate::holds::LegalHolds>,
        blobs: kefu_kit::blob::Blobs,
        audit_keys: kefu_kit::audit::AuditKeys,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            reads: db::readers(&pool),
            pool,
            customers: kefu_kit::client::channel(peers.customers)?,
            tickets: kefu_kit::client::channel(peers.tickets)?,
            directory: kefu_kit::directory::Directory::new(peers.staff)?,
            zone: chrono_tz::Asia::Shanghai,
            clock: deadlines.clock.clone(),
            deadlines,
            holds,
            blobs,
            audit_keys,
            shutdown,
        })
    }

    pub(crate) fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Checks the customer exists and was not erased (through the customers
    /// service, with the caller's own token).
    async fn check_customer(&self, token: Option<&str>, id: &str) -> Result<(), Error> {
        let mut c = CustomerServiceClient::with_interceptor(self.customers.clone(), CallContext::new(token)?);
        let call = c.get_customer(cpb::GetCustomerRequest { id: id.to_owned(), omit_contacts: true });
        match kefu_kit::client::within(kefu_kit::client::PEER_DEADLINE, call).await {
            Ok(cust) if cust.lifecycle_status == cpb::LifecycleStatus::Erased as i32 => {
                Err(Error::FailedPrecondition("the customer's data was erased; no new complaints".into()))
            }
            Ok(_) => Ok(()),
            Err(s) if matches!(s.code(), tonic::Code::NotFound | tonic::Code::InvalidArgument) => {
                Err(Error::invalid("complaint.customer_id", format!("no customer {id:?}")))
            }
            Err(s) => Err(Error::from_peer("customers", &s)),
        }
    }

    /// The ticket escalated from (id or number): its id and customer.
    async fn ticket(&self, token: Option<&str>, raw: &str) -> Result<(String, String), Error> {
        let mut c = TicketServiceClient::with_interceptor(self.tickets.clone(), CallContext::new(token)?);
        let call = c.get_ticket(tpb::GetTicketRequest { id: raw.trim().to_owned() });
        match kefu_kit::client::within(kefu_kit::client::PEER_DEADLINE, call).await {
            Ok(t) => Ok((t.id, t.customer_id)),
            Err(s) if matches!(s.code(), tonic::Code::NotFound | tonic::Code::InvalidArgument) => Err(Error::invalid(
                "complaint.ticket_id",
                format!("no ticket {:?}", raw.chars().take(64).collect::<String>()),
            )),
            Err(s) => Err(Error::from_peer("tickets", &s)),
        }
    }
}

/// People who see every complaint; agents see the ones they recorded or handle.
const SEES_ALL: &[Role] = &[Role::Supervisor, Role::Admin, Role::Auditor, Role::Service];

/// Who handles it: agents change the complaints they recorded or handle.
fn handles(p: &Principal, c: &ComplaintRow) -> bool {
    // Nobody handles a complaint about themselves, whatever their role.
    if is_about(p, c) {
        return false;
    }
    p.has_any(&[Role::Supervisor, Role::Admin, Role::Service]) || c.recorded_by == p.subject || c.handler == p.subject
}

/// Whether the complaint is about the caller: the staff member complained
/// about, or the one the finding holds responsible.
fn is_about(p: &Principal, c: &ComplaintRow) -> bool {
    let staff_subject = c.subject_kind == i64::from(pb::SubjectKind::Staff as i32) && c.subject == p.subject;
    staff_subject || (!c.responsible_staff.is_empty() && c.responsible_staff == p.subject)
}

/// Who reads it: those who handle it, auditors, and the staff member the
/// finding holds responsible (who reads it but does not change it).
fn visible(p: &Principal, c: &ComplaintRow) -> bool {
    p.has_any(SEES_ALL) || handles(p, c) || is_about(p, c)
}

/// A complaint the caller may read (`write`: change).
pub(crate) async fn find(
    conn: &mut sqlx::AnyConnection,
    p: &Principal,
    field: &str,
    raw: &str,
    write: bool,
) -> Result<ComplaintRow, Error> {
    let row = match domain::complaint_ref(field, raw)? {
        ComplaintRef::Id(id) => store::get(conn, &id).await?,
        ComplaintRef::Number(n) => store::by_number(conn, &n).await?,
    };
    match row {
        Some(c) if write && visible(p, &c) && !handles(p, &c) => {
            Err(Error::PermissionDenied(format!("complaint {} is read-only for you", c.number)))
        }
        Some(c) if visible(p, &c) => Ok(c),
        // Another agent's complaint is not found, not forbidden: its existence is not told.
        _ => Err(Error::NotFound(format!("complaint {}", raw.trim().chars().take(64).collect::<String>()))),
    }
}

fn state_of(n: i64) -> pb::ComplaintState {
    pb::ComplaintState::try_from(n as i32).unwrap_or(pb::ComplaintState::Unspecified)
}

/// Who reads the complainant's words in every answer: systems (not an
/// integration's API key, which acts for people). People read them masked,
/// or one complaint at a time in the clear with a purpose (GetComplaint
/// `unmasked`), which the audit trail records.
fn reads_clear(p: &Principal) -> bool {
    p.has_any(&[Role::Service]) && !p.is_api_key()
}

/// Free text of a complaint as a person reads it: identifiers masked
/// (systems read it as written).
pub(crate) fn masked_text(p: &Principal, text: &str) -> String {
    if reads_clear(p) { text.to_owned() } else { kefu_kit::mask::redact(text) }
}

/// May the caller read the complainant's words in the clear (with a
/// purpose)? Those who may read the evidence: never the person it is about.
fn may_unmask(p: &Principal, c: &ComplaintRow) -> bool {
    !is_about(p, c) && (p.has_any(SEES_ALL) || handles(p, c))
}

/// The complaint as the caller may see it: every free text masked (clear
/// for systems); for the staff member it is about, the complainant, their
/// words, the firm's answers to them and what links to them withheld (the
/// finding about them stays, masked).
pub(crate) fn shown(p: &Principal, c: &ComplaintRow) -> pb::Complaint {
    let mut out = complaint_pb(c);
    if reads_clear(p) {
        return out;
    }
    let mask = kefu_kit::mask::redact;
    if let Some(f) = out.finding.as_mut() {
        f.findings = mask(&f.findings);
    }
    if is_about(p, c) {
        out.customer_id.clear();
        out.ticket_id.clear();
        out.repeat_of.clear();
        out.referral = None;
        out.description.clear();
        out.preliminary_opinion.clear();
        out.response.clear();
        out.satisfaction_comment.clear();
        out.decision_summary.clear();
        if let Some(d) = out.demand.as_mut() {
            d.detail.clear();
        }
        out.personal_data = pb::PersonalData::Withheld as i32;
        return out;
    }
    out.description = mask(&out.description);
    out.preliminary_opinion = mask(&out.preliminary_opinion);
    out.response = mask(&out.response);
    out.satisfaction_comment = mask(&out.satisfaction_comment);
    out.decision_summary = mask(&out.decision_summary);
    if let Some(d) = out.demand.as_mut() {
        d.detail = mask(&d.detail);
    }
    out.personal_data = pb::PersonalData::Masked as i32;
    out
}

/// The complaint as stored, the complainant's words in the clear.
fn complaint_pb(c: &ComplaintRow) -> pb::Complaint {
    pb::Complaint {
        personal_data: pb::PersonalData::Clear as i32,
        id: c.id.clone(),
        number: c.number.clone(),
        state: c.state as i32,
        source: c.source as i32,
        channel: c.channel as i32,
        customer_id: c.customer_id.clone(),
        anonymous: c.anonymous == 1,
        ticket_id: c.ticket_id.clone(),
        subject_kind: c.subject_kind as i32,
        subject: c.subject.clone(),
        category: c.category.clone(),
        category_label: c.category_label.clone(),
        severity: c.severity as i32,
        description: c.description.clone(),
        demand: Some(pb::Demand {
            kind: c.demand_kind as i32,
            amount_fen: c.demand_amount_fen,
            detail: c.demand_detail.clone(),
        }),
        referral: (!c.referred_by.is_empty()).then(|| pb::Referral {
            referred_by: c.referred_by.clone(),
            reference: c.referral_reference.clone(),
            reply_due_time: ts_opt(c.referral_due_at),
        }),
        repeat_of: c.repeat_of.clone(),
        handler: c.handler.clone(),
        preliminary_opinion: c.preliminary_opinion.clone(),
        response: c.response.clone(),
        mediator: c.mediator.clone(),
        legal_hold: c.legal_hold == 1,
        reopen_count: c.reopen_count as i32,
        recorded_by: c.recorded_by.clone(),
        receive_time: ts(c.received_at),
        create_time: ts(c.created_at),
        update_time: ts(c.updated_at),
        close_time: ts_opt(c.closed_at),
        etag: etag::of(c.version),
        finding: c.upheld.map(|upheld| pb::Finding {
            findings: c.findings.clone(),
            root_cause: c.root_cause as i32,
            responsible_staff: c.responsible_staff.clone(),
            responsible_department: c.responsible_department.clone(),
            upheld: upheld == 1,
            recorded_by: c.finding_by.clone(),
            record_time: ts_opt(c.finding_at),
        }),
        decision_channel: c.decision_channel as i32,
        decision_time: ts_opt(c.decision_at),
        decision_summary: c.decision_summary.clone(),
        compensation_paid_fen: c.compensation_paid_fen,
        satisfaction: c.satisfaction as i32,
        satisfaction_comment: c.satisfaction_comment.clone(),
        escalation_level: c.escalation_level as i32,
    }
}

/// A record request, checked: every bad field is named at once.
struct NewComplaint {
    row: ComplaintRow,
    ticket_ref: String,
}

fn parse_new(p: &Principal, input: &pb::Complaint, now: i64) -> Result<NewComplaint, Error> {
    let mut v = Violations::new();
    let source = v.check(parse::enumeration::<pb::ComplaintSource>("complaint.source", input.source, None));
    let channel = v.check(parse::enumeration::<Channel>("complaint.channel", input.channel, None));
    let severity = v.check(parse::enumeration::<pb::Severity>("complaint.severity", input.severity, None));
    let subject_kind = v.check(parse::enumeration::<pb::SubjectKind>(
        "complaint.subject_kind",
        input.subject_kind,
        Some(pb::SubjectKind::Other),
    ));
    let category = v.check(domain::category("complaint.category", &input.category));
    let description = v.check(parse::required_text("complaint.description", &input.description, TEXT_MAX));
    let subject = v.check(parse::line("complaint.subject", &input.subject, LINE_MAX));
    let handler = v.check(parse::line("complaint.handler", &input.handler, NAME_MAX)).unwrap_or_default();
    let received = v.check(parse::opt_timestamp("complaint.receive_time", input.receive_time.as_ref())).flatten();
    if received.is_some_and(|r| r > now + 60_000) {
        v.add("complaint.receive_time", "is in the future");
    }
    let customer_id = if input.anonymous {
        if !input.customer_id.trim().is_empty() {
            v.add("complaint.customer_id", "an anonymous complaint names no customer");
        }
        None
    } else {
        v.check(parse::opt_id("complaint.customer_id", &input.customer_id)).flatten()
    };
    let demand = input.demand.clone().unwrap_or_default();
    let demand_kind = v.check(parse::enumeration::<pb::DemandKind>(
        "complaint.demand.kind",
        demand.kind,
        Some(pb::DemandKind::Other),
    ));
    if !(0..=AMOUNT_MAX_FEN).contains(&demand.amount_fen) {
        v.add("complaint.demand.amount_fen", format!("must be 0 to {AMOUNT_MAX_FEN} fen"));
    }
    let demand_detail = v.check(parse::text("complaint.demand.detail", &demand.detail, TEXT_MAX)).unwrap_or_default();
    let referral = input.referral.clone().unwrap_or_default();
    let referred_by = v.check(parse::line("complaint.referral.referred_by", &referral.referred_by, LINE_MAX));
    let reference = v.check(parse::line("complaint.referral.reference", &referral.reference, NAME_MAX));
    let referral_due =
        v.check(parse::opt_timestamp("complaint.referral.reply_due_time", referral.reply_due_time.as_ref())).flatten();
    let is_referral =
        matches!(source, Some(pb::ComplaintSource::RegulatorReferral | pb::ComplaintSource::HotlineReferral));
    if is_referral {
        if referred_by.as_deref().is_none_or(str::is_empty) {
            v.add("complaint.referral.referred_by", "a referral names who referred it");
        }
        match referral_due {
            None => v.add("complaint.referral.reply_due_time", "a referral has its reply deadline"),
            Some(d) if d <= now => v.add("complaint.referral.reply_due_time", "is in the past"),
            Some(_) => {}
        }
    } else if referred_by.as_deref().is_some_and(|r| !r.is_empty())
        || reference.as_deref().is_some_and(|r| !r.is_empty())
        || referral_due.is_some()
    {
        v.add("complaint.referral", "only referrals (regulator, hotline) carry referral details");
    }
    let escalation = source == Some(pb::ComplaintSource::TicketEscalation);
    if escalation && input.ticket_id.trim().is_empty() {
        v.add("complaint.ticket_id", "a ticket escalation names its ticket");
    }
    if !escalation && !input.anonymous && input.customer_id.trim().is_empty() {
        v.add("complaint.customer_id", "is required (or mark the complaint anonymous)");
    }
    let staff_subject =
        subject_kind == Some(pb::SubjectKind::Staff) && subject.as_deref().is_some_and(|s| !s.is_empty());
    if staff_subject {
        let about = subject.as_deref().unwrap_or_default();
        if (about == p.subject && handler.is_empty()) || handler == about {
            v.add(
                "complaint.handler",
                "the staff member complained about does not handle the complaint; name another handler",
            );
        }
    }
    if !input.ticket_id.trim().is_empty() && input.ticket_id.chars().count() > NAME_MAX {
        v.add("complaint.ticket_id", "is too long");
    }
    v.finish()?;
    let (Some(source), Some(channel), Some(severity), Some(subject_kind), Some(category), Some(description)) =
        (source, channel, severity, subject_kind, category, description)
    else {
        return Err(Error::invalid("complaint", "is not valid"));
    };
    let row = ComplaintRow {
        id: uuid::Uuid::now_v7().to_string(),
        number: String::new(),
        state: i64::from(pb::ComplaintState::Received as i32),
        source: i64::from(source as i32),
        channel: i64::from(channel as i32),
        customer_id: customer_id.unwrap_or_default(),
        anonymous: i64::from(input.anonymous),
        ticket_id: String::new(),
        subject_kind: i64::from(subject_kind as i32),
        subject: subject.unwrap_or_default(),
        category,
        category_label: String::new(),
        severity: i64::from(severity as i32),
        description,
        demand_kind: i64::from(demand_kind.unwrap_or(pb::DemandKind::Other) as i32),
        demand_amount_fen: demand.amount_fen,
        demand_detail,
        referred_by: referred_by.unwrap_or_default(),
        referral_reference: reference.unwrap_or_default(),
        referral_due_at: referral_due,
        repeat_of: String::new(),
        handler: if handler.is_empty() { p.subject.clone() } else { handler },
        preliminary_opinion: String::new(),
        response: String::new(),
        mediator: String::new(),
        legal_hold: 0,
        reopen_count: 0,
        recorded_by: p.subject.clone(),
        received_at: received.unwrap_or(now),
        created_at: now,
        updated_at: now,
        closed_at: None,
        findings: String::new(),
        root_cause: 0,
        responsible_staff: String::new(),
        responsible_department: String::new(),
        upheld: None,
        finding_by: String::new(),
        finding_at: None,
        decision_channel: 0,
        decision_at: None,
        decision_summary: String::new(),
        compensation_paid_fen: 0,
        satisfaction: 0,
        satisfaction_comment: String::new(),
        escalation_level: 0,
        version: 1,
    };
    Ok(NewComplaint { row, ticket_ref: input.ticket_id.trim().to_owned() })
}

async fn record(
    api: &ComplaintsApi,
    p: &Principal,
    token: Option<&str>,
    r: pb::RecordComplaintRequest,
) -> Result<pb::Complaint, Error> {
    let input = r.complaint.as_ref().ok_or_else(|| Error::invalid("complaint", "is required"))?;
    let request_id = parse::line("request_id", &r.request_id, 128)?;
    let now = api.now();
    let NewComplaint { mut row, ticket_ref } = parse_new(p, input, now)?;
    // Peers first, outside the transaction.
    if !ticket_ref.is_empty() {
        let (ticket_id, customer) = api.ticket(token, &ticket_ref).await?;
        row.ticket_id = ticket_id;
        if row.customer_id.is_empty() && row.anonymous == 0 {
            row.customer_id = customer;
        } else if row.customer_id != customer && row.anonymous == 0 {
            return Err(Error::invalid(
                "complaint.ticket_id",
                "belongs to another customer than complaint.customer_id",
            ));
        }
    }
    if !row.customer_id.is_empty() {
        api.check_customer(token, &row.customer_id).await?;
    }
    let about_staff =
        if row.subject_kind == i64::from(pb::SubjectKind::Staff as i32) { row.subject.as_str() } else { "" };
    // A handler named by the recorder is checked; the recorder themselves
    // (the default) is whoever the token says.
    let named_handler = if row.handler == p.subject { "" } else { row.handler.as_str() };
    api.directory
        .check(
            token,
            &[
                ("complaint.handler", named_handler, kefu_kit::directory::Accept::Person),
                ("complaint.subject", about_staff, kefu_kit::directory::Accept::KnownPerson),
            ],
        )
        .await?;
    let mut tx = api.pool.begin().await?;
    if !request_id.is_empty() {
        let fingerprint = db::fingerprint_of(&pb::RecordComplaintRequest { request_id: String::new(), ..r.clone() });
        if let db::Claim::Existing(id) = db::claim_request_id(
            &mut tx,
            &format!("{IDEMPOTENCY_SCOPE}:{}", p.subject),
            &request_id,
            &row.id,
            &fingerprint,
        )
        .await?
        {
            drop(tx);
            let mut conn = api.pool.acquire().await?;
            let existing = store::get(&mut conn, &id)
                .await?
                .ok_or_else(|| Error::Internal(anyhow::anyhow!("complaint {id} of a claimed request id is missing")))?;
            return Ok(shown(p, &existing));
        }
    }
    // The category is one the firm offers now.
    let offered = store::CATEGORIES.entries(&mut tx, false).await?;
    match offered.iter().find(|k| k.code == row.category) {
        Some(k) => row.category_label.clone_from(&k.label),
        None => {
            let codes: Vec<&str> = offered.iter().map(|k| k.code.as_str()).collect();
            return Err(Error::invalid(
                "complaint.category",
                format!("{:?} is not one of {}", row.category, codes.join(", ")),
            ));
        }
    }
    // A ticket is escalated once while its complaint is open.
    if !row.ticket_id.is_empty()
        && let Some(number) = store::open_for_ticket(&mut tx, &row.ticket_id).await?
    {
        return Err(Error::AlreadyExists(format!("the ticket was already escalated into complaint {number}")));
    }
    let year = api.zone.timestamp_millis_opt(row.received_at).single().map_or(2026, |t| t.year());
    row.number = domain::number(year, store::next_serial(&mut tx, year).await?);
    if !row.customer_id.is_empty() {
        let since = row.received_at - domain::REPEAT_WINDOW_MS;
        row.repeat_of = store::earlier_of(&mut tx, &row.customer_id, &row.category, since, row.received_at)
            .await?
            .unwrap_or_default();
    }
    store::insert(&mut tx, &row).await?;
    store::add_history(
        &mut tx,
        &HistoryRow {
            seq: 0,
            complaint_id: row.id.clone(),
            from_state: 0,
            to_state: row.state,
            action: 0,
            actor: p.subject.clone(),
            actor_role: p.primary_role().to_owned(),
            reason: "recorded".into(),
            at: now,
        },
    )
    .await?;
    let changes = api.deadlines.on_recorded(&mut tx, &row).await?;
    tx.commit().await?;
    api.deadlines.publish(changes).await;
    Ok(shown(p, &row))
}

async fn get(api: &ComplaintsApi, p: &Principal, r: pb::GetComplaintRequest) -> Result<pb::Complaint, Error> {
    let purpose = parse::line("purpose", &r.purpose, LINE_MAX)?;
    if !r.unmasked {
        if !purpose.is_empty() {
            return Err(Error::invalid("purpose", "only an unmasked read states a purpose"));
        }
        let mut conn = api.reads.acquire().await?;
        return Ok(shown(p, &find(&mut conn, p, "id", &r.id, false).await?));
    }
    if purpose.is_empty() {
        return Err(Error::invalid("purpose", "say why the complainant's words are read in the clear"));
    }
    let mut tx = api.pool.begin().await?;
    let c = find(&mut tx, p, "id", &r.id, false).await?;
    if !may_unmask(p, &c) {
        return Err(Error::PermissionDenied(
            "the complainant's words are read in the clear by those who handle the complaint".into(),
        ));
    }
    audit::record(
        api,
        &mut tx,
        p,
        "complaint.read",
        &c.id,
        format!(
            "{}: description, demand, preliminary opinion, response, finding, satisfaction comment, decision summary",
            c.number
        ),
        &purpose,
    )
    .await?;
    tx.commit().await?;
    Ok(complaint_pb(&c))
}

async fn list(
    api: &ComplaintsApi,
    p: &Principal,
    r: pb::ListComplaintsRequest,
) -> Result<pb::ListComplaintsResponse, Error> {
    let mut v = Violations::new();
    let size = v.check(parse::page_size("page_size", r.page_size, 50, 200)).unwrap_or(50);
    let before = v.check(page::time_and_id(LIST, &r.page_token)).flatten();
    let state = if r.state == 0 {
        None
    } else {
        v.check(parse::enumeration::<pb::ComplaintState>("state", r.state, None)).map(|s| i64::from(s as i32))
    };
    let severity = if r.severity == 0 {
        None
    } else {
        v.check(parse::enumeration::<pb::Severity>("severity", r.severity, None)).map(|s| i64::from(s as i32))
    };
    let customer_id = v.check(parse::opt_id("customer_id", &r.customer_id)).flatten();
    let category = if r.category.trim().is_empty() { None } else { v.check(domain::category("category", &r.category)) };
    let handler = v.check(parse::line("handler", &r.handler, NAME_MAX)).unwrap_or_default();
    v.finish()?;
    let filter_customer = customer_id.is_some();
    let filter = store::Filter {
        state,
        customer_id,
        category,
        severity,
        handler: (!handler.is_empty()).then_some(handler),
        involving: (!p.has_any(SEES_ALL)).then(|| p.subject.clone()),
        // A customer's complaints, listed by a person, leave out those about
        // that person: the list would name who complained about them.
        not_about: (filter_customer && !reads_clear(p)).then(|| p.subject.clone()),
        before,
    };
    let mut conn = api.reads.acquire().await?;
    let rows = store::list(&mut conn, &filter, size + 1).await?;
    let (rows, more) = page::split(rows, size);
    let next_page_token = page::next_time_and_id(LIST, &rows, more, |c| (c.created_at, c.id.as_str()));
    Ok(pb::ListComplaintsResponse { complaints: rows.iter().map(|c| shown(p, c)).collect(), next_page_token })
}

async fn transition(
    api: &ComplaintsApi,
    p: &Principal,
    r: pb::TransitionComplaintRequest,
) -> Result<pb::Complaint, Error> {
    let mut v = Violations::new();
    let action = v.check(parse::enumeration::<pb::ComplaintAction>("action", r.action, None));
    let reason = v.check(parse::required_line("reason", &r.reason, 500)).unwrap_or_default();
    let text = v.check(parse::text("text", &r.text, TEXT_MAX)).unwrap_or_default();
    let mediator = v.check(parse::line("mediator", &r.mediator, LINE_MAX)).unwrap_or_default();
    match action {
        Some(pb::ComplaintAction::GivePreliminaryOpinion | pb::ComplaintAction::ProposeResponse) if text.is_empty() => {
            v.add("text", "give the opinion or the response");
        }
        Some(pb::ComplaintAction::StartMediation) if mediator.is_empty() => {
            v.add("mediator", "name the mediation: internal, or the external body");
        }
        _ => {}
    }
    let takes_text =
        matches!(action, Some(pb::ComplaintAction::GivePreliminaryOpinion | pb::ComplaintAction::ProposeResponse));
    if !takes_text && !text.is_empty() {
        v.add("text", "only a preliminary opinion or a response carries text");
    }
    if action != Some(pb::ComplaintAction::StartMediation) && !mediator.is_empty() {
        v.add("mediator", "only START_MEDIATION names a mediator");
    }
    v.finish()?;
    let Some(action) = action else { return Err(Error::invalid("action", "is required")) };
    let mut tx = api.pool.begin().await?;
    let mut c = find(&mut tx, p, "id", &r.id, true).await?;
    etag::check("complaint", &r.etag, c.version)?;
    let from = state_of(c.state);
    let to = domain::transition(from, action)?;
    if action == pb::ComplaintAction::Close {
        // Closed once its corrective actions are done (their verification may come later).
        let open = store::actions(&mut tx, Some(&c.id))
            .await?
            .iter()
            .filter(|a| a.status == i64::from(pb::ActionStatus::Open as i32))
            .count();
        if open > 0 {
            return Err(Error::FailedPrecondition(format!(
                "{open} corrective action(s) are still open; complete them before closing the complaint"
            )));
        }
    }
    let now = api.now();
    let held_customer = (!c.customer_id.is_empty()).then(|| c.customer_id.clone());
    let mut release_queued = false;
    let placing = held_customer.is_some() && action == pb::ComplaintAction::ReferToLegal;
    if let Some(customer) = &held_customer {
        if placing {
            crate::holds::LegalHolds::unqueue_release(&mut tx, &c.id).await?;
        } else if action == pb::ComplaintAction::Close && c.legal_hold == 1 {
            crate::holds::LegalHolds::queue_release(&mut tx, &c.id, customer, &c.number, now).await?;
            release_queued = true;
        }
    }
    match action {
        pb::ComplaintAction::GivePreliminaryOpinion => c.preliminary_opinion = text,
        pb::ComplaintAction::ProposeResponse => c.response = text,
        pb::ComplaintAction::StartMediation => c.mediator = mediator,
        pb::ComplaintAction::ReferToLegal => c.legal_hold = 1,
        pb::ComplaintAction::Close => {
            c.closed_at = Some(now);
            // Legal proceedings concluded: the hold ends with the complaint.
            c.legal_hold = 0;
        }
        pb::ComplaintAction::Reopen => {
            c.closed_at = None;
            c.reopen_count += 1;
        }
        _ => {}
    }
    c.state = i64::from(to as i32);
    c.updated_at = now;
    store::save(&mut tx, &mut c).await?;
    store::add_history(
        &mut tx,
        &HistoryRow {
            seq: 0,
            complaint_id: c.id.clone(),
            from_state: i64::from(from as i32),
            to_state: c.state,
            action: i64::from(action as i32),
            actor: p.subject.clone(),
            actor_role: p.primary_role().to_owned(),
            reason,
            at: now,
        },
    )
    .await?;
    let changes = api.deadlines.on_transition(&mut tx, &c, from, action).await?;
    if placing && let Some(customer) = &held_customer {
        // Held as the last thing before the step commits: never in legal
        // referral without it; a commit that then fails gives it back.
        api.holds.place(customer, &c.number).await?;
        if let Err(e) = tx.commit().await {
            // Queued, then delivered only if the complaint is indeed not in
            // legal referral (a commit reported failed may have happened).
            let mut conn = api.pool.acquire().await?;
            crate::holds::LegalHolds::queue_release(&mut conn, &c.id, customer, &c.number, now).await?;
            drop(conn);
            if let Err(d) = api.holds.deliver(Some(&c.id)).await {
                tracing::warn!(error = %d, "a hold of a referral that did not commit is released when customers answers");
            }
            return Err(e.into());
        }
    } else {
        tx.commit().await?;
    }
    api.deadlines.publish(changes).await;
    if release_queued && let Err(e) = api.holds.deliver(Some(&c.id)).await {
        tracing::warn!(error = %e, "the closed complaint's legal hold is released when the customers service answers");
    }
    Ok(shown(p, &c))
}

async fn history(
    api: &ComplaintsApi,
    p: &Principal,
    r: pb::ListComplaintHistoryRequest,
) -> Result<pb::ListComplaintHistoryResponse, Error> {
    let mut conn = api.reads.acquire().await?;
    let c = find(&mut conn, p, "id", &r.id, false).await?;
    let entries = store::history(&mut conn, &c.id)
        .await?
        .into_iter()
        .map(|h| pb::HistoryEntry {
            seq: h.seq,
            from_state: h.from_state as i32,
            to_state: h.to_state as i32,
            action: h.action as i32,
            actor: h.actor,
            actor_role: h.actor_role,
            reason: masked_text(p, &h.reason),
            time: ts(h.at),
        })
        .collect();
    Ok(pb::ListComplaintHistoryResponse { entries })
}

#[tonic::async_trait]
impl ComplaintService for ComplaintsApi {
    async fn record_complaint(&self, req: Request<pb::RecordComplaintRequest>) -> Res<pb::Complaint> {
        let c = call(req)?;
        answer(record(self, &c.p, c.token.as_deref(), c.r).await)
    }

    async fn get_complaint(&self, req: Request<pb::GetComplaintRequest>) -> Res<pb::Complaint> {
        let c = call(req)?;
        answer(get(self, &c.p, c.r).await)
    }

    async fn list_complaints(&self, req: Request<pb::ListComplaintsRequest>) -> Res<pb::ListComplaintsResponse> {
        let c = call(req)?;
        answer(list(self, &c.p, c.r).await)
    }

    async fn transition_complaint(&self, req: Request<pb::TransitionComplaintRequest>) -> Res<pb::Complaint> {
        let c = call(req)?;
        answer(transition(self, &c.p, c.r).await)
    }

    async fn list_complaint_history(
        &self,
        req: Request<pb::ListComplaintHistoryRequest>,
    ) -> Res<pb::ListComplaintHistoryResponse> {
        let c = call(req)?;
        answer(history(self, &c.p, c.r).await)
    }

    async fn record_finding(&self, req: Request<pb::RecordFindingRequest>) -> Res<pb::Complaint> {
        let c = call(req)?;
        answer(investigation::record_finding(self, &c.p, c.token.as_deref(), c.r).await)
    }

    async fn add_corrective_action(&self, req: Request<pb::AddCorrectiveActionRequest>) -> Res<pb::CorrectiveAction> {
        let c = call(req)?;
        answer(investigation::add_action(self, &c.p, c.token.as_deref(), c.r).await)
    }

    async fn complete_corrective_action(
        &self,
        req: Request<pb::CompleteCorrectiveActionRequest>,
    ) -> Res<pb::CorrectiveAction> {
        let c = call(req)?;
        answer(investigation::complete_action(self, &c.p, c.r).await)
    }

    async fn verify_corrective_action(
        &self,
        req: Request<pb::VerifyCorrectiveActionRequest>,
    ) -> Res<pb::CorrectiveAction> {
        let c = call(req)?;
        answer(investigation::verify_action(self, &c.p, c.r).await)
    }

    async fn list_corrective_actions(
        &self,
        req: Request<pb::ListCorrectiveActionsRequest>,
    ) -> Res<pb::ListCorrectiveActionsResponse> {
        let c = call(req)?;
        answer(investigation::list_actions(self, &c.p, c.r).await)
    }

    async fn record_decision_sent(&self, req: Request<pb::RecordDecisionSentRequest>) -> Res<pb::Complaint> {
        let c = call(req)?;
        answer(investigation::decision_sent(self, &c.p, c.r).await)
    }

    async fn rate_complaint_handling(&self, req: Request<pb::RateComplaintHandlingRequest>) -> Res<pb::Complaint> {
        let c = call(req)?;
        answer(investigation::rate(self, &c.p, c.r).await)
    }

    async fn get_complaint_stats(&self, req: Request<pb::GetComplaintStatsRequest>) -> Res<pb::ComplaintStats> {
        let c = call(req)?;
        answer(stats::complaint_stats(self, c.r).await)
    }

    async fn get_staff_complaint_stats(
        &self,
        req: Request<pb::GetStaffComplaintStatsRequest>,
    ) -> Res<pb::StaffComplaintStats> {
        let c = call(req)?;
        answer(stats::staff_stats(self, c.r).await)
    }

    async fn get_complaint_deadlines(
        &self,
        req: Request<pb::GetComplaintDeadlinesRequest>,
    ) -> Res<pb::ComplaintDeadlines> {
        let c = call(req)?;
        answer(deadlines::of_complaint(self, &c.p, c.r).await)
    }

    async fn get_complaint_sla_dashboard(
        &self,
        req: Request<pb::GetComplaintSlaDashboardRequest>,
    ) -> Res<pb::ComplaintSlaDashboard> {
        let c = call(req)?;
        answer(deadlines::dashboard(self, &c.p, c.r).await)
    }

    type WatchComplaintDeadlinesStream = deadlines::EventStream;

    async fn watch_complaint_deadlines(
        &self,
        req: Request<pb::WatchComplaintDeadlinesRequest>,
    ) -> Res<Self::WatchComplaintDeadlinesStream> {
        let c = call(req)?;
        answer(deadlines::watch(self, &c.p, c.r).await)
    }

    async fn add_complaint_attachment(&self, req: Request<pb::AddComplaintAttachmentRequest>) -> Res<pb::Attachment> {
        let c = call(req)?;
        answer(attachments::add(self, &c.p, c.r).await)
    }

    async fn list_complaint_attachments(
        &self,
        req: Request<pb::ListComplaintAttachmentsRequest>,
    ) -> Res<pb::ListComplaintAttachmentsResponse> {
        let c = call(req)?;
        answer(attachments::list(self, &c.p, c.r).await)
    }

    async fn get_complaint_attachment(
        &self,
        req: Request<pb::GetComplaintAttachmentRequest>,
    ) -> Res<pb::AttachmentContent> {
        let c = call(req)?;
        answer(attachments::get(self, &c.p, c.r).await)
    }

    async fn list_complaint_audit_entries(
        &self,
        req: Request<pb::ListComplaintAuditEntriesRequest>,
    ) -> Res<pb::ListComplaintAuditEntriesResponse> {
        let c = call(req)?;
        answer(audit::list(self, c.r).await)
    }

    async fn verify_complaint_audit_chain(
        &self,
        req: Request<pb::VerifyComplaintAuditChainRequest>,
    ) -> Res<pb::VerifyComplaintAuditChainResponse> {
        let c = call(req)?;
        answer(audit::verify(self, c.r).await)
    }

    async fn list_complaint_categories(
        &self,
        req: Request<pb::ListComplaintCategoriesRequest>,
    ) -> Res<pb::ListComplaintCategoriesResponse> {
        let c = call(req)?;
        answer(categories::list(self, c.r).await)
    }

    async fn set_complaint_categories(
        &self,
        req: Request<pb::SetComplaintCategoriesRequest>,
    ) -> Res<pb::ListComplaintCategoriesResponse> {
        let c = call(req)?;
        answer(categories::set(self, &c.p, c.r).await)
    }
}
