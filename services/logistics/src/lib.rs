//! Logistics: turns confirmed orders into planned routes and proof of delivery.
//! The rules live in `domain/`; the service follows (issue 5).

pub mod domain;
