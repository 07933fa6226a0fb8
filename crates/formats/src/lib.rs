//! Formats.
pub mod meta_csv;
