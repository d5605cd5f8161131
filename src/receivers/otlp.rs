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
//! ```
//!
//! OTLP/HTTP: `POST /v1/logs` with `application/x-protobuf` or `application/json`, optionally
//! gzip-, deflate- or zstd-compressed. The answer is 200 (an empty `ExportLogsServiceResponse`
//! in the request's encoding) only after every exporter has delivered the records. A full
//! pipeline gets 429 and a shutdown 503, both with `Retry-After`, which OTel SDKs and
//! collectors need in order to retry rather than drop. Every 4xx/5xx carries a `google.rpc.Status`
//! in the request's encoding whose message says what was wrong.
//!
//! Not yet: the gRPC transport (`protocols.grpc` is refused with a message saying so) and the
//! trace and metric signals.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::{Method, Request, Response};
use serde::{Deserialize, Deserializer};

use crate::config::{ConfigError, byte_size, check_endpoint, decode};
use crate::model::LogBatch;
use crate::otlp;
use crate::pipeline::{BoxFuture, ConsumeError, Consumer, Receiver, Running, StartError, Worker};
use crate::receivers::body;
use crate::registry::Context;
use crate::server::{self, HttpResponse};
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

/// The Collector's gRPC settings, accepted so configs validate; the transport is not built yet.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrpcConfig {
    /// Default `localhost:4317`.
    #[serde(default = "default_grpc_endpoint")]
    pub endpoint: String,
    /// Largest accepted message, in MiB. Default 4.
    #[serde(default = "default_max_recv_msg_size_mib")]
    pub max_recv_msg_size_mib: usize,
    #[serde(default)]
    pub keepalive: Option<serde_yaml_ng::Value>,
}

impl Default for GrpcConfig {
    fn default() -> Self {
        GrpcConfig {
            endpoint: default_grpc_endpoint(),
            max_recv_msg_size_mib: default_max_recv_msg_size_mib(),
            keepalive: None,
        }
    }
}

fn default_grpc_endpoint() -> String {
    "localhost:4317".into()
}

fn default_max_recv_msg_size_mib() -> usize {
    4
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// `host:port` to listen on. Default `localhost:4318`.
    #[serde(default = "default_http_endpoint")]
    pub endpoint: String,
    /// Largest accepted body, before and after decompression. Default `20MiB`.
    #[serde(default = "default_max_body", deserialize_with = "byte_size")]
    pub max_request_body_size: usize,
    /// Close each connection once it is this old (after its current request), so that clients
    /// behind an L4 balancer reconnect and reach replicas added later. Default: never.
    #[serde(default, deserialize_with = "crate::config::optional_duration")]
    pub max_connection_age: Option<Duration>,
    /// Close a connection whose request headers take longer than this. Default `30s`.
    #[serde(
        default = "default_header_timeout",
        deserialize_with = "crate::config::duration"
    )]
    pub read_header_timeout: Duration,
    /// The `Retry-After` sent with 429 and 503 answers. Default `1s`.
    #[serde(
        default = "default_retry_after",
        deserialize_with = "crate::config::duration"
    )]
    pub retry_after: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            endpoint: default_http_endpoint(),
            max_request_body_size: default_max_body(),
            max_connection_age: None,
            read_header_timeout: default_header_timeout(),
            retry_after: default_retry_after(),
        }
    }
}

fn default_http_endpoint() -> String {
    "localhost:4318".into()
}

fn default_max_body() -> usize {
    20 << 20
}

fn default_header_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_retry_after() -> Duration {
    Duration::from_secs(1)
}

pub struct Otlp {
    id: String,
    http: HttpConfig,
    metrics: ReceiverMetrics,
}

pub fn build(
    ctx: &Context,
    raw: serde_yaml_ng::Value,
) -> Result<Box<dyn Receiver>, Vec<ConfigError>> {
    let cfg: Config = decode(ctx.path, raw).map_err(|e| vec![e])?;
    let path = |rest: &str| format!("{}.protocols{rest}", ctx.path);
    let mut errors = Vec::new();
    if let Some(grpc) = &cfg.protocols.grpc {
        if let Err(e) = check_endpoint(&grpc.endpoint) {
            errors.push(ConfigError::new(path(".grpc.endpoint"), e));
        }
        errors.push(ConfigError::new(
            path(".grpc"),
            "the OTLP/gRPC transport is not available yet; use protocols.http",
        ));
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
            if http.max_request_body_size == 0 {
                errors.push(ConfigError::new(
                    path(".http.max_request_body_size"),
                    "must be greater than zero",
                ));
            }
            if http.read_header_timeout.is_zero() {
                errors.push(ConfigError::new(
                    path(".http.read_header_timeout"),
                    "must be greater than zero",
                ));
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let id = ctx.id.to_string();
    Ok(Box::new(Otlp {
        metrics: ReceiverMetrics::new(ctx.telemetry, &id, "http"),
        id,
        http: cfg.protocols.http.unwrap_or_default(),
    }))
}

struct Shared {
    cfg: HttpConfig,
    metrics: ReceiverMetrics,
    retry_after: HeaderValue,
}

impl Receiver for Otlp {
    fn start(
        self: Box<Self>,
        consumer: Consumer,
        shutdown: Shutdown,
    ) -> BoxFuture<Result<Running, StartError>> {
        Box::pin(async move {
            let listener = server::bind(
                format!("receivers.{}.protocols.http", self.id),
                &self.http.endpoint,
            )
            .await?;
            tracing::info!(receiver = %self.id, endpoint = %self.http.endpoint, "otlp http receiver listening");
            let opts = server::Options {
                max_connection_age: self.http.max_connection_age,
                header_read_timeout: self.http.read_header_timeout,
                ..Default::default()
            };
            let shared = Arc::new(Shared {
                retry_after: HeaderValue::from(self.http.retry_after.as_secs().max(1)),
                cfg: self.http,
                metrics: self.metrics,
            });
            let running: Running = Box::pin(server::serve(listener, shutdown, opts, move || {
                // One worker per connection; HTTP/1.1 serves one request at a time on it.
                let worker = Arc::new(Mutex::new(Some(consumer.worker())));
                let shared = Arc::clone(&shared);
                let consumer = consumer.clone();
                move |req| {
                    handle(
                        req,
                        Arc::clone(&shared),
                        Arc::clone(&worker),
                        consumer.clone(),
                    )
                }
            }));
            Ok(running)
        })
    }
}

/// The request's body encoding, which the answer uses too.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Protobuf,
    Json,
}

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

impl Format {
    fn of(req: &Request<Incoming>) -> Option<Format> {
        let ct = req.headers().get(CONTENT_TYPE)?.to_str().ok()?;
        let mime = ct.split(';').next().unwrap_or("").trim();
        if mime.eq_ignore_ascii_case(PROTOBUF) {
            Some(Format::Protobuf)
        } else if mime.eq_ignore_ascii_case(JSON) {
            Some(Format::Json)
        } else {
            None
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Format::Protobuf => PROTOBUF,
            Format::Json => JSON,
        }
    }

    fn respond(self, status: u16, body: Vec<u8>) -> HttpResponse {
        let mut resp = Response::new(Full::new(Bytes::from(body)));
        *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
        resp.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(self.content_type()));
        resp
    }

    /// A `google.rpc.Status` with a gRPC code, as OTLP/HTTP asks of every error answer.
    fn status(self, http: u16, code: i32, message: &str) -> HttpResponse {
        let message = message.trim_end();
        let body = match self {
            Format::Json => serde_json::json!({ "code": code, "message": message })
                .to_string()
                .into_bytes(),
            Format::Protobuf => {
                let mut out = Vec::new();
                otlp::wire::put_key(&mut out, 1, 0);
                otlp::wire::put_varint(&mut out, code as u64);
                otlp::wire::put_bytes_field(&mut out, 2, message.as_bytes());
                out
            }
        };
        self.respond(http, body)
    }
}

/// gRPC status codes used in `Status` bodies.
const INVALID_ARGUMENT: i32 = 3;
const RESOURCE_EXHAUSTED: i32 = 8;
const UNIMPLEMENTED: i32 = 12;
const UNAVAILABLE: i32 = 14;

async fn handle(
    req: Request<Incoming>,
    shared: Arc<Shared>,
    slot: Arc<Mutex<Option<Worker>>>,
    consumer: Consumer,
) -> HttpResponse {
    let format = Format::of(&req);
    let reply = format.unwrap_or(Format::Json);
    match req.uri().path() {
        "/v1/logs" => {}
        "/v1/traces" | "/v1/metrics" => {
            return reply.status(404, UNIMPLEMENTED, "only logs are received so far");
        }
        _ => return reply.status(404, UNIMPLEMENTED, "unknown path; OTLP/HTTP uses /v1/logs"),
    }
    if req.method() != Method::POST {
        let mut resp = reply.status(405, UNIMPLEMENTED, "only POST is accepted");
        resp.headers_mut()
            .insert(hyper::header::ALLOW, HeaderValue::from_static("POST"));
        return resp;
    }
    let Some(format) = format else {
        return reply.status(
            415,
            INVALID_ARGUMENT,
            "Content-Type must be application/x-protobuf or application/json",
        );
    };
    let (body, wire_bytes) = match body::read(req, shared.cfg.max_request_body_size).await {
        Ok(read) => read,
        Err(refusal) => {
            return format.status(refusal.status(), INVALID_ARGUMENT, refusal.message());
        }
    };
    let decoded: Result<LogBatch, String> = match format {
        Format::Protobuf => otlp::logs::decode(&body).map_err(|e| e.to_string()),
        Format::Json => otlp::json::decode_logs(&body).map_err(|e| e.to_string()),
    };
    let batch = match decoded {
        Ok(b) => b,
        Err(e) => {
            return format.status(
                400,
                INVALID_ARGUMENT,
                &format!("invalid ExportLogsServiceRequest: {e}"),
            );
        }
    };
    let records = batch.len() as u64;
    let success = || match format {
        Format::Protobuf => format.respond(200, Vec::new()),
        Format::Json => format.respond(200, b"{}".to_vec()),
    };
    if records == 0 {
        shared.metrics.accepted_bytes.add(wire_bytes);
        return success();
    }
    let mut worker = slot
        .lock()
        .ok()
        .and_then(|mut g| g.take())
        .unwrap_or_else(|| consumer.worker());
    let result = worker.consume(batch).await;
    if let Ok(mut g) = slot.lock() {
        *g = Some(worker);
    }
    match result {
        Ok(_) => {
            shared.metrics.accepted.add(records);
            shared.metrics.accepted_bytes.add(wire_bytes);
            success()
        }
        Err(e) => {
            shared.metrics.refused.add(records);
            let mut resp = match e {
                ConsumeError::Full => {
                    format.status(429, RESOURCE_EXHAUSTED, "the pipeline is full; retry later")
                }
                ConsumeError::Closed => {
                    format.status(503, UNAVAILABLE, "sluice is shutting down; retry")
                }
                ConsumeError::NotDelivered => format.status(
                    503,
                    UNAVAILABLE,
                    "the records could not be delivered; retry",
                ),
            };
            resp.headers_mut()
                .insert(RETRY_AFTER, shared.retry_after.clone());
            resp
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ComponentId;
    use crate::telemetry::Registry;

    fn build_from(yaml: &str) -> Result<Box<dyn Receiver>, Vec<ConfigError>> {
        let id = ComponentId::parse("otlp").unwrap();
        let reg = Registry::default();
        let ctx = Context {
            id: &id,
            path: "receivers.otlp",
            telemetry: &reg,
            pipeline: "",
        };
        build(&ctx, serde_yaml_ng::from_str(yaml).unwrap())
    }

    fn messages(r: Result<Box<dyn Receiver>, Vec<ConfigError>>) -> Vec<String> {
        r.err()
            .unwrap_or_default()
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn an_empty_protocol_key_enables_it_with_defaults() {
        assert!(build_from("{protocols: {http: }}").is_ok());
        assert!(build_from("{protocols: {http: {endpoint: '0.0.0.0:4318'}}}").is_ok());
    }

    #[test]
    fn no_protocol_and_grpc_are_reported_with_their_paths() {
        assert_eq!(
            messages(build_from("{}")),
            ["receivers.otlp.protocols: enable at least one protocol (grpc or http)"]
        );
        assert_eq!(
            messages(build_from("{protocols: {grpc: , http: }}")),
            [
                "receivers.otlp.protocols.grpc: the OTLP/gRPC transport is not available yet; use protocols.http"
            ]
        );
        assert_eq!(
            messages(build_from("{protocols: {http: {endpoint: 'x:y'}}}")),
            [
                "receivers.otlp.protocols.http.endpoint: invalid socket address \"x:y\": expected host:port"
            ]
        );
    }
}
