//! The rules of logistics, free of I/O: delivery slots from cut-offs and calendars,
//! distances and travel times, and route planning over `vrp-core`.

pub mod access;
pub mod dispatch;
pub mod geo;
pub mod routing;
pub mod slot;
pub mod vrplib;
