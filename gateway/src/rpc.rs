//! REST → gRPC without per-RPC code: the request message is built from the
//! path, query string and JSON body using the services' descriptors
//! (protobuf JSON mapping), sent as bytes, and the reply turned back into
//! JSON the same way.
use std::collections::HashMap;

use bytes::{Buf, BufMut};
use prost::Message;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor, SerializeOptions,
};
use serde_json::{Map, Value};
use tonic::{
    Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    transport::Channel,
};

use crate::{
    problem::Problem,
    routes::{Body, Route},
};

pub fn pool() -> anyhow::Result<DescriptorPool> {
    Ok(DescriptorPool::decode(kefu_proto::FILE_DESCRIPTOR_SET)?)
}

/// Bytes in, bytes out: the message is already encoded.
#[derive(Debug, Clone, Default)]
pub struct RawCodec;

#[derive(Debug, Clone, Default)]
pub struct RawEncoder;

#[derive(Debug, Clone, Default)]
pub struct RawDecoder;

impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Vec<u8>;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let mut out = vec![0; src.remaining()];
        src.copy_to_slice(&mut out);
        Ok(Some(out))
    }
}

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

/// Finds `pkg.Service/Method`.
pub fn method(pool: &DescriptorPool, rpc: &str) -> Option<MethodDescriptor> {
    let (svc, m) = rpc.split_once('/')?;
    pool.get_service_by_name(svc)?.methods().find(|x| x.name() == m)
}

/// The field at a dotted path of snake_case names.
pub fn field_at(desc: &MessageDescriptor, path: &str) -> Option<FieldDescriptor> {
    let mut desc = desc.clone();
    let mut parts = path.split('.').peekable();
    while let Some(p) = parts.next() {
        let f = desc.get_field_by_name(p)?;
        if parts.peek().is_none() {
            return Some(f);
        }
        desc = match f.kind() {
            Kind::Message(m) => m,
            _ => return None,
        };
    }
    None
}

/// A text value (path or query) as the JSON the field's type expects.
fn typed(field: &FieldDescriptor, name: &str, raw: &str) -> Result<Value, Problem> {
    let bad = |what: &str| Problem::bad_request(name, format!("{raw:?} is not {what}"));
    Ok(match field.kind() {
        Kind::Bool => Value::Bool(match raw {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => return Err(bad("true or false")),
        }),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            Value::from(raw.parse::<i32>().map_err(|_| bad("a 32-bit integer"))?)
        }
        Kind::Uint32 | Kind::Fixed32 => Value::from(raw.parse::<u32>().map_err(|_| bad("an unsigned integer"))?),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            raw.parse::<i64>().map_err(|_| bad("an integer"))?;
            Value::String(raw.to_owned())
        }
        Kind::Uint64 | Kind::Fixed64 => {
            raw.parse::<u64>().map_err(|_| bad("an unsigned integer"))?;
            Value::String(raw.to_owned())
        }
        Kind::Double | Kind::Float => Value::from(raw.parse::<f64>().map_err(|_| bad("a number"))?),
        Kind::Enum(e) => {
            if e.get_value_by_name(raw).is_none() && raw.parse::<i32>().ok().and_then(|n| e.get_value(n)).is_none() {
                let names: Vec<String> = e.values().map(|v| v.name().to_owned()).collect();
                return Err(Problem::bad_request(name, format!("{raw:?} is not one of {}", names.join(", "))));
            }
            Value::String(raw.to_owned())
        }
        _ => Value::String(raw.to_owned()),
    })
}

/// Sets a dotted snake_case path in a JSON object, creating objects on the way.
fn set_path(obj: &mut Map<String, Value>, desc: &MessageDescriptor, path: &str, v: Value) {
    let parts: Vec<&str> = path.split('.').collect();
    let mut cur = obj;
    let mut d = desc.clone();
    for (i, p) in parts.iter().enumerate() {
        let Some(f) = d.get_field_by_name(p) else { return };
        let key = f.json_name().to_owned();
        // The body may use either the JSON name or the proto name.
        if let Some(existing) = cur.remove(*p) {
            cur.insert(key.clone(), existing);
        }
        if i + 1 == parts.len() {
            cur.insert(key, v);
            return;
        }
        let Kind::Message(m) = f.kind() else { return };
        d = m;
        let entry = cur.entry(key).or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        let Some(next) = entry.as_object_mut() else { return };
        cur = next;
    }
}

/// What the HTTP request carried.
pub struct Incoming<'a> {
    pub path: &'a HashMap<String, String>,
    pub query: &'a [(String, String)],
    pub body: Option<Value>,
    pub if_match: Option<String>,
    pub idempotency_key: Option<String>,
}

/// Builds the request message for a route.
pub fn build_request(route: &Route, m: &MethodDescriptor, inc: Incoming<'_>) -> Result<DynamicMessage, Problem> {
    let desc = m.input();
    let mut obj = match (route.body, inc.body) {
        (Body::None, None) => Map::new(),
        (Body::None, Some(Value::Object(o))) if o.is_empty() => Map::new(),
        (Body::None, Some(_)) => return Err(Problem::bad_request("body", "this operation takes no body")),
        (Body::All, None) => Map::new(),
        (Body::All, Some(Value::Object(o))) => o,
        (Body::All, Some(_)) => return Err(Problem::bad_request("body", "must be a JSON object")),
        (Body::Field(f), Some(v @ Value::Object(_))) => {
            let mut o = Map::new();
            set_path(&mut o, &desc, f, v);
            o
        }
        (Body::Field(_), None) => Map::new(),
        (Body::Field(_), Some(_)) => return Err(Problem::bad_request("body", "must be a JSON object")),
    };
    for (param, field_path) in route.params {
        let raw = inc.path.get(*param).ok_or_else(|| Problem::bad_request(param, "is missing"))?;
        let field = field_at(&desc, field_path)
            .ok_or_else(|| Problem::internal(format!("route field {field_path} unknown")))?;
        let v = typed(&field, param, raw)?;
        set_path(&mut obj, &desc, field_path, v);
    }
    if let (Some(f), Some(tag)) = (route.etag, inc.if_match) {
        let tag = tag.trim().trim_start_matches("W/").trim_matches('"').to_owned();
        if tag != "*" {
            set_path(&mut obj, &desc, f, Value::String(tag));
        }
    }
    if let (Some(f), Some(key)) = (route.idempotency, inc.idempotency_key) {
        set_path(&mut obj, &desc, f, Value::String(key));
    }
    // Query parameters: top-level fields by JSON or proto name; repeated
    // fields may repeat.
    // Fields the path, If-Match or Idempotency-Key decide cannot be given
    // again in the query string (it would override them).
    let bound: Vec<&str> = route
        .params
        .iter()
        .map(|(_, f)| *f)
        .chain(route.etag)
        .chain(route.idempotency)
        .map(|f| f.split('.').next().unwrap_or(f))
        .collect();
    let mut lists: HashMap<String, Vec<Value>> = HashMap::new();
    for (k, raw) in inc.query {
        let field = desc
            .fields()
            .find(|f| f.json_name() == k || f.name() == k)
            .ok_or_else(|| Problem::bad_request(k, "is not a parameter of this operation"))?;
        if bound.iter().any(|b| *b == field.name() || *b == field.json_name()) {
            return Err(Problem::bad_request(
                k,
                "is given by the path or a header; it cannot be given in the query string",
            ));
        }
        if field.is_map() || (matches!(field.kind(), Kind::Message(_)) && !is_wkt_scalar(&field)) {
            return Err(Problem::bad_request(k, "cannot be given in the query string"));
        }
        let v = if is_wkt_scalar(&field) { Value::String(raw.clone()) } else { typed(&field, k, raw)? };
        if field.is_list() {
            lists.entry(field.json_name().to_owned()).or_default().push(v);
        } else {
            obj.insert(field.json_name().to_owned(), v);
        }
    }
    for (k, v) in lists {
        obj.insert(k, Value::Array(v));
    }
    let opts = prost_reflect::DeserializeOptions::new().deny_unknown_fields(true);
    DynamicMessage::deserialize_with_options(desc, Value::Object(obj), &opts)
        .map_err(|e| Problem::bad_request("body", format!("does not match the request schema: {e}")))
}

/// FieldMask and Timestamp travel as strings in query parameters.
fn is_wkt_scalar(f: &FieldDescriptor) -> bool {
    matches!(f.kind(), Kind::Message(m) if m.full_name() == "google.protobuf.FieldMask" || m.full_name() == "google.protobuf.Timestamp")
}

pub fn to_json(msg: &DynamicMessage) -> Result<Value, Problem> {
    let opts = SerializeOptions::new().skip_default_fields(false);
    msg.serialize_with_options(serde_json::value::Serializer, &opts).map_err(Problem::internal)
}

/// One unary call with the caller's credentials and trace context.
pub async fn unary(
    channel: Channel,
    m: &MethodDescriptor,
    req: DynamicMessage,
    bearer: &str,
) -> Result<DynamicMessage, Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.map_err(|e| Status::unavailable(format!("service unavailable: {e}")))?;
    let path = http::uri::PathAndQuery::try_from(format!("/{}/{}", m.parent_service().full_name(), m.name()))
        .map_err(|e| Status::internal(e.to_string()))?;
    let mut request = tonic::Request::new(req.encode_to_vec());
    let auth = tonic::metadata::MetadataValue::try_from(format!("Bearer {bearer}"))
        .map_err(|_| Status::unauthenticated("token is not valid metadata"))?;
    request.metadata_mut().insert("authorization", auth);
    kefu_kit::observe::inject_trace_context(request.metadata_mut());
    let resp = grpc.unary(request, path, RawCodec).await?;
    DynamicMessage::decode(m.output(), resp.into_inner().as_slice()).map_err(|e| Status::internal(e.to_string()))
}
