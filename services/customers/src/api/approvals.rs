//! Four eyes on the customer's most sensitive changes (`kefu_kit::approval`):
//! a bank-account change and an erasure are applied when a second person
//! approves them; a disclosure to a third party is released, once, to the
//! person who proposed it.
use kefu_kit::{
    Error, Result,
    approval::{self, Approval, State},
    auth::Principal,
    error::Violations,
    page, parse,
};
use kefu_proto::customers::v1 as pb;
use pb::propose_change_request::Change;
use serde::{Deserialize, Serialize};

use super::{CustomersApi, consents::parse_categories, rights, tax_profile};
use crate::{
    crypto::Sealed,
    domain::{self, DataCategory, LifecycleStatus},
    store::{self, now_ms},
};

pub(super) const BANK_ACCOUNT: &str = "customer.bank_account";
pub(super) const ERASURE: &str = "customer.erasure";
pub(super) const DISCLOSURE: &str = "customer.disclosure";

/// Only disclosures are grants; the other kinds are applied on approval.
fn is_grant(kind: &str) -> bool {
    kind == DISCLOSURE
}

fn kind_of(raw: &str) -> pb::ApprovalKind {
    match raw {
        BANK_ACCOUNT => pb::ApprovalKind::BankAccountChange,
        ERASURE => pb::ApprovalKind::Erasure,
        DISCLOSURE => pb::ApprovalKind::Disclosure,
        _ => pb::ApprovalKind::Unspecified,
    }
}

fn kind_name(k: pb::ApprovalKind) -> Option<&'static str> {
    match k {
        pb::ApprovalKind::BankAccountChange => Some(BANK_ACCOUNT),
        pb::ApprovalKind::Erasure => Some(ERASURE),
        pb::ApprovalKind::Disclosure => Some(DISCLOSURE),
        pb::ApprovalKind::Unspecified => None,
    }
}

fn state_pb(s: State) -> pb::ApprovalState {
    match s {
        State::Pending => pb::ApprovalState::Pending,
        State::Approved => pb::ApprovalState::Approved,
        State::Rejected => pb::ApprovalState::Rejected,
        State::Withdrawn => pb::ApprovalState::Withdrawn,
        State::Expired => pb::ApprovalState::Expired,
        State::Used => pb::ApprovalState::Used,
    }
}

fn state_of(s: pb::ApprovalState) -> Option<State> {
    match s {
        pb::ApprovalState::Unspecified => None,
        pb::ApprovalState::Pending => Some(State::Pending),
        pb::ApprovalState::Approved => Some(State::Approved),
        pb::ApprovalState::Rejected => Some(State::Rejected),
        pb::ApprovalState::Withdrawn => Some(State::Withdrawn),
        pb::ApprovalState::Expired => Some(State::Expired),
        pb::ApprovalState::Used => Some(State::Used),
    }
}

/// A disclosure's terms, kept in the clear in the payload (the recipient
/// and categories are what the approver decides on).
#[derive(Serialize, Deserialize)]
pub(super) struct Disclosure {
    pub recipient: String,
    pub categories: Vec<i32>,
}

/// A proposed bank account, sealed with the customer's own key.
#[derive(Serialize, Deserialize)]
struct BankAccount {
    bank_name: String,
    bank_account: String,
}

fn bank_aad(customer_id: &str) -> String {
    format!("kefu.customers.bank_account_change:{customer_id}")
}

fn to_pb(a: Approval) -> pb::Approval {
    let (recipient, data_categories) = if a.kind == DISCLOSURE {
        serde_json::from_str::<Disclosure>(&a.payload).map(|d| (d.recipient, d.categories)).unwrap_or_default()
    } else {
        (String::new(), Vec::new())
    };
    pb::Approval {
        kind: kind_of(&a.kind).into(),
        customer_id: a.subject,
        summary: a.summary,
        reason: a.reason,
        requested_by: a.requested_by,
        request_time: parse::ts(a.requested_at),
        expire_time: parse::ts(a.expires_at),
        state: state_pb(a.state).into(),
        decided_by: a.decided_by,
        decide_time: parse::ts_opt(a.decided_at),
        decision_note: a.note,
        recipient,
        data_categories,
        use_time: parse::ts_opt(a.used_at),
        id: a.id,
    }
}

fn labels(categories: &[DataCategory]) -> String {
    categories.iter().map(|c| domain::category_label(*c)).collect::<Vec<_>>().join("、")
}

pub(super) async fn propose(api: &CustomersApi, p: &Principal, r: pb::ProposeChangeRequest) -> Result<pb::Approval> {
    let mut v = Violations::new();
    let id = v.check(parse::id("customer_id", &r.customer_id)).unwrap_or_default();
    let reason = v.check(parse::required_text("reason", &r.reason, 500)).unwrap_or_default();
    let request_id = v.check(parse::line("request_id", &r.request_id, 128)).unwrap_or_default();
    let change = v.check(
        r.change
            .clone()
            .ok_or_else(|| Error::invalid("change", "name the change: bank_account, erasure or disclosure")),
    );
    // Each change's own fields.
    let mut bank = None;
    let mut disclosure = None;
    match &change {
        Some(Change::BankAccount(b)) => {
            let name = v.check(parse::line("bank_account.bank_name", &b.bank_name, 128)).unwrap_or_default();
            let account = v.check(parse::line("bank_account.bank_account", &b.bank_account, 40)).unwrap_or_default();
            if !account.chars().all(|c| c.is_ascii_digit() || c == ' ' || c == '-') {
                v.add("bank_account.bank_account", "may hold only digits, spaces and dashes");
            }
            bank = Some(BankAccount { bank_name: name, bank_account: account });
        }
        Some(Change::Disclosure(d)) => {
            let recipient =
                v.check(parse::required_line("disclosure.recipient", &d.recipient, 200)).unwrap_or_default();
            let categories =
                v.check(parse_categories("disclosure.data_categories", &d.data_categories, true)).unwrap_or_default();
            disclosure = Some((recipient, categories));
        }
        Some(Change::Erasure(_)) | None => {}
    }
    v.finish()?;
    // The fingerprint never covers a whole account number: kept for weeks in
    // the clear, its hash would give the number back to a short search.
    let mut printed = pb::ProposeChangeRequest { request_id: String::new(), ..r };
    if let Some(Change::BankAccount(b)) = printed.change.as_mut() {
        let digits: Vec<char> = b.bank_account.chars().collect();
        let tail: String = digits[digits.len().saturating_sub(4)..].iter().collect();
        b.bank_account = format!("{}:{tail}", digits.len());
    }
    let fingerprint = kefu_kit::db::fingerprint_of(&printed);
    let mut tx = api.pool.begin().await?;
    store::lock_customer(&mut tx, &id).await?;
    let customer = store::require_customer(&mut tx, &id).await?;
    customer.ensure_writable()?;
    let (kind, key, summary, payload) = match (bank, disclosure) {
        (Some(b), _) => {
            let stored = match store::get_tax_profile(&mut tx, &id).await? {
                Some(row) => Some(tax_profile::open(&api.keys, &mut tx, &id, &row).await?),
                None => None,
            };
            let (old_name, old_account) = stored.map(|s| s.bank()).unwrap_or_default();
            if old_name == b.bank_name && old_account == b.bank_account {
                return Err(Error::FailedPrecondition("that is already the customer's recorded bank account".into()));
            }
            let old = if old_name.is_empty() && old_account.is_empty() {
                "无".to_owned()
            } else {
                format!("{old_name} {}", domain::mask_tail(&old_account, 4)).trim().to_owned()
            };
            let summary = if b.bank_account.is_empty() {
                format!("删除银行账户（原：{old}）")
            } else {
                format!("银行账户改为 {} {}（原：{old}）", b.bank_name, domain::mask_tail(&b.bank_account, 4))
            };
            let plain = serde_json::to_vec(&b).map_err(anyhow::Error::from)?;
            let key = tax_profile::customer_key(&api.keys, &mut tx, &id, true)
                .await?
                .ok_or_else(|| Error::Internal(anyhow::anyhow!("no customer key")))?;
            let sealed = key.seal(&bank_aad(&id), &plain)?;
            let payload = serde_json::to_string(&sealed).map_err(anyhow::Error::from)?;
            (BANK_ACCOUNT, id.clone(), summary, payload)
        }
        (None, Some((recipient, categories))) => {
            let now = now_ms();
            let consents = store::consents(&mut tx, &id).await?;
            if !consents.iter().any(|c| c.covers(&recipient, &categories, now)) {
                return Err(Error::FailedPrecondition(format!(
                    "no live consent from the customer covers disclosure to {recipient:?} of the requested data categories"
                )));
            }
            let summary = format!("向 {recipient} 提供：{}", labels(&categories));
            let payload = serde_json::to_string(&Disclosure {
                recipient: recipient.clone(),
                categories: categories.iter().map(|c| i32::from(*c)).collect(),
            })
            .map_err(anyhow::Error::from)?;
            (DISCLOSURE, format!("{id}\n{recipient}"), summary, payload)
        }
        (None, None) => {
            if customer.lifecycle_status == LifecycleStatus::Erased {
                return Err(Error::FailedPrecondition("the customer's personal data was already erased".into()));
            }
            super::holds::ensure_not_held(&mut tx, &id).await?;
            let summary =
                "删除该客户的个人信息：联系人、标签、偏好、回访备注清除，数据密钥与税务资料销毁；法定记录保留"
                    .to_owned();
            (ERASURE, id.clone(), summary, String::new())
        }
    };
    let proposal =
        approval::Proposal { kind, key: &key, subject: &id, summary, payload, reason: &reason, grant: is_grant(kind) };
    let claim = (!request_id.is_empty()).then_some((request_id.as_str(), fingerprint.as_str()));
    let a = approval::propose(&mut tx, &api.audit_keys, p, proposal, claim).await?;
    tx.commit().await?;
    Ok(to_pb(a))
}

pub(super) async fn get(api: &CustomersApi, r: pb::GetApprovalRequest) -> Result<pb::Approval> {
    let id = parse::id("id", &r.id)?;
    let mut conn = api.pool.acquire().await?;
    Ok(to_pb(approval::get(&mut conn, &id, is_grant).await?))
}

const LIST: &str = "approvals";

pub(super) async fn list(api: &CustomersApi, r: pb::ListApprovalsRequest) -> Result<pb::ListApprovalsResponse> {
    let mut v = Violations::new();
    let subject = v.check(parse::opt_id("customer_id", &r.customer_id)).flatten();
    let state = v.check(parse::enumeration("state", r.state, Some(pb::ApprovalState::Unspecified))).and_then(state_of);
    let kind = v.check(parse::enumeration("kind", r.kind, Some(pb::ApprovalKind::Unspecified))).and_then(kind_name);
    let requested_by = v.check(parse::line("requested_by", &r.requested_by, 128)).filter(|s| !s.is_empty());
    let size = v.check(parse::page_size("page_size", r.page_size, 50, 500)).unwrap_or_default();
    let before = v.check(page::after(LIST, &r.page_token)).flatten();
    v.finish()?;
    let filter =
        approval::Filter { subject, kinds: kind.map(|k| vec![k.to_owned()]).unwrap_or_default(), state, requested_by };
    let mut conn = api.pool.acquire().await?;
    let rows = approval::list(&mut conn, &filter, before.as_deref(), size + 1, is_grant).await?;
    let (rows, more) = page::split(rows, size);
    let next_page_token = page::next(LIST, &rows, more, |a| a.id.clone());
    Ok(pb::ListApprovalsResponse { approvals: rows.into_iter().map(to_pb).collect(), next_page_token })
}

pub(super) async fn approve(api: &CustomersApi, p: &Principal, r: pb::ApproveChangeRequest) -> Result<pb::Approval> {
    let mut v = Violations::new();
    let id = v.check(parse::id("id", &r.id)).unwrap_or_default();
    let note = v.check(parse::text("note", &r.note, 500)).unwrap_or_default();
    v.finish()?;
    let mut tx = api.pool.begin().await?;
    let subject = approval::get(&mut tx, &id, is_grant).await?.subject;
    // The customer first, as every write to it does, then the decision.
    store::lock_customer(&mut tx, &subject).await?;
    let a = approval::approve(&mut tx, &api.audit_keys, p, &id, &note, is_grant).await?;
    let origin = format!("approval {} proposed by {}", a.id, a.requested_by);
    let mut erased = false;
    match a.kind.as_str() {
        BANK_ACCOUNT => {
            let sealed: Sealed = serde_json::from_str(&a.payload).map_err(anyhow::Error::from)?;
            let key = tax_profile::customer_key(&api.keys, &mut tx, &a.subject, false)
                .await?
                .ok_or_else(|| Error::FailedPrecondition("the customer's data key was destroyed (erased)".into()))?;
            let plain = key.open(&bank_aad(&a.subject), &sealed)?;
            let bank: BankAccount = serde_json::from_slice(&plain).map_err(anyhow::Error::from)?;
            tax_profile::set_bank_account(api, &mut tx, p, &a.subject, bank.bank_name, bank.bank_account, &origin)
                .await?;
        }
        ERASURE => {
            rights::erase_in(api, &mut tx, p, &a.subject, &a.reason, &origin).await?;
            erased = true;
        }
        _ => {}
    }
    tx.commit().await?;
    if erased {
        rights::scrub(api).await;
    }
    Ok(to_pb(a))
}

pub(super) async fn reject(api: &CustomersApi, p: &Principal, r: pb::RejectChangeRequest) -> Result<pb::Approval> {
    let mut v = Violations::new();
    let id = v.check(parse::id("id", &r.id)).unwrap_or_default();
    let note = v.check(parse::required_text("note", &r.note, 500)).unwrap_or_default();
    v.finish()?;
    let mut tx = api.pool.begin().await?;
    let a = approval::reject(&mut tx, &api.audit_keys, p, &id, &note, is_grant).await?;
    tx.commit().await?;
    Ok(to_pb(a))
}

pub(super) async fn withdraw(api: &CustomersApi, p: &Principal, r: pb::WithdrawChangeRequest) -> Result<pb::Approval> {
    let id = parse::id("id", &r.id)?;
    let mut tx = api.pool.begin().await?;
    let a = approval::withdraw(&mut tx, &api.audit_keys, p, &id, is_grant).await?;
    tx.commit().await?;
    Ok(to_pb(a))
}

/// Uses the caller's approved disclosure `id` for an export to `recipient`
/// of `categories`, inside the export's transaction.
pub(super) async fn use_disclosure(
    api: &CustomersApi,
    conn: &mut sqlx::AnyConnection,
    p: &Principal,
    id: &str,
    customer_id: &str,
    recipient: &str,
    categories: &[DataCategory],
) -> Result<()> {
    let a = approval::use_grant(conn, &api.audit_keys, p, id, DISCLOSURE).await?;
    let terms: Disclosure = serde_json::from_str(&a.payload).map_err(anyhow::Error::from)?;
    let mut approved: Vec<i32> = terms.categories.clone();
    let mut asked: Vec<i32> = categories.iter().map(|c| i32::from(*c)).collect();
    approved.sort_unstable();
    asked.sort_unstable();
    if a.subject != customer_id || terms.recipient != recipient || approved != asked {
        return Err(Error::FailedPrecondition(format!(
            "approval {id} covers another disclosure: {} (customer {})",
            a.summary, a.subject
        )));
    }
    Ok(())
}

/// Closes the customer's open proposals when it is erased.
pub(super) async fn close_for_erasure(conn: &mut sqlx::AnyConnection, customer_id: &str) -> Result<()> {
    approval::close_open_of(conn, customer_id, &[DISCLOSURE], "客户个人信息已删除").await.map(drop)
}
