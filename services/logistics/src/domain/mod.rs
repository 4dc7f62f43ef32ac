//! The rules of logistics, free of I/O: delivery slots from cut-offs and calendars,
//! distances and travel times, and who may do what. Route planning over `vrp-core`
//! follows.

pub mod access;
pub mod geo;
pub mod slot;
