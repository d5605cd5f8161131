//! Exporters: one file (or folder) per destination, listed in `EXPORTERS`; the rest are their
//! shared parts.

use serde::Deserialize;

pub mod backoff;
pub mod client;
pub mod sender;
pub mod tls;

crate::component::components!(
    EXPORTERS: Box<dyn crate::pipeline::Exporter> = [tcp, otlp, otlphttp, debug, elasticsearch]
);

/// The exporter's queue, as the OTel Collector's `sending_queue`, sized in log records.
#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// Log records that may wait for delivery before receivers are refused. Default 100000.
    #[serde(default = "default_queue_size")]
    pub queue_size: usize,
    /// The request bytes those records may have come in (as received, decompressed).
    /// Default `256MiB`, from `1MiB` to `64GiB`.
    #[serde(
        default = "default_queue_bytes",
        deserialize_with = "crate::config::byte_size"
    )]
    pub queue_size_bytes: usize,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            queue_size: default_queue_size(),
            queue_size_bytes: default_queue_bytes(),
        }
    }
}

fn default_queue_bytes() -> usize {
    256 << 20
}

fn default_queue_size() -> usize {
    100_000
}

/// The largest `queue_size`: what a queue may hold is a constant times it.
pub const MAX_QUEUE_SIZE: u64 = 100_000_000;

impl QueueConfig {
    /// `queue_size` in range, reported under `<path>.sending_queue`.
    pub fn check(&self, path: &str, errors: &mut Vec<crate::config::ConfigError>) {
        crate::config::check_count(
            errors,
            format!("{path}.sending_queue.queue_size"),
            self.queue_size as u64,
            1,
            MAX_QUEUE_SIZE,
            "",
        );
        crate::config::check_count(
            errors,
            format!("{path}.sending_queue.queue_size_bytes"),
            self.queue_size_bytes as u64,
            1 << 20,
            64 << 30,
            "bytes",
        );
    }
}
