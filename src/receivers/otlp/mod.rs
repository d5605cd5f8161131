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
mod grpc_config;
mod http;
pub mod status;

use serde::{Deserialize, Deserializer};
use tokio::net::TcpListener;

pub use self::grpc_config::{GrpcConfig, Keepalive, ServerParameters};
use crate::component::{ALL_SIGNALS, Built, Context, Spec, Yaml};
use crate::config::{ConfigError, decode};
use crate::pipeline::{BoxFuture, Consumer, Receiver, Running, StartError};
use crate::receivers::edge::Edge;
use crate::receivers::limits::HttpServerConfig;
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

/// OTLP/HTTP: the shared HTTP listener settings, with the Collector's defaults (`endpoint`
/// `localhost:4318`, `max_request_body_size` `20MiB`).
pub type HttpConfig = HttpServerConfig<4318, 20>;

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
pub const SPEC: Spec<Box<dyn Receiver>> = Spec::new(
    "otlp",
    ALL_SIGNALS,
    build,
    "{protocols: {http: {endpoint: '127.0.0.1:0'}, grpc: {endpoint: '127.0.0.1:0'}}}",
);

pub fn build(ctx: &Context, raw: Yaml) -> Built<Box<dyn Receiver>> {
    let cfg: Config = decode(ctx.path, raw).map_err(|e| vec![e])?;
    let path = |rest: &str| format!("{}.protocols{rest}", ctx.path);
    let mut errors = Vec::new();
    let id = ctx.id.to_string();
    let http_metrics = ReceiverMetrics::new(ctx.telemetry, &id, "http");
    let grpc_metrics = ReceiverMetrics::new(ctx.telemetry, &id, "grpc");
    let mut grpc_edge = Edge::default();
    let mut http_edge = Edge::default();
    if let Some(grpc) = &cfg.protocols.grpc {
        grpc_edge = grpc.check(&path(".grpc"), ctx, &grpc_metrics, &mut errors);
    }
    match &cfg.protocols.http {
        None if cfg.protocols.grpc.is_none() => {
            errors.push(ConfigError::new(
                path(""),
                "enable at least one protocol (grpc or http)",
            ));
        }
        None => {}
        Some(http) => http_edge = http.check(&path(".http"), ctx, &http_metrics, &mut errors),
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
            let http = match http {
                Some(cfg) => Some((listen(&id, "http", &cfg.endpoint).await?, cfg)),
                None => None,
            };
            let grpc = match grpc {
                Some(cfg) => Some((listen(&id, "grpc", &cfg.endpoint).await?, cfg)),
                None => None,
            };
            let mut running: Vec<Running> = Vec::new();
            if let Some((listener, cfg)) = http {
                let (consumer, shutdown) = (consumer.clone(), shutdown.clone());
                running.push(http::serve(
                    listener,
                    cfg,
                    &http_edge,
                    http_metrics,
                    consumer,
                    shutdown,
                ));
            }
            if let Some((listener, cfg)) = grpc {
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

/// Binds one protocol's listener at `endpoint`.
async fn listen(id: &str, protocol: &str, endpoint: &str) -> Result<TcpListener, StartError> {
    let listener = server::bind(format!("receivers.{id}.protocols.{protocol}"), endpoint).await?;
    tracing::info!(receiver = %id, %endpoint, "otlp {protocol} receiver listening");
    Ok(listener)
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
