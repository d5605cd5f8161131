//! What every HTTP receiver's listener takes, with the Collector's `confighttp` names
//! (`endpoint`, `max_request_body_size`, `read_timeout`, `read_header_timeout`, `idle_timeout`,
//! `tls`, `auth`), their defaults and ranges in one place, so `http_logs` and OTLP/HTTP cannot
//! drift apart.

use std::time::Duration;

use serde::Deserialize;

use crate::auth::AuthConfig;
use crate::component::Context;
use crate::config::{
    ConfigError, byte_size, check_count, check_duration, duration, optional_duration,
};
use crate::receivers::body;
use crate::receivers::edge::{Edge, Listener, Protocol};
use crate::receivers::step::Step;
use crate::receivers::tls::TlsSettings;
use crate::server;
use crate::shutdown::Shutdown;
use crate::telemetry::ReceiverMetrics;

/// An HTTP listener's settings, with the two defaults that differ between receivers as
/// parameters: `endpoint` defaults to `localhost:<PORT>`, `max_request_body_size` to
/// `<BODY_MIB>MiB`. A receiver with keys of its own writes them beside these
/// (`config::decode_squashed`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpServerConfig<const PORT: u16, const BODY_MIB: usize> {
    /// `host:port` to listen on.
    #[serde(default = "default_endpoint::<PORT>")]
    pub endpoint: String,
    /// Largest accepted body, before and after decompression; 413 beyond it. At most `1GiB`.
    #[serde(default = "default_body::<BODY_MIB>", deserialize_with = "byte_size")]
    pub max_request_body_size: usize,
    /// Close each connection once it is this old (after its current request), so that clients
    /// behind an L4 balancer reconnect and reach replicas added later. Default: never.
    #[serde(default, deserialize_with = "optional_duration")]
    pub max_connection_age: Option<Duration>,
    /// The whole body must arrive within this (408 otherwise). Default `30s`, at most `1h`.
    #[serde(default = "default_read_timeout", deserialize_with = "duration")]
    pub read_timeout: Duration,
    /// Close a connection whose request headers take longer than this to arrive. Default
    /// `30s`, at most `1h`.
    #[serde(default = "default_read_header_timeout", deserialize_with = "duration")]
    pub read_header_timeout: Duration,
    /// Close a connection that has had no request for this long. Default `60s`.
    #[serde(default = "default_idle_timeout", deserialize_with = "duration")]
    pub idle_timeout: Duration,
    /// Connections served at once; more are closed on accept. Default 4096.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// The `Retry-After` sent with 429 and 503 answers. Default `1s`.
    #[serde(default = "default_retry_after", deserialize_with = "duration")]
    pub retry_after: Duration,
    /// TLS on this listener (`receivers::tls`): `cert_file`, `key_file`, `client_ca_file`,
    /// `min_version`, `max_version`, `reload_interval`. Default: plaintext.
    #[serde(default)]
    pub tls: Option<TlsSettings>,
    /// Check every request's credentials with an auth extension (`crate::auth`), before its
    /// body is read. Default: none.
    #[serde(default)]
    pub auth: Option<AuthConfig>,
}

fn default_endpoint<const PORT: u16>() -> String {
    format!("localhost:{PORT}")
}

fn default_body<const BODY_MIB: usize>() -> usize {
    BODY_MIB << 20
}

impl<const PORT: u16, const BODY_MIB: usize> Default for HttpServerConfig<PORT, BODY_MIB> {
    fn default() -> Self {
        HttpServerConfig {
            endpoint: default_endpoint::<PORT>(),
            max_request_body_size: default_body::<BODY_MIB>(),
            max_connection_age: None,
            read_timeout: default_read_timeout(),
            read_header_timeout: default_read_header_timeout(),
            idle_timeout: default_idle_timeout(),
            max_connections: default_max_connections(),
            retry_after: default_retry_after(),
            tls: None,
            auth: None,
        }
    }
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

impl<const PORT: u16, const BODY_MIB: usize> HttpServerConfig<PORT, BODY_MIB> {
    /// Checks every setting of the listener at `path` (e.g. `receivers.otlp.protocols.http`)
    /// and makes its [`Edge`] (TLS and authentication); problems go to `errors` with their
    /// paths.
    pub fn check(
        &self,
        path: &str,
        ctx: &Context,
        metrics: &ReceiverMetrics,
        errors: &mut Vec<ConfigError>,
    ) -> Edge {
        let listener = Listener {
            endpoint: &self.endpoint,
            tls: self.tls.as_ref(),
            auth: self.auth.as_ref(),
            protocol: Protocol::Http1,
        };
        let edge = Edge::build(path, &listener, ctx, metrics, errors);
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
        edge
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
