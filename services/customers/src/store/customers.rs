//! Customers, their tags and contacts.
use kefu_kit::{
    Error,
    db::{Bind, Columns, Where, fetch_all_as},
};
use sqlx::{AnyConnection, Row};

use super::{CONSTRAINTS, flag, now_ms, number, stored};
use crate::domain::{Contact, Customer, CustomerFilter, LifecycleStatus};

/// The columns of [`CustomerRecord`], for queries on customers (as `c`).
pub(super) const CUSTOMER_COLUMNS: &str = "c.id, c.company_name, c.uscc, c.uscc_check_failed, c.taxpayer_type, \
    c.tax_credit_rating, c.business_scope, c.industry, c.region, c.service_tier, c.account_manager, \
    c.preferred_channel, c.language, c.greeting_opt_in, c.lifecycle_status, c.version, c.created_at, c.updated_at";

/// A `customers` row as read; [`CustomerRecord::into_customer`] checks its
/// stored numbers.
#[derive(sqlx::FromRow)]
pub(super) struct CustomerRecord {
    id: String,
    company_name: String,
    uscc: String,
    uscc_check_failed: i64,
    taxpayer_type: i64,
    tax_credit_rating: i64,
    business_scope: String,
    industry: String,
    region: String,
    service_tier: i64,
    account_manager: String,
    preferred_channel: i64,
    language: String,
    greeting_opt_in: i64,
    lifecycle_status: i64,
    version: i64,
    created_at: i64,
    updated_at: i64,
}

impl CustomerRecord {
    pub(super) fn into_customer(self) -> Result<Customer, Error> {
        Ok(Customer {
            taxpayer_type: stored("customers.taxpayer_type", self.taxpayer_type)?,
            tax_credit_rating: stored("customers.tax_credit_rating", self.tax_credit_rating)?,
            service_tier: stored("customers.service_tier", self.service_tier)?,
            preferred_channel: stored("customers.preferred_channel", self.preferred_channel)?,
            lifecycle_status: stored("customers.lifecycle_status", self.lifecycle_status)?,
            id: self.id,
            company_name: self.company_name,
            uscc: self.uscc,
            uscc_check_failed: self.uscc_check_failed == 1,
            business_scope: self.business_scope,
            industry: self.industry,
            region: self.region,
            account_manager: self.account_manager,
            language: self.language,
            greeting_opt_in: self.greeting_opt_in == 1,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

pub async fn get_customer(conn: &mut AnyConnection, id: &str) -> Result<Option<Customer>, Error> {
    let sql = format!("SELECT {CUSTOMER_COLUMNS} FROM customers c WHERE c.id = $1");
    let row = sqlx::query_as::<_, CustomerRecord>(&sql).bind(id).fetch_optional(conn).await?;
    row.map(CustomerRecord::into_customer).transpose()
}

pub async fn require_customer(conn: &mut AnyConnection, id: &str) -> Result<Customer, Error> {
    get_customer(conn, id).await?.ok_or_else(|| Error::NotFound(format!("customer {id}")))
}

pub async fn live_customer_by_uscc(conn: &mut AnyConnection, uscc: &str) -> Result<Option<Customer>, Error> {
    let sql = format!("SELECT {CUSTOMER_COLUMNS} FROM customers c WHERE c.uscc = $1 AND c.live = 1");
    let row = sqlx::query_as::<_, CustomerRecord>(&sql).bind(uscc).fetch_optional(conn).await?;
    row.map(CustomerRecord::into_customer).transpose()
}

/// The columns an update may change (and an insert writes too).
fn mutable_columns(c: &Customer) -> Columns {
    Columns::new()
        .with("company_name", &c.company_name)
        .with("company_name_lower", c.company_name.to_lowercase())
        .with("uscc", &c.uscc)
        .with("uscc_check_failed", c.uscc_check_failed)
        .with("taxpayer_type", number(c.taxpayer_type))
        .with("tax_credit_rating", number(c.tax_credit_rating))
        .with("business_scope", &c.business_scope)
        .with("industry", &c.industry)
        .with("region", &c.region)
        .with("service_tier", number(c.service_tier))
        .with("account_manager", &c.account_manager)
        .with("preferred_channel", number(c.preferred_channel))
        .with("language", &c.language)
        .with("greeting_opt_in", c.greeting_opt_in)
        .with("lifecycle_status", number(c.lifecycle_status))
        .with("live", c.is_live())
        .with("updated_at", c.updated_at)
}

/// Inserts a new customer, recording the `request_id` that made it.
pub async fn insert_customer(conn: &mut AnyConnection, c: &Customer, request_id: Option<&str>) -> Result<(), Error> {
    Columns::new()
        .with("id", &c.id)
        .with("version", c.version)
        .with("request_id", request_id)
        .with("created_at", c.created_at)
        .and(mutable_columns(c))
        .insert(conn, "customers")
        .await
        .map_err(|e| CONSTRAINTS.map(e))
}

/// Writes every mutable column of `c` and bumps its version, when the stored
/// version is still `expected_version`; otherwise ABORTED.
pub async fn update_customer(conn: &mut AnyConnection, c: &Customer, expected_version: i64) -> Result<(), Error> {
    let done = mutable_columns(c)
        .update_versioned(conn, "customers", &c.id, expected_version)
        .await
        .map_err(|e| CONSTRAINTS.map(e))?;
    if !done {
        return Err(Error::Aborted(
            "the customer was changed by someone else; reload it and retry with its new etag".into(),
        ));
    }
    Ok(())
}

/// Bumps the version (etag) after a change to a sub-resource.
pub async fn touch_customer(conn: &mut AnyConnection, id: &str) -> Result<(), Error> {
    sqlx::query("UPDATE customers SET version = version + 1, updated_at = $1 WHERE id = $2")
        .bind(now_ms())
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Customers matching `f`, in id order, at most `limit`.
pub async fn list_customers(conn: &mut AnyConnection, f: &CustomerFilter, limit: i64) -> Result<Vec<Customer>, Error> {
    let mut w = Where::new();
    if !f.include_archived {
        w.and_sql("c.live = 1");
    }
    if let Some(name) = &f.name_contains {
        let lower = name.to_lowercase();
        if let Some((narrow, phrase)) =
            kefu_kit::db::trigram_match(&mut *conn, "c", "customers", "company_name_lower", &lower).await?
        {
            w.and(&narrow, phrase);
        }
        let escaped = lower.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        w.and("c.company_name_lower LIKE $? ESCAPE '\\'", format!("%{escaped}%"));
    }
    if let Some(uscc) = &f.uscc {
        w.and("c.uscc = $?", uscc.as_str());
    }
    // A phone number or address names a few customers: found through the
    // contacts' index, not by walking every customer.
    if let Some(m) = &f.contact_mobile {
        w.and("c.id IN (SELECT x.customer_id FROM contacts x WHERE x.mobile = $?)", m.as_str());
    }
    if let Some(e) = &f.contact_email {
        w.and("c.id IN (SELECT x.customer_id FROM contacts x WHERE x.email_lower = $?)", e.to_lowercase());
    }
    if let Some(name) = &f.contact_name {
        // A prefix, LIKE's wildcards taken literally, served by the names' index.
        let escaped = name.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        w.and("c.id IN (SELECT x.customer_id FROM contacts x WHERE x.name LIKE $? ESCAPE '\\')", format!("{escaped}%"));
    }
    if let Some(tag) = &f.tag {
        w.and("EXISTS (SELECT 1 FROM customer_tags t WHERE t.customer_id = c.id AND t.tag = $?)", tag.as_str());
    }
    if let Some(tier) = f.service_tier {
        w.and("c.service_tier = $?", number(tier));
    }
    if let Some(am) = &f.account_manager {
        w.and("c.account_manager = $?", am.as_str());
    }
    if let Some(after) = &f.after_id {
        w.and("c.id > $?", after.as_str());
    }
    let limit_at = w.next_placeholder();
    let (clause, mut binds) = w.build();
    binds.push(Bind::Int(limit));
    let sql = format!("SELECT {CUSTOMER_COLUMNS} FROM customers c WHERE {clause} ORDER BY c.id LIMIT ${limit_at}");
    let rows: Vec<CustomerRecord> = fetch_all_as(conn, &sql, binds).await?;
    rows.into_iter().map(CustomerRecord::into_customer).collect()
}

// ---------------------------------------------------------------- tags

pub async fn tags(conn: &mut AnyConnection, customer_id: &str) -> Result<Vec<String>, Error> {
    let rows = sqlx::query("SELECT tag FROM customer_tags WHERE customer_id = $1 ORDER BY tag")
        .bind(customer_id)
        .fetch_all(conn)
        .await?;
    rows.iter().map(|r| r.try_get::<String, _>(0).map_err(Error::from)).collect()
}

/// Replaces a customer's tags (given without duplicates).
pub async fn set_tags(conn: &mut AnyConnection, customer_id: &str, tags: &[String]) -> Result<(), Error> {
    sqlx::query("DELETE FROM customer_tags WHERE customer_id = $1").bind(customer_id).execute(&mut *conn).await?;
    for t in tags {
        sqlx::query("INSERT INTO customer_tags (customer_id, tag) VALUES ($1, $2)")
            .bind(customer_id)
            .bind(t)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

// ---------------------------------------------------------------- contacts

const CONTACT_COLUMNS: &str = "id, customer_id, name, role, mobile, email, wechat_id, is_primary";

#[derive(sqlx::FromRow)]
struct ContactRecord {
    id: String,
    customer_id: String,
    name: String,
    role: String,
    mobile: Option<String>,
    email: Option<String>,
    wechat_id: Option<String>,
    is_primary: i64,
}

impl From<ContactRecord> for Contact {
    fn from(r: ContactRecord) -> Self {
        Contact {
            id: r.id,
            customer_id: r.customer_id,
            name: r.name,
            role: r.role,
            mobile: r.mobile,
            email: r.email,
            wechat_id: r.wechat_id,
            primary: r.is_primary == 1,
        }
    }
}

/// A customer's contacts, the primary first.
pub async fn contacts(conn: &mut AnyConnection, customer_id: &str) -> Result<Vec<Contact>, Error> {
    let sql = format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE customer_id = $1 ORDER BY is_primary DESC, id");
    let rows = sqlx::query_as::<_, ContactRecord>(&sql).bind(customer_id).fetch_all(conn).await?;
    Ok(rows.into_iter().map(Contact::from).collect())
}

pub async fn get_contact(conn: &mut AnyConnection, customer_id: &str, id: &str) -> Result<Contact, Error> {
    let sql = format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE id = $1 AND customer_id = $2");
    sqlx::query_as::<_, ContactRecord>(&sql)
        .bind(id)
        .bind(customer_id)
        .fetch_optional(conn)
        .await?
        .map(Contact::from)
        .ok_or_else(|| Error::NotFound(format!("contact {id}")))
}

pub async fn contact_by_id(conn: &mut AnyConnection, id: &str) -> Result<Contact, Error> {
    let sql = format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE id = $1");
    sqlx::query_as::<_, ContactRecord>(&sql)
        .bind(id)
        .fetch_optional(conn)
        .await?
        .map(Contact::from)
        .ok_or_else(|| Error::NotFound(format!("contact {id}")))
}

/// Adds a contact; a primary one takes over from the customer's other
/// contacts, and a customer with contacts always keeps exactly one primary.
pub async fn insert_contact(conn: &mut AnyConnection, c: &Contact) -> Result<(), Error> {
    clear_other_primaries(conn, c).await?;
    let now = now_ms();
    sqlx::query(
        "INSERT INTO contacts (id, customer_id, name, role, mobile, email, email_lower, wechat_id, is_primary, \
         created_at, updated_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)",
    )
    .bind(&c.id)
    .bind(&c.customer_id)
    .bind(&c.name)
    .bind(&c.role)
    .bind(&c.mobile)
    .bind(&c.email)
    .bind(c.email.as_ref().map(|e| e.to_lowercase()))
    .bind(&c.wechat_id)
    .bind(flag(c.primary))
    .bind(now)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    ensure_primary(conn, &c.customer_id).await
}

/// Writes a contact's fields, with the same primary rule as [`insert_contact`].
pub async fn update_contact(conn: &mut AnyConnection, c: &Contact) -> Result<(), Error> {
    clear_other_primaries(conn, c).await?;
    sqlx::query(
        "UPDATE contacts SET name = $1, role = $2, mobile = $3, email = $4, email_lower = $5, wechat_id = $6, \
         is_primary = $7, updated_at = $8 WHERE id = $9",
    )
    .bind(&c.name)
    .bind(&c.role)
    .bind(&c.mobile)
    .bind(&c.email)
    .bind(c.email.as_ref().map(|e| e.to_lowercase()))
    .bind(&c.wechat_id)
    .bind(flag(c.primary))
    .bind(now_ms())
    .bind(&c.id)
    .execute(&mut *conn)
    .await?;
    ensure_primary(conn, &c.customer_id).await
}

async fn clear_other_primaries(conn: &mut AnyConnection, c: &Contact) -> Result<(), Error> {
    if c.primary {
        sqlx::query("UPDATE contacts SET is_primary = 0 WHERE customer_id = $1 AND id <> $2")
            .bind(&c.customer_id)
            .bind(&c.id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Keeps exactly one primary contact while any contact exists.
async fn ensure_primary(conn: &mut AnyConnection, customer_id: &str) -> Result<(), Error> {
    let primaries: i64 = sqlx::query("SELECT COUNT(*) FROM contacts WHERE customer_id = $1 AND is_primary = 1")
        .bind(customer_id)
        .fetch_one(&mut *conn)
        .await?
        .try_get(0)?;
    if primaries == 0 {
        let first: Option<String> = sqlx::query("SELECT id FROM contacts WHERE customer_id = $1 ORDER BY id LIMIT 1")
            .bind(customer_id)
            .fetch_optional(&mut *conn)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
        if let Some(id) = first {
            sqlx::query("UPDATE contacts SET is_primary = 1 WHERE id = $1").bind(id).execute(&mut *conn).await?;
        }
    }
    Ok(())
}

pub async fn delete_contact(conn: &mut AnyConnection, customer_id: &str, id: &str) -> Result<(), Error> {
    let done = sqlx::query("DELETE FROM contacts WHERE id = $1 AND customer_id = $2")
        .bind(id)
        .bind(customer_id)
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound(format!("contact {id}")));
    }
    ensure_primary(conn, customer_id).await
}

/// Tags, contacts and whether a tax profile exists, for a page of customers
/// in three queries (not three per customer).
pub async fn children_of_many(
    conn: &mut AnyConnection,
    ids: &[&str],
) -> Result<std::collections::HashMap<String, (Vec<String>, Vec<Contact>, bool)>, Error> {
    let mut out: std::collections::HashMap<String, (Vec<String>, Vec<Contact>, bool)> =
        ids.iter().map(|id| ((*id).to_owned(), Default::default())).collect();
    if ids.is_empty() {
        return Ok(out);
    }
    let owned = || ids.iter().map(|id| (*id).to_owned());
    let mut w = kefu_kit::db::Where::new();
    w.any_of("customer_id", owned());
    let (clause, binds) = w.build();
    let sql = format!("SELECT customer_id, tag FROM customer_tags WHERE {clause} ORDER BY customer_id, tag");
    for r in kefu_kit::db::fetch_rows(conn, &sql, binds).await? {
        let id: String = r.try_get(0)?;
        if let Some(e) = out.get_mut(&id) {
            e.0.push(r.try_get(1)?);
        }
    }
    let mut w = kefu_kit::db::Where::new();
    w.any_of("customer_id", owned());
    let (clause, binds) = w.build();
    let sql =
        format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE {clause} ORDER BY customer_id, is_primary DESC, id");
    for c in kefu_kit::db::fetch_all_as::<ContactRecord>(conn, &sql, binds).await? {
        let c = Contact::from(c);
        if let Some(e) = out.get_mut(&c.customer_id) {
            e.1.push(c);
        }
    }
    let mut w = kefu_kit::db::Where::new();
    w.any_of("customer_id", owned());
    let (clause, binds) = w.build();
    let sql = format!("SELECT customer_id FROM tax_profiles WHERE {clause}");
    for r in kefu_kit::db::fetch_rows(conn, &sql, binds).await? {
        let id: String = r.try_get(0)?;
        if let Some(e) = out.get_mut(&id) {
            e.2 = true;
        }
    }
    Ok(out)
}

pub async fn has_tax_profile(conn: &mut AnyConnection, customer_id: &str) -> Result<bool, Error> {
    let n: i64 = sqlx::query("SELECT COUNT(*) FROM tax_profiles WHERE customer_id = $1")
        .bind(customer_id)
        .fetch_one(conn)
        .await?
        .try_get(0)?;
    Ok(n > 0)
}

// ---------------------------------------------------------------- erasure

/// Purges personal fields and marks the customer erased; keeps the company
/// record, tax profile and processing records that accounting law requires.
pub async fn erase_personal_data(conn: &mut AnyConnection, customer_id: &str) -> Result<(), Error> {
    let now = now_ms();
    sqlx::query(
        "UPDATE contacts SET name = '[erased]', role = '', mobile = NULL, email = NULL, email_lower = NULL, \
         wechat_id = NULL, updated_at = $1 WHERE customer_id = $2",
    )
    .bind(now)
    .bind(customer_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM customer_tags WHERE customer_id = $1").bind(customer_id).execute(&mut *conn).await?;
    // Consents stay as records that a disclosure was allowed; who signed and
    // how (the evidence, which often names the person) goes.
    sqlx::query("UPDATE consents SET evidence = '[erased]' WHERE customer_id = $1")
        .bind(customer_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE follow_up_visits SET notes = '', outcome = '' WHERE customer_id = $1")
        .bind(customer_id)
        .execute(&mut *conn)
        .await?;
    super::deactivate_plan(conn, customer_id).await?;
    sqlx::query(
        "UPDATE customers SET lifecycle_status = $1, live = 0, greeting_opt_in = 0, preferred_channel = $2, \
         business_scope = '', version = version + 1, updated_at = $3 WHERE id = $4",
    )
    .bind(number(LifecycleStatus::Erased))
    .bind(number(crate::domain::Channel::Unspecified))
    .bind(now)
    .bind(customer_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Erasures after audit entry `after_seq`: (seq, customer id, time), at most
/// `limit`, in order.
pub async fn erasures_after(
    conn: &mut AnyConnection,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<(i64, String, i64)>, Error> {
    Ok(sqlx::query_as(
        "SELECT seq, subject, at FROM audit_log WHERE action = 'customer.erase' AND seq > $1 ORDER BY seq LIMIT $2",
    )
    .bind(after_seq)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Records that `actor` read `what` of customer `customer_id` in the clear.
pub async fn log_access(
    conn: &mut AnyConnection,
    actor: &str,
    actor_role: &str,
    customer_id: &str,
    what: &str,
) -> Result<(), Error> {
    sqlx::query("INSERT INTO access_log (id, at, actor, actor_role, customer_id, what) VALUES ($1,$2,$3,$4,$5,$6)")
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(now_ms())
        .bind(actor)
        .bind(actor_role)
        .bind(customer_id)
        .bind(what)
        .execute(conn)
        .await?;
    Ok(())
}

/// One read in the access log.
#[derive(sqlx::FromRow)]
pub struct AccessRow {
    pub id: String,
    pub at: i64,
    pub actor: String,
    pub actor_role: String,
    pub customer_id: String,
    pub what: String,
}

/// Reads newest first (ids are time-ordered), before `before_id`.
pub async fn access_log(
    conn: &mut AnyConnection,
    customer_id: Option<&str>,
    actor: Option<&str>,
    before_id: Option<&str>,
    limit: i64,
) -> Result<Vec<AccessRow>, Error> {
    let mut w = kefu_kit::db::Where::new();
    if let Some(c) = customer_id {
        w.and("customer_id = $?", c);
    }
    if let Some(a) = actor {
        w.and("actor = $?", a);
    }
    if let Some(b) = before_id {
        w.and("id < $?", b);
    }
    let limit_at = w.next_placeholder();
    let (clause, mut binds) = w.build();
    binds.push(kefu_kit::db::Bind::Int(limit));
    let sql = format!(
        "SELECT id, at, actor, actor_role, customer_id, what FROM access_log WHERE {clause} ORDER BY id DESC LIMIT ${limit_at}"
    );
    Ok(kefu_kit::db::fetch_all_as(conn, &sql, binds).await?)
}

/// Locks a customer's row until the transaction ends (PostgreSQL; SQLite
/// transactions already exclude each other), so that an erasure and a write
/// of the customer's data cannot interleave.
pub async fn lock_customer(conn: &mut AnyConnection, customer_id: &str) -> Result<(), Error> {
    sqlx::query("UPDATE customers SET version = version WHERE id = $1").bind(customer_id).execute(conn).await?;
    Ok(())
}
