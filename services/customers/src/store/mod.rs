//! SQL for the customers service, and the only module that has any.
//! Portable across SQLite and PostgreSQL (sqlx `Any`): `$n` placeholders,
//! instants as BIGINT Unix milliseconds, civil dates as TEXT `YYYY-MM-DD`,
//! flags (`live`, `active`, `is_primary`, `greeting_opt_in`) as BIGINT 0/1.
//! Enums are stored as their contract numbers and always bound as
//! parameters; rows become domain values (`crate::domain`) here.
mod consents;
mod customers;
mod follow_ups;
mod greetings;
mod holds;
mod tax_profile;

use chrono::NaiveDate;
use kefu_kit::{
    Error,
    error::{Constraint, Constraints},
    parse::ProtoEnum,
};

pub use self::{
    consents::{consents, insert_consent, revoke_consent},
    customers::{
        AccessRow, access_log, children_of_many, contact_by_id, contacts, delete_contact, erase_personal_data,
        erasures_after, get_contact, get_customer, has_tax_profile, insert_contact, insert_customer, list_customers,
        live_customer_by_uscc, lock_customer, log_access, require_customer, set_tags, tags, touch_customer,
        update_contact, update_customer,
    },
    follow_ups::{deactivate_plan, due_plans, get_plan, insert_visit, put_plan, visits},
    greetings::{greeting_candidates, greetings_of, mark_greeting},
    holds::{HoldRow, active_holds, get_hold, holds, put_hold, release_hold, renew_hold},
    tax_profile::{
        TaxProfileRow, customer_key, customers_to_rewrap, get_tax_profile, insert_customer_key, put_tax_profile,
        shred_customer_key, update_customer_key,
    },
};

/// What a clash on the live-USCC index means.
pub const USCC_TAKEN: &str = "a live customer with this USCC already exists";

/// The unique indexes of the customers schema, in the domain's words. A clash
/// on any other index is reported as a generic conflict (see
/// `kefu_kit::error::Constraints::map`).
pub static CONSTRAINTS: Constraints = Constraints(&[
    Constraint { name: "customers_live_uscc", columns: "customers.uscc", message: USCC_TAKEN },
    Constraint {
        name: "customers_request_id",
        columns: "customers.request_id",
        message: "this request_id already created another customer; use a new request id for a new customer",
    },
]);

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// An enum as stored: its contract number.
fn number<E: Into<i32>>(e: E) -> i64 {
    i64::from(e.into())
}

/// A stored contract number back as its enum; a number the contract does not
/// know means the row is damaged.
fn stored<E: ProtoEnum>(column: &str, raw: i64) -> Result<E, Error> {
    i32::try_from(raw)
        .ok()
        .and_then(|n| E::try_from(n).ok())
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("{column} holds {raw}, which is not a {}", E::NAME)))
}

/// A stored civil date.
fn stored_date(column: &str, raw: &str) -> Result<NaiveDate, Error> {
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map_err(|_| Error::Internal(anyhow::anyhow!("{column} holds {raw:?}, which is not a date")))
}

fn flag(b: bool) -> i64 {
    i64::from(b)
}
