//! `otlp`: OpenTelemetry Protocol, configured like the OTel Collector's receiver.
//!
//! ```yaml
//! receivers:
//!   otlp:
//!     protocols:
//!       http:                          # present (even empty) = enabled
//!         endpoint: 0.0.0.0:4318       # default localhost:4318
//!         max_request_body_size: 20MiB # compressed and decompressed; 413 beyond it
//!         max_connection_age: 5m       # so clients behind an L4 Service rebalance
//!         read_timeout: 30s            # the whole body within this, else 408
//!         read_header_timeout: 30s
//!         idle_timeout: 60s
//!         max_connections: 4096
//!         tls: { cert_file: /etc/tls/tls.crt, key_file: /etc/tls/tls.key }  # default: plaintext
//!         auth: { authenticator: bearertokenauth }   # default: none; 401 without credentials
//!       grpc:
//!         endpoint: 0.0.0.0:4317       # default localhost:4317
//!         max_recv_msg_size_mib: 4
//!         max_concurrent_streams: 100
//!         max_connections: 4096        # more are closed on accept
//!         read_timeout: 30s            # a call's message within this, else DEADLINE_EXCEEDED
//!         keepalive:
//!           server_parameters:
//!             max_connection_idle: 5m  # GOAWAY to connections with no call this long
//!             max_connection_age: 5m
//!             max_connection_age_grace: 30s
//!             time: 2h                 # ping quiet connections...
//!             timeout: 20s             # ...and close them if the ping goes unanswered
//!         tls: { cert_file: ..., key_file: ..., client_ca_file: ... }   # mutual TLS
//!         auth: { authenticator: bearertokenauth }   # UNAUTHENTICATED without credentials
//! ```
//!
//! OTLP/HTTP (`http.rs`): `POST /v1/logs` with `application/x-protobuf` or `application/json`,
//! optionally gzip-, deflate- or zstd-compressed. OTLP/gRPC (`grpc.rs`): the logs service's
//! `Export` over HTTP/2, gzip or zstd. Either answers success only after every exporter has
//! delivered the records. A full pipeline gets 429 + `Retry-After` / RESOURCE_EXHAUSTED with
//! `RetryInfo`, and a shutdown 503 / UNAVAILABLE: without the hint OTel SDKs and collectors
//! drop data instead of retrying. Errors say what was wrong (a JSON path, a protobuf offset).
//!
//! Not yet: the trace and metric signals (answered UNIMPLEMENTED / 404).

mod grpc;
mod http;
pub mod status;

use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::auth::AuthConfig;
use crate::component::Context;
use crate::config::{
    ConfigError, MAX_DURATION, byte_size, check_count, check_duration, check_endpoint, decode,
};
use crate::pipeline::{BoxFuture, Consumer, Receiver, Running, StartError};
use crate::receivers::edge::{Edge, Protocol};
use crate::receivers::limits::{self, HttpLimits};
use crate::receivers::tls::TlsSettings;
use crate::server;
use crate::shutdown::Shutdown;
use crate::telemetry::ReceiverMetrics;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub protocols: Protocols,
}

/// As in the Collector, a protocol is enabled by its key being present, even with no value.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Protocols {
    #[serde(default, deserialize_with = "present")]
    pub grpc: Option<GrpcConfig>,
    #[serde(default, deserialize_with = "present")]
    pub http: Option<HttpConfig>,
}

fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Option::<T>::deserialize(d).map(|v| Some(v.unwrap_or_default()))
}

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
    #[serde(
        default = "default_max_connection_idle",
        deserialize_with = "crate::config::duration"
    )]
    pub max_connection_idle: Duration,
    /// Send GOAWAY once a connection is this old, so clients reconnect and spread over replicas
    /// the HPA adds (gRPC clients hold one connection for ever otherwise). Default: never.
    #[serde(default, deserialize_with = "crate::config::optional_duration")]
    pub max_connection_age: Option<Duration>,
    /// How long in-flight calls get after that GOAWAY. Default: as long as they need.
    #[serde(default, deserialize_with = "crate::config::optional_duration")]
    pub max_connection_age_grace: Option<Duration>,
    /// Ping a connection that has been quiet this long, to find dead peers. Default `2h`.
    #[serde(
        default = "default_keepalive_time",
        deserialize_with = "crate::config::duration"
    )]
    pub time: Duration,
    /// Close the connection when a ping is not answered within this. Default `20s`.
    #[serde(
        default = "default_keepalive_timeout",
        deserialize_with = "crate::config::duration"
    )]
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
    fn check(&self, path: &str, errors: &mut Vec<ConfigError>) {
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
    }

    /// The largest message, compressed or not, in bytes.
    fn limit(&self) -> usize {
        (self.max_recv_msg_size_mib.min(1024) as usize) << 20
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// `host:port` to listen on. Default `localhost:4318`.
    #[serde(default = "default_http_endpoint")]
    pub endpoint: String,
    /// Largest accepted body, before and after decompression. Default `20MiB`, at most `1GiB`.
    #[serde(default = "default_max_body", deserialize_with = "byte_size")]
    pub max_request_body_size: usize,
    /// Close each connection once it is this old (after its current request), so that clients
    /// behind an L4 balancer reconnect and reach replicas added later. Default: never.
    #[serde(default, deserialize_with = "crate::config::optional_duration")]
    pub max_connection_age: Option<Duration>,
    /// The whole body must arrive within this (408 otherwise). Default `30s`.
    #[serde(
        default = "limits::default_read_timeout",
        deserialize_with = "crate::config::duration"
    )]
    pub read_timeout: Duration,
    /// Close a connection whose request headers take longer than this. Default `30s`.
    #[serde(
        default = "limits::default_read_header_timeout",
        deserialize_with = "crate::config::duration"
    )]
    pub read_header_timeout: Duration,
    /// Close a connection that has had no request for this long. Default `60s`.
    #[serde(
        default = "limits::default_idle_timeout",
        deserialize_with = "crate::config::duration"
    )]
    pub idle_timeout: Duration,
    /// Connections served at once; more are closed on accept. Default 4096.
    #[serde(default = "limits::default_max_connections")]
    pub max_connections: usize,
    /// The `Retry-After` sent with 429 and 503 answers. Default `1s`.
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

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            endpoint: default_http_endpoint(),
            max_request_body_size: default_max_body(),
            max_connection_age: None,
            read_timeout: limits::default_read_timeout(),
            read_header_timeout: limits::default_read_header_timeout(),
            idle_timeout: limits::default_idle_timeout(),
            max_connections: limits::default_max_connections(),
            retry_after: limits::default_retry_after(),
            tls: None,
            auth: None,
        }
    }
}

impl HttpConfig {
    fn limits(&self) -> HttpLimits {
        HttpLimits {
            max_request_body_size: self.max_request_body_size,
            read_timeout: self.read_timeout,
            read_header_timeout: self.read_header_timeout,
            idle_timeout: self.idle_timeout,
            max_connections: self.max_connections,
            max_connection_age: self.max_connection_age,
            retry_after: self.retry_after,
        }
    }
}

fn default_http_endpoint() -> String {
    "localhost:4318".into()
}

fn default_max_body() -> usize {
    20 << 20
}

pub struct Otlp {
    id: String,
    http: Option<HttpConfig>,
    grpc: Option<GrpcConfig>,
    http_metrics: ReceiverMetrics,
    grpc_metrics: ReceiverMetrics,
    http_edge: Edge,
    grpc_edge: Edge,
}

/// The `otlp` receiver type, as the registry lists it.
pub const SPEC: crate::component::Spec<Box<dyn crate::pipeline::Receiver>> =
    crate::component::Spec {
        kind: "otlp",
        signals: crate::component::ALL_SIGNALS,
        build,
        example: "{protocols: {http: {endpoint: '127.0.0.1:0'}, grpc: {endpoint: '127.0.0.1:0'}}}",
    };

pub fn build(
    ctx: &Context,
    raw: serde_yaml_ng::Value,
) -> Result<Box<dyn Receiver>, Vec<ConfigError>> {
    let cfg: Config = decode(ctx.path, raw).map_err(|e| vec![e])?;
    let path = |rest: &str| format!("{}.protocols{rest}", ctx.path);
    let mut errors = Vec::new();
    let id = ctx.id.to_string();
    let http_metrics = ReceiverMetrics::new(ctx.telemetry, &id, "http");
    let grpc_metrics = ReceiverMetrics::new(ctx.telemetry, &id, "grpc");
    let mut grpc_edge = Edge::default();
    let mut http_edge = Edge::default();
    if let Some(grpc) = &cfg.protocols.grpc {
        if let Err(e) = check_endpoint(&grpc.endpoint) {
            errors.push(ConfigError::new(path(".grpc.endpoint"), e));
        }
        grpc.check(&path(".grpc"), &mut errors);
        grpc_edge = Edge::build(
            &path(".grpc"),
            grpc.tls.as_ref(),
            grpc.auth.as_ref(),
            ctx.auth,
            Protocol::Grpc,
            &grpc_metrics,
            &mut errors,
        );
    }
    match &cfg.protocols.http {
        None if cfg.protocols.grpc.is_none() => {
            errors.push(ConfigError::new(
                path(""),
                "enable at least one protocol (grpc or http)",
            ));
        }
        None => {}
        Some(http) => {
            if let Err(e) = check_endpoint(&http.endpoint) {
                errors.push(ConfigError::new(path(".http.endpoint"), e));
            }
            http.limits().check(&path(".http"), &mut errors);
            http_edge = Edge::build(
                &path(".http"),
                http.tls.as_ref(),
                http.auth.as_ref(),
                ctx.auth,
                Protocol::Http1,
                &http_metrics,
                &mut errors,
            );
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Box::new(Otlp {
        http_metrics,
        grpc_metrics,
        http_edge,
        grpc_edge,
        id,
        http: cfg.protocols.http,
        grpc: cfg.protocols.grpc,
    }))
}

impl Receiver for Otlp {
    fn start(
        self: Box<Self>,
        consumer: Consumer,
        shutdown: Shutdown,
    ) -> BoxFuture<Result<Running, StartError>> {
        Box::pin(async move {
            let Otlp {
                id,
                http,
                grpc,
                http_metrics,
                grpc_metrics,
                http_edge,
                grpc_edge,
            } = *self;
            // Bind everything before serving anything, so start-up fails as a whole.
            let mut bound_http = None;
            if let Some(cfg) = http {
                let path = format!("receivers.{id}.protocols.http");
                bound_http = Some((server::bind(path, &cfg.endpoint).await?, cfg));
            }
            let mut bound_grpc = None;
            if let Some(cfg) = grpc {
                let path = format!("receivers.{id}.protocols.grpc");
                bound_grpc = Some((server::bind(path, &cfg.endpoint).await?, cfg));
            }
            let mut running: Vec<Running> = Vec::new();
            if let Some((listener, cfg)) = bound_http {
                tracing::info!(receiver = %id, endpoint = %cfg.endpoint, "otlp http receiver listening");
                running.push(http::serve(
                    listener,
                    cfg,
                    &http_edge,
                    http_metrics,
                    consumer.clone(),
                    shutdown.clone(),
                ));
            }
            if let Some((listener, cfg)) = bound_grpc {
                tracing::info!(receiver = %id, endpoint = %cfg.endpoint, "otlp grpc receiver listening");
                running.push(grpc::serve(
                    listener,
                    cfg,
                    &grpc_edge,
                    grpc_metrics,
                    consumer,
                    shutdown,
                ));
            }
            let all: Running = Box::pin(async move {
                // Each protocol serves on its own task; this ends when both have drained. A
                // JoinSet, so that when the service gives up waiting and aborts this future, the
                // protocols' tasks are aborted with it rather than left running detached.
                let mut tasks = tokio::task::JoinSet::new();
                for r in running {
                    tasks.spawn(r);
                }
                while tasks.join_next().await.is_some() {}
            });
            Ok(all)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    fn errors(yaml: &str) -> Vec<String> {
        crate::registry::build_errors(build, "receivers", "otlp", yaml)
    }

    #[test]
    fn an_empty_protocol_key_enables_it_with_defaults() {
        assert!(errors("{protocols: {http: }}").is_empty());
        assert!(errors("{protocols: {http: {endpoint: '0.0.0.0:4318'}}}").is_empty());
    }

    #[test]
    fn bad_protocol_settings_are_reported_with_their_paths() {
        assert_eq!(
            errors("{}"),
            ["receivers.otlp.protocols: enable at least one protocol (grpc or http)"]
        );
        assert!(errors("{protocols: {grpc: , http: }}").is_empty());
        assert_eq!(
            errors(
                "{protocols: {grpc: {keepalive: {server_parameters: {max_connection_age: 1m, x: 1}}}}}"
            ),
            [
                "receivers.otlp.protocols.grpc.keepalive.server_parameters.x: unknown field `x`, expected one of `max_connection_idle`, `max_connection_age`, `max_connection_age_grace`, `time`, `timeout`"
            ]
        );
        assert_eq!(
            errors("{protocols: {http: {endpoint: 'x:y'}}}"),
            [
                "receivers.otlp.protocols.http.endpoint: invalid socket address \"x:y\": expected host:port"
            ]
        );
    }
}
