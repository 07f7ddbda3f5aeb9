//! Calls any RPC with raw protobuf bytes, so one test can reach every method
//! of every service without knowing its message types (an empty message is
//! valid for every request type).
use bytes::{Buf, BufMut};
use tonic::{
    Code, Request,
    client::Grpc,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    transport::Channel,
};

/// Passes bytes through unchanged.
#[derive(Debug, Clone, Copy, Default)]
pub struct BytesCodec;

#[derive(Debug, Clone, Copy, Default)]
pub struct BytesEncoder;

#[derive(Debug, Clone, Copy, Default)]
pub struct BytesDecoder;

impl Codec for BytesCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = BytesEncoder;
    type Decoder = BytesDecoder;
    fn encoder(&mut self) -> Self::Encoder {
        BytesEncoder
    }
    fn decoder(&mut self) -> Self::Decoder {
        BytesDecoder
    }
}

impl Encoder for BytesEncoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for BytesDecoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Self::Error> {
        let mut out = vec![0; src.remaining()];
        src.copy_to_slice(&mut out);
        Ok(Some(out))
    }
}

/// The shape of an RPC, from the service descriptor.
#[derive(Debug, Clone)]
pub struct Method {
    pub name: String,
    pub client_streaming: bool,
    pub server_streaming: bool,
}

/// Every method of `service` (fully qualified) in kefu's descriptor set.
/// Every gRPC service in kefu's contract, by full name.
pub fn services() -> Vec<String> {
    let fds: prost_types::FileDescriptorSet =
        prost::Message::decode(kefu_proto::FILE_DESCRIPTOR_SET).expect("kefu's descriptor set decodes");
    fds.file.iter().flat_map(|f| f.service.iter().map(move |s| format!("{}.{}", f.package(), s.name()))).collect()
}

pub fn methods(service: &str) -> Vec<Method> {
    let fds: prost_types::FileDescriptorSet =
        prost::Message::decode(kefu_proto::FILE_DESCRIPTOR_SET).expect("kefu's descriptor set decodes");
    let mut out = Vec::new();
    for f in &fds.file {
        for s in &f.service {
            if format!("{}.{}", f.package(), s.name()) == service {
                out.extend(s.method.iter().map(|m| Method {
                    name: m.name().to_owned(),
                    client_streaming: m.client_streaming(),
                    server_streaming: m.server_streaming(),
                }));
            }
        }
    }
    out
}

/// Calls `/service/method` with an empty request (an empty stream for
/// client-streaming methods) and returns the status code the call got. A
/// server stream that opens counts as OK.
pub async fn call_empty(channel: Channel, service: &str, m: &Method, token: &str) -> Code {
    let mut grpc = Grpc::new(channel);
    if grpc.ready().await.is_err() {
        return Code::Unavailable;
    }
    let path: http::uri::PathAndQuery = format!("/{service}/{}", m.name).parse().expect("valid path");
    let auth: tonic::metadata::MetadataValue<_> = format!("Bearer {token}").parse().expect("ascii token");
    let code_of = |r: Result<(), tonic::Status>| r.err().map_or(Code::Ok, |s| s.code());
    match (m.client_streaming, m.server_streaming) {
        (false, false) => {
            let mut req = Request::new(Vec::new());
            req.metadata_mut().insert("authorization", auth);
            code_of(grpc.unary(req, path, BytesCodec).await.map(|_| ()))
        }
        (false, true) => {
            let mut req = Request::new(Vec::new());
            req.metadata_mut().insert("authorization", auth);
            code_of(grpc.server_streaming(req, path, BytesCodec).await.map(|_| ()))
        }
        (true, false) => {
            let mut req = Request::new(tokio_stream::empty::<Vec<u8>>());
            req.metadata_mut().insert("authorization", auth);
            code_of(grpc.client_streaming(req, path, BytesCodec).await.map(|_| ()))
        }
        (true, true) => {
            let mut req = Request::new(tokio_stream::empty::<Vec<u8>>());
            req.metadata_mut().insert("authorization", auth);
            code_of(grpc.streaming(req, path, BytesCodec).await.map(|_| ()))
        }
    }
}
