//! The OpenAPI 3.1 document, generated from the route table and the
//! services' descriptors (the same ones that parse requests), so it cannot
//! drift from what the gateway does.
use std::{
    collections::{BTreeMap, HashMap},
    sync::OnceLock,
};

use prost_reflect::{DescriptorPool, FieldDescriptor, Kind, MessageDescriptor};
use prost_types::FileDescriptorProto;
use serde_json::{Value, json};

use crate::{
    routes::{Body, ROUTES},
    rpc,
};

/// The roles of each RPC (`kefu.tickets.v1.TicketService/GetTicket`), from
/// the services' access tables; set once at start by whoever runs the
/// gateway beside them (the `kefu` binary knows every service).
static RPC_ROLES: OnceLock<HashMap<String, Vec<&'static str>>> = OnceLock::new();

/// Records the services' access tables, for `x-roles` in the document.
pub fn set_rpc_roles<'a>(tables: impl IntoIterator<Item = &'a kefu_kit::access::Access>) {
    let mut m = HashMap::new();
    for t in tables {
        for (method, roles) in t.rules {
            m.insert(format!("{}/{method}", t.service), roles.iter().map(|r| r.as_str()).collect());
        }
    }
    let _ = RPC_ROLES.set(m);
}

/// The comment written above the element at `path` of a `.proto` file.
fn comment(file: &FileDescriptorProto, path: &[i32]) -> Option<String> {
    let loc = file.source_code_info.as_ref()?.location.iter().find(|l| l.path == path)?;
    let text = loc.leading_comments.as_deref()?.trim();
    (!text.is_empty()).then(|| text.split('\n').map(str::trim).collect::<Vec<_>>().join(" "))
}

fn field_comment(f: &FieldDescriptor) -> Option<String> {
    comment(f.parent_message().parent_file_descriptor_proto(), f.path())
}

fn schema_name(m: &MessageDescriptor) -> String {
    m.full_name().replace('.', "_")
}

fn scalar(field: &FieldDescriptor, refs: &mut Vec<MessageDescriptor>) -> Value {
    match field.kind() {
        Kind::Bool => json!({"type": "boolean"}),
        Kind::String => json!({"type": "string"}),
        Kind::Bytes => json!({"type": "string", "contentEncoding": "base64"}),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => json!({"type": "integer", "format": "int32"}),
        Kind::Uint32 | Kind::Fixed32 => json!({"type": "integer", "format": "int64", "minimum": 0}),
        // Proto3 JSON writes 64-bit integers as strings and reads either.
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            json!({"oneOf": [{"type": "string", "pattern": "^-?[0-9]+$"}, {"type": "integer"}], "format": "int64"})
        }
        Kind::Uint64 | Kind::Fixed64 => {
            json!({"oneOf": [{"type": "string", "pattern": "^[0-9]+$"}, {"type": "integer", "minimum": 0}]})
        }
        Kind::Float | Kind::Double => json!({"type": "number"}),
        Kind::Enum(e) => {
            let names: Vec<String> = e.values().map(|v| v.name().to_owned()).collect();
            // What people read for each value, from the one label table.
            let labelled: Vec<(String, kefu_proto::Label)> =
                names.iter().filter_map(|n| kefu_proto::label(n).map(|l| (n.clone(), l))).collect();
            let description =
                labelled.iter().map(|(n, l)| format!("{n}：{}（{}）", l.zh, l.en)).collect::<Vec<_>>().join("；");
            let labels: serde_json::Map<String, Value> =
                labelled.iter().map(|(n, l)| (n.clone(), json!({"zh": l.zh, "en": l.en}))).collect();
            json!({"type": "string", "enum": names, "description": description, "x-enum-labels": labels})
        }
        Kind::Message(m) => match m.full_name() {
            "google.protobuf.Timestamp" => json!({"type": "string", "format": "date-time"}),
            "google.protobuf.FieldMask" => json!({"type": "string", "description": "comma-separated field paths"}),
            _ => {
                refs.push(m.clone());
                json!({"$ref": format!("#/components/schemas/{}", schema_name(&m))})
            }
        },
    }
}

fn field_schema(field: &FieldDescriptor, refs: &mut Vec<MessageDescriptor>) -> Value {
    if field.is_map() {
        let Kind::Message(entry) = field.kind() else { return json!({"type": "object"}) };
        let value = entry.map_entry_value_field();
        return json!({"type": "object", "additionalProperties": scalar(&value, refs)});
    }
    let one = scalar(field, refs);
    if field.is_list() {
        json!({"type": "array", "items": one})
    } else if matches!(field.kind(), Kind::Message(_)) {
        // Unset message fields may come back as null.
        json!({"anyOf": [one, {"type": "null"}]})
    } else {
        one
    }
}

fn message_schema(m: &MessageDescriptor, refs: &mut Vec<MessageDescriptor>) -> Value {
    let mut props = serde_json::Map::new();
    for f in m.fields() {
        let mut schema = field_schema(&f, refs);
        if let (Some(c), Some(o)) = (field_comment(&f), schema.as_object_mut()) {
            // An enum's own description (its labels) follows the field's.
            let d = match o.get("description").and_then(Value::as_str) {
                Some(labels) => format!("{c} {labels}"),
                None => c,
            };
            o.insert("description".into(), json!(d));
        }
        props.insert(f.json_name().to_owned(), schema);
        // The gateway names the person or team behind a staff id.
        if crate::names::STAFF_FIELDS.contains(&f.json_name()) && matches!(f.kind(), Kind::String) && !f.is_list() {
            props.insert(
                format!("{}Name", f.json_name()),
                json!({"type": "string", "readOnly": true,
                       "description": format!("The staff directory's name for `{}` (added by the gateway when the directory knows it).", f.json_name())}),
            );
        }
    }
    json!({"type": "object", "properties": props})
}

fn problem_schema() -> Value {
    json!({
        "type": "object",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "violations": {"type": "array", "items": {"type": "object", "properties": {"field": {"type": "string"}, "description": {"type": "string"}}}}
        }
    })
}

fn errors() -> Value {
    let p = json!({"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}});
    let mut m = serde_json::Map::new();
    for (code, what) in [
        ("400", "Bad input; violations name each field"),
        ("401", "Not authenticated"),
        ("403", "The caller's role may not do this"),
        ("404", "Not found"),
        ("409", "Conflict: already exists, or a stale ETag"),
        ("412", "A precondition failed"),
        ("413", "Body too large"),
        ("429", "Too many requests (see Retry-After)"),
        ("503", "A service is unavailable"),
    ] {
        m.insert(code.into(), json!({"description": what, "content": p.clone()}));
    }
    Value::Object(m)
}

/// A JSON object schema with these properties (`required` among them).
fn object(props: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": props, "required": required})
}

/// The gateway's own endpoints (not forwarded RPCs): request and answer.
fn own_endpoint(method: &str, path: &str) -> (Option<Value>, Value) {
    let s = json!({"type": "string"});
    let tokens =
        object(json!({"accessToken": s, "tokenType": s, "expiresIn": {"type": "integer"}, "refreshToken": s}), &[]);
    let account = object(
        json!({"id": s, "username": s, "roles": {"type": "array", "items": s}, "staffId": s, "disabled": {"type": "boolean"},
               "pendingRoleGrant": {"type": "object"}}),
        &[],
    );
    let any = json!({"type": "object"});
    match (method, path) {
        ("POST", "/api/v1/auth/login") => {
            (Some(object(json!({"username": s, "password": s}), &["username", "password"])), tokens)
        }
        ("POST", "/api/v1/auth/refresh") | ("POST", "/api/v1/auth/logout") => (
            Some(object(json!({"refreshToken": s}), &["refreshToken"])),
            if path.ends_with("refresh") { tokens } else { any },
        ),
        ("POST", "/api/v1/auth/password") => (
            Some(object(
                json!({"currentPassword": s, "newPassword": {"type": "string", "description": "12 characters or more, not a common password"},
                       "username": {"type": "string", "description": "Only for the first change of a password someone else chose (a login answered `urn:kefu:password-change-required`), without a session."}}),
                &["currentPassword", "newPassword"],
            )),
            any,
        ),
        ("GET", "/api/v1/me") => (
            None,
            object(
                json!({"staffId": s, "roles": {"type": "array", "items": s}, "displayName": s, "position": s, "teams": {"type": "array"}}),
                &[],
            ),
        ),
        ("POST", "/api/v1/accounts") => (
            Some(object(
                json!({"username": s, "password": s, "roles": {"type": "array", "items": s},
                       "staffId": {"type": "string", "description": "An active person of the staff directory; default the username"},
                       "reason": {"type": "string", "description": "Why the roles are needed; shown to the approving admin"},
                       "mustChangePassword": {"type": "boolean", "description": "The password is temporary: its holder sets their own before the first session"}}),
                &["username", "password", "roles"],
            )),
            account,
        ),
        ("GET", "/api/v1/accounts") => (None, object(json!({"accounts": {"type": "array", "items": account}}), &[])),
        ("PATCH", "/api/v1/accounts/{id}") => (
            Some(object(
                json!({"disabled": {"type": "boolean"}, "roles": {"type": "array", "items": s}, "reason": s}),
                &[],
            )),
            any,
        ),
        ("POST", "/api/v1/api-keys") => (
            Some(object(
                json!({"name": s, "roles": {"type": "array", "items": s},
                       "scopes": {"type": "array", "items": s, "description": "Services (`customers`) or calls (`kefu.customers.v1.CustomerService/GetCustomer`) the key may make"},
                       "expiresInDays": {"type": "integer", "description": "Default 90, at most 366"}}),
                &["name", "roles"],
            )),
            object(
                json!({"id": s, "name": s, "key": {"type": "string", "description": "Shown once"}, "expiresAt": {"type": "integer"}, "note": s}),
                &[],
            ),
        ),
        ("POST", "/api/v1/role-grants/{id}/reject") => (Some(object(json!({"note": s}), &[])), any),
        ("POST", "/api/v1/customers/import") => (
            Some(
                json!({"type": "array", "description": "Rows of ImportCustomers: each a CreateCustomerRequest", "items": {"type": "object"}}),
            ),
            any,
        ),
        ("GET", "/api/v1/customers/{id}/overview") => (
            None,
            object(
                json!({"customer": {"type": "object"}, "openTickets": {"type": "array"}, "satisfaction": {"type": "object"}, "complaints": {}}),
                &[],
            ),
        ),
        _ => (None, any),
    }
}

/// The gateway's own endpoints, with the roles of its endpoint table.
fn own_paths(paths: &mut BTreeMap<String, serde_json::Map<String, Value>>) {
    for e in crate::access::ENDPOINTS {
        let (body, answer) = own_endpoint(e.method, e.path);
        let mut responses = errors();
        let ok = match e.path {
            "/api/v1/events" => {
                json!({"description": "Server-sent events: one per SLA event, `event:` its kind, `data:` JSON", "content": {"text/event-stream": {"schema": {"type": "string"}}}})
            }
            "/api/v1/docs" => json!({"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}),
            _ if e.method == "DELETE"
                || e.path.starts_with("/api/v1/auth/")
                    && e.path != "/api/v1/auth/login"
                    && e.path != "/api/v1/auth/refresh" =>
            {
                json!({"description": "Done (204) or the answer", "content": {"application/json": {"schema": answer}}})
            }
            _ => json!({"description": "OK", "content": {"application/json": {"schema": answer}}}),
        };
        if let Some(o) = responses.as_object_mut() {
            o.insert(
                if e.method == "POST" && matches!(e.path, "/api/v1/accounts" | "/api/v1/api-keys") {
                    "201"
                } else {
                    "200"
                }
                .into(),
                ok,
            );
            if e.method == "DELETE" || matches!(e.path, "/api/v1/auth/logout" | "/api/v1/auth/password") {
                o.insert("204".into(), json!({"description": "Done"}));
            }
        }
        let mut op = serde_json::Map::new();
        op.insert("summary".into(), json!(e.summary));
        op.insert(
            "tags".into(),
            json!([if e.path.starts_with("/api/v1/auth/") || e.path == "/api/v1/me" { "auth" } else { "gateway" }]),
        );
        op.insert("x-roles".into(), json!(e.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>()));
        if e.roles.is_empty() {
            op.insert("security".into(), json!([]));
        }
        let params: Vec<Value> = e
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        if !params.is_empty() {
            op.insert("parameters".into(), Value::Array(params));
        }
        if let Some(b) = body {
            op.insert("requestBody".into(), json!({"required": true, "content": {"application/json": {"schema": b}}}));
        }
        op.insert("responses".into(), responses);
        paths.entry(e.path.to_owned()).or_default().insert(e.method.to_lowercase(), Value::Object(op));
    }
}

/// The whole document.
pub fn document() -> anyhow::Result<Value> {
    let pool: DescriptorPool = rpc::pool()?;
    let mut paths: BTreeMap<String, serde_json::Map<String, Value>> = BTreeMap::new();
    let mut refs: Vec<MessageDescriptor> = Vec::new();
    for r in ROUTES.iter() {
        let m =
            rpc::method(&pool, r.rpc).ok_or_else(|| anyhow::anyhow!("route {} names unknown rpc {}", r.path, r.rpc))?;
        let input = m.input();
        let mut params = Vec::new();
        for (p, field) in r.params {
            let f = rpc::field_at(&input, field).ok_or_else(|| anyhow::anyhow!("{}: no field {field}", r.rpc))?;
            let mut param = json!({"name": p, "in": "path", "required": true, "schema": scalar(&f, &mut refs)});
            if let Some(c) = field_comment(&f) {
                param["description"] = json!(c);
            }
            params.push(param);
        }
        let bound: Vec<&str> = r.params.iter().map(|(_, f)| f.split('.').next().unwrap_or("")).collect();
        if r.body == Body::None {
            for f in input.fields() {
                if bound.contains(&f.name()) || f.is_map() {
                    continue;
                }
                let wkt = matches!(f.kind(), Kind::Message(ref mm) if mm.full_name().starts_with("google.protobuf."));
                if matches!(f.kind(), Kind::Message(_)) && !wkt {
                    continue;
                }
                let mut param = json!({"name": f.json_name(), "in": "query", "required": false, "schema": field_schema(&f, &mut refs)});
                if let Some(c) = field_comment(&f) {
                    param["description"] = json!(c);
                }
                params.push(param);
            }
        } else if let Some(upd) = input.get_field_by_name("update_mask") {
            params
                .push(json!({"name": upd.json_name(), "in": "query", "required": false, "schema": {"type": "string"}}));
        }
        if r.etag.is_some() {
            params.push(json!({"name": "If-Match", "in": "header", "required": false, "schema": {"type": "string"}}));
        }
        if r.idempotency.is_some() {
            params.push(json!({"name": "Idempotency-Key", "in": "header", "required": false, "schema": {"type": "string", "maxLength": 128}}));
        }
        let mut op = serde_json::Map::new();
        op.insert("summary".into(), json!(r.summary));
        op.insert("operationId".into(), json!(r.rpc.rsplit('/').next().unwrap_or(r.rpc)));
        op.insert("tags".into(), json!([m.parent_service().name()]));
        let svc = m.parent_service();
        let file = svc.parent_file();
        let fdp = file.file_descriptor_proto();
        // The service's place in its file (its `index()` counts the whole pool).
        let at = fdp.service.iter().position(|s| s.name() == svc.name()).unwrap_or_default();
        if let Some(c) = comment(fdp, &[6, at as i32, 2, m.index() as i32]) {
            op.insert("description".into(), json!(c));
        }
        if let Some(roles) = RPC_ROLES.get().and_then(|t| t.get(r.rpc)) {
            op.insert("x-roles".into(), json!(roles));
        }
        op.insert("parameters".into(), Value::Array(params));
        let body_schema = match r.body {
            Body::None => None,
            Body::All => {
                refs.push(input.clone());
                Some(json!({"$ref": format!("#/components/schemas/{}", schema_name(&input))}))
            }
            Body::Field(f) => {
                let field = rpc::field_at(&input, f).ok_or_else(|| anyhow::anyhow!("{}: no body field {f}", r.rpc))?;
                Some(scalar(&field, &mut refs))
            }
        };
        if let Some(s) = body_schema {
            op.insert("requestBody".into(), json!({"required": false, "content": {"application/json": {"schema": s}}}));
        }
        refs.push(m.output());
        let mut responses = errors();
        if let Some(o) = responses.as_object_mut() {
            o.insert(
                "200".into(),
                json!({"description": "OK", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{}", schema_name(&m.output()))}}}}),
            );
        }
        op.insert("responses".into(), responses);
        paths.entry(r.path.to_owned()).or_default().insert(r.method.to_lowercase(), Value::Object(op));
    }
    // Every message reachable from the routes.
    let mut schemas = serde_json::Map::new();
    schemas.insert("Problem".into(), problem_schema());
    while let Some(m) = refs.pop() {
        let name = schema_name(&m);
        if schemas.contains_key(&name) {
            continue;
        }
        let mut more = Vec::new();
        let s = message_schema(&m, &mut more);
        schemas.insert(name, s);
        refs.extend(more);
    }
    own_paths(&mut paths);
    let mut all_paths = serde_json::Map::new();
    for (p, ops) in paths {
        all_paths.insert(p, Value::Object(ops));
    }
    Ok(json!({
        "openapi": "3.1.0",
        "info": {"title": "kefu API", "version": env!("CARGO_PKG_VERSION"),
                 "description": "kefu (客服) REST API: staff, customers, tickets and SLAs, complaints, training and performance. Each operation names the roles that may call it (`x-roles`). JSON follows the protobuf JSON mapping of the gRPC contracts; errors are RFC 9457 problem+json."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"apiKey": []}],
        "paths": all_paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}
            }
        }
    }))
}
