//! Receivers: one file per protocol. See `registry` for the list.
pub mod http_logs;
