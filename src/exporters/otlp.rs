//! `otlp`: OTLP/gRPC logs, traces and metrics to another collector (agent to gateway), configured like the OTel
//! Collector's exporter.
//!
//! ```yaml
//! exporters:
//!   otlp:
//!     endpoint: gateway-headless.observability:4317
//!     tls: { insecure: true }             # plaintext; else TLS (ca_file, cert_file, ...)
//!     balancing: dns                      # or none (one pooled connection per address)
//!     dns_refresh_interval: 30s
//!     headers: { x-tenant: a }            # gRPC metadata
//!     auth: { authenticator: bearertokenauth }   # its token sent with every call
//!     compression: gzip                   # default; or zstd, none
//!     timeout: 30s
//!     retry_on_failure: { initial_interval: 5s, max_interval: 30s, max_elapsed_time: 300s }
//!     sending_queue: { queue_size: 100000 }   # log records, spans or data points
//! ```
//!
//! TLS (see `exporters::tls`) is on unless `tls.insecure: true` or the endpoint says
//! `http://`; `https://` always means TLS. ALPN offers `h2`.
//!
//! `balancing: dns` resolves the endpoint's host (a Kubernetes headless Service name gives one
//! address per gateway pod), sends requests round-robin over every address, and resolves again
//! every `dns_refresh_interval`, so pods the HPA adds start getting traffic. Without it, gRPC's
//! one long-lived connection pins an agent to one gateway.
//!
//! Retried: UNAVAILABLE, CANCELLED, DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE, DATA_LOSS, and
//! RESOURCE_EXHAUSTED when the server sent `RetryInfo` (whose delay is honoured), as the OTel
//! Collector does; other codes fail the batch.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Uri;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;

use tonic::Code;
use tonic_types::StatusExt;

use crate::component::{ALL_SIGNALS, Built, Context, Spec, Yaml};
use crate::config::{ConfigError, decode_squashed, duration};
use crate::exporters::client::{ExtraHeaders, with_causes};
use crate::exporters::sender::{ClientConfig, OtlpExporter, Outcome, Transport};
use crate::exporters::tls;
use crate::model::Signal;
use crate::otlp::grpc as wire;
use crate::pipeline::Exporter;

/// Where `otlp` sends and how it spreads calls; the client settings (`tls`, `headers`,
/// `auth`, `compression`, `timeout`, `retry_on_failure`, `sending_queue`) are
/// [`ClientConfig`], in the same mapping.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `host:port` of the receiving collector (`https://host:port` forces TLS,
    /// `http://host:port` plaintext). Required.
    #[serde(default)]
    pub endpoint: String,
    /// `none` (default) or `dns`: spread requests over every address the host resolves to.
    #[serde(default)]
    pub balancing: Balancing,
    /// How often `balancing: dns` resolves the host again. Default `30s`.
    #[serde(default = "default_refresh", deserialize_with = "duration")]
    pub dns_refresh_interval: Duration,
}

#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Balancing {
    #[default]
    None,
    Dns,
}

fn default_refresh() -> Duration {
    Duration::from_secs(30)
}

/// The `otlp` exporter type, as the registry lists it.
pub const SPEC: Spec<Box<dyn Exporter>> = Spec::new(
    "otlp",
    ALL_SIGNALS,
    build,
    "{endpoint: 'gw:4317', tls: {insecure: true}}",
);

pub fn build(ctx: &Context, raw: Yaml) -> Built<Box<dyn Exporter>> {
    let (cfg, client): (Config, ClientConfig) =
        decode_squashed(ctx.path, raw).map_err(|e| vec![e])?;
    let at = |field: &str| format!("{}.{field}", ctx.path);
    let mut errors = Vec::new();
    let (target, secure) = match (
        cfg.endpoint.strip_prefix("https://"),
        cfg.endpoint.strip_prefix("http://"),
    ) {
        (Some(t), _) => (t, true),
        (_, Some(t)) => (t, false),
        _ => (cfg.endpoint.as_str(), !client.tls.insecure),
    };
    let target = target.trim_end_matches('/');
    let host_port = target.rsplit_once(':').and_then(|(h, p)| {
        let h = h.trim_start_matches('[').trim_end_matches(']');
        Some((h.to_string(), p.parse::<u16>().ok()?)).filter(|(h, _)| !h.is_empty())
    });
    if cfg.endpoint.is_empty() {
        errors.push(ConfigError::new(at("endpoint"), "required"));
    } else if host_port.is_none() {
        errors.push(ConfigError::new(
            at("endpoint"),
            format!("{:?} is not host:port", cfg.endpoint),
        ));
    }
    let tls = if secure {
        client.tls.client_config(ctx.path, &mut errors)
    } else {
        None
    };
    let metadata = client.check(ctx, "not valid gRPC metadata", &mut errors);
    if cfg.dns_refresh_interval.is_zero() {
        errors.push(ConfigError::new(
            at("dns_refresh_interval"),
            "must be greater than zero",
        ));
    }
    let Some((host, port)) = host_port.filter(|_| errors.is_empty()) else {
        return Err(errors);
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    // Calls to resolved addresses still verify the certificate against the host.
    let server_name = client
        .tls
        .server_name_override
        .clone()
        .or_else(|| (cfg.balancing == Balancing::Dns).then(|| host.clone()));
    let connector = match tls {
        Some(config) => tls::connector(config, true, server_name),
        None => tls::plaintext_connector(),
    };
    let mut builder = Client::builder(TokioExecutor::new());
    builder.http2_only(true);
    let transport = GrpcTransport {
        client: builder.build(connector),
        scheme,
        targets: Targets::new(host, port, cfg.balancing, cfg.dns_refresh_interval),
        metadata,
        encoding: client.compression.name(),
        timeout: client.timeout,
    };
    Ok(Box::new(OtlpExporter::new(ctx, client, transport)))
}

/// Where calls go: the endpoint as written, or (DNS balancing) each address it resolves to in
/// turn, resolved again when the list is older than the refresh interval.
struct Targets {
    host: String,
    port: u16,
    balancing: Balancing,
    refresh: Duration,
    resolved: Mutex<(Vec<SocketAddr>, Option<Instant>)>,
    next: AtomicUsize,
}

impl Targets {
    fn new(host: String, port: u16, balancing: Balancing, refresh: Duration) -> Self {
        Targets {
            host,
            port,
            balancing,
            refresh,
            resolved: Mutex::new((Vec::new(), None)),
            next: AtomicUsize::new(0),
        }
    }

    /// The authority (`host:port`) for the next call.
    async fn next(&self) -> String {
        if self.balancing == Balancing::None {
            return authority(&self.host, self.port);
        }
        let stale = self
            .resolved
            .lock()
            .map(|r| r.1.is_none_or(|at| at.elapsed() >= self.refresh))
            .unwrap_or(true);
        if stale {
            match tokio::net::lookup_host((self.host.as_str(), self.port)).await {
                Ok(addrs) => {
                    let mut addrs: Vec<SocketAddr> = addrs.collect();
                    addrs.sort();
                    addrs.dedup();
                    if let Ok(mut r) = self.resolved.lock() {
                        if !addrs.is_empty() && addrs != r.0 {
                            tracing::info!(host = %self.host, addresses = ?addrs, "otlp exporter resolved");
                        }
                        // An empty answer keeps the last good list rather than stalling.
                        if !addrs.is_empty() {
                            r.0 = addrs;
                        }
                        r.1 = Some(Instant::now());
                    }
                }
                Err(e) => {
                    tracing::warn!(host = %self.host, error = %e, "otlp exporter: DNS lookup failed");
                }
            }
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        match self.resolved.lock() {
            Ok(r) if !r.0.is_empty() => r.0[i % r.0.len()].to_string(),
            _ => authority(&self.host, self.port),
        }
    }
}

fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

struct GrpcTransport {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    scheme: &'static str,
    targets: Targets,
    metadata: ExtraHeaders,
    encoding: Option<&'static str>,
    timeout: Duration,
}

impl Transport for GrpcTransport {
    fn prepare(&self, payload: Bytes) -> Bytes {
        wire::frame(&payload, self.encoding.is_some())
    }

    async fn attempt(&self, signal: Signal, body: Bytes) -> Outcome {
        let method = match signal {
            Signal::Logs => wire::LOGS_EXPORT,
            Signal::Traces => wire::TRACES_EXPORT,
            Signal::Metrics => wire::METRICS_EXPORT,
        };
        let target = self.targets.next().await;
        let uri: Uri = match format!("{}://{target}{method}", self.scheme).parse() {
            Ok(u) => u,
            Err(e) => return Outcome::Permanent(format!("bad target {target}: {e}")),
        };
        let mut req = hyper::Request::post(uri)
            .header(CONTENT_TYPE, "application/grpc")
            .header("te", "trailers")
            .header(
                "grpc-timeout",
                format!("{}m", self.timeout.as_millis().min(99_999_999)),
            )
            .body(Full::new(body))
            .expect("a request from a parsed URI");
        if let Some(e) = self.encoding {
            req.headers_mut()
                .insert("grpc-encoding", HeaderValue::from_static(e));
        }
        self.metadata.apply(req.headers_mut());
        let call = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| with_causes(&e))?;
            let (parts, body) = resp.into_parts();
            let collected = body.collect().await.map_err(|e| e.to_string())?;
            Ok::<_, String>((parts, collected.trailers().cloned()))
        };
        let (parts, trailers) = match tokio::time::timeout(self.timeout, call).await {
            Err(_) => return Outcome::Retry(format!("{target}: timed out"), None),
            Ok(Err(e)) => return Outcome::Retry(format!("{target}: {e}"), None),
            Ok(Ok(r)) => r,
        };
        if parts.status != hyper::StatusCode::OK {
            let why = format!("{target}: HTTP {}", parts.status);
            return match parts.status.as_u16() {
                429 | 502 | 503 | 504 => Outcome::Retry(why, None),
                _ => Outcome::Permanent(why),
            };
        }
        // The status is in the trailers, or in the headers of a Trailers-Only answer.
        let Some(status) =
            tonic::Status::from_header_map(trailers.as_ref().unwrap_or(&parts.headers))
        else {
            return Outcome::Retry(format!("{target}: no grpc-status in the answer"), None);
        };
        let retry_info = status.get_details_retry_info().and_then(|r| r.retry_delay);
        let why = || {
            format!(
                "{target}: gRPC status {:?}: {}",
                status.code(),
                status.message()
            )
        };
        match status.code() {
            Code::Ok => Outcome::Delivered,
            Code::ResourceExhausted if retry_info.is_some() => Outcome::Retry(why(), retry_info),
            // The codes the Collector's exporter retries.
            Code::Unavailable
            | Code::Cancelled
            | Code::DeadlineExceeded
            | Code::Aborted
            | Code::OutOfRange
            | Code::DataLoss => Outcome::Retry(why(), retry_info),
            _ => Outcome::Permanent(why()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(yaml: &str) -> Vec<String> {
        crate::registry::build_errors(build, "exporters", "otlp", yaml)
    }

    #[test]
    fn endpoints_are_host_port_with_tls_unless_insecure() {
        assert!(errors("{endpoint: 'gw:4317', tls: {insecure: true}}").is_empty());
        assert!(errors("{endpoint: 'http://gw:4317', balancing: dns}").is_empty());
        assert!(
            errors("{endpoint: 'gw:4317'}").is_empty(),
            "TLS, system roots"
        );
        assert!(errors("{endpoint: 'https://gw:4317', tls: {min_version: '1.3'}}").is_empty());
        assert_eq!(
            errors("{endpoint: 'gw:4317', tls: {ca_file: /nonexistent.pem}}"),
            [
                "exporters.otlp.tls.ca_file: cannot read /nonexistent.pem: I/O error: No such file or directory (os error 2)"
            ]
        );
        assert!(
            errors("{endpoint: 'http://gw:4317', tls: {ca_file: /nonexistent.pem}}").is_empty(),
            "plaintext reads no certificates"
        );
        assert_eq!(
            errors("{endpoint: 'gw', tls: {insecure: true}}"),
            ["exporters.otlp.endpoint: \"gw\" is not host:port"]
        );
    }

    #[tokio::test]
    async fn dns_balancing_goes_round_robin_over_every_address() {
        let t = Targets::new(
            "localhost".into(),
            4317,
            Balancing::Dns,
            Duration::from_secs(60),
        );
        let first = t.next().await;
        let n = t.resolved.lock().unwrap().0.len();
        assert!(n >= 1);
        let mut seen = vec![first];
        for _ in 1..(2 * n) {
            seen.push(t.next().await);
        }
        // Every resolved address is used, in turn.
        for (i, a) in seen.iter().enumerate() {
            assert_eq!(a, &seen[i % n]);
        }
        let mut distinct = seen.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), n);
        let plain = Targets::new("gw".into(), 4317, Balancing::None, Duration::from_secs(60));
        assert_eq!(plain.next().await, "gw:4317");
    }
}
