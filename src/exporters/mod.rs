//! Exporters: one file per destination. See `registry` for the list.
pub mod debug;
pub mod tcp;
