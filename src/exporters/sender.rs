//! The sending half shared by the OTLP exporters (`otlp` over gRPC, `otlphttp`): merge queued
//! batches into one request, compress it, and send it through a [`Transport`] until delivered,
//! retrying with capped exponential backoff and the peer's own hints.
//!
//! A batch is released as delivered only when the peer said so, so the receiver that took it
//! answers its client only then. A permanent refusal, or retrying past `max_elapsed_time`,
//! fails the batch's acknowledgement and the original senders are told to retry.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Deserialize;

use crate::auth::AuthConfig;
use crate::component::Context;
use crate::config::{ConfigError, duration};
use crate::exporters::QueueConfig;
use crate::exporters::backoff;
use crate::exporters::client::{Compression, ExtraHeaders};
use crate::exporters::tls::Tls;
use crate::model::Signal;
use crate::otlp;
use crate::pipeline::Batch;
use crate::pipeline::queue::{self, Envelope, Take};
use crate::pipeline::{BoxFuture, Exporter};
use crate::shutdown::Shutdown;
use crate::telemetry::ExporterMetrics;

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

/// What both OTLP exporters take besides where to send, with the Collector's names, written in
/// the same mapping as the exporter's own keys (`config::decode_squashed`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// TLS for the connection (`exporters::tls`).
    #[serde(default)]
    pub tls: Tls,
    /// Extra request headers or gRPC metadata (authentication, tenancy).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Send the credential of an auth extension (`bearertokenauth`, `basicauth` with
    /// `client_auth`) with every request. Default: none.
    #[serde(default)]
    pub auth: Option<AuthConfig>,
    /// `gzip` (default, as in the Collector), `zstd` or `none`.
    #[serde(default)]
    pub compression: Compression,
    /// Give up on one request after this long (it is then retried). Default `30s`.
    #[serde(default = "default_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
    #[serde(default)]
    pub retry_on_failure: Retry,
    #[serde(default)]
    pub sending_queue: QueueConfig,
    /// Queued records merged into one request, at most. Default 8192.
    #[serde(default = "default_max_batch")]
    pub max_batch_records: usize,
}

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_max_batch() -> usize {
    8192
}

impl ClientConfig {
    /// Checks every setting, reporting under the exporter's path, and makes what is added to
    /// every request; `problem` says what a bad header is ("not a valid HTTP header").
    pub fn check(
        &self,
        ctx: &Context,
        problem: &str,
        errors: &mut Vec<ConfigError>,
    ) -> ExtraHeaders {
        let path = ctx.path;
        self.sending_queue.check(path, errors);
        let retry = &self.retry_on_failure;
        if retry.initial_interval.is_zero() || retry.max_interval < retry.initial_interval {
            errors.push(ConfigError::new(
                format!("{path}.retry_on_failure"),
                "need 0 < initial_interval <= max_interval",
            ));
        }
        if self.timeout.is_zero() {
            errors.push(ConfigError::new(
                format!("{path}.timeout"),
                "must be greater than zero",
            ));
        }
        if self.max_batch_records == 0 {
            errors.push(ConfigError::new(
                format!("{path}.max_batch_records"),
                "must be greater than zero",
            ));
        }
        ExtraHeaders::build(ctx, &self.headers, self.auth.as_ref(), problem, errors)
    }

    /// What the send loop needs besides its transport.
    pub fn settings(&self, id: String, metrics: ExporterMetrics, deadline: Shutdown) -> Settings {
        Settings {
            id,
            compression: self.compression,
            retry: self.retry_on_failure,
            max_batch_records: self.max_batch_records,
            metrics,
            deadline,
        }
    }
}

/// An OTLP exporter (`otlp`, `otlphttp`): its client settings and the transport that puts its
/// requests on the wire, made at build time (a client is only a description until it sends).
pub struct OtlpExporter<T> {
    id: String,
    client: ClientConfig,
    transport: T,
    metrics: ExporterMetrics,
}

impl<T: Transport + 'static> OtlpExporter<T> {
    pub fn new(ctx: &Context, client: ClientConfig, transport: T) -> Self {
        let id = ctx.id.to_string();
        OtlpExporter {
            metrics: ExporterMetrics::new(ctx.telemetry, &id),
            id,
            client,
            transport,
        }
    }
}

impl<T: Transport + 'static> Exporter for OtlpExporter<T> {
    fn sending_queue(&self) -> QueueConfig {
        self.client.sending_queue
    }

    fn takes_encoded_logs(&self) -> bool {
        true
    }

    fn run(self: Box<Self>, queue: queue::Receiver, deadline: Shutdown) -> BoxFuture<()> {
        let OtlpExporter {
            id,
            client,
            transport,
            metrics,
        } = *self;
        Box::pin(run(
            client.settings(id, metrics, deadline),
            transport,
            queue,
        ))
    }
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
    /// Fired at the shutdown deadline: retrying stops.
    pub deadline: Shutdown,
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
        let Some(outcome) = s
            .deadline
            .unless(transport.attempt(signal, body.clone()))
            .await
        else {
            tracing::warn!(exporter = %s.id, "shutdown deadline: giving up on the batch");
            return false;
        };
        let (why, hint) = match outcome {
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
        if !s.deadline.sleep(wait).await {
            tracing::warn!(exporter = %s.id, "shutdown deadline: giving up on the batch");
            return false;
        }
        failures = failures.saturating_add(1);
    }
}
