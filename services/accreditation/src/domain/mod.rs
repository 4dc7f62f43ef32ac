//! The rules of accreditation, free of I/O: the license and application state
//! machines and outlet spacing, the scoring rulebook and classes, credit grading,
//! and tier gradings.

pub mod access;
pub mod credit;
pub mod grading;
pub mod license;
pub mod scoring;
