//! Receivers: one file per protocol. See `registry` for the list.
pub mod body;
pub mod edge;
pub mod http_logs;
pub mod limits;
pub mod message;
pub mod otlp;
pub mod step;
pub mod tls;
