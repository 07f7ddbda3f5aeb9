//! Business requests: request types (their materials and steps) and a
//! request's progress through them.
use kefu_kit::{Error, auth::Principal, error::Violations, parse};
use kefu_proto::tickets::v1 as pb;

use super::{
    TicketsApi,
    view::{json_list, ticket_pb, to_json},
};
use crate::{
    domain::{self, Item},
    store,
};

const TYPE_NAME_MAX: usize = 100;
/// A request type lists at most this many materials, and as many steps…
const ITEMS_MAX: usize = 50;
/// …each named in at most this many characters.
const ITEM_CHARS: usize = 100;

pub(super) async fn update_progress(
    api: &TicketsApi,
    p: &Principal,
    r: pb::UpdateProgressRequest,
) -> Result<pb::Ticket, Error> {
    let which = domain::ticket_ref("ticket_id", &r.ticket_id)?;
    let mut tx = api.pool.begin().await?;
    let mut t = store::require_ticket(&mut tx, &which).await?;
    let mut materials: Vec<Item> = json_list(&t.materials);
    let mut steps: Vec<Item> = json_list(&t.steps);
    let mut v = Violations::new();
    let mut tick = |items: &mut Vec<Item>, field: &str, names: &[String], what: &str| {
        for (i, name) in names.iter().enumerate() {
            match items.iter_mut().find(|m| m.name == *name) {
                Some(m) => m.done = true,
                None => v.add(
                    format!("{field}[{i}]"),
                    format!("{:?} is not a {what} of this request", name.chars().take(ITEM_CHARS).collect::<String>()),
                ),
            }
        }
    };
    tick(&mut materials, "materials_received", &r.materials_received, "material");
    tick(&mut steps, "steps_done", &r.steps_done, "step");
    v.finish()?;
    t.materials = to_json(&materials)?;
    t.steps = to_json(&steps)?;
    let mut parts: Vec<String> = r.materials_received.iter().map(|m| format!("已收材料：{m}")).collect();
    parts.extend(r.steps_done.iter().map(|s| format!("已完成步骤：{s}")));
    store::add_timeline(&mut tx, &t.id, "progress", &p.subject, &parts.join("；"), api.engine.now()).await?;
    store::save_ticket(&mut tx, &mut t).await?;
    let out = ticket_pb(&mut tx, &t).await?;
    tx.commit().await?;
    Ok(out)
}

pub(super) async fn list_request_types(api: &TicketsApi) -> Result<pb::ListRequestTypesResponse, Error> {
    let mut conn = api.pool.acquire().await?;
    let request_types = store::request_types(&mut conn)
        .await?
        .into_iter()
        .map(|(name, category, m, s)| pb::RequestType {
            name,
            category,
            required_materials: json_list(&m),
            steps: json_list(&s),
        })
        .collect();
    Ok(pb::ListRequestTypesResponse { request_types })
}

pub(super) async fn upsert_request_type(
    api: &TicketsApi,
    r: pb::UpsertRequestTypeRequest,
) -> Result<pb::RequestType, Error> {
    let rt = r.request_type.ok_or_else(|| Error::invalid("request_type", "is required"))?;
    let known = api.categories().await?;
    let mut v = Violations::new();
    let name = v.check(parse::required_line("request_type.name", &rt.name, TYPE_NAME_MAX));
    let category = v.check(domain::category("request_type.category", &rt.category, &known));
    let materials =
        v.check(parse::tags("request_type.required_materials", &rt.required_materials, ITEMS_MAX, ITEM_CHARS));
    let steps = v.check(parse::tags("request_type.steps", &rt.steps, ITEMS_MAX, ITEM_CHARS));
    v.finish()?;
    let (Some(name), Some(category), Some(required_materials), Some(steps)) = (name, category, materials, steps) else {
        return Err(Error::invalid("request_type", "is not valid"));
    };
    let mut conn = api.pool.acquire().await?;
    store::put_request_type(&mut conn, &name, &category, &to_json(&required_materials)?, &to_json(&steps)?).await?;
    Ok(pb::RequestType { name, category, required_materials, steps })
}
