//! Customers: create (idempotent on `request_id`), get, update, list,
//! archive, and bulk import.
use kefu_kit::{
    Error, Result,
    auth::{Principal, Role},
    db::{self, Claim},
    error::Violations,
    etag, page, parse,
};
use kefu_proto::customers::v1 as pb;
use sqlx::AnyConnection;
use tonic::Streaming;

use super::{CustomersApi, audit, contacts, unchecked};
use crate::{
    domain::{
        self, Channel, Customer, CustomerFilter, FollowUpPlan, LifecycleStatus, MAX_CONTACTS, MAX_TAG_CHARS, MAX_TAGS,
        Mobile, ServiceTier, TaxCreditRating, TaxpayerType, Uscc,
    },
    store::{self, now_ms},
};

/// The idempotency scope of CreateCustomer's `request_id`.
const IDEMPOTENCY_SCOPE: &str = "customers";
const LIST: &str = "customers";

/// A customer's writable fields, checked.
struct CustomerFields {
    company_name: String,
    uscc: Uscc,
    taxpayer_type: TaxpayerType,
    tax_credit_rating: TaxCreditRating,
    business_scope: String,
    industry: String,
    region: String,
    service_tier: ServiceTier,
    account_manager: String,
    tags: Vec<String>,
    preferred_channel: Channel,
    language: String,
    greeting_opt_in: bool,
    lifecycle_status: LifecycleStatus,
}

/// Checks every field of `c` and names each bad one (paths relative to the
/// customer message).
fn parse_customer(c: &pb::Customer, allow_bad_check: bool) -> Result<CustomerFields> {
    let mut v = Violations::new();
    // A value is a placeholder only when its violation was recorded, and then
    // `finish` below returns the violations instead.
    let company_name = v
        .check(
            parse::required_line("company_name", &c.company_name, 200)
                .and_then(|n| parse::no_formula("company_name", n)),
        )
        .unwrap_or_default();
    let uscc = v.check(Uscc::parse("uscc", &c.uscc, allow_bad_check));
    let taxpayer_type = v.check(parse::enumeration::<TaxpayerType>("taxpayer_type", c.taxpayer_type, None));
    let tax_credit_rating =
        v.check(parse::enumeration("tax_credit_rating", c.tax_credit_rating, Some(TaxCreditRating::Unspecified)));
    let business_scope = v
        .check(
            parse::text("business_scope", &c.business_scope, 2000).and_then(|t| parse::no_formula("business_scope", t)),
        )
        .unwrap_or_default();
    let industry = v.check(parse::label("industry", &c.industry, 100)).unwrap_or_default();
    let region = v.check(parse::label("region", &c.region, 100)).unwrap_or_default();
    let service_tier = v.check(parse::enumeration("service_tier", c.service_tier, Some(ServiceTier::Standard)));
    let account_manager = v.check(parse::label("account_manager", &c.account_manager, 64)).unwrap_or_default();
    let tags = v.check(parse::tags("tags", &c.tags, MAX_TAGS, MAX_TAG_CHARS)).unwrap_or_default();
    for (i, t) in tags.iter().enumerate() {
        v.check(parse::no_formula(&format!("tags[{i}]"), t.clone()));
    }
    let prefs = c.preferences.clone().unwrap_or_default();
    let preferred_channel = v.check(parse::enumeration(
        "preferences.preferred_channel",
        prefs.preferred_channel,
        Some(Channel::Unspecified),
    ));
    let language = v.check(parse::line("preferences.language", &prefs.language, 16)).unwrap_or_default();
    let lifecycle_status =
        v.check(parse::enumeration("lifecycle_status", c.lifecycle_status, Some(LifecycleStatus::Active)));
    if matches!(lifecycle_status, Some(LifecycleStatus::Archived | LifecycleStatus::Erased)) {
        v.add("lifecycle_status", "use ArchiveCustomer or EraseCustomer for that status");
    }
    v.finish()?;
    let (
        Some(uscc),
        Some(taxpayer_type),
        Some(tax_credit_rating),
        Some(service_tier),
        Some(preferred_channel),
        Some(lifecycle_status),
    ) = (uscc, taxpayer_type, tax_credit_rating, service_tier, preferred_channel, lifecycle_status)
    else {
        return Err(unchecked("customer"));
    };
    Ok(CustomerFields {
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
        preferred_channel,
        language: if language.is_empty() { "zh-CN".into() } else { language },
        greeting_opt_in: prefs.greeting_opt_in,
        lifecycle_status,
    })
}

impl CustomerFields {
    fn apply(&self, c: &mut Customer) {
        c.company_name.clone_from(&self.company_name);
        c.uscc = self.uscc.as_str().to_owned();
        c.uscc_check_failed = self.uscc.check_failed;
        c.taxpayer_type = self.taxpayer_type;
        c.tax_credit_rating = self.tax_credit_rating;
        c.business_scope.clone_from(&self.business_scope);
        c.industry.clone_from(&self.industry);
        c.region.clone_from(&self.region);
        c.service_tier = self.service_tier;
        c.account_manager.clone_from(&self.account_manager);
        c.preferred_channel = self.preferred_channel;
        c.language.clone_from(&self.language);
        c.greeting_opt_in = self.greeting_opt_in;
        c.lifecycle_status = self.lifecycle_status;
    }
}

fn customer_pb(c: &Customer, tags: Vec<String>, contacts: Vec<pb::Contact>, has_tax_profile: bool) -> pb::Customer {
    pb::Customer {
        id: c.id.clone(),
        company_name: c.company_name.clone(),
        uscc: c.uscc.clone(),
        uscc_check_failed: c.uscc_check_failed,
        taxpayer_type: c.taxpayer_type.into(),
        tax_credit_rating: c.tax_credit_rating.into(),
        business_scope: c.business_scope.clone(),
        industry: c.industry.clone(),
        region: c.region.clone(),
        service_tier: c.service_tier.into(),
        account_manager: c.account_manager.clone(),
        tags,
        preferences: Some(pb::Preferences {
            preferred_channel: c.preferred_channel.into(),
            language: c.language.clone(),
            greeting_opt_in: c.greeting_opt_in,
        }),
        lifecycle_status: c.lifecycle_status.into(),
        contacts,
        create_time: parse::ts(c.created_at),
        update_time: parse::ts(c.updated_at),
        etag: etag::of(c.version),
        has_tax_profile,
    }
}

/// The customer with its tags and contacts, as sent.
pub(super) async fn load(conn: &mut AnyConnection, c: &Customer) -> Result<pb::Customer> {
    let tags = store::tags(conn, &c.id).await?;
    let contacts = store::contacts(conn, &c.id).await?.iter().map(contacts::contact_pb).collect();
    let has_tax = store::has_tax_profile(conn, &c.id).await?;
    Ok(customer_pb(c, tags, contacts, has_tax))
}

pub(super) async fn create(api: &CustomersApi, p: &Principal, r: pb::CreateCustomerRequest) -> Result<pb::Customer> {
    let id = uuid::Uuid::now_v7().to_string();
    // Every bad field of the request, the customer's and the contacts', is
    // named in one answer.
    let mut v = Violations::new();
    let request_id = v.check(parse::line("request_id", &r.request_id, 128)).unwrap_or_default();
    let fields = match &r.customer {
        Some(c) => v.check(parse_customer(c, r.allow_invalid_uscc_checksum).map_err(|e| e.within("customer"))),
        None => {
            v.add("customer", "is required");
            None
        }
    };
    let mut new_contacts = Vec::with_capacity(r.contacts.len().min(MAX_CONTACTS));
    if r.contacts.len() > MAX_CONTACTS {
        v.add("contacts", format!("has {} entries; at most {MAX_CONTACTS}", r.contacts.len()));
    } else {
        for (i, c) in r.contacts.iter().enumerate() {
            let parsed = contacts::parse_contact(uuid::Uuid::now_v7().to_string(), &id, c)
                .map_err(|e| e.within(&format!("contacts[{i}]")));
            new_contacts.extend(v.check(parsed));
        }
    }
    v.finish()?;
    let fields = fields.ok_or_else(|| unchecked("customer"))?;
    // The first contact is primary unless one says otherwise; only the first
    // that says so stays primary.
    let primary = new_contacts.iter().position(|c| c.primary).unwrap_or(0);
    for (i, c) in new_contacts.iter_mut().enumerate() {
        c.primary = i == primary;
    }

    let mut tx = api.pool.begin().await?;
    // The request id is claimed before anything else is written, so a
    // concurrent retry waits on the claim and then answers with the customer
    // this transaction commits (or, if it rolls back, makes it itself).
    if !request_id.is_empty() {
        let unkeyed = pb::CreateCustomerRequest { request_id: String::new(), ..r.clone() };
        let fingerprint = db::fingerprint_of(&unkeyed);
        if let Claim::Existing(existing) =
            db::claim_request_id(&mut tx, IDEMPOTENCY_SCOPE, &request_id, &id, &fingerprint).await?
        {
            let earlier = store::require_customer(&mut tx, &existing).await?;
            let out = load(&mut tx, &earlier).await?;
            tx.rollback().await?;
            return Ok(out);
        }
    }
    let now = now_ms();
    let mut customer = Customer { id: id.clone(), version: 1, created_at: now, updated_at: now, ..Customer::default() };
    fields.apply(&mut customer);
    store::insert_customer(&mut tx, &customer, (!request_id.is_empty()).then_some(request_id.as_str())).await?;
    store::set_tags(&mut tx, &id, &fields.tags).await?;
    for c in &new_contacts {
        store::insert_contact(&mut tx, c).await?;
    }
    if !customer.account_manager.is_empty() {
        let cycle = i64::from(api.settings.follow_up_cycle_days);
        let plan = FollowUpPlan {
            customer_id: id.clone(),
            owner: customer.account_manager.clone(),
            cycle_days: cycle,
            next_due: domain::add_days(domain::today(), cycle),
            active: true,
            last_visit: None,
            company_name: customer.company_name.clone(),
        };
        store::put_plan(&mut tx, &plan).await?;
    }
    let out = load(&mut tx, &customer).await?;
    // The audit chain's head row is held from the append to the commit:
    // append last, so concurrent creates wait on it as briefly as can be.
    let detail = if customer.uscc_check_failed { "uscc check character failed; accepted by override" } else { "" };
    audit::record(api, &mut tx, p, "customer.create", &id, detail, "").await?;
    tx.commit().await?;
    if customer.uscc_check_failed {
        tracing::warn!(customer_id = %id, "customer created with a USCC that fails its check character");
    }
    Ok(out)
}

/// Roles that see contacts' details in the clear in GetCustomer.
const CONTACT_READERS: &[Role] = &[Role::Agent, Role::Supervisor, Role::Admin, Role::Service];

pub(super) async fn get(api: &CustomersApi, p: &Principal, r: pb::GetCustomerRequest) -> Result<pb::Customer> {
    let id = parse::id("id", &r.id)?;
    let mut conn = api.pool.acquire().await?;
    let c = store::require_customer(&mut conn, &id).await?;
    let mut out = load(&mut conn, &c).await?;
    if r.omit_contacts {
        out.contacts.clear();
    } else if !p.has_any(CONTACT_READERS) {
        out.contacts = out.contacts.into_iter().map(contacts::masked).collect();
    } else if out.contacts.iter().any(|c| !c.mobile.is_empty() || !c.email.is_empty() || !c.wechat_id.is_empty()) {
        store::log_access(&mut conn, &p.subject, p.primary_role(), &id, "contacts").await?;
    }
    Ok(out)
}

/// Update-mask paths of a customer.
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

/// Copies the masked fields of `patch` onto `current` (an empty mask: every
/// top-level field).
fn merge_customer(current: &mut pb::Customer, patch: &pb::Customer, paths: &[String]) -> Result<()> {
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
                let shown: String = other.chars().take(64).collect();
                v.add("update_mask", format!("{shown:?} is not an updatable field (one of: {})", UPDATABLE.join(", ")))
            }
        }
    }
    v.finish()
}

/// The top-level fields that differ, for the audit trail (names only).
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

pub(super) async fn update(api: &CustomersApi, p: &Principal, r: pb::UpdateCustomerRequest) -> Result<pb::Customer> {
    let patch = r.customer.ok_or_else(|| Error::invalid("customer", "is required"))?;
    let id = parse::id("customer.id", &patch.id)?;
    let paths = r.update_mask.map(|m| m.paths).unwrap_or_default();
    let mut tx = api.pool.begin().await?;
    let mut customer = store::require_customer(&mut tx, &id).await?;
    customer.ensure_writable()?;
    etag::check("customer", &patch.etag, customer.version)?;
    let mut merged = load(&mut tx, &customer).await?;
    let before = merged.clone();
    merge_customer(&mut merged, &patch, &paths)?;
    if !customer.is_live() && merged.lifecycle_status == before.lifecycle_status {
        return Err(Error::FailedPrecondition(
            "the customer is archived; set lifecycle_status to reactivate it".into(),
        ));
    }
    // Keep an accepted pilot code's override when the USCC is unchanged.
    let allow = r.allow_invalid_uscc_checksum || (merged.uscc == before.uscc && before.uscc_check_failed);
    let fields = parse_customer(&merged, allow).map_err(|e| e.within("customer"))?;
    let version = customer.version;
    fields.apply(&mut customer);
    customer.updated_at = now_ms();
    store::update_customer(&mut tx, &customer, version).await?;
    store::set_tags(&mut tx, &id, &fields.tags).await?;
    audit::record(api, &mut tx, p, "customer.update", &id, changed_fields(&before, &merged).join(","), "").await?;
    let fresh = store::require_customer(&mut tx, &id).await?;
    let out = load(&mut tx, &fresh).await?;
    tx.commit().await?;
    Ok(out)
}

/// An optional filter: empty is `None`.
fn opt(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

pub(super) async fn list(
    api: &CustomersApi,
    p: &Principal,
    r: pb::ListCustomersRequest,
) -> Result<pb::ListCustomersResponse> {
    let mut v = Violations::new();
    let size = v.check(parse::page_size("page_size", r.page_size, 50, 500)).unwrap_or_default();
    let mut filter = CustomerFilter {
        include_archived: r.include_archived,
        name_contains: v.check(parse::line("name_contains", &r.name_contains, 200)).and_then(opt),
        uscc: v.check(parse::line("uscc", &r.uscc, 32)).and_then(opt).map(|u| u.to_ascii_uppercase()),
        contact_email: v.check(parse::line("contact_email", &r.contact_email, 254)).and_then(opt),
        contact_name: v.check(parse::line("contact_name", &r.contact_name, 100)).and_then(opt),
        tag: v.check(parse::line("tag", &r.tag, MAX_TAG_CHARS)).and_then(opt),
        account_manager: v.check(parse::line("account_manager", &r.account_manager, 64)).and_then(opt),
        after_id: v.check(page::after(LIST, &r.page_token)).flatten(),
        ..CustomerFilter::default()
    };
    if !r.contact_phone.trim().is_empty() {
        filter.contact_mobile = v.check(Mobile::parse("contact_phone", &r.contact_phone));
    }
    if r.service_tier != 0 {
        filter.service_tier = v.check(parse::enumeration::<ServiceTier>("service_tier", r.service_tier, None));
    }
    v.finish()?;
    let mut conn = api.reads.acquire().await?;
    let rows = store::list_customers(&mut conn, &filter, size + 1).await?;
    let (rows, more) = page::split(rows, size);
    let next_page_token = page::next(LIST, &rows, more, |c| c.id.clone());
    let mut customers = Vec::with_capacity(rows.len());
    // Lists never carry contact details in the clear to people: pulling a
    // book of phone numbers takes one logged GetCustomer per customer.
    let clear = p.has_any(&[Role::Service]);
    let ids: Vec<&str> = rows.iter().map(|c| c.id.as_str()).collect();
    let mut children = store::children_of_many(&mut conn, &ids).await?;
    for c in &rows {
        let (tags, contact_rows, has_tax) = children.remove(&c.id).unwrap_or_default();
        let mut out = customer_pb(c, tags, contact_rows.iter().map(contacts::contact_pb).collect(), has_tax);
        if !clear {
            out.contacts = out.contacts.into_iter().map(contacts::masked).collect();
        }
        customers.push(out);
    }
    Ok(pb::ListCustomersResponse { customers, next_page_token })
}

pub(super) async fn archive(api: &CustomersApi, p: &Principal, r: pb::ArchiveCustomerRequest) -> Result<pb::Customer> {
    let id = parse::id("id", &r.id)?;
    let mut tx = api.pool.begin().await?;
    let mut customer = store::require_customer(&mut tx, &id).await?;
    customer.ensure_writable()?;
    etag::check("customer", &r.etag, customer.version)?;
    if customer.lifecycle_status != LifecycleStatus::Archived {
        let version = customer.version;
        customer.lifecycle_status = LifecycleStatus::Archived;
        customer.updated_at = now_ms();
        store::update_customer(&mut tx, &customer, version).await?;
        store::deactivate_plan(&mut tx, &id).await?;
        audit::record(api, &mut tx, p, "customer.archive", &id, "", "").await?;
    }
    let fresh = store::require_customer(&mut tx, &id).await?;
    let out = load(&mut tx, &fresh).await?;
    tx.commit().await?;
    Ok(out)
}

/// Rows refused that an import's answer lists by line; the rest are counted.
pub const IMPORT_ERRORS_LISTED: usize = 1_000;

/// Imports rows as they arrive: good rows are created, rows whose USCC a live
/// customer already has are left unchanged, bad rows are reported by line
/// (the first [`IMPORT_ERRORS_LISTED`]) and counted. A database failure ends
/// the import.
pub(super) async fn import(
    api: &CustomersApi,
    p: &Principal,
    mut rows: Streaming<pb::ImportCustomerRow>,
) -> Result<pb::ImportCustomersResponse> {
    let mut out = pb::ImportCustomersResponse::default();
    while let Some(row) = rows.message().await.map_err(|s| {
        Error::invalid("rows", format!("the stream broke after {} rows: {}", out.rows_received, s.message()))
    })? {
        out.rows_received += 1;
        let line = row.line;
        match import_row(api, p, row).await {
            Ok(true) => out.created += 1,
            Ok(false) => out.unchanged += 1,
            Err(e @ (Error::Internal(_) | Error::Unavailable(_))) => return Err(e),
            Err(e) => {
                out.rejected += 1;
                if out.errors.len() < IMPORT_ERRORS_LISTED {
                    out.errors.push(pb::ImportRowError { line, reason: e.to_string() });
                }
            }
        }
    }
    tracing::info!(
        received = out.rows_received,
        created = out.created,
        unchanged = out.unchanged,
        rejected = out.rejected,
        "import finished"
    );
    if out.created >= 1_000 {
        kefu_kit::db::analyse_later(&api.pool, &["customers", "contacts", "customer_tags"]);
    }
    Ok(out)
}

/// Whether the row created a customer.
async fn import_row(api: &CustomersApi, p: &Principal, row: pb::ImportCustomerRow) -> Result<bool> {
    let customer = row.customer.ok_or_else(|| Error::invalid("customer", "is required"))?;
    let fields = parse_customer(&customer, false).map_err(|e| e.within("customer"))?;
    {
        let mut conn = api.pool.acquire().await?;
        if store::live_customer_by_uscc(&mut conn, fields.uscc.as_str()).await?.is_some() {
            return Ok(false);
        }
    }
    let contacts = row.primary_contact.map(|c| pb::Contact { primary: true, ..c });
    let req = pb::CreateCustomerRequest {
        customer: Some(customer),
        contacts: contacts.into_iter().collect(),
        allow_invalid_uscc_checksum: false,
        request_id: String::new(),
    };
    match create(api, p, req).await {
        Ok(_) => Ok(true),
        // Another import of the same file got there first.
        Err(Error::AlreadyExists(m)) if m == store::USCC_TAKEN => Ok(false),
        Err(e) => Err(e),
    }
}
