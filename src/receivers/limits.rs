//! The timeouts and connection limits every HTTP receiver takes, with the Collector's names
//! (`confighttp`'s `read_timeout`, `read_header_timeout`, `idle_timeout`), their defaults and
//! ranges in one place, so `http_logs` and OTLP/HTTP cannot drift apart.

use std::time::Duration;

use crate::config::{ConfigError, check_count, check_duration};
use crate::receivers::body;
use crate::receivers::step::Step;
use crate::server;
use crate::shutdown::Shutdown;
use crate::telemetry::ReceiverMetrics;

/// An HTTP receiver's limits, as its config gives them.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    pub max_request_body_size: usize,
    pub read_timeout: Duration,
    pub read_header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub max_connection_age: Option<Duration>,
    pub retry_after: Duration,
}

/// `read_timeout`: the whole body must arrive within it. Default `30s`.
pub fn default_read_timeout() -> Duration {
    Duration::from_secs(30)
}

/// `read_header_timeout`. Default `30s`.
pub fn default_read_header_timeout() -> Duration {
    Duration::from_secs(30)
}

/// `idle_timeout`: a keep-alive connection with no request for this long is closed. Default
/// `60s`, as the Collector's.
pub fn default_idle_timeout() -> Duration {
    Duration::from_secs(60)
}

/// `max_connections`. Default 4096 (and never more than the open-files limit allows, see
/// [`server::connection_budget`]).
pub fn default_max_connections() -> usize {
    4096
}

/// `retry_after`, sent with 429 and 503 answers. Default `1s`.
pub fn default_retry_after() -> Duration {
    Duration::from_secs(1)
}

const MS: Duration = Duration::from_millis(1);
const SECOND: Duration = Duration::from_secs(1);
const HOUR: Duration = Duration::from_secs(3600);

/// The largest `max_request_body_size`: what one request may cost is a constant times it.
pub const MAX_BODY: u64 = 1 << 30;
/// The largest `max_connections` of one receiver.
pub const MAX_CONNECTIONS: u64 = 1 << 20;

impl HttpLimits {
    /// Every out-of-range value, with its path under `path`.
    pub fn check(&self, path: &str, errors: &mut Vec<ConfigError>) {
        let at = |field: &str| format!("{path}.{field}");
        check_count(
            errors,
            at("max_request_body_size"),
            self.max_request_body_size as u64,
            1,
            MAX_BODY,
            "bytes",
        );
        check_duration(errors, at("read_timeout"), self.read_timeout, MS, HOUR);
        check_duration(
            errors,
            at("read_header_timeout"),
            self.read_header_timeout,
            MS,
            HOUR,
        );
        check_duration(errors, at("idle_timeout"), self.idle_timeout, MS, 24 * HOUR);
        check_count(
            errors,
            at("max_connections"),
            self.max_connections as u64,
            1,
            MAX_CONNECTIONS,
            "",
        );
        if let Some(age) = self.max_connection_age {
            check_duration(errors, at("max_connection_age"), age, MS, 8760 * HOUR);
        }
        check_duration(errors, at("retry_after"), self.retry_after, SECOND, HOUR);
    }

    /// The listener's settings.
    pub fn server_options(&self, metrics: &ReceiverMetrics) -> server::Options {
        server::Options {
            max_connection_age: self.max_connection_age,
            header_read_timeout: self.read_header_timeout,
            idle_timeout: Some(self.idle_timeout),
            max_connections: self.max_connections,
            data: true,
            refused_connections: Some(metrics.refused_connections.clone()),
            ..Default::default()
        }
    }

    /// How request bodies are read.
    pub fn body_bounds(&self, shutdown: Shutdown) -> body::Bounds {
        body::Bounds {
            limit: self.max_request_body_size,
            timeout: self.read_timeout,
            shutdown,
        }
    }

    /// The request step of a receiver with these limits.
    pub fn step(&self, metrics: ReceiverMetrics, shutdown: Shutdown) -> Step {
        Step {
            bounds: self.body_bounds(shutdown),
            metrics,
            retry_after: hyper::header::HeaderValue::from(self.retry_after.as_secs().max(1)),
        }
    }
}
