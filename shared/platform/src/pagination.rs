//! Keyset pagination with opaque page tokens. A token records the last key of the
//! page and a fingerprint of the filter it was issued for, so reusing it with
//! another filter is `INVALID_ARGUMENT` instead of silently skipping rows.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ServiceError;

pub const DEFAULT_PAGE_SIZE: i64 = 100;
pub const MAX_PAGE_SIZE: i64 = 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Rows to return.
    pub size: i64,
    /// Resume after this key; `None` on the first page.
    pub after: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Token {
    /// Filter fingerprint.
    f: String,
    /// Last key returned.
    k: String,
}

fn filter_fingerprint(filter: &str) -> String {
    let digest = Sha256::digest(filter.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..12])
}

/// Reads `page_size` and `page_token` for a list whose filters serialize to `filter`.
pub fn read(page_size: i32, page_token: &str, filter: &str) -> Result<Page, ServiceError> {
    if page_size < 0 {
        return Err(ServiceError::invalid_field("page_size", "must not be negative"));
    }
    let size = match i64::from(page_size) {
        0 => DEFAULT_PAGE_SIZE,
        n => n.min(MAX_PAGE_SIZE),
    };
    if page_token.is_empty() {
        return Ok(Page { size, after: None });
    }
    let invalid = || ServiceError::invalid_field("page_token", "is not a token this list issued");
    let bytes = URL_SAFE_NO_PAD.decode(page_token).map_err(|_| invalid())?;
    let token: Token = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if token.f != filter_fingerprint(filter) {
        return Err(ServiceError::invalid_field(
            "page_token",
            "was issued for different filters",
        ));
    }
    Ok(Page {
        size,
        after: Some(token.k),
    })
}

/// The token for the page after `last_key`.
pub fn next_token(last_key: &str, filter: &str) -> String {
    let token = Token {
        f: filter_fingerprint(filter),
        k: last_key.to_string(),
    };
    // Serializing two strings cannot fail.
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&token).unwrap_or_default())
}

/// Given `size + 1` fetched rows, keeps `size` and returns the next page token.
pub fn finish<T>(
    mut rows: Vec<T>,
    page: &Page,
    filter: &str,
    key: impl Fn(&T) -> String,
) -> (Vec<T>, String) {
    let size = usize::try_from(page.size).unwrap_or(usize::MAX);
    if rows.len() > size {
        rows.truncate(size);
        let token = rows
            .last()
            .map(|r| next_token(&key(r), filter))
            .unwrap_or_default();
        (rows, token)
    } else {
        (rows, String::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_round_trips_for_its_filter_only() {
        let token = next_token("c-42", "area=a1");
        let page = read(10, &token, "area=a1").expect("same filter");
        assert_eq!(page.after.as_deref(), Some("c-42"));
        assert!(read(10, &token, "area=a2").is_err());
        assert!(read(10, "garbage!", "area=a1").is_err());
    }

    #[test]
    fn page_sizes_are_defaulted_and_capped() {
        assert_eq!(read(0, "", "").expect("ok").size, DEFAULT_PAGE_SIZE);
        assert_eq!(read(5000, "", "").expect("ok").size, MAX_PAGE_SIZE);
        assert!(read(-1, "", "").is_err());
    }

    #[test]
    fn finish_trims_the_lookahead_row() {
        let page = Page { size: 2, after: None };
        let (rows, token) = finish(vec![1, 2, 3], &page, "", |r| r.to_string());
        assert_eq!(rows, vec![1, 2]);
        assert_eq!(read(2, &token, "").expect("ok").after.as_deref(), Some("2"));
        let (rows, token) = finish(vec![1, 2], &page, "", |r| r.to_string());
        assert_eq!(rows.len(), 2);
        assert!(token.is_empty());
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        proptest! {
            /// Whatever a client sends as a page token, decoding never panics: it is a
            /// page or INVALID_ARGUMENT naming `page_token`.
            #[test]
            fn any_token_decodes_or_is_refused_by_name(token in "\\PC{0,200}|[A-Za-z0-9_-]{0,300}", size in any::<i32>()) {
                match read(size, &token, "area=a1") {
                    Ok(page) => prop_assert!((1..=MAX_PAGE_SIZE).contains(&page.size)),
                    Err(error) => {
                        prop_assert_eq!(error.code, tonic::Code::InvalidArgument);
                        let fields: Vec<&str> = error.details.field_violations.iter().map(|v| v.field.as_str()).collect();
                        prop_assert!(fields == ["page_token"] || fields == ["page_size"], "{:?}", fields);
                    }
                }
            }

            /// Arbitrary bytes behind valid base64 are refused the same way.
            #[test]
            fn any_bytes_behind_base64_are_refused_by_name(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
                let token = URL_SAFE_NO_PAD.encode(&bytes);
                if let Err(error) = read(10, &token, "") {
                    prop_assert_eq!(error.code, tonic::Code::InvalidArgument);
                }
            }

            /// Every key, however odd, comes back from its own token, and only under
            /// the filter it was issued for.
            #[test]
            fn every_key_round_trips_under_its_filter_only(key in "\\PC{0,100}", filter in "\\PC{0,50}") {
                let token = next_token(&key, &filter);
                prop_assert_eq!(read(10, &token, &filter).expect("own filter").after, Some(key));
                let other = format!("{filter}x");
                prop_assert!(read(10, &token, &other).is_err());
            }
        }
    }
}
