//! The OpenAPI 3.1 document, generated from the route table and the
//! services' descriptors (the same ones that parse requests), so it cannot
//! drift from what the gateway does.
use std::collections::BTreeMap;

use prost_reflect::{DescriptorPool, FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Value, json};

use crate::{
    routes::{Body, ROUTES},
    rpc,
};

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
        props.insert(f.json_name().to_owned(), field_schema(&f, refs));
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

fn auth_paths() -> Value {
    let tokens = json!({"type": "object", "properties": {
        "accessToken": {"type": "string"}, "tokenType": {"type": "string"}, "expiresIn": {"type": "integer"}, "refreshToken": {"type": "string"}}});
    let body = |props: Value, required: Value| json!({"required": true, "content": {"application/json": {"schema": {"type": "object", "properties": props, "required": required}}}});
    let ok = |schema: Value| json!({"description": "OK", "content": {"application/json": {"schema": schema}}});
    let mut e = errors();
    if let Some(o) = e.as_object_mut() {
        o.insert("200".into(), ok(tokens.clone()));
    }
    let mut e204 = errors();
    if let Some(o) = e204.as_object_mut() {
        o.insert("204".into(), json!({"description": "Done"}));
    }
    json!({
        "/api/v1/auth/login": {"post": {"summary": "Log in with username and password", "tags": ["auth"], "security": [],
            "requestBody": body(json!({"username": {"type": "string"}, "password": {"type": "string"}}), json!(["username", "password"])),
            "responses": e.clone()}},
        "/api/v1/auth/refresh": {"post": {"summary": "Rotate a refresh token", "tags": ["auth"], "security": [],
            "requestBody": body(json!({"refreshToken": {"type": "string"}}), json!(["refreshToken"])),
            "responses": e}},
        "/api/v1/auth/logout": {"post": {"summary": "End a login (revokes its refresh tokens)", "tags": ["auth"], "security": [],
            "requestBody": body(json!({"refreshToken": {"type": "string"}}), json!(["refreshToken"])),
            "responses": e204.clone()}},
        "/api/v1/auth/password": {"post": {"summary": "Change one's password", "tags": ["auth"],
            "requestBody": body(json!({"currentPassword": {"type": "string"}, "newPassword": {"type": "string"}}), json!(["currentPassword", "newPassword"])),
            "responses": e204}},
    })
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
            params.push(json!({"name": p, "in": "path", "required": true, "schema": scalar(&f, &mut refs)}));
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
                params.push(json!({"name": f.json_name(), "in": "query", "required": false, "schema": field_schema(&f, &mut refs)}));
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
    let mut all_paths = serde_json::Map::new();
    for (p, ops) in paths {
        all_paths.insert(p, Value::Object(ops));
    }
    if let Value::Object(a) = auth_paths() {
        all_paths.extend(a);
    }
    Ok(json!({
        "openapi": "3.1.0",
        "info": {"title": "kefu API", "version": env!("CARGO_PKG_VERSION"),
                 "description": "kefu (客服) REST API: customers, tickets and SLAs. JSON follows the protobuf JSON mapping of the gRPC contracts; errors are RFC 9457 problem+json."},
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
