//! Allocation: rationing scarce supply across retailer tiers each week, and taking
//! orders against those rations without ever overselling. This crate holds the
//! rules so far; the gRPC service follows (issue 4).

pub mod domain;
