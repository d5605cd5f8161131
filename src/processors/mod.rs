//! Processors: one file per transformation. See `registry` for the list.
pub mod regex_parser;
pub mod segments;
