//! The rules of logistics, free of I/O: delivery slots from cut-offs and calendars,
//! and distances and travel times. Route planning over `vrp-core` follows.

pub mod geo;
pub mod slot;
