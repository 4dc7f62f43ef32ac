//! grading storage.
