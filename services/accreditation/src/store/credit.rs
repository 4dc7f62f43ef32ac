//! credit storage.
