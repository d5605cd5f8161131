//! The sending half shared by the OTLP exporters (`otlp` over gRPC, `otlphttp`): merge queued
//! batches into one request, compress it, and send it through a [`Transport`] until delivered,
//! retrying with capped exponential backoff and the peer's own hints.
//!
//! A batch is released as delivered only when the peer said so, so the receiver that took it
//! answers its client only then. A permanent refusal, or retrying past `max_elapsed_time`,
//! fails the batch's acknowledgement and the original senders are told to retry.

use std::future::Future;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Deserialize;

use crate::config::duration;
use crate::exporters::backoff;
use crate::model::Signal;
use crate::otlp;
use crate::pipeline::Batch;
use crate::pipeline::queue::{self, Envelope, Take};
use crate::telemetry::ExporterMetrics;

#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    #[default]
    Gzip,
    Zstd,
    None,
}

/// The Collector's `retry_on_failure`.
#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    /// `false` fails a batch on its first failed attempt. Default `true`.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// First wait. Default `5s`.
    #[serde(default = "default_initial", deserialize_with = "duration")]
    pub initial_interval: Duration,
    /// Longest wait between attempts. Default `30s`.
    #[serde(default = "default_max_interval", deserialize_with = "duration")]
    pub max_interval: Duration,
    /// Give a batch up after retrying this long; `0s` retries forever. Default `300s`.
    #[serde(default = "default_max_elapsed", deserialize_with = "duration")]
    pub max_elapsed_time: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            enabled: true,
            initial_interval: default_initial(),
            max_interval: default_max_interval(),
            max_elapsed_time: default_max_elapsed(),
        }
    }
}

fn yes() -> bool {
    true
}

fn default_initial() -> Duration {
    Duration::from_secs(5)
}

fn default_max_interval() -> Duration {
    Duration::from_secs(30)
}

fn default_max_elapsed() -> Duration {
    Duration::from_secs(300)
}

impl Compression {
    /// The name used in `Content-Encoding` / `grpc-encoding`, if any.
    pub fn name(self) -> Option<&'static str> {
        match self {
            Compression::Gzip => Some("gzip"),
            Compression::Zstd => Some("zstd"),
            Compression::None => None,
        }
    }

    pub fn compress(self, body: &[u8]) -> Bytes {
        match self {
            Compression::None => Bytes::copy_from_slice(body),
            Compression::Gzip => {
                use std::io::Write;
                let mut enc =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                // Writing to a Vec cannot fail.
                let _ = enc.write_all(body);
                Bytes::from(enc.finish().unwrap_or_default())
            }
            Compression::Zstd => Bytes::from(zstd::encode_all(body, 1).unwrap_or_default()),
        }
    }
}

/// Checks the settings both OTLP exporters share, reporting under `path`.
pub fn check(
    path: &str,
    queue: &crate::exporters::QueueConfig,
    retry: &Retry,
    timeout: Duration,
    max_batch_records: usize,
    errors: &mut Vec<crate::config::ConfigError>,
) {
    use crate::config::ConfigError;
    queue.check(path, errors);
    if retry.initial_interval.is_zero() || retry.max_interval < retry.initial_interval {
        errors.push(ConfigError::new(
            format!("{path}.retry_on_failure"),
            "need 0 < initial_interval <= max_interval",
        ));
    }
    if timeout.is_zero() {
        errors.push(ConfigError::new(
            format!("{path}.timeout"),
            "must be greater than zero",
        ));
    }
    if max_batch_records == 0 {
        errors.push(ConfigError::new(
            format!("{path}.max_batch_records"),
            "must be greater than zero",
        ));
    }
}

/// The most `headers` an exporter sends, and their size in all.
pub const MAX_HEADERS: usize = 64;
pub const MAX_HEADER_BYTES: usize = 16 << 10;

/// The configured `headers` (HTTP headers or gRPC metadata), each checked; a bad one is
/// reported as `<path>.headers.<name>: <problem>`.
/// What an exporter adds to every request: its configured `headers` and, with `auth`, the
/// credential its authenticator gives (asked per request, so a rotated token is sent at once).
pub struct ExtraHeaders {
    pub fixed: hyper::HeaderMap,
    pub auth: Option<std::sync::Arc<dyn crate::auth::ClientAuth>>,
}

impl ExtraHeaders {
    /// `headers` and `auth` from an exporter's config at `path`; errors go to `errors`.
    pub fn build(
        ctx: &crate::component::Context,
        configured: &std::collections::BTreeMap<String, String>,
        auth: Option<&crate::auth::AuthConfig>,
        problem: &str,
        errors: &mut Vec<crate::config::ConfigError>,
    ) -> Self {
        let fixed = headers(ctx.path, configured, problem, errors);
        let auth = auth.and_then(|a| {
            ctx.auth
                .client(ctx.path, a)
                .map_err(|e| errors.push(e))
                .ok()
        });
        ExtraHeaders { fixed, auth }
    }

    pub fn apply(&self, to: &mut hyper::HeaderMap) {
        for (k, v) in &self.fixed {
            to.insert(k.clone(), v.clone());
        }
        if let Some(a) = &self.auth {
            let (k, v) = a.header();
            to.insert(k, v);
        }
    }
}

pub fn headers(
    path: &str,
    configured: &std::collections::BTreeMap<String, String>,
    problem: &str,
    errors: &mut Vec<crate::config::ConfigError>,
) -> hyper::HeaderMap {
    use hyper::header::{HeaderName, HeaderValue};
    let mut out = hyper::HeaderMap::new();
    // Beyond these a peer refuses the request anyway (HTTP/2's usual header list limit is
    // 16 KiB), and a header map holds at most 32768 entries before it panics.
    let total: usize = configured.iter().map(|(k, v)| k.len() + v.len()).sum();
    if configured.len() > MAX_HEADERS || total > MAX_HEADER_BYTES {
        errors.push(crate::config::ConfigError::new(
            format!("{path}.headers"),
            format!(
                "at most {MAX_HEADERS} headers of {} KiB in all (got {} of {} bytes)",
                MAX_HEADER_BYTES >> 10,
                configured.len(),
                total
            ),
        ));
        return out;
    }
    for (k, v) in configured {
        match (
            HeaderName::try_from(k.as_str()),
            HeaderValue::try_from(v.as_str()),
        ) {
            (Ok(k), Ok(mut v)) => {
                // Values often carry tenants' keys: never shown in logs or Debug output.
                v.set_sensitive(true);
                out.insert(k, v);
            }
            _ => errors.push(crate::config::ConfigError::new(
                format!("{path}.headers.{k}"),
                problem,
            )),
        }
    }
    out
}

/// How one attempt ended.
pub enum Outcome {
    Delivered,
    /// Worth retrying, after at least the peer's hint (`Retry-After`, `RetryInfo`) if it sent one.
    Retry(String, Option<Duration>),
    /// The peer will never take this request.
    Permanent(String),
}

/// One way of putting a request on the wire.
pub trait Transport: Send + Sync {
    /// Wraps the compressed request once, before its first attempt (gRPC adds its framing).
    fn prepare(&self, payload: Bytes) -> Bytes {
        payload
    }

    /// Sends one request of `signal` (each has its own path or gRPC service).
    fn attempt(&self, signal: Signal, body: Bytes) -> impl Future<Output = Outcome> + Send;
}

/// What the loop needs besides its transport.
pub struct Settings {
    pub id: String,
    pub compression: Compression,
    pub retry: Retry,
    /// Queued records merged into one request, at most.
    pub max_batch_records: usize,
    pub metrics: ExporterMetrics,
}

/// Delivers batches from `queue` until it closes and is drained. Queued batches of one signal
/// are merged into one request; a batch of another signal starts the next request.
pub async fn run<T: Transport>(s: Settings, transport: T, mut queue: queue::Receiver) {
    let mut pending: Vec<Envelope> = Vec::new();
    let mut body = Vec::new();
    while let Some(first) = queue.recv().await {
        let signal = first.batch.signal();
        let mut records = first.records();
        pending.push(first);
        if records < s.max_batch_records {
            queue.take_ready(|e| {
                if e.batch.signal() != signal {
                    return Take::Back(e);
                }
                records += e.records();
                pending.push(e);
                if records < s.max_batch_records {
                    Take::More
                } else {
                    Take::Full
                }
            });
        }
        // Concatenated Export*ServiceRequest messages are one valid request.
        body.clear();
        for envelope in &pending {
            match &envelope.batch {
                Batch::Logs(logs) => otlp::logs::encode(logs, &mut body),
                Batch::Raw(raw) => raw.encode(&mut body),
            }
        }
        let payload = transport.prepare(s.compression.compress(&body));
        if deliver(&s, &transport, signal, payload, records as u64).await {
            s.metrics.sent.of(signal).add(records as u64);
            pending.drain(..).for_each(Envelope::delivered);
        } else {
            // Dropping undelivered envelopes fails their acks: the senders are told to retry.
            pending.clear();
        }
    }
    tracing::debug!(exporter = %s.id, "exporter drained");
}

/// Sends until delivered, the peer refuses for good, or retrying runs out of time.
async fn deliver<T: Transport>(
    s: &Settings,
    transport: &T,
    signal: Signal,
    body: Bytes,
    records: u64,
) -> bool {
    let retry = s.retry;
    let started = Instant::now();
    let mut failures = 0u32;
    loop {
        let (why, hint) = match transport.attempt(signal, body.clone()).await {
            Outcome::Delivered => return true,
            Outcome::Permanent(why) => {
                s.metrics.send_failed.of(signal).add(records);
                tracing::warn!(exporter = %s.id, error = %why, "the peer refused the batch; failing it");
                return false;
            }
            Outcome::Retry(why, hint) => (why, hint),
        };
        let backoff = backoff::exponential(retry.initial_interval, retry.max_interval, failures);
        let wait = hint.unwrap_or(backoff).min(retry.max_interval.max(backoff));
        let out_of_time =
            !retry.max_elapsed_time.is_zero() && started.elapsed() + wait > retry.max_elapsed_time;
        s.metrics.send_failed.of(signal).add(records);
        if !retry.enabled || out_of_time {
            tracing::warn!(exporter = %s.id, error = %why, "giving up on the batch");
            return false;
        }
        tracing::warn!(exporter = %s.id, error = %why, retry_in = ?wait, "send failed");
        tokio::time::sleep(wait).await;
        failures = failures.saturating_add(1);
    }
}

/// An error with every cause after it (`client error (Connect): invalid peer certificate:
/// UnknownIssuer`): hyper's own message names only the stage that failed.
pub fn with_causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}
