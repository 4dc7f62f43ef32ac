//! Collects field violations so a client learns every bad field in one reply.

use crate::error::{FieldViolation, ServiceError};

/// The longest request id we keep; phones send UUIDs.
pub const MAX_REQUEST_ID_LEN: usize = 128;

#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation {
            field: field.into(),
            description: description.into(),
        });
    }

    /// Adds a violation when `ok` is false.
    pub fn check(&mut self, ok: bool, field: &str, description: &str) {
        if !ok {
            self.add(field, description);
        }
    }

    pub fn non_empty(&mut self, value: &str, field: &str) {
        self.check(!value.trim().is_empty(), field, "must not be empty");
    }

    /// Text a person typed: bounded length and no control characters.
    pub fn text(&mut self, value: &str, field: &str, max_chars: usize) {
        if value.chars().count() > max_chars {
            self.add(field, format!("must be at most {max_chars} characters"));
        }
        if value.chars().any(char::is_control) {
            self.add(field, "must not contain control characters");
        }
    }

    /// Every mutating request carries a request id so that retries are safe.
    pub fn request_id(&mut self, value: &str) {
        if value.is_empty() {
            self.add("request_id", "must be set so that a retry is recognized");
        } else if value.len() > MAX_REQUEST_ID_LEN
            || !value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
        {
            self.add("request_id", "must be 1..128 characters of [A-Za-z0-9-_.:]");
        }
    }

    /// A proto3 enum value that is unknown to this server.
    pub fn known_enum<E: TryFrom<i32>>(&mut self, value: i32, field: &str) {
        if E::try_from(value).is_err() {
            self.add(field, format!("unknown value {value}"));
        }
    }

    pub fn latitude(&mut self, value: f64, field: &str) {
        self.check(
            value.is_finite() && (-90.0..=90.0).contains(&value),
            field,
            "must be between -90 and 90",
        );
    }

    pub fn longitude(&mut self, value: f64, field: &str) {
        self.check(
            value.is_finite() && (-180.0..=180.0).contains(&value),
            field,
            "must be between -180 and 180",
        );
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_result(self) -> Result<(), ServiceError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ServiceError::invalid_argument(self.0))
        }
    }
}

/// Splits `collection/{id}` and checks the id; the error names `field`.
pub fn parse_name<'a>(name: &'a str, collection: &str, field: &str) -> Result<&'a str, ServiceError> {
    name.strip_prefix(collection)
        .and_then(|rest| rest.strip_prefix('/'))
        .filter(|id| is_valid_id(id))
        .ok_or_else(|| ServiceError::invalid_field(field, format!("must be `{collection}/{{id}}`")))
}

/// Resource ids: 1..63 characters of lower-case letters, digits and '-'.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 63
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_parsed_and_checked() {
        assert_eq!(parse_name("customers/c-1", "customers", "name").ok(), Some("c-1"));
        assert!(parse_name("customers/", "customers", "name").is_err());
        assert!(parse_name("orders/c-1", "customers", "name").is_err());
        assert!(parse_name("customers/C 1", "customers", "name").is_err());
    }

    #[test]
    fn every_violation_is_reported() {
        let mut v = Violations::new();
        v.non_empty("", "a");
        v.latitude(91.0, "b");
        v.longitude(f64::NAN, "c");
        v.request_id("");
        let error = v.into_result().expect_err("violations");
        assert_eq!(error.details.field_violations.len(), 4);
    }
}
