//! What every kefu gRPC client carries: the caller's bearer token and the
//! W3C trace context of the current span.
use std::time::Duration;

use tonic::{
    Request, Status,
    metadata::{Ascii, MetadataValue},
    service::Interceptor,
    transport::{Channel, Endpoint},
};

/// Adds `authorization` and `traceparent` to each outgoing call.
#[derive(Clone)]
pub struct CallContext {
    bearer: Option<MetadataValue<Ascii>>,
}

impl CallContext {
    pub fn new(token: Option<&str>) -> anyhow::Result<Self> {
        let bearer = token
            .map(|t| MetadataValue::try_from(format!("Bearer {t}")))
            .transpose()
            .map_err(|_| anyhow::anyhow!("token contains characters not allowed in metadata"))?;
        Ok(Self { bearer })
    }
}

impl Interceptor for CallContext {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        if let Some(b) = &self.bearer
            && !req.metadata().contains_key("authorization")
        {
            req.metadata_mut().insert("authorization", b.clone());
        }
        crate::observe::inject_trace_context(req.metadata_mut());
        Ok(req)
    }
}

/// A lazily connecting channel to `addr` (`http://host:port`).
pub fn channel(addr: &str) -> anyhow::Result<Channel> {
    let uri = if addr.starts_with("http://") || addr.starts_with("https://") {
        addr.to_owned()
    } else {
        format!("http://{addr}")
    };
    let mut endpoint = Endpoint::from_shared(uri.clone())
        .map_err(|e| anyhow::anyhow!("bad service address {addr:?}: {e}"))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true);
    if uri.starts_with("https://") {
        // The CA and client certificate of KEFU_TLS_CA / KEFU_TLS_CERT.
        let tls = crate::tls::client_config().unwrap_or_default();
        endpoint = endpoint.tls_config(tls).map_err(|e| anyhow::anyhow!("TLS for {addr:?}: {e}"))?;
    }
    Ok(endpoint.connect_lazy())
}

/// How long a call to another kefu service may take before it is given up
/// (and the caller answered UNAVAILABLE, retryable).
pub const PEER_DEADLINE: Duration = Duration::from_secs(5);

/// Runs a unary call to another service within `deadline`; a call that does
/// not answer in time is DEADLINE_EXCEEDED (map it with
/// [`crate::Error::from_peer`]).
pub async fn within<T>(
    deadline: Duration,
    call: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, tonic::Status> {
    match tokio::time::timeout(deadline, call).await {
        Ok(r) => r.map(tonic::Response::into_inner),
        Err(_) => Err(tonic::Status::deadline_exceeded(format!("no answer within {} ms", deadline.as_millis()))),
    }
}
