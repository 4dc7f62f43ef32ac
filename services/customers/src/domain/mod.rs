//! The rules of customer profiles, free of I/O: who may see and change which
//! customer, what a valid profile is, and how an update mask applies.

pub mod access;
pub mod cases;
pub mod insights;
pub mod interactions;
pub mod profile;
pub mod surveys;
pub mod visits;
