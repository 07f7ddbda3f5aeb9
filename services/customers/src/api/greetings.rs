//! Festival greetings: the festival calendar, whom to greet and on which
//! channel, and marking a greeting sent (once).
use chrono::Datelike;
use kefu_kit::{Error, Result, auth::Principal, error::Violations, page, parse};
use kefu_proto::customers::v1 as pb;

use super::{CustomersApi, audit, unchecked};
use crate::{
    domain::{self, Channel, Contact, Festival},
    store,
};

const LIST: &str = "greetings";

/// A festival named in a request (unspecified is refused).
fn festival(field: &str, raw: i32) -> Result<Festival> {
    let f = parse::enumeration::<pb::Festival>(field, raw, None)?;
    Festival::from_pb(f).ok_or_else(|| Error::invalid(field, "is required"))
}

/// A year of the calendar; 0 is this year.
fn year_or_current(raw: i32) -> i32 {
    if raw == 0 { domain::today().year() } else { raw }
}

fn festival_date_pb(f: Festival, year: i32) -> Result<pb::FestivalDate> {
    Ok(pb::FestivalDate {
        festival: f.to_pb().into(),
        date: parse::format_date(f.date(year)?),
        lunar: f.is_lunar(),
        name_zh: f.name_zh().to_owned(),
    })
}

/// The channel and address to greet on: the preferred channel when the
/// primary contact has an address for it, else the first of WeChat, SMS and
/// email that it has.
fn greeting_route(preferred: Channel, c: Option<&Contact>) -> (Channel, String, String) {
    let Some(c) = c else {
        return (preferred, String::new(), String::new());
    };
    let address = |ch: Channel| -> Option<String> {
        match ch {
            Channel::Phone | Channel::Sms => c.mobile.clone(),
            Channel::Email => c.email.clone(),
            Channel::Wechat => c.wechat_id.clone(),
            _ => None,
        }
    };
    for ch in [preferred, Channel::Wechat, Channel::Sms, Channel::Email] {
        if let Some(a) = address(ch) {
            return (ch, c.name.clone(), a);
        }
    }
    (preferred, c.name.clone(), String::new())
}

pub(super) fn list_festivals(r: pb::ListFestivalsRequest) -> Result<pb::ListFestivalsResponse> {
    let year = year_or_current(r.year);
    let mut festivals = Festival::ALL.iter().map(|f| festival_date_pb(*f, year)).collect::<Result<Vec<_>>>()?;
    festivals.sort_by(|a, b| a.date.cmp(&b.date));
    Ok(pb::ListFestivalsResponse { festivals })
}

pub(super) async fn list_targets(
    api: &CustomersApi,
    r: pb::ListGreetingTargetsRequest,
) -> Result<pb::ListGreetingTargetsResponse> {
    let mut v = Violations::new();
    let f = v.check(festival("festival", r.festival));
    let size = v.check(parse::page_size("page_size", r.page_size, 100, 1000)).unwrap_or_default();
    let after = v.check(page::after(LIST, &r.page_token)).flatten().unwrap_or_default();
    v.finish()?;
    let f = f.ok_or_else(|| unchecked("festival"))?;
    let year = year_or_current(r.year);
    let festival_date = festival_date_pb(f, year)?;
    let mut conn = api.pool.acquire().await?;
    let rows = store::greeting_candidates(&mut conn, f, year, r.pending_only, &after, size + 1).await?;
    let (rows, more) = page::split(rows, size);
    let next_page_token = page::next(LIST, &rows, more, |(c, _)| c.id.clone());
    let mut targets = Vec::with_capacity(rows.len());
    for (c, already_sent) in rows {
        let contacts = store::contacts(&mut conn, &c.id).await?;
        let (channel, contact_name, contact_address) =
            greeting_route(c.preferred_channel, contacts.iter().find(|x| x.primary));
        targets.push(pb::GreetingTarget {
            customer_id: c.id,
            company_name: c.company_name,
            preferred_channel: channel.into(),
            contact_name,
            contact_address,
            already_sent,
        });
    }
    Ok(pb::ListGreetingTargetsResponse { festival_date: Some(festival_date), targets, next_page_token })
}

pub(super) async fn mark_sent(
    api: &CustomersApi,
    p: &Principal,
    r: pb::MarkGreetingSentRequest,
) -> Result<pb::MarkGreetingSentResponse> {
    let mut v = Violations::new();
    let customer_id = v.check(parse::id("customer_id", &r.customer_id)).unwrap_or_default();
    let f = v.check(festival("festival", r.festival));
    if !(1901..=2100).contains(&r.year) {
        v.add("year", "must be between 1901 and 2100");
    }
    let channel = v.check(parse::enumeration("channel", r.channel, Some(Channel::Unspecified)));
    v.finish()?;
    let (Some(f), Some(channel)) = (f, channel) else {
        return Err(unchecked("festival or channel"));
    };
    let mut tx = api.pool.begin().await?;
    store::require_customer(&mut tx, &customer_id).await?.ensure_writable()?;
    let (newly, at) = store::mark_greeting(&mut tx, &customer_id, f, r.year, channel, &p.subject).await?;
    if newly {
        let detail = format!("{}:{}", f.to_pb().as_str_name(), r.year);
        audit::record(api, &mut tx, p, "greeting.sent", &customer_id, detail, "").await?;
    }
    tx.commit().await?;
    Ok(pb::MarkGreetingSentResponse { newly_marked: newly, sent_time: parse::ts(at) })
}
