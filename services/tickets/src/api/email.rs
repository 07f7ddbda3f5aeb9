//! Email ingest: a message threads onto the ticket it answers (by its
//! In-Reply-To/References headers, or a ticket number in the subject) or
//! opens a new ticket. Each Message-ID is taken once: its idempotency key is
//! `email:<Message-ID>`, claimed in the same transaction as the change.
use kefu_kit::{Error, auth::Principal, db};
use kefu_proto::{common::v1::Channel, tickets::v1 as pb};

use super::{
    TicketsApi,
    tickets::{self, claim, insert_new, parse_new, post_message},
    view::ticket_pb,
};
use crate::{domain::TicketRef, store};

/// The largest message accepted.
const RAW_MAX: usize = 10 * 1024 * 1024;
const MESSAGE_ID_MAX: usize = 255;
/// Parents (In-Reply-To, References) a message is threaded by, nearest first.
const PARENTS_MAX: usize = 50;
const SUBJECT_MAX: usize = 200;
const BODY_MAX: usize = 20_000;

struct Email {
    message_id: String,
    parents: Vec<String>,
    from: String,
    subject: String,
    body: String,
}

/// Control characters other than line breaks and tabs become spaces: an
/// email is taken as it came, not refused for what a mail client put in it.
fn clean(s: &str) -> String {
    s.chars().map(|c| if c.is_control() && !matches!(c, '\n' | '\r' | '\t') { ' ' } else { c }).collect()
}

fn one_line(s: &str, max: usize) -> String {
    clean(s).split_whitespace().collect::<Vec<_>>().join(" ").chars().take(max).collect()
}

fn parse_email(raw: &[u8]) -> Result<Email, Error> {
    if raw.is_empty() {
        return Err(Error::invalid("raw", "is empty"));
    }
    if raw.len() > RAW_MAX {
        return Err(Error::invalid("raw", "is larger than 10 MiB"));
    }
    let msg = mail_parser::MessageParser::default()
        .parse(raw)
        .ok_or_else(|| Error::invalid("raw", "is not an RFC 5322 message"))?;
    let from = msg
        .from()
        .and_then(|a| a.first())
        .and_then(|m| m.address())
        .map(|a| one_line(a, SUBJECT_MAX).to_lowercase())
        .filter(|a| !a.is_empty())
        .ok_or_else(|| Error::invalid("raw", "has no From address"))?;
    let message_id = msg
        .message_id()
        .map(|m| m.trim().to_owned())
        .filter(|m| !m.is_empty())
        .ok_or_else(|| Error::invalid("raw", "has no Message-ID"))?;
    if message_id.chars().count() > MESSAGE_ID_MAX || message_id.chars().any(char::is_control) {
        return Err(Error::invalid("raw", "has a Message-ID that is not a short single line"));
    }
    // The nearest parents only (In-Reply-To, then References newest first):
    // a message naming thousands of parents costs one bounded query.
    let mut parents: Vec<String> = Vec::new();
    for h in [msg.in_reply_to(), msg.references()] {
        if let Some(list) = h.as_text_list() {
            parents.extend(list.iter().rev().map(|s| s.trim().to_owned()));
        } else if let Some(one) = h.as_text() {
            parents.push(one.trim().to_owned());
        }
    }
    parents.retain(|m| !m.is_empty() && m.chars().count() <= MESSAGE_ID_MAX);
    parents.dedup();
    parents.truncate(PARENTS_MAX);
    let subject = one_line(msg.subject().unwrap_or(""), SUBJECT_MAX);
    let mut body = clean(msg.body_text(0).as_deref().unwrap_or("").trim());
    if body.chars().count() > BODY_MAX {
        const MARK: &str = "\n[message truncated]";
        body = body.chars().take(BODY_MAX - MARK.chars().count()).collect::<String>() + MARK;
    }
    Ok(Email {
        message_id,
        parents,
        from,
        subject: if subject.is_empty() { "(no subject)".into() } else { subject },
        body,
    })
}

/// "[KF-000042]" in a subject threads a reply even without headers.
fn number_in_subject(subject: &str) -> Option<String> {
    let start = subject.find("[KF-")?;
    let rest = &subject[start + 1..];
    let end = rest.find(']')?;
    let n = &rest[..end];
    crate::domain::is_ticket_number(n).then(|| n.to_owned())
}

/// The ticket a message answers: the one its In-Reply-To or References
/// name, else the one whose number its subject carries.
async fn thread_of(conn: &mut sqlx::AnyConnection, mail: &Email) -> Result<Option<String>, Error> {
    let known = store::email_tickets(conn, &mail.parents).await?;
    if let Some(tid) = mail.parents.iter().find_map(|m| known.get(m)) {
        return Ok(Some(tid.clone()));
    }
    match number_in_subject(&mail.subject) {
        Some(n) => Ok(store::find_ticket(conn, &TicketRef::Number(n)).await?.map(|t| t.id)),
        None => Ok(None),
    }
}

/// Whether the sender may add to `ticket_id`: its requester, or a contact
/// of its customer. Anyone else (a forged subject or reference) opens a
/// ticket of their own.
async fn may_thread(api: &TicketsApi, token: Option<&str>, ticket_id: &str, from: &str) -> Result<bool, Error> {
    let t = {
        let mut conn = api.pool.acquire().await?;
        store::require_ticket(&mut conn, &TicketRef::Id(ticket_id.to_owned())).await?
    };
    if t.requester.trim().eq_ignore_ascii_case(from.trim()) {
        return Ok(true);
    }
    if t.customer_id.is_empty() {
        return Ok(false);
    }
    Ok(api.customer_by_email(token, from).await?.is_some_and(|(customer, _)| customer == t.customer_id))
}

async fn answer(
    api: &TicketsApi,
    ticket_id: &str,
    threaded: bool,
    duplicate: bool,
) -> Result<pb::IngestEmailResponse, Error> {
    let ticket = tickets::load(api, &TicketRef::Id(ticket_id.to_owned())).await?;
    Ok(pb::IngestEmailResponse { ticket: Some(ticket), threaded, duplicate })
}

pub(super) async fn ingest(
    api: &TicketsApi,
    p: &Principal,
    token: Option<&str>,
    r: pb::IngestEmailRequest,
) -> Result<pb::IngestEmailResponse, Error> {
    let mail = parse_email(&r.raw)?;
    let request_id = format!("email:{}", mail.message_id);
    // The key is the Message-ID itself: any copy of the message is the same request.
    let fingerprint = db::fingerprint(mail.message_id.as_bytes());
    // (The connection is let go before answering: SQLite has only one.)
    let (seen, parent) = {
        let mut conn = api.pool.acquire().await?;
        if let Some(tid) = store::email_ticket(&mut conn, &mail.message_id).await? {
            (Some(tid), None)
        } else {
            (None, thread_of(&mut conn, &mail).await?)
        }
    };
    if let Some(tid) = seen {
        return answer(api, &tid, true, true).await;
    }
    let parent = match parent {
        Some(tid) if may_thread(api, token, &tid, &mail.from).await? => Some(tid),
        Some(tid) => {
            tracing::warn!(ticket = %tid, "mail names a ticket its sender is not on; opening a new ticket instead");
            None
        }
        None => None,
    };
    if let Some(tid) = parent {
        let mut tx = api.pool.begin().await?;
        if let Some(existing) = claim(&mut tx, &request_id, &tid, &fingerprint).await? {
            tx.rollback().await?;
            return answer(api, &existing, true, true).await;
        }
        let (_, t, changes) =
            post_message(api, &mut tx, p, &TicketRef::Id(tid), pb::MessageKind::CustomerMessage, &mail.body).await?;
        store::put_email(&mut tx, &mail.message_id, &t.id, api.engine.now()).await?;
        let out = ticket_pb(&mut tx, &t).await?;
        api.finish(tx, changes).await?;
        api.changed(&t, "ticket_message").await;
        return Ok(pb::IngestEmailResponse { ticket: Some(out), threaded: true, duplicate: false });
    }
    let customer = api.customer_by_email(token, &mail.from).await?;
    let input = pb::Ticket {
        kind: pb::TicketKind::Consultation as i32,
        channel: Channel::Email as i32,
        subject: mail.subject.clone(),
        customer_id: customer.as_ref().map(|c| c.0.clone()).unwrap_or_default(),
        requester: mail.from.clone(),
        ..Default::default()
    };
    let new = parse_new(api, &input, &mail.body).await?;
    let tier = customer.map_or_else(|| "standard".to_owned(), |c| c.1);
    let id = uuid::Uuid::now_v7().to_string();
    let mut tx = api.pool.begin().await?;
    if let Some(existing) = claim(&mut tx, &request_id, &id, &fingerprint).await? {
        tx.rollback().await?;
        return answer(api, &existing, false, true).await;
    }
    let (t, changes) = insert_new(api, &mut tx, p, id, new, tier, &request_id).await?;
    store::put_email(&mut tx, &mail.message_id, &t.id, api.engine.now()).await?;
    let out = ticket_pb(&mut tx, &t).await?;
    api.finish(tx, changes).await?;
    api.changed(&t, "ticket_created").await;
    Ok(pb::IngestEmailResponse { ticket: Some(out), threaded: false, duplicate: false })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_carry_ticket_numbers() {
        assert_eq!(number_in_subject("Re: [KF-000042] 發票").as_deref(), Some("KF-000042"));
        assert_eq!(number_in_subject("Re: [KF-42] 發票"), None);
        assert_eq!(number_in_subject("no number"), None);
    }

    #[test]
    fn control_characters_in_mail_become_spaces() {
        assert_eq!(one_line("a\u{1b}[31mb\n c", 20), "a [31mb c");
        assert_eq!(clean("x\0y\nz"), "x y\nz");
    }
}
