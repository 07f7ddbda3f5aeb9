//! The tax and financial profile: sealed at rest, masked on read unless a
//! sensitive reader states a purpose, and every unmasked read audited.
use kefu_kit::{Error, Result, auth::Principal, error::Violations, parse};
use kefu_proto::customers::v1 as pb;
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;

use super::{CustomersApi, access::SENSITIVE_READERS, audit};
use crate::{
    crypto::{CUSTOMER_KEY, CustomerKey, DataKeyring, Sealed},
    domain,
    store::{self, TaxProfileRow},
};

/// The profile's plaintext, sealed as JSON.
#[derive(Serialize, Deserialize, Default)]
pub(super) struct TaxSecret {
    tax_registration_number: String,
    tax_authority: String,
    bank_name: String,
    bank_account: String,
    revenue_band: String,
    tax_status_notes: String,
}

impl TaxSecret {
    /// The recorded bank: its name and account.
    pub(super) fn bank(self) -> (String, String) {
        (self.bank_name, self.bank_account)
    }
}

/// Binds a sealed profile to its customer: a ciphertext moved to another
/// customer does not open.
fn aad(customer_id: &str) -> String {
    format!("kefu.customers.tax_profile:{customer_id}")
}

/// The customer's own data key, made (and stored wrapped) on first use.
pub(super) async fn customer_key(
    keys: &DataKeyring,
    conn: &mut AnyConnection,
    customer_id: &str,
    create: bool,
) -> Result<Option<CustomerKey>> {
    if let Some((kek_id, nonce, wrapped)) = store::customer_key(conn, customer_id).await? {
        let sealed = Sealed { key_id: kek_id, nonce, ciphertext: wrapped };
        return Ok(Some(keys.customer_key(customer_id, &sealed)?));
    }
    if !create {
        return Ok(None);
    }
    let (_, wrapped) = keys.new_customer_key(customer_id)?;
    store::insert_customer_key(conn, customer_id, &wrapped.key_id, &wrapped.nonce, &wrapped.ciphertext).await?;
    // A concurrent first write may have stored its key first: use that one.
    let (kek_id, nonce, wrapped) = store::customer_key(conn, customer_id)
        .await?
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("customer key vanished after insert")))?;
    Ok(Some(keys.customer_key(customer_id, &Sealed { key_id: kek_id, nonce, ciphertext: wrapped })?))
}

/// Opens a stored profile: sealed with the customer's own key, or (written
/// before customer keys) directly with a key-encryption key.
pub(super) async fn open(
    keys: &DataKeyring,
    conn: &mut AnyConnection,
    customer_id: &str,
    row: &TaxProfileRow,
) -> Result<TaxSecret> {
    let sealed = Sealed { key_id: row.key_id.clone(), nonce: row.nonce.clone(), ciphertext: row.ciphertext.clone() };
    let plain = if row.key_id == CUSTOMER_KEY {
        let key = customer_key(keys, conn, customer_id, false)
            .await?
            .ok_or_else(|| Error::FailedPrecondition("the customer's data key was destroyed (erased)".into()))?;
        key.open(&aad(customer_id), &sealed)?
    } else {
        keys.open(&aad(customer_id), &sealed)?
    };
    Ok(serde_json::from_slice(&plain).map_err(anyhow::Error::from)?)
}

/// Seals a profile with the customer's own key.
pub(super) async fn seal(
    keys: &DataKeyring,
    conn: &mut AnyConnection,
    customer_id: &str,
    secret: &TaxSecret,
) -> Result<Sealed> {
    let plain = serde_json::to_vec(secret).map_err(anyhow::Error::from)?;
    let key = customer_key(keys, conn, customer_id, true)
        .await?
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("no customer key")))?;
    Ok(key.seal(&aad(customer_id), &plain)?)
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
            update_time: parse::ts(updated_at),
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
            update_time: parse::ts(updated_at),
        }
    }
}

/// Checks every field of the profile, naming each bad one.
fn parse_tax(t: &pb::TaxProfile) -> Result<TaxSecret> {
    let mut v = Violations::new();
    // A value is a placeholder only when its violation was recorded, and then
    // `finish` below returns the violations instead.
    let mut line = |field: &str, raw: &str, max: usize| {
        v.check(parse::line(&format!("tax_profile.{field}"), raw, max)).unwrap_or_default()
    };
    let tax_registration_number = line("tax_registration_number", &t.tax_registration_number, 32);
    let tax_authority = line("tax_authority", &t.tax_authority, 128);
    let bank_name = line("bank_name", &t.bank_name, 128);
    let bank_account = line("bank_account", &t.bank_account, 40);
    let revenue_band = line("revenue_band", &t.revenue_band, 64);
    if !bank_account.chars().all(|c| c.is_ascii_digit() || c == ' ' || c == '-') {
        v.add("tax_profile.bank_account", "may hold only digits, spaces and dashes");
    }
    let tax_status_notes =
        v.check(parse::text("tax_profile.tax_status_notes", &t.tax_status_notes, 4000)).unwrap_or_default();
    v.finish()?;
    Ok(TaxSecret { tax_registration_number, tax_authority, bank_name, bank_account, revenue_band, tax_status_notes })
}

pub(super) async fn update(
    api: &CustomersApi,
    p: &Principal,
    r: pb::UpdateTaxProfileRequest,
) -> Result<pb::TaxProfile> {
    let t = r.tax_profile.ok_or_else(|| Error::invalid("tax_profile", "is required"))?;
    let mut v = Violations::new();
    let id = v.check(parse::id("tax_profile.customer_id", &t.customer_id)).unwrap_or_default();
    let purpose = v.check(parse::text("purpose", &r.purpose, 500)).unwrap_or_default();
    let secret = v.check(parse_tax(&t));
    v.finish()?;
    let mut secret = secret.ok_or_else(|| super::unchecked("tax_profile"))?;
    let now = store::now_ms();
    let mut tx = api.pool.begin().await?;
    store::lock_customer(&mut tx, &id).await?;
    store::require_customer(&mut tx, &id).await?.ensure_writable()?;
    // The bank account (where refunds go) changes only through four eyes;
    // left empty, or sent back unchanged, it keeps the recorded one.
    let recorded = match store::get_tax_profile(&mut tx, &id).await? {
        Some(row) => open(&api.keys, &mut tx, &id, &row).await?.bank(),
        None => Default::default(),
    };
    if secret.bank_name.is_empty() && secret.bank_account.is_empty() {
        (secret.bank_name, secret.bank_account) = recorded;
    } else if secret.bank_name != recorded.0 || secret.bank_account != recorded.1 {
        return Err(Error::FailedPrecondition(
            "the bank account is set only with a second person's approval: propose it with ProposeChange \
             (bank_account) and have another supervisor or admin approve it; leave bank_name and bank_account \
             empty to keep the recorded account"
                .into(),
        ));
    }
    write(api, &mut tx, p, &id, &secret, now).await?;
    audit::record(api, &mut tx, p, "tax_profile.write", &id, "tax_profile", &purpose).await?;
    tx.commit().await?;
    // The writer gets the masked view back: writing is not permission to read.
    Ok(tax_pb(&id, &secret, true, now))
}

/// Seals and stores the profile, inside the caller's transaction.
async fn write(
    api: &CustomersApi,
    tx: &mut AnyConnection,
    p: &Principal,
    id: &str,
    secret: &TaxSecret,
    now: i64,
) -> Result<()> {
    let sealed = seal(&api.keys, tx, id, secret).await?;
    let row =
        TaxProfileRow { key_id: sealed.key_id, nonce: sealed.nonce, ciphertext: sealed.ciphertext, updated_at: now };
    store::put_tax_profile(tx, id, &row, &p.subject).await?;
    store::touch_customer(tx, id).await
}

/// Applies an approved bank-account change (by the approver `p`), inside
/// the approval's transaction.
pub(super) async fn set_bank_account(
    api: &CustomersApi,
    tx: &mut AnyConnection,
    p: &Principal,
    id: &str,
    bank_name: String,
    bank_account: String,
    origin: &str,
) -> Result<()> {
    store::require_customer(tx, id).await?.ensure_writable()?;
    let mut secret = match store::get_tax_profile(tx, id).await? {
        Some(row) => open(&api.keys, tx, id, &row).await?,
        None => TaxSecret::default(),
    };
    secret.bank_name = bank_name;
    secret.bank_account = bank_account;
    write(api, tx, p, id, &secret, store::now_ms()).await?;
    audit::record(api, tx, p, "tax_profile.write", id, format!("tax_profile.bank_account ({origin})"), "").await
}

pub(super) async fn get(api: &CustomersApi, p: &Principal, r: pb::GetTaxProfileRequest) -> Result<pb::TaxProfile> {
    let id = parse::id("customer_id", &r.customer_id)?;
    let mut purpose = String::new();
    // An unmasked read acts (and is audited) in the role that allows it.
    let acting;
    let p = if r.unmasked {
        acting = p.require(SENSITIVE_READERS).map_err(|_| {
            Error::PermissionDenied(
                "reading the unmasked tax profile needs the supervisor, admin or service role".into(),
            )
        })?;
        &acting
    } else {
        p
    };
    if r.unmasked {
        purpose = parse::text("purpose", &r.purpose, 500)?;
        if purpose.is_empty() {
            return Err(Error::invalid("purpose", "an unmasked read must state its purpose"));
        }
    }
    let mut tx = api.pool.begin().await?;
    let customer = store::require_customer(&mut tx, &id).await?;
    if r.unmasked {
        customer.ensure_writable()?;
    }
    // Erasure destroyed the customer's data key and, with it, the profile.
    if customer.lifecycle_status == crate::domain::LifecycleStatus::Erased {
        return Err(Error::FailedPrecondition("the customer's personal data was erased".into()));
    }
    let row = store::get_tax_profile(&mut tx, &id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("tax profile of customer {id}")))?;
    let secret = open(&api.keys, &mut tx, &id, &row).await?;
    if r.unmasked {
        audit::record(api, &mut tx, p, "tax_profile.read", &id, "tax_profile unmasked", &purpose).await?;
    }
    tx.commit().await?;
    Ok(tax_pb(&id, &secret, !r.unmasked, row.updated_at))
}

/// What `kefu admin rewrap` did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RewrapReport {
    /// Customer data keys wrapped again under the active key.
    pub rewrapped: usize,
    /// Tax profiles sealed directly with a key-encryption key (before
    /// customer keys) moved under their customer's own key.
    pub resealed: usize,
}

/// Wraps every customer data key under the active key-encryption key (the
/// first of KEFU_DATA_KEYS), and moves profiles from before customer keys
/// under their customer's key; afterwards older key-encryption keys can be
/// dropped. Each customer in its own transaction; safe to run again.
pub async fn rewrap(pool: &sqlx::AnyPool, keys: &DataKeyring) -> anyhow::Result<RewrapReport> {
    let mut report = RewrapReport::default();
    let mut after = String::new();
    loop {
        let ids = {
            let mut conn = pool.acquire().await?;
            store::customers_to_rewrap(&mut conn, keys.active_id(), &after, 500).await?
        };
        if ids.is_empty() {
            return Ok(report);
        }
        for id in ids {
            let mut tx = pool.begin().await?;
            // Not while the customer is being erased or its profile written.
            store::lock_customer(&mut tx, &id).await?;
            if let Some((kek_id, nonce, wrapped)) = store::customer_key(&mut tx, &id).await?
                && kek_id != keys.active_id()
            {
                let fresh = keys.rewrap(&id, &Sealed { key_id: kek_id, nonce, ciphertext: wrapped })?;
                store::update_customer_key(&mut tx, &id, &fresh.key_id, &fresh.nonce, &fresh.ciphertext).await?;
                report.rewrapped += 1;
            }
            if let Some(row) = store::get_tax_profile(&mut tx, &id).await?
                && row.key_id != CUSTOMER_KEY
            {
                let secret = open(keys, &mut tx, &id, &row).await?;
                let sealed = seal(keys, &mut tx, &id, &secret).await?;
                let moved =
                    TaxProfileRow { key_id: sealed.key_id, nonce: sealed.nonce, ciphertext: sealed.ciphertext, ..row };
                store::put_tax_profile(&mut tx, &id, &moved, "kefu-rewrap").await?;
                report.resealed += 1;
            }
            tx.commit().await?;
            after = id;
        }
    }
}
