//! The `kefu.customers.v1.CustomerService` gRPC API: authorisation, proto ⇄
//! domain, transactions.
use std::sync::Arc;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use kefu_kit::{
    Error,
    access::{ANYONE, Access, MANAGERS, READERS, WRITERS},
    auth::{Principal, Role, principal},
    error::Violations,
};
use kefu_proto::customers::v1::{self as pb, customer_service_server::CustomerService};
use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, AnyPool};
use tonic::{Request, Response, Status, Streaming};

use crate::{
    crypto::{DataKeyring, Sealed},
    domain::{self, Email, Festival, Mobile, Uscc, bounded_text, enum_value, required_text},
    store::{self, AuditEvent, ConsentRow, ContactRow, CustomerRow, PlanRow, TaxProfileRow, VisitRow, now_ms},
};

const IMPORTERS: &[Role] = &[Role::Supervisor, Role::Admin, Role::Service];
const SENSITIVE_READERS: &[Role] = &[Role::Supervisor, Role::Admin, Role::Service];
const EXPORTERS: &[Role] = &[Role::Supervisor, Role::Admin, Role::Service];
const AUDITORS: &[Role] = &[Role::Auditor, Role::Admin];

/// Who may call each RPC; the auth layer enforces it before a handler runs.
pub static ACCESS: Access = Access {
    service: "kefu.customers.v1.CustomerService",
    rules: &[
        ("CreateCustomer", WRITERS),
        ("GetCustomer", READERS),
        ("UpdateCustomer", WRITERS),
        ("ListCustomers", READERS),
        ("ArchiveCustomer", MANAGERS),
        ("ImportCustomers", IMPORTERS),
        ("CreateContact", WRITERS),
        ("UpdateContact", WRITERS),
        ("DeleteContact", WRITERS),
        ("UpdateTaxProfile", WRITERS),
        ("GetTaxProfile", READERS),
        ("CreateConsent", WRITERS),
        ("RevokeConsent", WRITERS),
        ("ListConsents", READERS),
        ("ExportCustomerData", EXPORTERS),
        ("EraseCustomer", MANAGERS),
        ("ListAuditEntries", AUDITORS),
        ("VerifyAuditChain", AUDITORS),
        ("SetFollowUpPlan", WRITERS),
        ("GetFollowUpPlan", WRITERS),
        ("ListDueFollowUps", WRITERS),
        ("RecordFollowUpVisit", WRITERS),
        ("ListFollowUpVisits", READERS),
        ("ListFestivals", ANYONE),
        ("ListGreetingTargets", WRITERS),
        ("MarkGreetingSent", WRITERS),
    ],
};

/// Tunables of the customers service.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Follow-up cycle for new plans when none is given (days).
    pub follow_up_cycle_days: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self { follow_up_cycle_days: 30 }
    }
}

pub struct CustomersApi {
    pool: AnyPool,
    keys: Arc<DataKeyring>,
    settings: Settings,
}

impl CustomersApi {
    pub fn new(pool: AnyPool, keys: DataKeyring, settings: Settings) -> Self {
        Self { pool, keys: Arc::new(keys), settings }
    }
}

type Res<T> = Result<Response<T>, Status>;

fn ts(ms: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds: ms.div_euclid(1000), nanos: (ms.rem_euclid(1000) * 1_000_000) as i32 })
}

fn ts_ms(field: &str, t: &prost_types::Timestamp) -> Result<i64, Error> {
    if !(0..1_000_000_000).contains(&t.nanos) || !(0..=253_402_300_799).contains(&t.seconds) {
        return Err(Error::invalid(field, "is not a valid timestamp"));
    }
    Ok(t.seconds * 1000 + i64::from(t.nanos / 1_000_000))
}

fn id_field(field: &str, raw: &str) -> Result<String, Error> {
    uuid::Uuid::parse_str(raw.trim()).map(|u| u.to_string()).map_err(|_| {
        Error::invalid(
            field,
            if raw.trim().is_empty() { "is required".to_owned() } else { format!("{raw:?} is not a valid id") },
        )
    })
}

fn page_size(field: &str, raw: i32, default: i64, max: i64) -> Result<i64, Error> {
    match raw {
        0 => Ok(default),
        n if n < 0 => Err(Error::invalid(field, "must not be negative")),
        n => Ok(i64::from(n).min(max)),
    }
}

#[derive(Serialize, Deserialize)]
struct Cursor {
    k: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    a: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    b: String,
}

fn encode_token(kind: &str, a: &str, b: &str) -> String {
    let c = Cursor { k: kind.into(), a: a.into(), b: b.into() };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap_or_default())
}

fn decode_token(kind: &str, token: &str) -> Result<Option<(String, String)>, Error> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || Error::invalid("page_token", "is not a page token returned by this list");
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    let c: Cursor = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if c.k != kind {
        return Err(bad());
    }
    Ok(Some((c.a, c.b)))
}

async fn audit(
    conn: &mut AnyConnection,
    p: &Principal,
    action: &str,
    customer_id: &str,
    detail: impl Into<String>,
    purpose: &str,
) -> Result<(), Error> {
    store::append_audit(
        conn,
        AuditEvent {
            actor: &p.subject,
            actor_role: p.primary_role(),
            action,
            customer_id,
            detail: detail.into(),
            purpose,
        },
    )
    .await
    .map(|_| ())
}

// ---------------------------------------------------------------- customer fields

/// Validated customer fields, ready for the store.
struct CustomerFields {
    company_name: String,
    uscc: Uscc,
    taxpayer_type: i64,
    tax_credit_rating: i64,
    business_scope: String,
    industry: String,
    region: String,
    service_tier: i64,
    account_manager: String,
    tags: Vec<String>,
    preferred_channel: i64,
    language: String,
    greeting_opt_in: bool,
    lifecycle_status: i64,
}

fn parse_customer(c: &pb::Customer, allow_bad_check: bool) -> Result<CustomerFields, Error> {
    let mut v = Violations::new();
    let company_name = v.check(required_text("company_name", &c.company_name, 200));
    let uscc = v.check(Uscc::parse(&c.uscc, allow_bad_check));
    let taxpayer_type = v.check(enum_value::<pb::TaxpayerType>("taxpayer_type", c.taxpayer_type, None));
    let rating = v.check(enum_value("tax_credit_rating", c.tax_credit_rating, Some(pb::TaxCreditRating::Unspecified)));
    let business_scope = v.check(bounded_text("business_scope", &c.business_scope, 2000));
    let industry = v.check(bounded_text("industry", &c.industry, 100));
    let region = v.check(bounded_text("region", &c.region, 100));
    let tier = v.check(enum_value("service_tier", c.service_tier, Some(pb::ServiceTier::Standard)));
    let account_manager = v.check(bounded_text("account_manager", &c.account_manager, 64));
    let tags = v.check(domain::parse_tags(&c.tags));
    let prefs = c.preferences.clone().unwrap_or_default();
    let channel =
        v.check(enum_value("preferences.preferred_channel", prefs.preferred_channel, Some(kefu_proto::common::v1::Channel::Unspecified)));
    let language = v.check(bounded_text("preferences.language", &prefs.language, 16));
    let status = v.check(enum_value("lifecycle_status", c.lifecycle_status, Some(pb::LifecycleStatus::Active)));
    if let Some(s) = status
        && matches!(s, pb::LifecycleStatus::Archived | pb::LifecycleStatus::Erased)
    {
        v.add("lifecycle_status", "use ArchiveCustomer or EraseCustomer for that status");
    }
    v.finish().map_err(|e| e.within("customer"))?;
    let (
        Some(company_name),
        Some(uscc),
        Some(tt),
        Some(rating),
        Some(business_scope),
        Some(industry),
        Some(region),
        Some(tier),
        Some(account_manager),
        Some(tags),
        Some(channel),
        Some(language),
        Some(status),
    ) = (
        company_name,
        uscc,
        taxpayer_type,
        rating,
        business_scope,
        industry,
        region,
        tier,
        account_manager,
        tags,
        channel,
        language,
        status,
    )
    else {
        return Err(Error::invalid("customer", "is not valid"));
    };
    Ok(CustomerFields {
        company_name,
        uscc,
        taxpayer_type: tt as i64,
        tax_credit_rating: rating as i64,
        business_scope,
        industry,
        region,
        service_tier: tier as i64,
        account_manager,
        tags,
        preferred_channel: channel as i64,
        language: if language.is_empty() { "zh-CN".into() } else { language },
        greeting_opt_in: prefs.greeting_opt_in,
        lifecycle_status: status as i64,
    })
}

impl CustomerFields {
    fn apply(&self, row: &mut CustomerRow) {
        row.company_name.clone_from(&self.company_name);
        row.uscc = self.uscc.as_str().to_owned();
        row.uscc_check_failed = i64::from(self.uscc.check_failed);
        row.taxpayer_type = self.taxpayer_type;
        row.tax_credit_rating = self.tax_credit_rating;
        row.business_scope.clone_from(&self.business_scope);
        row.industry.clone_from(&self.industry);
        row.region.clone_from(&self.region);
        row.service_tier = self.service_tier;
        row.account_manager.clone_from(&self.account_manager);
        row.preferred_channel = self.preferred_channel;
        row.language.clone_from(&self.language);
        row.greeting_opt_in = i64::from(self.greeting_opt_in);
        row.lifecycle_status = self.lifecycle_status;
        row.live = 1;
    }
}

fn customer_pb(
    row: &CustomerRow,
    tags: Vec<String>,
    contacts: Vec<pb::Contact>,
    has_tax_profile: bool,
) -> pb::Customer {
    pb::Customer {
        id: row.id.clone(),
        company_name: row.company_name.clone(),
        uscc: row.uscc.clone(),
        uscc_check_failed: row.uscc_check_failed == 1,
        taxpayer_type: row.taxpayer_type as i32,
        tax_credit_rating: row.tax_credit_rating as i32,
        business_scope: row.business_scope.clone(),
        industry: row.industry.clone(),
        region: row.region.clone(),
        service_tier: row.service_tier as i32,
        account_manager: row.account_manager.clone(),
        tags,
        preferences: Some(pb::Preferences {
            preferred_channel: row.preferred_channel as i32,
            language: row.language.clone(),
            greeting_opt_in: row.greeting_opt_in == 1,
        }),
        lifecycle_status: row.lifecycle_status as i32,
        contacts,
        create_time: ts(row.created_at),
        update_time: ts(row.updated_at),
        etag: row.version.to_string(),
        has_tax_profile,
    }
}

fn contact_pb(c: &ContactRow) -> pb::Contact {
    pb::Contact {
        id: c.id.clone(),
        customer_id: c.customer_id.clone(),
        name: c.name.clone(),
        role: c.role.clone(),
        mobile: c.mobile.clone().unwrap_or_default(),
        email: c.email.clone().unwrap_or_default(),
        wechat_id: c.wechat_id.clone().unwrap_or_default(),
        primary: c.is_primary == 1,
    }
}

async fn load_customer(conn: &mut AnyConnection, row: &CustomerRow) -> Result<pb::Customer, Error> {
    let tags = store::tags(conn, &row.id).await?;
    let contacts = store::contacts(conn, &row.id).await?.iter().map(contact_pb).collect();
    let has_tax = store::has_tax_profile(conn, &row.id).await?;
    Ok(customer_pb(row, tags, contacts, has_tax))
}

/// Validates a contact into the row it becomes.
fn parse_contact(id: String, customer_id: &str, c: &pb::Contact) -> Result<ContactRow, Error> {
    let mut v = Violations::new();
    let name = v.check(required_text("name", &c.name, 64));
    let role = v.check(bounded_text("role", &c.role, 64));
    let mobile = if c.mobile.trim().is_empty() {
        Some(None)
    } else {
        v.check(Mobile::parse(&c.mobile)).map(|m| Some(m.as_str().to_owned()))
    };
    let email = if c.email.trim().is_empty() {
        Some(None)
    } else {
        v.check(Email::parse(&c.email)).map(|m| Some(m.as_str().to_owned()))
    };
    let wechat =
        v.check(bounded_text("wechat_id", &c.wechat_id, 64)).map(|w| if w.is_empty() { None } else { Some(w) });
    if c.mobile.trim().is_empty() && c.email.trim().is_empty() && c.wechat_id.trim().is_empty() {
        v.add("mobile", "a contact needs at least one of mobile, email or wechat_id");
    }
    v.finish()?;
    match (name, role, mobile, email, wechat) {
        (Some(name), Some(role), Some(mobile), Some(email), Some(wechat_id)) => Ok(ContactRow {
            id,
            customer_id: customer_id.to_owned(),
            name,
            role,
            mobile,
            email,
            wechat_id,
            is_primary: i64::from(c.primary),
        }),
        _ => Err(Error::invalid("contact", "is not valid")),
    }
}

fn new_contact_row(customer_id: &str, c: &pb::Contact) -> Result<ContactRow, Error> {
    parse_contact(uuid::Uuid::now_v7().to_string(), customer_id, c)
}

fn writable(row: &CustomerRow) -> Result<(), Error> {
    match row.lifecycle_status {
        5 => Err(Error::FailedPrecondition("this customer's personal data was erased; its records are locked".into())),
        _ => Ok(()),
    }
}

const UPDATABLE: &[&str] = &[
    "company_name",
    "uscc",
    "taxpayer_type",
    "tax_credit_rating",
    "business_scope",
    "industry",
    "region",
    "service_tier",
    "account_manager",
    "tags",
    "preferences",
    "preferences.preferred_channel",
    "preferences.language",
    "preferences.greeting_opt_in",
    "lifecycle_status",
];

fn merge_customer(current: &mut pb::Customer, patch: &pb::Customer, paths: &[String]) -> Result<(), Error> {
    let all: Vec<String> =
        UPDATABLE.iter().filter(|p| !p.starts_with("preferences.")).map(|s| (*s).to_owned()).collect();
    let paths = if paths.is_empty() { &all } else { paths };
    let mut v = Violations::new();
    let patch_prefs = patch.preferences.clone().unwrap_or_default();
    for p in paths {
        let prefs = current.preferences.get_or_insert_with(Default::default);
        match p.as_str() {
            "company_name" => current.company_name.clone_from(&patch.company_name),
            "uscc" => current.uscc.clone_from(&patch.uscc),
            "taxpayer_type" => current.taxpayer_type = patch.taxpayer_type,
            "tax_credit_rating" => current.tax_credit_rating = patch.tax_credit_rating,
            "business_scope" => current.business_scope.clone_from(&patch.business_scope),
            "industry" => current.industry.clone_from(&patch.industry),
            "region" => current.region.clone_from(&patch.region),
            "service_tier" => current.service_tier = patch.service_tier,
            "account_manager" => current.account_manager.clone_from(&patch.account_manager),
            "tags" => current.tags.clone_from(&patch.tags),
            "preferences" => *prefs = patch_prefs.clone(),
            "preferences.preferred_channel" => prefs.preferred_channel = patch_prefs.preferred_channel,
            "preferences.language" => prefs.language.clone_from(&patch_prefs.language),
            "preferences.greeting_opt_in" => prefs.greeting_opt_in = patch_prefs.greeting_opt_in,
            "lifecycle_status" => current.lifecycle_status = patch.lifecycle_status,
            other => {
                v.add("update_mask", format!("{other:?} is not an updatable field (one of: {})", UPDATABLE.join(", ")))
            }
        }
    }
    v.finish()
}

// ---------------------------------------------------------------- tax profile

#[derive(Serialize, Deserialize, Default)]
struct TaxSecret {
    tax_registration_number: String,
    tax_authority: String,
    bank_name: String,
    bank_account: String,
    revenue_band: String,
    tax_status_notes: String,
}

fn tax_aad(customer_id: &str) -> String {
    format!("kefu.customers.tax_profile:{customer_id}")
}

impl CustomersApi {
    fn open_tax(&self, customer_id: &str, row: &TaxProfileRow) -> Result<TaxSecret, Error> {
        let plain = self.keys.open(
            &tax_aad(customer_id),
            &Sealed { key_id: row.key_id.clone(), nonce: row.nonce.clone(), ciphertext: row.ciphertext.clone() },
        )?;
        Ok(serde_json::from_slice(&plain).map_err(anyhow::Error::from)?)
    }
}

fn tax_pb(customer_id: &str, s: &TaxSecret, masked: bool, updated_at: i64) -> pb::TaxProfile {
    if masked {
        pb::TaxProfile {
            customer_id: customer_id.to_owned(),
            tax_registration_number: domain::mask_middle(&s.tax_registration_number, 2, 4),
            tax_authority: s.tax_authority.clone(),
            bank_name: s.bank_name.clone(),
            bank_account: domain::mask_tail(&s.bank_account, 4),
            revenue_band: domain::mask_all(&s.revenue_band),
            tax_status_notes: domain::mask_all(&s.tax_status_notes),
            masked: true,
            update_time: ts(updated_at),
        }
    } else {
        pb::TaxProfile {
            customer_id: customer_id.to_owned(),
            tax_registration_number: s.tax_registration_number.clone(),
            tax_authority: s.tax_authority.clone(),
            bank_name: s.bank_name.clone(),
            bank_account: s.bank_account.clone(),
            revenue_band: s.revenue_band.clone(),
            tax_status_notes: s.tax_status_notes.clone(),
            masked: false,
            update_time: ts(updated_at),
        }
    }
}

fn parse_tax(t: &pb::TaxProfile) -> Result<TaxSecret, Error> {
    let mut v = Violations::new();
    let trn = v.check(bounded_text("tax_profile.tax_registration_number", &t.tax_registration_number, 32));
    let auth = v.check(bounded_text("tax_profile.tax_authority", &t.tax_authority, 128));
    let bank = v.check(bounded_text("tax_profile.bank_name", &t.bank_name, 128));
    let acct = v.check(bounded_text("tax_profile.bank_account", &t.bank_account, 40));
    if let Some(a) = &acct
        && !a.chars().all(|c| c.is_ascii_digit() || c == ' ' || c == '-')
    {
        v.add("tax_profile.bank_account", "may hold only digits, spaces and dashes");
    }
    let band = v.check(bounded_text("tax_profile.revenue_band", &t.revenue_band, 64));
    let notes = v.check(bounded_text("tax_profile.tax_status_notes", &t.tax_status_notes, 4000));
    v.finish()?;
    Ok(TaxSecret {
        tax_registration_number: trn.unwrap_or_default(),
        tax_authority: auth.unwrap_or_default(),
        bank_name: bank.unwrap_or_default(),
        bank_account: acct.unwrap_or_default(),
        revenue_band: band.unwrap_or_default(),
        tax_status_notes: notes.unwrap_or_default(),
    })
}

// ---------------------------------------------------------------- consents

fn consent_pb(c: &ConsentRow) -> pb::Consent {
    pb::Consent {
        id: c.id.clone(),
        customer_id: c.customer_id.clone(),
        purpose: c.purpose.clone(),
        recipient: c.recipient.clone(),
        data_categories: c.category_values(),
        grant_time: ts(c.granted_at),
        expire_time: c.expires_at.and_then(ts),
        revoke_time: c.revoked_at.and_then(ts),
        recorded_by: c.recorded_by.clone(),
        evidence: c.evidence.clone(),
        live: c.is_live(now_ms()),
    }
}

fn parse_categories(field: &str, raw: &[i32], empty_means_all: bool) -> Result<Vec<i32>, Error> {
    let mut out = Vec::new();
    for (i, c) in raw.iter().enumerate() {
        let cat: pb::DataCategory = enum_value(&format!("{field}[{i}]"), *c, None)?;
        if !out.contains(&(cat as i32)) {
            out.push(cat as i32);
        }
    }
    if out.is_empty() {
        if empty_means_all {
            return Ok(vec![1, 2, 3, 4]);
        }
        return Err(Error::invalid(field, "name at least one data category"));
    }
    out.sort_unstable();
    Ok(out)
}

// ---------------------------------------------------------------- follow-ups

fn plan_pb(p: &PlanRow) -> pb::FollowUpPlan {
    pb::FollowUpPlan {
        customer_id: p.customer_id.clone(),
        owner: p.owner.clone(),
        cycle_days: p.cycle_days as i32,
        next_due_date: p.next_due.clone(),
        active: p.active == 1,
        company_name: p.company_name.clone(),
        last_visit_date: p.last_visit.clone().unwrap_or_default(),
    }
}

fn visit_pb(v: &VisitRow) -> pb::FollowUpVisit {
    pb::FollowUpVisit {
        id: v.id.clone(),
        customer_id: v.customer_id.clone(),
        visit_date: v.visit_date.clone(),
        channel: v.channel as i32,
        outcome: v.outcome.clone(),
        satisfaction: v.satisfaction as i32,
        notes: v.notes.clone(),
        visited_by: v.visited_by.clone(),
        next_due_date: v.next_due.clone(),
    }
}

fn cycle_days(field: &str, raw: i32, default: u32) -> Result<i64, Error> {
    match raw {
        0 => Ok(i64::from(default)),
        1..=366 => Ok(i64::from(raw)),
        _ => Err(Error::invalid(field, "must be between 1 and 366 days")),
    }
}

fn add_days(d: chrono::NaiveDate, days: i64) -> chrono::NaiveDate {
    d.checked_add_signed(chrono::Duration::days(days)).unwrap_or(d)
}

fn festival_of(field: &str, raw: i32) -> Result<(pb::Festival, Festival), Error> {
    let f: pb::Festival = enum_value(field, raw, None)?;
    let d = match f {
        pb::Festival::Unspecified => return Err(Error::invalid(field, "is required")),
        pb::Festival::NewYear => Festival::NewYear,
        pb::Festival::SpringFestival => Festival::SpringFestival,
        pb::Festival::Lantern => Festival::Lantern,
        pb::Festival::LabourDay => Festival::LabourDay,
        pb::Festival::DragonBoat => Festival::DragonBoat,
        pb::Festival::MidAutumn => Festival::MidAutumn,
        pb::Festival::NationalDay => Festival::NationalDay,
        pb::Festival::DoubleNinth => Festival::DoubleNinth,
    };
    Ok((f, d))
}

fn festival_pb(f: Festival) -> pb::Festival {
    match f {
        Festival::NewYear => pb::Festival::NewYear,
        Festival::SpringFestival => pb::Festival::SpringFestival,
        Festival::Lantern => pb::Festival::Lantern,
        Festival::LabourDay => pb::Festival::LabourDay,
        Festival::DragonBoat => pb::Festival::DragonBoat,
        Festival::MidAutumn => pb::Festival::MidAutumn,
        Festival::NationalDay => pb::Festival::NationalDay,
        Festival::DoubleNinth => pb::Festival::DoubleNinth,
    }
}

fn festival_date_pb(f: Festival, year: i32) -> Result<pb::FestivalDate, Error> {
    Ok(pb::FestivalDate {
        festival: festival_pb(f) as i32,
        date: domain::format_date(f.date(year)?),
        lunar: f.is_lunar(),
        name_zh: f.name_zh().to_owned(),
    })
}

/// The channel and address to greet on: the preferred channel when the
/// primary contact has an address for it, else the first available.
fn greeting_route(preferred: i64, c: Option<&ContactRow>) -> (i32, String, String) {
    let Some(c) = c else {
        return (preferred as i32, String::new(), String::new());
    };
    let addr = |ch: kefu_proto::common::v1::Channel| -> Option<String> {
        match ch {
            kefu_proto::common::v1::Channel::Phone | kefu_proto::common::v1::Channel::Sms => c.mobile.clone(),
            kefu_proto::common::v1::Channel::Email => c.email.clone(),
            kefu_proto::common::v1::Channel::Wechat => c.wechat_id.clone(),
            _ => None,
        }
    };
    let pref = kefu_proto::common::v1::Channel::try_from(preferred as i32).unwrap_or(kefu_proto::common::v1::Channel::Unspecified);
    for ch in [pref, kefu_proto::common::v1::Channel::Wechat, kefu_proto::common::v1::Channel::Sms, kefu_proto::common::v1::Channel::Email] {
        if let Some(a) = addr(ch) {
            return (ch as i32, c.name.clone(), a);
        }
    }
    (preferred as i32, c.name.clone(), String::new())
}

// ---------------------------------------------------------------- the service

impl CustomersApi {
    async fn create(&self, p: &Principal, r: pb::CreateCustomerRequest) -> Result<pb::Customer, Error> {
        let input = r.customer.ok_or_else(|| Error::invalid("customer", "is required"))?;
        let request_id = bounded_text("request_id", &r.request_id, 128)?;
        let fields = parse_customer(&input, r.allow_invalid_uscc_checksum)?;
        let mut contact_rows = Vec::new();
        let mut v = Violations::new();
        if r.contacts.len() > 50 {
            v.add("contacts", "at most 50 contacts");
        }
        let id = uuid::Uuid::now_v7().to_string();
        for (i, c) in r.contacts.iter().enumerate() {
            if let Some(row) = v.check(new_contact_row(&id, c).map_err(|e| e.within(&format!("contacts[{i}]")))) {
                contact_rows.push(row);
            }
        }
        v.finish()?;
        if !contact_rows.iter().any(|c| c.is_primary == 1)
            && let Some(first) = contact_rows.first_mut()
        {
            first.is_primary = 1;
        }

        let mut tx = self.pool.begin().await.map_err(Error::from)?;
        if !request_id.is_empty()
            && let Some(existing) = store::customer_by_request_id(&mut tx, &request_id).await?
        {
            let out = load_customer(&mut tx, &existing).await?;
            tx.commit().await.map_err(Error::from)?;
            return Ok(out);
        }
        let now = now_ms();
        let mut row = CustomerRow {
            id: id.clone(),
            company_name: String::new(),
            uscc: String::new(),
            uscc_check_failed: 0,
            taxpayer_type: 0,
            tax_credit_rating: 0,
            business_scope: String::new(),
            industry: String::new(),
            region: String::new(),
            service_tier: 0,
            account_manager: String::new(),
            preferred_channel: 0,
            language: String::new(),
            greeting_opt_in: 0,
            lifecycle_status: 0,
            live: 1,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        fields.apply(&mut row);
        store::insert_customer(&mut tx, &row, (!request_id.is_empty()).then_some(request_id.as_str())).await?;
        store::set_tags(&mut tx, &id, &fields.tags).await?;
        let primary_seen = contact_rows.iter().position(|c| c.is_primary == 1);
        for (i, c) in contact_rows.iter_mut().enumerate() {
            c.is_primary = i64::from(Some(i) == primary_seen);
            store::upsert_contact(&mut tx, c, true).await?;
        }
        if !row.account_manager.is_empty() {
            let cycle = i64::from(self.settings.follow_up_cycle_days);
            store::put_plan(
                &mut tx,
                &PlanRow {
                    customer_id: id.clone(),
                    owner: row.account_manager.clone(),
                    cycle_days: cycle,
                    next_due: domain::format_date(add_days(domain::today(), cycle)),
                    active: 1,
                    last_visit: None,
                    company_name: row.company_name.clone(),
                },
            )
            .await?;
        }
        let detail = if row.uscc_check_failed == 1 { "uscc check character failed; accepted by override" } else { "" };
        audit(&mut tx, p, "customer.create", &id, detail, "").await?;
        let out = load_customer(&mut tx, &row).await?;
        tx.commit().await.map_err(Error::from)?;
        if row.uscc_check_failed == 1 {
            tracing::warn!(customer_id = %id, "customer created with a USCC that fails its check character");
        }
        Ok(out)
    }

    async fn update(&self, p: &Principal, r: pb::UpdateCustomerRequest) -> Result<pb::Customer, Error> {
        let patch = r.customer.ok_or_else(|| Error::invalid("customer", "is required"))?;
        let id = id_field("customer.id", &patch.id)?;
        let paths = r.update_mask.map(|m| m.paths).unwrap_or_default();
        let mut tx = self.pool.begin().await.map_err(Error::from)?;
        let mut row = store::require_customer(&mut tx, &id).await?;
        writable(&row)?;
        if !patch.etag.is_empty() && patch.etag != row.version.to_string() {
            return Err(Error::Aborted(format!(
                "etag {:?} is stale (current {}); reload the customer and retry",
                patch.etag, row.version
            )));
        }
        let mut current = load_customer(&mut tx, &row).await?;
        let before = current.clone();
        merge_customer(&mut current, &patch, &paths)?;
        if row.live == 0 && current.lifecycle_status == before.lifecycle_status {
            return Err(Error::FailedPrecondition(
                "the customer is archived; set lifecycle_status to reactivate it".into(),
            ));
        }
        // Keep an accepted pilot code's override when the USCC is unchanged.
        let allow = r.allow_invalid_uscc_checksum || (current.uscc == before.uscc && before.uscc_check_failed);
        let fields = parse_customer(&current, allow)?;
        let version = row.version;
        fields.apply(&mut row);
        row.updated_at = now_ms();
        store::update_customer(&mut tx, &row, version).await?;
        store::set_tags(&mut tx, &id, &fields.tags).await?;
        let changed = changed_fields(&before, &current);
        audit(&mut tx, p, "customer.update", &id, changed.join(","), "").await?;
        let fresh = store::require_customer(&mut tx, &id).await?;
        let out = load_customer(&mut tx, &fresh).await?;
        tx.commit().await.map_err(Error::from)?;
        Ok(out)
    }

    async fn list(&self, r: pb::ListCustomersRequest) -> Result<pb::ListCustomersResponse, Error> {
        let size = page_size("page_size", r.page_size, 50, 500)?;
        let mut clauses = vec!["1 = 1".to_owned()];
        let mut binds = Vec::new();
        let mut push = |clause: &str, b: store::Bind, clauses: &mut Vec<String>| {
            binds.push(b);
            clauses.push(clause.replace("$?", &format!("${}", binds.len())));
        };
        if !r.include_archived {
            clauses.push("c.live = 1".into());
        }
        let name = bounded_text("name_contains", &r.name_contains, 200)?;
        if !name.is_empty() {
            let esc = name.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
            push("c.company_name_lower LIKE $? ESCAPE '\\'", store::Bind::Text(format!("%{esc}%")), &mut clauses);
        }
        if !r.uscc.trim().is_empty() {
            push("c.uscc = $?", store::Bind::Text(r.uscc.trim().to_ascii_uppercase()), &mut clauses);
        }
        if !r.contact_phone.trim().is_empty() {
            let m =
                Mobile::parse(&r.contact_phone).map_err(|e| e.within("contact_phone").field_rename("contact_phone"))?;
            push(
                "EXISTS (SELECT 1 FROM contacts x WHERE x.customer_id = c.id AND x.mobile = $?)",
                store::Bind::Text(m.as_str().to_owned()),
                &mut clauses,
            );
        }
        if !r.contact_email.trim().is_empty() {
            push(
                "EXISTS (SELECT 1 FROM contacts x WHERE x.customer_id = c.id AND x.email_lower = $?)",
                store::Bind::Text(r.contact_email.trim().to_lowercase()),
                &mut clauses,
            );
        }
        if !r.tag.trim().is_empty() {
            push(
                "EXISTS (SELECT 1 FROM customer_tags t WHERE t.customer_id = c.id AND t.tag = $?)",
                store::Bind::Text(r.tag.trim().to_owned()),
                &mut clauses,
            );
        }
        if r.service_tier != 0 {
            let tier: pb::ServiceTier = enum_value("service_tier", r.service_tier, None)?;
            push("c.service_tier = $?", store::Bind::Int(tier as i64), &mut clauses);
        }
        if !r.account_manager.trim().is_empty() {
            push("c.account_manager = $?", store::Bind::Text(r.account_manager.trim().to_owned()), &mut clauses);
        }
        if let Some((after, _)) = decode_token("customers", &r.page_token)? {
            push("c.id > $?", store::Bind::Text(after), &mut clauses);
        }
        let mut conn = self.pool.acquire().await.map_err(Error::from)?;
        let rows = store::list_customers(&mut conn, &clauses.join(" AND "), binds, size + 1).await?;
        let more = rows.len() as i64 > size;
        let mut customers = Vec::new();
        for row in rows.iter().take(size as usize) {
            customers.push(load_customer(&mut conn, row).await?);
        }
        let next_page_token = if more {
            customers.last().map(|c| encode_token("customers", &c.id, "")).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(pb::ListCustomersResponse { customers, next_page_token })
    }

    async fn import_row(&self, p: &Principal, row: pb::ImportCustomerRow) -> Result<bool, Error> {
        let customer = row.customer.ok_or_else(|| Error::invalid("customer", "is required"))?;
        let fields = parse_customer(&customer, false)?;
        {
            let mut conn = self.pool.acquire().await.map_err(Error::from)?;
            if store::live_customer_by_uscc(&mut conn, fields.uscc.as_str()).await?.is_some() {
                return Ok(false);
            }
        }
        let contacts = row.primary_contact.map(|mut c| {
            c.primary = true;
            c
        });
        let req = pb::CreateCustomerRequest {
            customer: Some(customer),
            contacts: contacts.into_iter().collect(),
            allow_invalid_uscc_checksum: false,
            request_id: String::new(),
        };
        match self.create(p, req).await {
            Ok(_) => Ok(true),
            // Another import of the same file got there first.
            Err(Error::AlreadyExists(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn export(
        &self,
        p: &Principal,
        r: pb::ExportCustomerDataRequest,
    ) -> Result<pb::ExportCustomerDataResponse, Error> {
        let id = id_field("customer_id", &r.customer_id)?;
        let recipient = bounded_text("recipient", &r.recipient, 200)?;
        let purpose = required_text("purpose", &r.purpose, 500)?;
        let cats = parse_categories("data_categories", &r.data_categories, true)?;
        let mut tx = self.pool.begin().await.map_err(Error::from)?;
        let row = store::require_customer(&mut tx, &id).await?;
        writable(&row)?;
        if !recipient.is_empty() {
            let now = now_ms();
            let consents = store::consents(&mut tx, &id).await?;
            let covered = consents.iter().any(|c| {
                c.is_live(now) && c.recipient == recipient && cats.iter().all(|k| c.category_values().contains(k))
            });
            if !covered {
                return Err(Error::FailedPrecondition(format!(
                    "no live consent from the customer covers disclosure to {recipient:?} of the requested data categories"
                )));
            }
        }
        let has = |c: pb::DataCategory| cats.contains(&(c as i32));
        let customer = load_customer(&mut tx, &row).await?;
        let mut doc = serde_json::json!({
            "format": "kefu.customers.export.v1",
            "exported_at": chrono::Utc::now().to_rfc3339(),
            "recipient": recipient,
            "purpose": purpose,
        });
        if has(pb::DataCategory::Profile) {
            doc["profile"] = serde_json::json!({
                "id": customer.id, "company_name": customer.company_name, "uscc": customer.uscc,
                "taxpayer_type": pb::TaxpayerType::try_from(customer.taxpayer_type).map(|t| t.as_str_name()).unwrap_or(""),
                "tax_credit_rating": pb::TaxCreditRating::try_from(customer.tax_credit_rating).map(|t| t.as_str_name()).unwrap_or(""),
                "business_scope": customer.business_scope, "industry": customer.industry, "region": customer.region,
                "service_tier": pb::ServiceTier::try_from(customer.service_tier).map(|t| t.as_str_name()).unwrap_or(""),
                "account_manager": customer.account_manager, "tags": customer.tags,
                "preferences": customer.preferences.as_ref().map(|p| serde_json::json!({
                    "preferred_channel": kefu_proto::common::v1::Channel::try_from(p.preferred_channel).map(|c| c.as_str_name()).unwrap_or(""),
                    "language": p.language, "greeting_opt_in": p.greeting_opt_in })),
                "lifecycle_status": pb::LifecycleStatus::try_from(customer.lifecycle_status).map(|s| s.as_str_name()).unwrap_or(""),
            });
        }
        if has(pb::DataCategory::Contacts) {
            doc["contacts"] = customer
                .contacts
                .iter()
                .map(|c| serde_json::json!({"name": c.name, "role": c.role, "mobile": c.mobile, "email": c.email, "wechat_id": c.wechat_id, "primary": c.primary}))
                .collect();
        }
        if has(pb::DataCategory::TaxFinancial)
            && let Some(t) = store::get_tax_profile(&mut tx, &id).await?
        {
            let s = self.open_tax(&id, &t)?;
            doc["tax_profile"] = serde_json::to_value(&s).map_err(anyhow::Error::from)?;
        }
        if has(pb::DataCategory::ServiceHistory) {
            let visits = store::visits(&mut tx, &id).await?;
            doc["follow_up_visits"] = visits
                .iter()
                .map(|v| serde_json::json!({"date": v.visit_date, "outcome": v.outcome, "satisfaction": v.satisfaction, "notes": v.notes, "visited_by": v.visited_by}))
                .collect();
            doc["greetings"] = store::greetings_of(&mut tx, &id)
                .await?
                .iter()
                .map(|(f, y, _, _)| serde_json::json!({"festival": pb::Festival::try_from(*f as i32).map(|x| x.as_str_name()).unwrap_or(""), "year": y}))
                .collect();
            doc["consents"] = store::consents(&mut tx, &id)
                .await?
                .iter()
                .map(|c| serde_json::json!({"purpose": c.purpose, "recipient": c.recipient, "categories": c.category_values(), "granted_at_ms": c.granted_at, "revoked_at_ms": c.revoked_at}))
                .collect();
        }
        let cat_names: Vec<&str> =
            cats.iter().filter_map(|c| pb::DataCategory::try_from(*c).ok()).map(|c| c.as_str_name()).collect();
        let detail = format!(
            "recipient={};categories={}",
            if recipient.is_empty() { "data subject" } else { &recipient },
            cat_names.join("|")
        );
        audit(&mut tx, p, "customer.export", &id, detail, &purpose).await?;
        tx.commit().await.map_err(Error::from)?;
        Ok(pb::ExportCustomerDataResponse {
            document: serde_json::to_string_pretty(&doc).map_err(anyhow::Error::from)?,
        })
    }
}

trait FieldRename {
    fn field_rename(self, to: &str) -> Self;
}

impl FieldRename for Error {
    fn field_rename(self, to: &str) -> Self {
        match self {
            Error::InvalidArgument(v) => Error::InvalidArgument(
                v.into_iter().map(|f| kefu_kit::FieldViolation::new(to, f.description)).collect(),
            ),
            other => other,
        }
    }
}

fn changed_fields(a: &pb::Customer, b: &pb::Customer) -> Vec<&'static str> {
    let mut out = Vec::new();
    macro_rules! cmp {
        ($($f:ident),*) => { $( if a.$f != b.$f { out.push(stringify!($f)); } )* };
    }
    cmp!(
        company_name,
        uscc,
        taxpayer_type,
        tax_credit_rating,
        business_scope,
        industry,
        region,
        service_tier,
        account_manager,
        tags,
        preferences,
        lifecycle_status
    );
    out
}

type ImportResult = pb::ImportCustomersResponse;

#[tonic::async_trait]
impl CustomerService for CustomersApi {
    #[tracing::instrument(skip_all)]
    async fn create_customer(&self, req: Request<pb::CreateCustomerRequest>) -> Res<pb::Customer> {
        let p = principal(&req)?;
        Ok(Response::new(self.create(&p, req.into_inner()).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn get_customer(&self, req: Request<pb::GetCustomerRequest>) -> Res<pb::Customer> {
        let id = id_field("id", &req.get_ref().id)?;
        let mut conn = self.pool.acquire().await.map_err(Error::from)?;
        let row = store::require_customer(&mut conn, &id).await?;
        Ok(Response::new(load_customer(&mut conn, &row).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn update_customer(&self, req: Request<pb::UpdateCustomerRequest>) -> Res<pb::Customer> {
        let p = principal(&req)?;
        Ok(Response::new(self.update(&p, req.into_inner()).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn list_customers(&self, req: Request<pb::ListCustomersRequest>) -> Res<pb::ListCustomersResponse> {
        Ok(Response::new(self.list(req.into_inner()).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn archive_customer(&self, req: Request<pb::ArchiveCustomerRequest>) -> Res<pb::Customer> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let id = id_field("id", &r.id)?;
        let mut tx = self.pool.begin().await.map_err(Error::from)?;
        let mut row = store::require_customer(&mut tx, &id).await?;
        writable(&row)?;
        if !r.etag.is_empty() && r.etag != row.version.to_string() {
            return Err(Error::Aborted("etag is stale; reload the customer and retry".into()).into());
        }
        if row.lifecycle_status != pb::LifecycleStatus::Archived as i64 {
            let version = row.version;
            row.lifecycle_status = pb::LifecycleStatus::Archived as i64;
            row.live = 0;
            row.updated_at = now_ms();
            store::update_customer(&mut tx, &row, version).await?;
            sqlx::query("UPDATE follow_up_plans SET active = 0 WHERE customer_id = $1")
                .bind(&id)
                .execute(&mut *tx)
                .await
                .map_err(Error::from)?;
            audit(&mut tx, &p, "customer.archive", &id, "", "").await?;
        }
        let fresh = store::require_customer(&mut tx, &id).await?;
        let out = load_customer(&mut tx, &fresh).await?;
        tx.commit().await.map_err(Error::from)?;
        Ok(Response::new(out))
    }

    #[tracing::instrument(skip_all)]
    async fn import_customers(&self, req: Request<Streaming<pb::ImportCustomerRow>>) -> Res<ImportResult> {
        let p = principal(&req)?;
        let mut stream = req.into_inner();
        let mut out = ImportResult::default();
        while let Some(row) = stream.message().await? {
            out.rows_received += 1;
            let line = row.line;
            match self.import_row(&p, row).await {
                Ok(true) => out.created += 1,
                Ok(false) => out.unchanged += 1,
                Err(Error::Internal(e)) => return Err(Error::Internal(e).into()),
                Err(e) => out.errors.push(pb::ImportRowError { line, reason: e.to_string() }),
            }
        }
        tracing::info!(
            received = out.rows_received,
            created = out.created,
            unchanged = out.unchanged,
            errors = out.errors.len(),
            "import finished"
        );
        Ok(Response::new(out))
    }

    #[tracing::instrument(skip_all)]
    async fn create_contact(&self, req: Request<pb::CreateContactRequest>) -> Res<pb::Contact> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let customer_id = id_field("customer_id", &r.customer_id)?;
        let contact = r.contact.ok_or_else(|| Error::invalid("contact", "is required"))?;
        let row = new_contact_row(&customer_id, &contact).map_err(|e| e.within("contact"))?;
        let mut tx = self.pool.begin().await.map_err(Error::from)?;
        let customer = store::require_customer(&mut tx, &customer_id).await?;
        writable(&customer)?;
        if store::contacts(&mut tx, &customer_id).await?.len() >= 50 {
            return Err(Error::FailedPrecondition("a customer has at most 50 contacts".into()).into());
        }
        store::upsert_contact(&mut tx, &row, true).await?;
        store::touch_customer(&mut tx, &customer_id).await?;
        audit(&mut tx, &p, "contact.create", &customer_id, format!("contact={}", row.id), "").await?;
        let saved = store::get_contact(&mut tx, &customer_id, &row.id).await?;
        tx.commit().await.map_err(Error::from)?;
        Ok(Response::new(contact_pb(&saved)))
    }

    #[tracing::instrument(skip_all)]
    async fn update_contact(&self, req: Request<pb::UpdateContactRequest>) -> Res<pb::Contact> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let patch = r.contact.ok_or_else(|| Error::invalid("contact", "is required"))?;
        let id = id_field("contact.id", &patch.id)?;
        let mut tx = self.pool.begin().await.map_err(Error::from)?;
        let existing = store::contact_by_id(&mut tx, &id).await?;
        if !patch.customer_id.is_empty() && patch.customer_id != existing.customer_id {
            return Err(Error::NotFound(format!("contact {id}")).into());
        }
        writable(&store::require_customer(&mut tx, &existing.customer_id).await?)?;
        let mut merged = contact_pb(&existing);
        let paths = r.update_mask.map(|m| m.paths).unwrap_or_default();
        let all = ["name", "role", "mobile", "email", "wechat_id", "primary"].map(String::from).to_vec();
        let mut v = Violations::new();
        for path in if paths.is_empty() { &all } else { &paths } {
            match path.as_str() {
                "name" => merged.name.clone_from(&patch.name),
                "role" => merged.role.clone_from(&patch.role),
                "mobile" => merged.mobile.clone_from(&patch.mobile),
                "email" => merged.email.clone_from(&patch.email),
                "wechat_id" => merged.wechat_id.clone_from(&patch.wechat_id),
                "primary" => merged.primary = patch.primary,
                other => v.add("update_mask", format!("{other:?} is not an updatable contact field")),
            }
        }
        v.finish()?;
        let row = parse_contact(id.clone(), &existing.customer_id, &merged).map_err(|e| e.within("contact"))?;
        store::upsert_contact(&mut tx, &row, false).await?;
        store::touch_customer(&mut tx, &row.customer_id).await?;
        audit(&mut tx, &p, "contact.update", &row.customer_id, format!("contact={id}"), "").await?;
        let saved = store::get_contact(&mut tx, &row.customer_id, &id).await?;
        tx.commit().await.map_err(Error::from)?;
        Ok(Response::new(contact_pb(&saved)))
    }

    #[tracing::instrument(skip_all)]
    async fn delete_contact(&self, req: Request<pb::DeleteContactRequest>) -> Res<pb::DeleteContactResponse> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let customer_id = id_field("customer_id", &r.customer_id)?;
        let id = id_field("contact_id", &r.contact_id)?;
        let mut tx = self.pool.begin().await.map_err(Error::from)?;
        writable(&store::require_customer(&mut tx, &customer_id).await?)?;
        store::delete_contact(&mut tx, &customer_id, &id).await?;
        store::touch_customer(&mut tx, &customer_id).await?;
        audit(&mut tx, &p, "contact.delete", &customer_id, format!("contact={id}"), "").await?;
        tx.commit().await.map_err(Error::from)?;
        Ok(Response::new(pb::DeleteContactResponse {}))
    }

    #[tracing::instrument(skip_all)]
    async fn update_tax_profile(&self, req: Request<pb::UpdateTaxProfileRequest>) -> Res<pb::TaxProfile> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let t = r.tax_profile.ok_or_else(|| Error::invalid("tax_profile", "is required"))?;
        let id = id_field("tax_profile.customer_id", &t.customer_id)?;
        let purpose = bounded_text("purpose", &r.purpose, 500)?;
        let secret = parse_tax(&t)?;
        let plain = serde_json::to_vec(&secret).map_err(|e| Error::Internal(e.into()))?;
        let sealed = self.keys.seal(&tax_aad(&id), &plain).map_err(Error::Internal)?;
        let now = now_ms();
        let mut tx = self.pool.begin().await.map_err(Error::from)?;
        writable(&store::require_customer(&mut tx, &id).await?)?;
        let row = TaxProfileRow {
            key_id: sealed.key_id,
            nonce: sealed.nonce,
            ciphertext: sealed.ciphertext,
            updated_at: now,
        };
        store::put_tax_profile(&mut tx, &id, &row, &p.subject).await?;
        store::touch_customer(&mut tx, &id).await?;
        audit(&mut tx, &p, "tax_profile.write", &id, "tax_profile", &purpose).await?;
        tx.commit().await.map_err(Error::from)?;
        // The writer gets the masked view back: writing is not permission to read.
        Ok(Response::new(tax_pb(&id, &secret, true, now)))
    }

    #[tracing::instrument(skip_all)]
    async fn get_tax_profile(&self, req: Request<pb::GetTaxProfileRequest>) -> Res<pb::TaxProfile> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let id = id_field("customer_id", &r.customer_id)?;
        if r.unmasked {
            if !p.has_any(SENSITIVE_READERS) {
                return Err(Error::PermissionDenied(
                    "reading the unmasked tax profile needs the supervisor, admin or service role".into(),
                )
                .into());
            }
            required_text("purpose", &r.purpose, 500)
                .map_err(|_| Error::invalid("purpose", "an unmasked read must state its purpose"))?;
        }
        let mut tx = self.pool.begin().await.map_err(Error::from)?;
        let customer = store::require_customer(&mut tx, &id).await?;
        if r.unmasked {
            writable(&customer)?;
        }
        let row = store::get_tax_profile(&mut tx, &id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("tax profile of customer {id}")))?;
        let secret = self.open_tax(&id, &row)?;
        if r.unmasked {
            audit(&mut tx, &p, "tax_profile.read", &id, "tax_profile unmasked", r.purpose.trim()).await?;
        }
        tx.commit().await.map_err(Error::from)?;
        Ok(Response::new(tax_pb(&id, &secret, !r.unmasked, row.updated_at)))
    }

    #[tracing::instrument(skip_all)]
    async fn create_consent(&self, req: Request<pb::CreateConsentRequest>) -> Res<pb::Consent> {
        let p = principal(&req)?;
        let c = req.into_inner().consent.ok_or_else(|| Error::invalid("consent", "is required"))?;
        let mut v = Violations::new();
        let customer_id = v.check(id_field("consent.customer_id", &c.customer_id));
        let purpose = v.check(required_text("consent.purpose", &c.purpose, 500));
        let recipient = v.check(bounded_text("consent.recipient", &c.recipient, 200));
        let cats = v.check(parse_categories("consent.data_categories", &c.data_categories, false));
        let evidence = v.check(bounded_text("consent.evidence", &c.evidence, 500));
        let now = now_ms();
        let granted = match &c.grant_time {
            Some(t) => v.check(ts_ms("consent.grant_time", t)),
            None => Some(now),
        };
        let expires = match &c.expire_time {
            Some(t) => v.check(ts_ms("consent.expire_time", t)).map(Some),
            None => Some(None),
        };
        if let (Some(g), Some(Some(e))) = (granted, expires)
            && e <= g
        {
            v.add("consent.expire_time", "must be after grant_time");
        }
        v.finish()?;
        let (
            Some(customer_id),
            Some(purpose),
            Some(recipient),
            Some(cats),
            Some(evidence),
            Some(granted),
            Some(expires),
        ) = (customer_id, purpose, recipient, cats, evidence, granted, expires)
        else {
            return Err(Error::invalid("consent", "is not valid").into());
        };
        let row = ConsentRow {
            id: uuid::Uuid::now_v7().to_string(),
            customer_id: customer_id.clone(),
            purpose,
            recipient,
            categories: cats.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
            granted_at: granted,
            expires_at: expires,
            revoked_at: None,
            recorded_by: p.subject.clone(),
            evidence,
        };
        let mut tx = self.pool.begin().await.map_err(Error::from)?;
        writable(&store::require_customer(&mut tx, &customer_id).await?)?;
        store::insert_consent(&mut tx, &row).await?;
        audit(
            &mut tx,
            &p,
            "consent.create",
            &customer_id,
            format!("consent={};recipient={}", row.id, row.recipient),
            &row.purpose,
        )
        .await?;
        tx.commit().await.map_err(Error::from)?;
        Ok(Response::new(consent_pb(&row)))
    }

    #[tracing::instrument(skip_all)]
    async fn revoke_consent(&self, req: Request<pb::RevokeConsentRequest>) -> Res<pb::Consent> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let customer_id = id_field("customer_id", &r.customer_id)?;
        let id = id_field("consent_id", &r.consent_id)?;
        let mut tx = self.pool.begin().await.map_err(Error::from)?;
        store::require_customer(&mut tx, &customer_id).await?;
        let row = store::revoke_consent(&mut tx, &customer_id, &id).await?;
        audit(&mut tx, &p, "consent.revoke", &customer_id, format!("consent={id}"), "").await?;
        tx.commit().await.map_err(Error::from)?;
        Ok(Response::new(consent_pb(&row)))
    }

    #[tracing::instrument(skip_all)]
    async fn list_consents(&self, req: Request<pb::ListConsentsRequest>) -> Res<pb::ListConsentsResponse> {
        let id = id_field("customer_id", &req.get_ref().customer_id)?;
        let mut conn = self.pool.acquire().await.map_err(Error::from)?;
        store::require_customer(&mut conn, &id).await?;
        let consents = store::consents(&mut conn, &id).await?.iter().map(consent_pb).collect();
        Ok(Response::new(pb::ListConsentsResponse { consents }))
    }

    #[tracing::instrument(skip_all)]
    async fn export_customer_data(
        &self,
        req: Request<pb::ExportCustomerDataRequest>,
    ) -> Res<pb::ExportCustomerDataResponse> {
        let p = principal(&req)?;
        Ok(Response::new(self.export(&p, req.into_inner()).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn erase_customer(&self, req: Request<pb::EraseCustomerRequest>) -> Res<pb::Customer> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let id = id_field("id", &r.id)?;
        let reason = required_text("reason", &r.reason, 500)?;
        let mut tx = self.pool.begin().await.map_err(Error::from)?;
        let row = store::require_customer(&mut tx, &id).await?;
        if row.lifecycle_status != pb::LifecycleStatus::Erased as i64 {
            store::erase_personal_data(&mut tx, &id).await?;
            audit(
                &mut tx,
                &p,
                "customer.erase",
                &id,
                "contacts, tags, preferences, visit notes purged; records kept",
                &reason,
            )
            .await?;
        }
        let fresh = store::require_customer(&mut tx, &id).await?;
        let out = load_customer(&mut tx, &fresh).await?;
        tx.commit().await.map_err(Error::from)?;
        Ok(Response::new(out))
    }

    #[tracing::instrument(skip_all)]
    async fn list_audit_entries(&self, req: Request<pb::ListAuditEntriesRequest>) -> Res<pb::ListAuditEntriesResponse> {
        let r = req.into_inner();
        let customer = if r.customer_id.is_empty() { None } else { Some(id_field("customer_id", &r.customer_id)?) };
        let size = page_size("page_size", r.page_size, 100, 1000)?;
        let after = match decode_token("audit", &r.page_token)? {
            Some((a, _)) => a.parse::<i64>().map_err(|_| Error::invalid("page_token", "is not valid"))?,
            None => 0,
        };
        let mut conn = self.pool.acquire().await.map_err(Error::from)?;
        let rows = store::list_audit(&mut conn, customer.as_deref(), after, size + 1).await?;
        let more = rows.len() as i64 > size;
        let entries: Vec<pb::AuditEntry> = rows
            .into_iter()
            .take(size as usize)
            .map(|(r, hash)| pb::AuditEntry {
                seq: r.seq,
                time: ts(r.at_ms),
                actor: r.actor,
                actor_role: r.actor_role,
                action: r.action,
                customer_id: r.customer_id,
                detail: r.detail,
                purpose: r.purpose,
                hash,
                prev_hash: r.prev_hash,
            })
            .collect();
        let next_page_token = if more {
            entries.last().map(|e| encode_token("audit", &e.seq.to_string(), "")).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListAuditEntriesResponse { entries, next_page_token }))
    }

    #[tracing::instrument(skip_all)]
    async fn verify_audit_chain(&self, _req: Request<pb::VerifyAuditChainRequest>) -> Res<pb::VerifyAuditChainResponse> {
        let mut conn = self.pool.acquire().await.map_err(Error::from)?;
        let (checked, problem) = store::verify_audit(&mut conn).await?;
        if let Some(b) = &problem {
            tracing::error!(seq = b.seq, problem = %b.problem, "audit chain verification failed");
        }
        Ok(Response::new(match problem {
            None => pb::VerifyAuditChainResponse {
                intact: true,
                entries_checked: checked,
                first_bad_seq: 0,
                problem: String::new(),
            },
            Some(b) => pb::VerifyAuditChainResponse {
                intact: false,
                entries_checked: checked,
                first_bad_seq: b.seq,
                problem: b.problem,
            },
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn set_follow_up_plan(&self, req: Request<pb::SetFollowUpPlanRequest>) -> Res<pb::FollowUpPlan> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let mut v = Violations::new();
        let customer_id = v.check(id_field("customer_id", &r.customer_id));
        let owner = v.check(required_text("owner", &r.owner, 64));
        let cycle = v.check(cycle_days("cycle_days", r.cycle_days, self.settings.follow_up_cycle_days));
        let next = if r.next_due_date.is_empty() {
            Some(None)
        } else {
            v.check(domain::parse_date("next_due_date", &r.next_due_date)).map(Some)
        };
        v.finish()?;
        let (Some(customer_id), Some(owner), Some(cycle), Some(next)) = (customer_id, owner, cycle, next) else {
            return Err(Error::invalid("request", "is not valid").into());
        };
        let mut tx = self.pool.begin().await.map_err(Error::from)?;
        let customer = store::require_customer(&mut tx, &customer_id).await?;
        writable(&customer)?;
        let existing = store::get_plan(&mut tx, &customer_id).await?;
        let next_due = next.unwrap_or_else(|| add_days(domain::today(), cycle));
        let plan = PlanRow {
            customer_id: customer_id.clone(),
            owner,
            cycle_days: cycle,
            next_due: domain::format_date(next_due),
            active: i64::from(r.active),
            last_visit: existing.and_then(|e| e.last_visit),
            company_name: customer.company_name.clone(),
        };
        store::put_plan(&mut tx, &plan).await?;
        audit(
            &mut tx,
            &p,
            "follow_up.plan",
            &customer_id,
            format!("owner={};cycle_days={cycle};active={}", plan.owner, r.active),
            "",
        )
        .await?;
        tx.commit().await.map_err(Error::from)?;
        Ok(Response::new(plan_pb(&plan)))
    }

    #[tracing::instrument(skip_all)]
    async fn get_follow_up_plan(&self, req: Request<pb::GetFollowUpPlanRequest>) -> Res<pb::FollowUpPlan> {
        let id = id_field("customer_id", &req.get_ref().customer_id)?;
        let mut conn = self.pool.acquire().await.map_err(Error::from)?;
        let plan = store::get_plan(&mut conn, &id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("follow-up plan of customer {id}")))?;
        Ok(Response::new(plan_pb(&plan)))
    }

    #[tracing::instrument(skip_all)]
    async fn list_due_follow_ups(
        &self,
        req: Request<pb::ListDueFollowUpsRequest>,
    ) -> Res<pb::ListDueFollowUpsResponse> {
        let r = req.into_inner();
        let due_by = if r.due_by.is_empty() { domain::today() } else { domain::parse_date("due_by", &r.due_by)? };
        let owner = bounded_text("owner", &r.owner, 64)?;
        let size = page_size("page_size", r.page_size, 100, 1000)?;
        let after = decode_token("follow_ups", &r.page_token)?;
        let mut conn = self.pool.acquire().await.map_err(Error::from)?;
        let rows = store::due_plans(
            &mut conn,
            &domain::format_date(due_by),
            (!owner.is_empty()).then_some(owner.as_str()),
            after,
            size + 1,
        )
        .await?;
        let more = rows.len() as i64 > size;
        let plans: Vec<pb::FollowUpPlan> = rows.iter().take(size as usize).map(plan_pb).collect();
        let next_page_token = if more {
            plans.last().map(|p| encode_token("follow_ups", &p.next_due_date, &p.customer_id)).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListDueFollowUpsResponse { plans, next_page_token }))
    }

    #[tracing::instrument(skip_all)]
    async fn record_follow_up_visit(&self, req: Request<pb::RecordFollowUpVisitRequest>) -> Res<pb::FollowUpVisit> {
        let p = principal(&req)?;
        let visit = req.into_inner().visit.ok_or_else(|| Error::invalid("visit", "is required"))?;
        let mut v = Violations::new();
        let customer_id = v.check(id_field("visit.customer_id", &visit.customer_id));
        let date = if visit.visit_date.is_empty() {
            Some(domain::today())
        } else {
            v.check(domain::parse_date("visit.visit_date", &visit.visit_date))
        };
        if let Some(d) = date
            && d > add_days(domain::today(), 1)
        {
            v.add("visit.visit_date", "is in the future");
        }
        let channel = v.check(enum_value("visit.channel", visit.channel, Some(kefu_proto::common::v1::Channel::Phone)));
        let outcome = v.check(required_text("visit.outcome", &visit.outcome, 500));
        if !(1..=5).contains(&visit.satisfaction) {
            v.add("visit.satisfaction", "must be 1 to 5");
        }
        let notes = v.check(bounded_text("visit.notes", &visit.notes, 4000));
        v.finish()?;
        let (Some(customer_id), Some(date), Some(channel), Some(outcome), Some(notes)) =
            (customer_id, date, channel, outcome, notes)
        else {
            return Err(Error::invalid("visit", "is not valid").into());
        };
        let mut tx = self.pool.begin().await.map_err(Error::from)?;
        let customer = store::require_customer(&mut tx, &customer_id).await?;
        writable(&customer)?;
        let mut plan = match store::get_plan(&mut tx, &customer_id).await? {
            Some(plan) => plan,
            None => PlanRow {
                customer_id: customer_id.clone(),
                owner: if customer.account_manager.is_empty() {
                    p.subject.clone()
                } else {
                    customer.account_manager.clone()
                },
                cycle_days: i64::from(self.settings.follow_up_cycle_days),
                next_due: String::new(),
                active: 1,
                last_visit: None,
                company_name: customer.company_name.clone(),
            },
        };
        let next_due = domain::format_date(add_days(date, plan.cycle_days));
        // A late-recorded older visit does not move the schedule backwards.
        let visit_date = domain::format_date(date);
        if plan.last_visit.as_deref().is_none_or(|l| l <= visit_date.as_str()) {
            plan.last_visit = Some(visit_date.clone());
            plan.next_due.clone_from(&next_due);
        }
        store::put_plan(&mut tx, &plan).await?;
        let row = VisitRow {
            id: uuid::Uuid::now_v7().to_string(),
            customer_id: customer_id.clone(),
            visit_date,
            channel: channel as i64,
            outcome,
            satisfaction: i64::from(visit.satisfaction),
            notes,
            visited_by: p.subject.clone(),
            next_due: plan.next_due.clone(),
        };
        store::insert_visit(&mut tx, &row).await?;
        audit(
            &mut tx,
            &p,
            "follow_up.visit",
            &customer_id,
            format!("visit={};satisfaction={}", row.id, row.satisfaction),
            "",
        )
        .await?;
        tx.commit().await.map_err(Error::from)?;
        Ok(Response::new(visit_pb(&row)))
    }

    #[tracing::instrument(skip_all)]
    async fn list_follow_up_visits(
        &self,
        req: Request<pb::ListFollowUpVisitsRequest>,
    ) -> Res<pb::ListFollowUpVisitsResponse> {
        let id = id_field("customer_id", &req.get_ref().customer_id)?;
        let mut conn = self.pool.acquire().await.map_err(Error::from)?;
        store::require_customer(&mut conn, &id).await?;
        let visits = store::visits(&mut conn, &id).await?.iter().map(visit_pb).collect();
        Ok(Response::new(pb::ListFollowUpVisitsResponse { visits }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_festivals(&self, req: Request<pb::ListFestivalsRequest>) -> Res<pb::ListFestivalsResponse> {
        let year = req.get_ref().year;
        let year = if year == 0 { chrono::Datelike::year(&domain::today()) } else { year };
        let mut festivals = Festival::ALL.iter().map(|f| festival_date_pb(*f, year)).collect::<Result<Vec<_>, _>>()?;
        festivals.sort_by(|a, b| a.date.cmp(&b.date));
        Ok(Response::new(pb::ListFestivalsResponse { festivals }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_greeting_targets(
        &self,
        req: Request<pb::ListGreetingTargetsRequest>,
    ) -> Res<pb::ListGreetingTargetsResponse> {
        let r = req.into_inner();
        let (fpb, f) = festival_of("festival", r.festival)?;
        let year = if r.year == 0 { chrono::Datelike::year(&domain::today()) } else { r.year };
        let festival_date = festival_date_pb(f, year)?;
        let size = page_size("page_size", r.page_size, 100, 1000)?;
        let after = decode_token("greetings", &r.page_token)?.map(|(a, _)| a).unwrap_or_default();
        let mut conn = self.pool.acquire().await.map_err(Error::from)?;
        let rows = store::greeting_candidates(&mut conn, fpb as i64, i64::from(year), r.pending_only, &after, size + 1)
            .await?;
        let more = rows.len() as i64 > size;
        let mut targets = Vec::new();
        for (c, sent) in rows.iter().take(size as usize) {
            let contacts = store::contacts(&mut conn, &c.id).await?;
            let (channel, name, address) =
                greeting_route(c.preferred_channel, contacts.iter().find(|x| x.is_primary == 1));
            targets.push(pb::GreetingTarget {
                customer_id: c.id.clone(),
                company_name: c.company_name.clone(),
                preferred_channel: channel,
                contact_name: name,
                contact_address: address,
                already_sent: sent.is_some(),
            });
        }
        let next_page_token = if more {
            targets.last().map(|t| encode_token("greetings", &t.customer_id, "")).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListGreetingTargetsResponse {
            festival_date: Some(festival_date),
            targets,
            next_page_token,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn mark_greeting_sent(&self, req: Request<pb::MarkGreetingSentRequest>) -> Res<pb::MarkGreetingSentResponse> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let mut v = Violations::new();
        let customer_id = v.check(id_field("customer_id", &r.customer_id));
        let festival = v.check(festival_of("festival", r.festival));
        if !(1901..=2100).contains(&r.year) {
            v.add("year", "must be between 1901 and 2100");
        }
        let channel = v.check(enum_value("channel", r.channel, Some(kefu_proto::common::v1::Channel::Unspecified)));
        v.finish()?;
        let (Some(customer_id), Some((fpb, _)), Some(channel)) = (customer_id, festival, channel) else {
            return Err(Error::invalid("request", "is not valid").into());
        };
        let mut tx = self.pool.begin().await.map_err(Error::from)?;
        writable(&store::require_customer(&mut tx, &customer_id).await?)?;
        let (newly, at) =
            store::mark_greeting(&mut tx, &customer_id, fpb as i64, i64::from(r.year), channel as i64, &p.subject)
                .await?;
        if newly {
            audit(&mut tx, &p, "greeting.sent", &customer_id, format!("{}:{}", fpb.as_str_name(), r.year), "").await?;
        }
        tx.commit().await.map_err(Error::from)?;
        Ok(Response::new(pb::MarkGreetingSentResponse { newly_marked: newly, sent_time: ts(at) }))
    }
}
