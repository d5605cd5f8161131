//! OTLP/gRPC's settings, with the Collector's `configgrpc` names, defaults and ranges.

use std::time::Duration;

use serde::Deserialize;

use crate::auth::AuthConfig;
use crate::component::Context;
use crate::config::{
    ConfigError, MAX_DURATION, check_count, check_duration, duration, optional_duration,
};
use crate::receivers::edge::{Edge, Listener, Protocol};
use crate::receivers::limits;
use crate::receivers::tls::TlsSettings;
use crate::telemetry::ReceiverMetrics;

/// OTLP/gRPC, as the Collector configures it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrpcConfig {
    /// `host:port` to listen on. Default `localhost:4317`.
    #[serde(default = "default_grpc_endpoint")]
    pub endpoint: String,
    /// Largest accepted message, in MiB, before and after decompression. Default 4, at most
    /// 1024.
    #[serde(default = "default_max_recv_msg_size_mib")]
    pub max_recv_msg_size_mib: u64,
    /// Streams (concurrent calls) one connection may have open. Default 100.
    #[serde(default = "default_max_concurrent_streams")]
    pub max_concurrent_streams: u32,
    /// Connections served at once; more are closed on accept. Default 4096.
    #[serde(default = "limits::default_max_connections")]
    pub max_connections: usize,
    /// A call's message must arrive within this after its headers (DEADLINE_EXCEEDED
    /// otherwise). Default `30s`.
    #[serde(
        default = "limits::default_read_timeout",
        deserialize_with = "crate::config::duration"
    )]
    pub read_timeout: Duration,
    #[serde(default)]
    pub keepalive: Keepalive,
    /// The delay put in `RetryInfo` when the pipeline is full. Default `1s`.
    #[serde(
        default = "limits::default_retry_after",
        deserialize_with = "crate::config::duration"
    )]
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

impl Default for GrpcConfig {
    fn default() -> Self {
        GrpcConfig {
            endpoint: default_grpc_endpoint(),
            max_recv_msg_size_mib: default_max_recv_msg_size_mib(),
            max_concurrent_streams: default_max_concurrent_streams(),
            max_connections: limits::default_max_connections(),
            read_timeout: limits::default_read_timeout(),
            keepalive: Keepalive::default(),
            retry_after: limits::default_retry_after(),
            tls: None,
            auth: None,
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Keepalive {
    #[serde(default)]
    pub server_parameters: ServerParameters,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerParameters {
    /// Close (GOAWAY) a connection that has had no call in flight for this long, counted from
    /// the accept, so idle clients and ones that never finish the HTTP/2 preface give their
    /// connection back. Default `5m`.
    #[serde(default = "default_max_connection_idle", deserialize_with = "duration")]
    pub max_connection_idle: Duration,
    /// Send GOAWAY once a connection is this old, so clients reconnect and spread over replicas
    /// the HPA adds (gRPC clients hold one connection for ever otherwise). Default: never.
    #[serde(default, deserialize_with = "optional_duration")]
    pub max_connection_age: Option<Duration>,
    /// How long in-flight calls get after that GOAWAY. Default: as long as they need.
    #[serde(default, deserialize_with = "optional_duration")]
    pub max_connection_age_grace: Option<Duration>,
    /// Ping a connection that has been quiet this long, to find dead peers. Default `2h`.
    #[serde(default = "default_keepalive_time", deserialize_with = "duration")]
    pub time: Duration,
    /// Close the connection when a ping is not answered within this. Default `20s`.
    #[serde(default = "default_keepalive_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
}

impl Default for ServerParameters {
    fn default() -> Self {
        ServerParameters {
            max_connection_idle: default_max_connection_idle(),
            max_connection_age: None,
            max_connection_age_grace: None,
            time: default_keepalive_time(),
            timeout: default_keepalive_timeout(),
        }
    }
}

fn default_grpc_endpoint() -> String {
    "localhost:4317".into()
}

fn default_max_recv_msg_size_mib() -> u64 {
    4
}

fn default_max_concurrent_streams() -> u32 {
    100
}

fn default_max_connection_idle() -> Duration {
    Duration::from_secs(300)
}

fn default_keepalive_time() -> Duration {
    Duration::from_secs(7200)
}

fn default_keepalive_timeout() -> Duration {
    Duration::from_secs(20)
}

impl GrpcConfig {
    /// Checks every setting of the listener at `path` and makes its [`Edge`] (TLS and
    /// authentication); problems go to `errors` with their paths.
    pub(super) fn check(
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
            protocol: Protocol::Grpc,
        };
        let edge = Edge::build(path, &listener, ctx, metrics, errors);
        let at = |field: &str| format!("{path}.{field}");
        let ms = Duration::from_millis(1);
        let hour = Duration::from_secs(3600);
        check_count(
            errors,
            at("max_recv_msg_size_mib"),
            self.max_recv_msg_size_mib,
            1,
            1024,
            "MiB",
        );
        check_count(
            errors,
            at("max_concurrent_streams"),
            u64::from(self.max_concurrent_streams),
            1,
            1 << 16,
            "",
        );
        check_count(
            errors,
            at("max_connections"),
            self.max_connections as u64,
            1,
            limits::MAX_CONNECTIONS,
            "",
        );
        check_duration(errors, at("read_timeout"), self.read_timeout, ms, hour);
        check_duration(
            errors,
            at("retry_after"),
            self.retry_after,
            Duration::from_secs(1),
            hour,
        );
        let sp = &self.keepalive.server_parameters;
        let at = |field: &str| format!("{path}.keepalive.server_parameters.{field}");
        check_duration(
            errors,
            at("max_connection_idle"),
            sp.max_connection_idle,
            ms,
            MAX_DURATION,
        );
        if let Some(d) = sp.max_connection_age {
            check_duration(errors, at("max_connection_age"), d, ms, MAX_DURATION);
        }
        // Pings more often than once a second would themselves be a flood.
        check_duration(
            errors,
            at("time"),
            sp.time,
            Duration::from_secs(1),
            MAX_DURATION,
        );
        check_duration(errors, at("timeout"), sp.timeout, ms, hour);
        edge
    }

    /// The largest message, compressed or not, in bytes.
    pub(super) fn limit(&self) -> usize {
        (self.max_recv_msg_size_mib.min(1024) as usize) << 20
    }
}
