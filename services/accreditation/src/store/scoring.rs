//! scoring storage.
