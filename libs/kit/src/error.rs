//! The error every kefu RPC returns, and its single mapping to `tonic::Status`.
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// One bad field of a request: which, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

impl FieldViolation {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self { field: field.into(), description: description.into() }
    }
}

impl std::fmt::Display for FieldViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.description)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid argument: {}", join(.0))]
    InvalidArgument(Vec<FieldViolation>),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    FailedPrecondition(String),
    /// A stale etag or a concurrent change.
    #[error("{0}")]
    Aborted(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    PermissionDenied(String),
    /// A service this one depends on did not answer.
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

fn join(v: &[FieldViolation]) -> String {
    v.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

impl Error {
    /// Shorthand for a single bad field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::InvalidArgument(vec![FieldViolation::new(field, description)])
    }

    /// Prefixes every field path, e.g. `contacts[2]` + `mobile`.
    #[must_use]
    pub fn within(self, prefix: &str) -> Self {
        match self {
            Self::InvalidArgument(v) => Self::InvalidArgument(
                v.into_iter().map(|f| FieldViolation::new(format!("{prefix}.{}", f.field), f.description)).collect(),
            ),
            other => other,
        }
    }
}

impl Error {
    /// A failed call to another kefu service, in this service's words: the
    /// caller's own denials pass through, a peer that is down or slow is
    /// UNAVAILABLE (retryable), a missing resource stays NOT_FOUND, and
    /// anything else is this service's fault (INTERNAL, logged, not shown).
    pub fn from_peer(peer: &str, status: &Status) -> Self {
        match status.code() {
            Code::Unauthenticated => Self::Unauthenticated(status.message().to_owned()),
            Code::PermissionDenied => Self::PermissionDenied(status.message().to_owned()),
            Code::NotFound => Self::NotFound(format!("{peer}: {}", status.message().trim_end_matches(" not found"))),
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::ResourceExhausted | Code::Aborted => {
                Self::Unavailable(format!("the {peer} service did not answer; retry"))
            }
            code => Self::Internal(anyhow::anyhow!("{peer} answered {code:?}: {}", status.message())),
        }
    }
}

impl From<Status> for Error {
    fn from(status: Status) -> Self {
        Self::from_peer("a kefu", &status)
    }
}

impl From<sqlx::Error> for Error {
    /// The database's own text never reaches a caller: a unique clash that no
    /// [`Constraints`] table named is a generic conflict, a lost or busy
    /// database is UNAVAILABLE (retryable), anything else is INTERNAL.
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                tracing::debug!(error = %db, "unique constraint not mapped by the service");
                Self::AlreadyExists("a resource with these values already exists".into())
            }
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                Self::FailedPrecondition("the change refers to a resource that does not exist".into())
            }
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                tracing::warn!(error = %e, "database unavailable");
                Self::Unavailable("the database is not reachable; retry".into())
            }
            _ => Self::Internal(e.into()),
        }
    }
}

/// A service's unique constraints and what a clash on each means, so that a
/// conflict is reported in the domain's words. Each entry names the
/// constraint (the PostgreSQL index name) and the columns SQLite reports
/// (`table.column[, table.column]`).
pub struct Constraints(pub &'static [Constraint]);

pub struct Constraint {
    pub name: &'static str,
    pub columns: &'static str,
    pub message: &'static str,
}

impl Constraints {
    /// Maps a database error; clashes not in the table fall back to
    /// `Error::from`.
    pub fn map(&self, e: sqlx::Error) -> Error {
        if let sqlx::Error::Database(db) = &e
            && db.is_unique_violation()
        {
            let sqlite_columns = db.message().strip_prefix("UNIQUE constraint failed: ").unwrap_or("");
            if let Some(c) = self.0.iter().find(|c| {
                db.constraint() == Some(c.name) || (!sqlite_columns.is_empty() && sqlite_columns == c.columns)
            }) {
                return Error::AlreadyExists(c.message.to_owned());
            }
        }
        Error::from(e)
    }
}

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        match e {
            Error::InvalidArgument(violations) => {
                let message = format!("invalid argument: {}", join(&violations));
                let mut details = ErrorDetails::new();
                for v in &violations {
                    details.add_bad_request_violation(v.field.clone(), v.description.clone());
                }
                Status::with_error_details(Code::InvalidArgument, message, details)
            }
            Error::NotFound(m) => Status::not_found(format!("{m} not found")),
            Error::AlreadyExists(m) => Status::already_exists(m),
            Error::FailedPrecondition(m) => Status::failed_precondition(m),
            Error::Aborted(m) => Status::aborted(m),
            Error::Unauthenticated(m) => Status::unauthenticated(m),
            Error::PermissionDenied(m) => Status::permission_denied(m),
            Error::Unavailable(m) => Status::unavailable(m),
            Error::Internal(err) => {
                // The detail goes to the log, never to the caller.
                tracing::error!(error = ?err, "internal error");
                Status::internal("internal error")
            }
        }
    }
}

/// Collects field violations so that one response names every bad field.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation::new(field, description));
    }
    /// Runs a parse; on failure records its violations and returns `None`.
    pub fn check<T>(&mut self, r: Result<T, Error>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(Error::InvalidArgument(v)) => {
                self.0.extend(v);
                None
            }
            Err(other) => {
                self.0.push(FieldViolation::new("", other.to_string()));
                None
            }
        }
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// `Ok(())` when nothing was recorded.
    pub fn finish(self) -> Result<(), Error> {
        if self.0.is_empty() { Ok(()) } else { Err(Error::InvalidArgument(self.0)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peers_failure_is_retryable_denied_or_internal_but_never_its_text() {
        let down = Error::from_peer("customers", &Status::unavailable("connection refused 10.0.0.7"));
        assert!(
            matches!(&down, Error::Unavailable(m) if m == "the customers service did not answer; retry"),
            "{down:?}"
        );
        let slow = Error::from_peer("customers", &Status::deadline_exceeded("timeout"));
        assert!(matches!(slow, Error::Unavailable(_)));
        let denied = Error::from_peer("customers", &Status::permission_denied("GetCustomer needs one of [agent]"));
        assert!(matches!(&denied, Error::PermissionDenied(m) if m.contains("GetCustomer")));
        let missing = Error::from_peer("customers", &Status::not_found("customer 42 not found"));
        assert!(matches!(&missing, Error::NotFound(m) if m == "customers: customer 42"), "{missing:?}");
        let bug: Status = Error::from(Status::invalid_argument("id: bad")).into();
        assert_eq!(bug.code(), Code::Internal);
        assert_eq!(bug.message(), "internal error");
    }

    #[test]
    fn invalid_argument_names_each_field_in_message_and_details() {
        let status: Status = Error::InvalidArgument(vec![
            FieldViolation::new("customer.uscc", "must be 18 characters"),
            FieldViolation::new("contacts[0].mobile", "not a mainland mobile number"),
        ])
        .into();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains("customer.uscc: must be 18 characters"));
        let details = status.get_error_details();
        let br = details.bad_request().expect("bad request details");
        assert_eq!(br.field_violations.len(), 2);
        assert_eq!(br.field_violations[1].field, "contacts[0].mobile");
    }

    #[test]
    fn internal_errors_do_not_leak_detail() {
        let status: Status = Error::Internal(anyhow::anyhow!("password=hunter2 at db")).into();
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("hunter2"));
    }
}
