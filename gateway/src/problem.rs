//! Errors as `application/problem+json` (RFC 9457), and the one mapping from
//! gRPC status codes to HTTP statuses.
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;
use tonic::Code;
use tonic_types::StatusExt;

#[derive(Debug, Clone, Serialize)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty", rename = "violations")]
    pub violations: Vec<FieldViolation>,
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

/// The HTTP status for a gRPC code (google.rpc.Code → HTTP, as Google's
/// HTTP mapping defines it).
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::FailedPrecondition => StatusCode::PRECONDITION_FAILED,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::DataLoss | Code::Unknown | Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            kind: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            violations: Vec::new(),
            retry_after: None,
        }
    }

    pub fn bad_request(field: &str, description: impl Into<String>) -> Self {
        let description = description.into();
        let mut p = Self::new(StatusCode::BAD_REQUEST, format!("{field}: {description}"));
        p.violations.push(FieldViolation { field: field.to_owned(), description });
        p
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, detail)
    }

    pub fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "gateway internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    }

    /// A service's gRPC status, with its field violations.
    pub fn from_status(s: &tonic::Status) -> Self {
        let status = http_status(s.code());
        let mut p = Self::new(status, s.message());
        if let Some(br) = s.get_error_details().bad_request() {
            p.violations = br
                .field_violations
                .iter()
                .map(|v| FieldViolation { field: v.field.clone(), description: v.description.clone() })
                .collect();
        }
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            p.detail = "internal error".into();
        }
        p
    }
}

impl From<kefu_kit::Error> for Problem {
    fn from(e: kefu_kit::Error) -> Self {
        Self::from_status(&tonic::Status::from(e))
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut resp = (status, body).into_response();
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(secs) = self.retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_grpc_code_has_an_http_status() {
        let table = [
            (Code::Ok, 200),
            (Code::Cancelled, 499),
            (Code::Unknown, 500),
            (Code::InvalidArgument, 400),
            (Code::DeadlineExceeded, 504),
            (Code::NotFound, 404),
            (Code::AlreadyExists, 409),
            (Code::PermissionDenied, 403),
            (Code::ResourceExhausted, 429),
            (Code::FailedPrecondition, 412),
            (Code::Aborted, 409),
            (Code::OutOfRange, 400),
            (Code::Unimplemented, 501),
            (Code::Internal, 500),
            (Code::Unavailable, 503),
            (Code::DataLoss, 500),
            (Code::Unauthenticated, 401),
        ];
        // Every one of gRPC's 17 codes, each once.
        let numbers: std::collections::BTreeSet<i32> = table.iter().map(|(c, _)| *c as i32).collect();
        assert_eq!(numbers, (0..=16).collect());
        for (code, want) in table {
            assert_eq!(http_status(code).as_u16(), want, "{code:?}");
            if code == Code::Ok {
                continue;
            }
            let p = Problem::from_status(&tonic::Status::new(code, "db password hunter2 at 10.0.0.1"));
            assert_eq!(p.status, want, "{code:?}");
            if matches!(code, Code::Internal | Code::Unknown | Code::DataLoss) {
                assert!(!p.detail.contains("hunter2"), "{code:?} leaks its detail: {}", p.detail);
            }
        }
    }
}
