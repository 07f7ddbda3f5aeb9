//! A customer's contacts: exactly one is primary while any exist.
use kefu_kit::{Error, Result, auth::Principal, error::Violations, parse};
use kefu_proto::customers::v1 as pb;

use super::{CustomersApi, audit};
use crate::{
    domain::{self, Contact, Email, MAX_CONTACTS, Mobile},
    store,
};

/// Update-mask paths of a contact.
const UPDATABLE: [&str; 6] = ["name", "role", "mobile", "email", "wechat_id", "primary"];

/// Checks a contact into the value stored as contact `id` of `customer_id`,
/// naming each bad field (paths relative to the contact message).
pub(super) fn parse_contact(id: String, customer_id: &str, c: &pb::Contact) -> Result<Contact> {
    let mut v = Violations::new();
    // A value is a placeholder only when its violation was recorded, and then
    // `finish` below returns the violations instead.
    let name = v
        .check(parse::required_line("name", &c.name, 64).and_then(|n| parse::no_formula("name", n)))
        .unwrap_or_default();
    let role = v.check(parse::label("role", &c.role, 64)).unwrap_or_default();
    let mobile = if c.mobile.trim().is_empty() {
        None
    } else {
        v.check(Mobile::parse("mobile", &c.mobile)).map(|m| m.as_str().to_owned())
    };
    let email = if c.email.trim().is_empty() {
        None
    } else {
        v.check(Email::parse("email", &c.email)).map(|e| e.as_str().to_owned())
    };
    let wechat_id = v.check(parse::line("wechat_id", &c.wechat_id, 64)).filter(|w| !w.is_empty());
    if c.mobile.trim().is_empty() && c.email.trim().is_empty() && c.wechat_id.trim().is_empty() {
        v.add("mobile", "a contact needs at least one of mobile, email or wechat_id");
    }
    v.finish()?;
    Ok(Contact { id, customer_id: customer_id.to_owned(), name, role, mobile, email, wechat_id, primary: c.primary })
}

pub(super) fn contact_pb(c: &Contact) -> pb::Contact {
    pb::Contact {
        id: c.id.clone(),
        customer_id: c.customer_id.clone(),
        name: c.name.clone(),
        role: c.role.clone(),
        mobile: c.mobile.clone().unwrap_or_default(),
        email: c.email.clone().unwrap_or_default(),
        wechat_id: c.wechat_id.clone().unwrap_or_default(),
        primary: c.primary,
    }
}

/// A contact with its phone, email and WeChat id masked (`139****5678`,
/// `z***@example.cn`): what lists and roles without a need to reach the
/// person see.
pub(super) fn masked(mut c: pb::Contact) -> pb::Contact {
    c.mobile = masked_address(&c.mobile);
    c.email = masked_address(&c.email);
    if !c.wechat_id.is_empty() {
        c.wechat_id = domain::mask_all(&c.wechat_id);
    }
    c
}

/// A phone number shows its last four digits only (so a search by number
/// cannot be used to recover the rest), an email its first character and
/// domain, anything else nothing.
pub(super) fn masked_address(s: &str) -> String {
    if s.is_empty() {
        String::new()
    } else if s.contains('@') {
        domain::mask_email(s)
    } else if s.chars().all(|c| c.is_ascii_digit() || c == '+') {
        domain::mask_tail(s, 4)
    } else {
        domain::mask_all(s)
    }
}

pub(super) async fn create(api: &CustomersApi, p: &Principal, r: pb::CreateContactRequest) -> Result<pb::Contact> {
    let mut v = Violations::new();
    let customer_id = v.check(parse::id("customer_id", &r.customer_id)).unwrap_or_default();
    let contact = match &r.contact {
        Some(c) => {
            v.check(parse_contact(uuid::Uuid::now_v7().to_string(), &customer_id, c).map_err(|e| e.within("contact")))
        }
        None => {
            v.add("contact", "is required");
            None
        }
    };
    v.finish()?;
    let contact = contact.ok_or_else(|| super::unchecked("contact"))?;
    let mut tx = api.pool.begin().await?;
    store::require_customer(&mut tx, &customer_id).await?.ensure_writable()?;
    if store::contacts(&mut tx, &customer_id).await?.len() >= MAX_CONTACTS {
        return Err(Error::FailedPrecondition(format!("a customer has at most {MAX_CONTACTS} contacts")));
    }
    store::insert_contact(&mut tx, &contact).await?;
    store::touch_customer(&mut tx, &customer_id).await?;
    audit::record(api, &mut tx, p, "contact.create", &customer_id, format!("contact={}", contact.id), "").await?;
    let saved = store::get_contact(&mut tx, &customer_id, &contact.id).await?;
    tx.commit().await?;
    Ok(contact_pb(&saved))
}

pub(super) async fn update(api: &CustomersApi, p: &Principal, r: pb::UpdateContactRequest) -> Result<pb::Contact> {
    let patch = r.contact.ok_or_else(|| Error::invalid("contact", "is required"))?;
    let id = parse::id("contact.id", &patch.id)?;
    let paths = r.update_mask.map(|m| m.paths).unwrap_or_default();
    let mut tx = api.pool.begin().await?;
    let existing = store::contact_by_id(&mut tx, &id).await?;
    if !patch.customer_id.is_empty() && patch.customer_id != existing.customer_id {
        return Err(Error::NotFound(format!("contact {id}")));
    }
    store::require_customer(&mut tx, &existing.customer_id).await?.ensure_writable()?;
    let mut merged = contact_pb(&existing);
    let all = UPDATABLE.map(String::from);
    let mut v = Violations::new();
    for path in if paths.is_empty() { &all[..] } else { &paths[..] } {
        match path.as_str() {
            "name" => merged.name.clone_from(&patch.name),
            "role" => merged.role.clone_from(&patch.role),
            "mobile" => merged.mobile.clone_from(&patch.mobile),
            "email" => merged.email.clone_from(&patch.email),
            "wechat_id" => merged.wechat_id.clone_from(&patch.wechat_id),
            "primary" => merged.primary = patch.primary,
            other => {
                let shown: String = other.chars().take(64).collect();
                v.add(
                    "update_mask",
                    format!("{shown:?} is not an updatable contact field (one of: {})", UPDATABLE.join(", ")),
                )
            }
        }
    }
    v.finish()?;
    let contact = parse_contact(id.clone(), &existing.customer_id, &merged).map_err(|e| e.within("contact"))?;
    store::update_contact(&mut tx, &contact).await?;
    store::touch_customer(&mut tx, &contact.customer_id).await?;
    audit::record(api, &mut tx, p, "contact.update", &contact.customer_id, format!("contact={id}"), "").await?;
    let saved = store::get_contact(&mut tx, &contact.customer_id, &id).await?;
    tx.commit().await?;
    Ok(contact_pb(&saved))
}

pub(super) async fn delete(
    api: &CustomersApi,
    p: &Principal,
    r: pb::DeleteContactRequest,
) -> Result<pb::DeleteContactResponse> {
    let mut v = Violations::new();
    let customer_id = v.check(parse::id("customer_id", &r.customer_id)).unwrap_or_default();
    let id = v.check(parse::id("contact_id", &r.contact_id)).unwrap_or_default();
    v.finish()?;
    let mut tx = api.pool.begin().await?;
    store::require_customer(&mut tx, &customer_id).await?.ensure_writable()?;
    store::delete_contact(&mut tx, &customer_id, &id).await?;
    store::touch_customer(&mut tx, &customer_id).await?;
    audit::record(api, &mut tx, p, "contact.delete", &customer_id, format!("contact={id}"), "").await?;
    tx.commit().await?;
    Ok(pb::DeleteContactResponse {})
}
