//! One error type for every service. It maps to a `tonic::Status` carrying an
//! `ErrorInfo` (a stable UPPER_SNAKE reason a client can branch on, and the
//! service's domain) plus `BadRequest`, `PreconditionFailure` or `RetryInfo` where
//! they apply. Database failures are classified here once: a database that is down
//! is `UNAVAILABLE` with `RetryInfo`, never `INTERNAL`.

use std::collections::HashMap;
use std::time::Duration;

use tonic::Code;
use tonic_types::{ErrorDetails, StatusExt};

pub type ServiceResult<T> = Result<T, ServiceError>;

/// How long a client should wait before retrying after a transient failure.
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PreconditionViolation {
    pub kind: String,
    pub subject: String,
    pub description: String,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{code:?} {reason}: {message}")]
pub struct ServiceError {
    pub code: Code,
    pub reason: String,
    pub message: String,
    /// Boxed: errors travel through every `Result` and should stay small.
    pub details: Box<Details>,
}

#[derive(Debug, Clone, Default)]
pub struct Details {
    pub field_violations: Vec<FieldViolation>,
    pub precondition_violations: Vec<PreconditionViolation>,
    pub retry_after: Option<Duration>,
    pub metadata: HashMap<String, String>,
}

impl ServiceError {
    pub fn new(code: Code, reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
            message: message.into(),
            details: Box::default(),
        }
    }

    pub fn invalid_argument(violations: Vec<FieldViolation>) -> Self {
        let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
        let message = format!("invalid fields: {}", fields.join(", "));
        let mut error = Self::new(Code::InvalidArgument, "INVALID_ARGUMENT", message);
        error.details.field_violations = violations;
        error
    }

    pub fn invalid_field(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::invalid_argument(vec![FieldViolation {
            field: field.into(),
            description: description.into(),
        }])
    }

    pub fn not_found(resource: impl Into<String>) -> Self {
        let resource = resource.into();
        Self::new(Code::NotFound, "NOT_FOUND", format!("{resource} not found"))
            .with_metadata("resource", resource)
    }

    pub fn already_exists(resource: impl Into<String>) -> Self {
        let resource = resource.into();
        Self::new(
            Code::AlreadyExists,
            "ALREADY_EXISTS",
            format!("{resource} already exists"),
        )
        .with_metadata("resource", resource)
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(Code::Unauthenticated, "UNAUTHENTICATED", message)
    }

    pub fn permission_denied(message: impl Into<String>) -> Self {
        Self::new(Code::PermissionDenied, "PERMISSION_DENIED", message)
    }

    /// A stale etag: the client read an older version and must re-read.
    pub fn stale_etag(resource: impl Into<String>) -> Self {
        let resource = resource.into();
        Self::new(
            Code::Aborted,
            "ETAG_MISMATCH",
            format!("{resource} was changed since it was read; read it again"),
        )
        .with_metadata("resource", resource)
    }

    pub fn failed_precondition(reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(Code::FailedPrecondition, reason, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(Code::Unavailable, "UNAVAILABLE", message).with_retry_after(DEFAULT_RETRY_DELAY)
    }

    pub fn resource_exhausted(reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(Code::ResourceExhausted, reason, message).with_retry_after(DEFAULT_RETRY_DELAY)
    }

    /// An unexpected failure. The detail is logged here and never returned.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(Code::Internal, "INTERNAL", "internal error")
    }

    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.details.metadata.insert(key.into(), value.into());
        self
    }

    /// Marks the error transient: the client may retry after `delay`.
    pub fn with_retry_after(mut self, delay: Duration) -> Self {
        self.details.retry_after = Some(delay);
        self
    }

    pub fn with_precondition(
        mut self,
        kind: impl Into<String>,
        subject: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        self.details.precondition_violations.push(PreconditionViolation {
            kind: kind.into(),
            subject: subject.into(),
            description: description.into(),
        });
        self
    }

    /// The wire form, with `domain` such as `customers.distnet`. Errors travel in
    /// HTTP/2 headers, which clients cap (16 KiB by default): texts that may echo the
    /// request (a name not found, an id) are shortened to [`MAX_ECHO_CHARS`], and at
    /// most [`MAX_VIOLATIONS`] violations are listed.
    pub fn into_status(self, domain: &str) -> tonic::Status {
        let Details {
            field_violations,
            precondition_violations,
            retry_after,
            metadata,
        } = *self.details;
        let metadata: HashMap<String, String> = metadata
            .into_iter()
            .map(|(k, v)| (shorten(k), shorten(v)))
            .collect();
        let mut details = ErrorDetails::with_error_info(self.reason, domain, metadata);
        for violation in field_violations.into_iter().take(MAX_VIOLATIONS) {
            details.add_bad_request_violation(shorten(violation.field), shorten(violation.description));
        }
        for violation in precondition_violations.into_iter().take(MAX_VIOLATIONS) {
            details.add_precondition_failure_violation(
                shorten(violation.kind),
                shorten(violation.subject),
                shorten(violation.description),
            );
        }
        if retry_after.is_some() {
            details.set_retry_info(retry_after);
        }
        tonic::Status::with_error_details(self.code, shorten(self.message), details)
    }
}

/// Longest text of an error on the wire, in characters.
pub const MAX_ECHO_CHARS: usize = 200;
/// Most violations listed in one error.
pub const MAX_VIOLATIONS: usize = 20;

/// `text` cut to [`MAX_ECHO_CHARS`] characters, marked with "…" when cut.
fn shorten(text: String) -> String {
    match text.char_indices().nth(MAX_ECHO_CHARS) {
        None => text,
        Some((at, _)) => format!("{}…", &text[..at]),
    }
}

/// SQLSTATE classes and codes we react to.
mod sqlstate {
    pub const UNIQUE_VIOLATION: &str = "23505";
    pub const FOREIGN_KEY_VIOLATION: &str = "23503";
    pub const CHECK_VIOLATION: &str = "23514";
    pub const SERIALIZATION_FAILURE: &str = "40001";
    pub const DEADLOCK_DETECTED: &str = "40P01";
    pub const TOO_MANY_CONNECTIONS: &str = "53300";
    pub const ADMIN_SHUTDOWN: &str = "57P01";
    pub const CRASH_SHUTDOWN: &str = "57P02";
    pub const CANNOT_CONNECT_NOW: &str = "57P03";
    pub const CONNECTION_EXCEPTION_CLASS: &str = "08";
    pub const DATA_EXCEPTION_CLASS: &str = "22";
}

impl From<sqlx::Error> for ServiceError {
    fn from(error: sqlx::Error) -> Self {
        use sqlx::Error as E;
        match &error {
            E::PoolTimedOut | E::PoolClosed | E::Io(_) | E::Tls(_) | E::WorkerCrashed => {
                tracing::warn!(%error, "database unavailable");
                Self::unavailable("the database is unavailable; retry shortly")
            }
            E::RowNotFound => Self::not_found("resource"),
            E::Database(db) => {
                let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
                let constraint = db.constraint().unwrap_or_default().to_string();
                match code.as_str() {
                    sqlstate::UNIQUE_VIOLATION => Self::new(
                        Code::AlreadyExists,
                        "ALREADY_EXISTS",
                        "a resource with these identifiers already exists",
                    )
                    .with_metadata("constraint", constraint),
                    sqlstate::FOREIGN_KEY_VIOLATION => Self::new(
                        Code::NotFound,
                        "REFERENCED_RESOURCE_NOT_FOUND",
                        "a referenced resource does not exist",
                    )
                    .with_metadata("constraint", constraint),
                    sqlstate::CHECK_VIOLATION => {
                        let mut error = Self::invalid_argument(vec![FieldViolation {
                            field: "request".into(),
                            description: format!("breaks the data rule {constraint}"),
                        }]);
                        error.reason = "CONSTRAINT_VIOLATED".into();
                        error.with_metadata("constraint", constraint)
                    }
                    // Data exceptions: a value the database cannot store (a NUL
                    // character, a number or date out of its range) that validation let
                    // through. The client's input is at fault, not the server.
                    c if c.starts_with(sqlstate::DATA_EXCEPTION_CLASS) => {
                        tracing::warn!(%error, "a request value the database refused");
                        let mut error = Self::invalid_argument(vec![FieldViolation {
                            field: "request".into(),
                            description:
                                "holds a value the database cannot store (a NUL character, or a number or \
                                          date out of range)"
                                    .into(),
                        }]);
                        error.reason = "INVALID_VALUE".into();
                        error
                    }
                    sqlstate::SERIALIZATION_FAILURE | sqlstate::DEADLOCK_DETECTED => Self::new(
                        Code::Aborted,
                        "CONCURRENT_UPDATE",
                        "a concurrent change conflicted; retry",
                    )
                    .with_retry_after(Duration::from_millis(50)),
                    sqlstate::TOO_MANY_CONNECTIONS
                    | sqlstate::ADMIN_SHUTDOWN
                    | sqlstate::CRASH_SHUTDOWN
                    | sqlstate::CANNOT_CONNECT_NOW => {
                        tracing::warn!(%error, "database unavailable");
                        Self::unavailable("the database is unavailable; retry shortly")
                    }
                    c if c.starts_with(sqlstate::CONNECTION_EXCEPTION_CLASS) => {
                        tracing::warn!(%error, "database unavailable");
                        Self::unavailable("the database is unavailable; retry shortly")
                    }
                    _ => Self::internal(error),
                }
            }
            _ => Self::internal(error),
        }
    }
}

impl From<prost::DecodeError> for ServiceError {
    fn from(error: prost::DecodeError) -> Self {
        Self::internal(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoed_texts_are_shortened_so_that_errors_fit_in_headers() {
        let long = "界".repeat(10_000);
        let status = ServiceError::not_found(format!("customers/{long}"))
            .with_metadata("request_id", long.clone())
            .into_status("customers.distnet");
        assert_eq!(status.message().chars().count(), MAX_ECHO_CHARS + 1);
        assert!(status.message().ends_with('…'));
        let info = status.get_details_error_info().expect("error info");
        assert!(
            info.metadata
                .values()
                .all(|v| v.chars().count() <= MAX_ECHO_CHARS + 1)
        );
        let many = (0..100)
            .map(|i| FieldViolation {
                field: format!("records[{i}].cycle"),
                description: long.clone(),
            })
            .collect();
        let status = ServiceError::invalid_argument(many).into_status("customers.distnet");
        let bad = status.get_details_bad_request().expect("bad request");
        assert_eq!(bad.field_violations.len(), MAX_VIOLATIONS);
    }

    #[test]
    fn a_status_carries_reason_domain_and_violations() {
        let status = ServiceError::invalid_argument(vec![FieldViolation {
            field: "customer.display_name".into(),
            description: "must not be empty".into(),
        }])
        .into_status("customers.distnet");
        assert_eq!(status.code(), Code::InvalidArgument);
        let info = status.get_details_error_info().expect("error info");
        assert_eq!(info.reason, "INVALID_ARGUMENT");
        assert_eq!(info.domain, "customers.distnet");
        let bad = status.get_details_bad_request().expect("bad request");
        assert_eq!(bad.field_violations[0].field, "customer.display_name");
    }

    #[test]
    fn unavailable_carries_retry_info() {
        let status = ServiceError::from(sqlx::Error::PoolTimedOut).into_status("x.distnet");
        assert_eq!(status.code(), Code::Unavailable);
        assert!(status.get_details_retry_info().is_some());
    }

    #[test]
    fn internal_errors_do_not_leak_details() {
        let status = ServiceError::internal("secret table xyz broke").into_status("x.distnet");
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("xyz"));
    }
}
