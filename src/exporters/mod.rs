//! Exporters: one file per destination. See `registry` for the list.

use serde::Deserialize;

pub mod debug;
pub mod elasticsearch;
pub mod otlp;
pub mod otlphttp;
pub mod sender;
pub mod tcp;
pub mod tls;

/// The exporter's queue, as the OTel Collector's `sending_queue`, sized in log records.
#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// Log records that may wait for delivery before receivers are refused. Default 100000.
    #[serde(default = "default_queue_size")]
    pub queue_size: usize,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            queue_size: default_queue_size(),
        }
    }
}

fn default_queue_size() -> usize {
    100_000
}
