//! `elasticsearch`: logs to Elasticsearch through the `_bulk` API, into data streams or a
//! static index, configured like the OTel Collector's exporter.
//!
//! ```yaml
//! exporters:
//!   elasticsearch:
//!     endpoints: [https://es-0:9200, https://es-1:9200]   # round-robin; a failed request
//!                                                         # is retried on the next one
//!     user: elastic                # with password: basic auth; or api_key, or bearer_token
//!     password: ${env:ES_PASSWORD}
//!     # api_key: <base64 id:key, as Kibana shows it>
//!     tls: { ca_file: /etc/es/ca.pem }   # cert_file/key_file, insecure_skip_verify
//!     compression: gzip            # default; or none
//!     headers: { x-tenant: a }
//!     timeout: 90s
//!     # logs_index: my-logs        # else data streams logs-<dataset>-<namespace>
//!     # pipeline: my-ingest-pipeline
//!     mapping: { mode: otel }      # or ecs, raw (elasticsearch::mapping)
//!     flush: { bytes: 5MB, interval: 1s, eager: true }
//!     num_workers: 4               # concurrent bulk requests
//!     retry:
//!       max_retries: 10
//!       initial_interval: 1s
//!       max_interval: 30s
//!       retry_on_status: [429, 502, 503, 504]
//!     dead_letter: { index: logs-dlq }   # or { file: /var/lib/sluice/es-dlq.ndjson }
//!     sending_queue: { queue_size: 100000 }
//! ```
//!
//! Queued batches are encoded into one bulk body (`elasticsearch::mapping`) until it reaches
//! `flush.bytes`, the oldest waited `flush.interval`, or (`flush.eager`, the default) a worker
//! is idle and nothing more is queued. Up to `num_workers` bodies are in flight; while all are
//! busy, data gathers into the next body, then the queue fills and receivers answer 429
//! (backpressure).
//!
//! Every document gets an `_id` from the exporter. A whole request that failed (transport
//! error, timeout, a `retry_on_status` answer, an unreadable answer) is sent again as it was;
//! after a 200, only the items whose status `retry_on_status` lists are sent again, with
//! exponential backoff and jitter. An earlier attempt that did index a document is answered
//! 409 on `create` and counted done, so retries never store a document twice. A 413 splits
//! the request in halves. Items that fail for good (mapping conflicts, 400s) and items still
//! failing after `max_retries` go to `dead_letter` when one is configured; without one, the
//! batches they came in are failed and their senders told to retry. A batch is acknowledged
//! only when each of its documents is indexed or dead-lettered.
//!
//! The transport is the official `elasticsearch` crate's (reqwest, rustls). Bodies go through
//! `Elasticsearch::send` pre-encoded and, with `compression: gzip`, pre-compressed at a fast
//! level: the crate's `bulk()` builder would copy each body and append a newline per line, and
//! its own compression runs at the slow default level.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use elasticsearch::Elasticsearch;
use elasticsearch::auth::{ClientCertificate, Credentials};
use elasticsearch::cert::{Certificate, CertificateValidation};
use elasticsearch::http::Method;
use elasticsearch::http::headers::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderMap};
use elasticsearch::http::transport::{MultiNodeConnectionPool, TransportBuilder};
use hyper::header::HeaderValue;
use serde::Deserialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use url::Url;

use crate::config::{ConfigError, byte_size, decode, duration};
use crate::elasticsearch::mapping::{BulkEncoder, Mode};
use crate::elasticsearch::response::{self, Item};
use crate::elasticsearch::retry;
use crate::exporters::QueueConfig;
use crate::exporters::sender::{self, Compression};
use crate::exporters::tls::Tls;
use crate::model::{Batch, LogBatch, Signal};
use crate::pipeline::queue::{self, Envelope};
use crate::pipeline::{BoxFuture, Exporter};
use crate::registry::Context;
use crate::telemetry::{
    Counter, CounterFamily, ExporterMetrics, Histogram, LATENCY_BUCKETS, Registry,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Elasticsearch URLs, used round-robin. Required (or `endpoint`).
    #[serde(default)]
    pub endpoints: Vec<String>,
    /// One URL, for the common single-endpoint case.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Basic auth user, with `password`.
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// An API key as Elasticsearch encodes it (base64 of `id:key`).
    #[serde(default)]
    pub api_key: Option<String>,
    #[serde(default)]
    pub bearer_token: Option<String>,
    /// TLS for `https://` endpoints. `server_name_override`, `min_version` and `insecure` do
    /// not apply (the transport's TLS settings have no such knobs).
    #[serde(default)]
    pub tls: Tls,
    /// `gzip` (default) or `none`.
    #[serde(default)]
    pub compression: Compression,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// One bulk request's time limit; a request that runs out is retried whole. Default `90s`.
    #[serde(default = "default_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
    /// Every document goes to this index instead of a data stream.
    #[serde(default)]
    pub logs_index: Option<String>,
    /// Ingest pipeline for every document.
    #[serde(default)]
    pub pipeline: Option<String>,
    #[serde(default)]
    pub mapping: MappingConfig,
    #[serde(default)]
    pub flush: Flush,
    /// Bulk requests in flight at once. Default 4.
    #[serde(default = "default_workers")]
    pub num_workers: usize,
    #[serde(default)]
    pub retry: RetryConfig,
    #[serde(default)]
    pub dead_letter: Option<DeadLetterConfig>,
    /// `true` (default): the exporter gives each document an `_id`, so a retry of a request
    /// whose answer was lost cannot store a document twice. `false` leaves ids to
    /// Elasticsearch (slightly cheaper indexing, duplicates possible on such retries).
    #[serde(default = "yes")]
    pub assign_ids: bool,
    #[serde(default)]
    pub sending_queue: QueueConfig,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct MappingConfig {
    /// `otel` (default), `ecs` or `raw`.
    #[serde(default)]
    pub mode: Mode,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flush {
    /// Send a bulk request once its body is this large (before compression). Default `5MB`.
    #[serde(default = "default_flush_bytes", deserialize_with = "byte_size")]
    pub bytes: usize,
    /// Send a smaller one once its first document waited this long. Default `1s`.
    #[serde(default = "default_flush_interval", deserialize_with = "duration")]
    pub interval: Duration,
    /// `true` (default): when a worker is idle and nothing more is waiting, send what there
    /// is at once. Requests then grow with the load (data gathers while every worker is
    /// busy), and senders waiting for their acknowledgement are not held for `interval` when
    /// Elasticsearch keeps up. `false`: wait for `bytes` or `interval`, as the Collector does.
    #[serde(default = "yes")]
    pub eager: bool,
}

impl Default for Flush {
    fn default() -> Self {
        Flush {
            bytes: default_flush_bytes(),
            interval: default_flush_interval(),
            eager: true,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// `false`: a failed request or item is not retried. Default `true`.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Attempts after the first, for a whole request and for each failed item. Default 10
    /// (with the default intervals, about three minutes of retrying).
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// Default `1s`.
    #[serde(default = "default_initial", deserialize_with = "duration")]
    pub initial_interval: Duration,
    /// Default `30s`.
    #[serde(default = "default_max_interval", deserialize_with = "duration")]
    pub max_interval: Duration,
    /// Statuses worth retrying, for whole requests and single items. Default 429, 502, 503,
    /// 504.
    #[serde(default = "default_retry_on")]
    pub retry_on_status: Vec<u16>,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            enabled: true,
            max_retries: default_max_retries(),
            initial_interval: default_initial(),
            max_interval: default_max_interval(),
            retry_on_status: default_retry_on(),
        }
    }
}

/// Where documents that cannot be indexed go instead: exactly one of the two.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterConfig {
    /// An index (or data stream) that takes each failed document as text in
    /// `event.original`, with the error and the index it was meant for.
    #[serde(default)]
    pub index: Option<String>,
    /// A local file that gets one JSON line per failed document, appended.
    #[serde(default)]
    pub file: Option<PathBuf>,
}

fn yes() -> bool {
    true
}
fn default_timeout() -> Duration {
    Duration::from_secs(90)
}
fn default_workers() -> usize {
    4
}
fn default_flush_bytes() -> usize {
    5_000_000
}
fn default_flush_interval() -> Duration {
    Duration::from_secs(1)
}
fn default_max_retries() -> u32 {
    10
}
fn default_initial() -> Duration {
    Duration::from_secs(1)
}
fn default_max_interval() -> Duration {
    Duration::from_secs(30)
}
fn default_retry_on() -> Vec<u16> {
    vec![429, 502, 503, 504]
}

/// What `build` checked and prepared for the transport.
struct Prepared {
    urls: Vec<Url>,
    /// The `Authorization` header, marked sensitive so that it is never printed.
    authorization: Option<HeaderValue>,
    headers: HeaderMap,
    ca: Option<Vec<u8>>,
    /// Certificate chain and key, PEM, concatenated (what the transport takes).
    client_pem: Option<Vec<u8>>,
}

pub struct ElasticsearchExporter {
    id: String,
    cfg: Config,
    prepared: Prepared,
    metrics: Metrics,
}

pub fn build(
    ctx: &Context,
    raw: serde_yaml_ng::Value,
) -> Result<Box<dyn Exporter>, Vec<ConfigError>> {
    let cfg: Config = decode(ctx.path, raw).map_err(|e| vec![e])?;
    let mut errors = Vec::new();
    let prepared = prepare(ctx.path, &cfg, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    let id = ctx.id.to_string();
    Ok(Box::new(ElasticsearchExporter {
        metrics: Metrics::new(ctx.telemetry, &id),
        id,
        cfg,
        prepared,
    }))
}

fn prepare(path: &str, cfg: &Config, errors: &mut Vec<ConfigError>) -> Prepared {
    let at = |field: &str| format!("{path}.{field}");
    let mut urls = Vec::new();
    let mut basic_from_url = None;
    let written: Vec<(&str, &String)> = cfg
        .endpoint
        .iter()
        .map(|e| ("endpoint", e))
        .chain(cfg.endpoints.iter().map(|e| ("endpoints", e)))
        .collect();
    if written.is_empty() {
        errors.push(ConfigError::new(
            at("endpoints"),
            "required: at least one Elasticsearch URL",
        ));
    }
    for (field, text) in written {
        match Url::parse(text) {
            Ok(mut url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {
                // Credentials in a URL would be printed with every transport error: take
                // them out and send them as the Authorization header instead.
                if !url.username().is_empty() {
                    let user = percent_decode(url.username());
                    let pass = percent_decode(url.password().unwrap_or(""));
                    basic_from_url = Some((user, pass));
                    let _ = url.set_username("");
                    let _ = url.set_password(None);
                }
                // Joined with `_bulk`: a path prefix must end in a slash to be kept.
                if !url.path().ends_with('/') {
                    let p = format!("{}/", url.path());
                    url.set_path(&p);
                }
                urls.push(url);
            }
            _ => errors.push(ConfigError::new(
                at(field),
                format!("{:?} is not an http:// or https:// URL", redact(text)),
            )),
        }
    }

    let basic = match (&cfg.user, &cfg.password) {
        (Some(u), Some(p)) => Some((u.clone(), p.clone())),
        (Some(_), None) | (None, Some(_)) => {
            errors.push(ConfigError::new(
                at("user"),
                "user and password go together",
            ));
            None
        }
        (None, None) => basic_from_url,
    };
    let schemes = [
        basic.is_some(),
        cfg.api_key.is_some(),
        cfg.bearer_token.is_some(),
    ];
    if schemes.iter().filter(|s| **s).count() > 1 {
        errors.push(ConfigError::new(
            at("api_key"),
            "choose one of user/password, api_key and bearer_token",
        ));
    }
    let authorization = {
        use base64::Engine as _;
        let text = if let Some((u, p)) = &basic {
            Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            ))
        } else if let Some(k) = &cfg.api_key {
            Some(format!("ApiKey {k}"))
        } else {
            cfg.bearer_token.as_ref().map(|t| format!("Bearer {t}"))
        };
        match text.map(HeaderValue::try_from) {
            None => None,
            Some(Ok(mut v)) => {
                v.set_sensitive(true);
                Some(v)
            }
            Some(Err(_)) => {
                // Never echo the secret itself.
                errors.push(ConfigError::new(
                    at("api_key"),
                    "the credentials hold characters an HTTP header cannot carry",
                ));
                None
            }
        }
    };

    let headers = sender::headers(path, &cfg.headers, "not a valid HTTP header", errors);
    if cfg.compression == Compression::Zstd {
        errors.push(ConfigError::new(
            at("compression"),
            "Elasticsearch takes gzip or none",
        ));
    }
    if cfg.tls.insecure || cfg.tls.server_name_override.is_some() || cfg.tls.min_version.is_some() {
        errors.push(ConfigError::new(
            at("tls"),
            "insecure, server_name_override and min_version do not apply here: \
             the endpoint's scheme decides on TLS",
        ));
    }
    // Build the rustls config once only to report unreadable or malformed files with their
    // paths; the transport reads the same files below.
    let _ = cfg.tls.client_config(path, errors);
    let ca = cfg.tls.ca_file.as_ref().and_then(|f| std::fs::read(f).ok());
    let client_pem = match (&cfg.tls.cert_file, &cfg.tls.key_file) {
        (Some(c), Some(k)) => match (std::fs::read(c), std::fs::read(k)) {
            (Ok(mut chain), Ok(key)) => {
                chain.push(b'\n');
                chain.extend_from_slice(&key);
                Some(chain)
            }
            _ => None,
        },
        _ => None,
    };

    if cfg.timeout.is_zero() {
        errors.push(ConfigError::new(at("timeout"), "must be greater than zero"));
    }
    if cfg.num_workers == 0 {
        errors.push(ConfigError::new(
            at("num_workers"),
            "must be greater than zero",
        ));
    }
    if cfg.flush.bytes == 0 || cfg.flush.interval.is_zero() {
        errors.push(ConfigError::new(
            at("flush"),
            "bytes and interval must be greater than zero",
        ));
    }
    if cfg.sending_queue.queue_size == 0 {
        errors.push(ConfigError::new(
            at("sending_queue.queue_size"),
            "must be greater than zero",
        ));
    }
    let r = &cfg.retry;
    if r.initial_interval.is_zero() || r.max_interval < r.initial_interval {
        errors.push(ConfigError::new(
            at("retry"),
            "need 0 < initial_interval <= max_interval",
        ));
    }
    if let Some(bad) = r.retry_on_status.iter().find(|s| !(100..=599).contains(*s)) {
        errors.push(ConfigError::new(
            at("retry.retry_on_status"),
            format!("{bad} is not an HTTP status"),
        ));
    }
    for (field, value) in [("logs_index", &cfg.logs_index), ("pipeline", &cfg.pipeline)] {
        if value.as_deref().is_some_and(str::is_empty) {
            errors.push(ConfigError::new(at(field), "must not be empty"));
        }
    }
    if let Some(d) = &cfg.dead_letter {
        match (&d.index, &d.file) {
            (Some(i), None) if !i.is_empty() => {}
            (None, Some(_)) => {}
            _ => errors.push(ConfigError::new(
                at("dead_letter"),
                "set exactly one of index and file",
            )),
        }
    }
    Prepared {
        urls,
        authorization,
        headers,
        ca,
        client_pem,
    }
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// A URL as it may be printed: any password replaced.
fn redact(text: &str) -> String {
    match (text.find("://"), text.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &text[..scheme], &text[at + 1..])
        }
        _ => text.to_string(),
    }
}

impl Exporter for ElasticsearchExporter {
    fn queue_capacity(&self) -> usize {
        self.cfg.sending_queue.queue_size
    }

    fn run(self: Box<Self>, queue: queue::Receiver) -> BoxFuture<()> {
        Box::pin(self.serve(queue))
    }
}

/// The exporter's counters. Failures are also counted per error type, in series created as
/// types are first seen.
struct Metrics {
    exporter: ExporterMetrics,
    bulk_requests: Counter,
    bulk_failures: Counter,
    latency: Histogram,
    retried: Counter,
    dead_lettered: Counter,
    given_up: Counter,
    /// By `failure` (retryable, permanent) and `error_type`.
    failed: CounterFamily,
}

impl Metrics {
    fn new(registry: &Registry, id: &str) -> Self {
        let labels = [("exporter", id)];
        Metrics {
            exporter: ExporterMetrics::new(registry, id),
            bulk_requests: registry.counter(
                "sluice_elasticsearch_bulk_requests_total",
                "Bulk requests sent, retries included.",
                &labels,
            ),
            bulk_failures: registry.counter(
                "sluice_elasticsearch_bulk_request_failures_total",
                "Bulk requests that failed whole (transport error, timeout, non-200 answer).",
                &labels,
            ),
            latency: registry.histogram(
                "sluice_elasticsearch_bulk_latency_seconds",
                "Time from sending a bulk request to reading its answer.",
                &labels,
                LATENCY_BUCKETS,
            ),
            retried: registry.counter(
                "sluice_elasticsearch_documents_retried_total",
                "Documents sent again after a retryable failure.",
                &labels,
            ),
            dead_lettered: registry.counter(
                "sluice_elasticsearch_documents_dead_lettered_total",
                "Documents written to the dead-letter destination instead of their index.",
                &labels,
            ),
            given_up: registry.counter(
                "sluice_elasticsearch_documents_given_up_total",
                "Documents neither indexed nor dead-lettered; their batches were failed back \
                 to the senders.",
                &labels,
            ),
            failed: registry.counter_family(
                "sluice_elasticsearch_documents_failed_total",
                "Documents in failed attempts, by whether the failure is retryable and its \
                 type (an Elasticsearch error type, an HTTP status, timeout, transport_error).",
                &labels,
                &["failure", "error_type"],
            ),
        }
    }

    /// Counts `n` documents failed with `kind`. Cold path: taken only on failures.
    fn failed(&self, retryable: bool, kind: &str, n: u64) {
        let failure = if retryable { "retryable" } else { "permanent" };
        self.failed.with(&[failure, kind]).add(n);
    }
}

/// Logs a warning per error type at most once every ten seconds, with how many were
/// suppressed, so a flood of rejected documents cannot flood the log.
#[derive(Default)]
struct Throttle(Mutex<HashMap<String, (Instant, u64)>>);

impl Throttle {
    const EVERY: Duration = Duration::from_secs(10);

    /// Whether to log this one now, and how many of its kind went unlogged before it.
    fn admit(&self, kind: &str) -> Option<u64> {
        let mut map = self.0.lock().expect("not poisoned");
        let now = Instant::now();
        match map.get_mut(kind) {
            Some((last, skipped)) if now.duration_since(*last) < Self::EVERY => {
                *skipped += 1;
                None
            }
            Some((last, skipped)) => {
                *last = now;
                Some(std::mem::take(skipped))
            }
            None => {
                map.insert(kind.to_string(), (now, 0));
                Some(0)
            }
        }
    }
}

/// What every sending task shares.
struct Shared {
    id: String,
    client: Elasticsearch,
    compression: Compression,
    timeout: Duration,
    retry: RetryConfig,
    dead_letter: Option<DeadLetter>,
    metrics: Metrics,
    throttle: Throttle,
}

enum DeadLetter {
    Index(String),
    File(PathBuf),
}

/// One bulk request's worth of envelopes, encoded.
#[derive(Default)]
struct Request {
    body: Vec<u8>,
    /// Where each item ends in `body`.
    ends: Vec<usize>,
    envelopes: Vec<Envelope>,
    /// Items per envelope, in order.
    per_envelope: Vec<usize>,
}

impl ElasticsearchExporter {
    async fn serve(self: Box<Self>, mut queue: queue::Receiver) {
        let ElasticsearchExporter {
            id,
            cfg,
            prepared,
            metrics,
        } = *self;
        let client = match transport(&cfg, prepared) {
            Ok(c) => c,
            Err(e) => {
                // Everything was checked at build time; failing here leaves the queue to
                // fill, so receivers push back rather than lose data.
                tracing::error!(exporter = %id, error = %e, "cannot build the Elasticsearch client");
                while let Some(e) = queue.recv().await {
                    drop(e);
                }
                return;
            }
        };
        let random = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        let mut encoder = BulkEncoder::new(
            cfg.mapping.mode,
            cfg.logs_index.clone(),
            cfg.pipeline.clone(),
        );
        if cfg.assign_ids {
            encoder = encoder.with_ids(random);
        }
        let dead_letter = cfg.dead_letter.as_ref().map(|d| match (&d.index, &d.file) {
            (Some(i), _) => DeadLetter::Index(i.clone()),
            (None, Some(f)) => DeadLetter::File(f.clone()),
            (None, None) => unreachable!("checked at build"),
        });
        let shared = Arc::new(Shared {
            id: id.clone(),
            client,
            compression: cfg.compression,
            timeout: cfg.timeout,
            retry: cfg.retry,
            dead_letter,
            metrics,
            throttle: Throttle::default(),
        });
        let workers = Arc::new(Semaphore::new(cfg.num_workers));
        let mut tasks = JoinSet::new();
        let mut closed = false;
        while !closed {
            let Some(first) = queue.recv().await else {
                break;
            };
            let mut req = Request::with_capacity(cfg.flush.bytes);
            req.add(first, &mut encoder);
            let deadline = tokio::time::Instant::now() + cfg.flush.interval;
            let mut permit = None;
            loop {
                while req.body.len() < cfg.flush.bytes {
                    match queue.try_recv() {
                        Some(e) => req.add(e, &mut encoder),
                        None => break,
                    }
                }
                if req.body.len() >= cfg.flush.bytes || tokio::time::Instant::now() >= deadline {
                    break;
                }
                if cfg.flush.eager
                    && let Ok(p) = Arc::clone(&workers).try_acquire_owned()
                {
                    permit = Some(p);
                    break;
                }
                tokio::select! {
                    next = queue.recv() => match next {
                        Some(e) => req.add(e, &mut encoder),
                        None => { closed = true; break; }
                    },
                    p = Arc::clone(&workers).acquire_owned(), if cfg.flush.eager => {
                        permit = p.ok();
                        break;
                    }
                    _ = tokio::time::sleep_until(deadline) => break,
                }
            }
            if req.ends.is_empty() {
                req.envelopes.into_iter().for_each(Envelope::delivered);
                continue;
            }
            let permit = match permit {
                Some(p) => p,
                None => Arc::clone(&workers)
                    .acquire_owned()
                    .await
                    .expect("the semaphore is never closed"),
            };
            let shared = Arc::clone(&shared);
            tasks.spawn(async move {
                shared.deliver(req).await;
                drop(permit);
            });
            while tasks.try_join_next().is_some() {}
        }
        while tasks.join_next().await.is_some() {}
        tracing::debug!(exporter = %id, "exporter drained");
    }
}

impl Request {
    /// Room for a full request and the encoded batch that crosses the limit, so the body is
    /// not copied as it grows.
    fn with_capacity(flush_bytes: usize) -> Self {
        Request {
            body: Vec::with_capacity(flush_bytes + flush_bytes / 4),
            ..Request::default()
        }
    }

    fn add(&mut self, envelope: Envelope, encoder: &mut BulkEncoder) {
        let before = self.ends.len();
        let decoded;
        let logs: &LogBatch = match &envelope.batch {
            Batch::Logs(logs) => logs,
            // Not sent to this exporter (it does not take encoded logs), but harmless.
            Batch::Raw(raw) if raw.signal == Signal::Logs => {
                let mut buf = Vec::new();
                raw.encode(&mut buf);
                decoded = crate::otlp::logs::decode(&Bytes::from(buf)).unwrap_or_default();
                &decoded
            }
            Batch::Raw(_) => &LogBatch::default(),
        };
        let base = self.body.len();
        let ends = encoder.encode_batch(logs, &mut self.body);
        debug_assert!(ends.first().is_none_or(|e| *e > base));
        self.ends.extend(ends);
        self.per_envelope.push(self.ends.len() - before);
        self.envelopes.push(envelope);
    }
}

fn transport(cfg: &Config, p: Prepared) -> Result<Elasticsearch, String> {
    let pool = MultiNodeConnectionPool::round_robin(p.urls, None);
    let mut builder = TransportBuilder::new(pool).timeout(cfg.timeout);
    let mut headers = p.headers;
    if let Some(auth) = p.authorization {
        headers.insert(AUTHORIZATION, auth);
    }
    builder = builder.headers(headers);
    if cfg.tls.insecure_skip_verify {
        builder = builder.cert_validation(CertificateValidation::None);
    } else if let Some(ca) = &p.ca {
        let cert = Certificate::from_pem(ca).map_err(|e| format!("tls.ca_file: {e}"))?;
        builder = builder.cert_validation(CertificateValidation::Full(cert));
    }
    if let Some(pem) = p.client_pem {
        builder = builder.auth(Credentials::Certificate(ClientCertificate::Pem(pem)));
    }
    let transport = builder.build().map_err(|e| e.to_string())?;
    Ok(Elasticsearch::new(transport))
}

/// How one bulk attempt ended, for all of its items or each one.
enum Answer {
    Items(Vec<Item>),
    /// The whole request failed in a way worth retrying.
    RetryAll {
        kind: String,
        why: String,
    },
    /// The whole request was refused for good.
    RefuseAll {
        kind: String,
        why: String,
    },
    /// 413: the request must be split.
    TooLarge,
}

/// The items of one request still to be settled: their bytes and, per item, its position in
/// the original request.
struct Pending {
    /// Shared with the requests that carry it: a whole body or a 413 chunk is sent without
    /// a copy.
    body: Bytes,
    ends: Vec<usize>,
    origin: Vec<usize>,
}

/// A document that will not be indexed: its bytes (action and source lines) and why.
struct Failure {
    item: usize,
    status: u16,
    kind: String,
    reason: String,
}

impl Shared {
    /// Settles every item of `req`, then acknowledges each envelope whose items were all
    /// indexed or dead-lettered, and fails the rest.
    async fn deliver(&self, req: Request) {
        let total = req.ends.len();
        let mut pending = Pending {
            body: Bytes::from(req.body),
            ends: req.ends,
            origin: (0..total).collect(),
        };
        // Kept for the dead letter: the original bytes of failed items.
        let mut failures: Vec<Failure> = Vec::new();
        let mut failure_bytes: Vec<(usize, Vec<u8>)> = Vec::new();
        let mut attempt: u32 = 0;
        // Items per request after 413s; `usize::MAX` = the whole pending set.
        let mut chunk = usize::MAX;
        let mut indexed = 0u64;
        while !pending.ends.is_empty() {
            let mut next_body = Vec::new();
            let mut next = Pending {
                body: Bytes::new(),
                ends: Vec::new(),
                origin: Vec::new(),
            };
            let mut retry_needed = false;
            let mut start_item = 0;
            let n = pending.ends.len();
            while start_item < n {
                let end_item = (start_item.saturating_add(chunk)).min(n);
                let from = if start_item == 0 {
                    0
                } else {
                    pending.ends[start_item - 1]
                };
                let to = pending.ends[end_item - 1];
                let slice = pending.body.slice(from..to);
                let ends: Vec<usize> = pending.ends[start_item..end_item]
                    .iter()
                    .map(|e| e - from)
                    .collect();
                let answer = self.attempt(slice.clone(), ends.len()).await;
                let items = match answer {
                    Answer::Items(items) => items,
                    Answer::RetryAll { kind, why } => {
                        self.warn(&kind, &why, ends.len());
                        vec![
                            Item::Retry {
                                status: 0,
                                kind: kind.clone()
                            };
                            ends.len()
                        ]
                    }
                    Answer::RefuseAll { kind, why } => {
                        self.warn(&kind, &why, ends.len());
                        vec![
                            Item::Permanent {
                                status: 0,
                                kind,
                                reason: why,
                            };
                            ends.len()
                        ]
                    }
                    Answer::TooLarge if ends.len() > 1 => {
                        // Not a retry: send the same items again in smaller requests.
                        chunk = (ends.len() / 2).max(1);
                        continue;
                    }
                    Answer::TooLarge => vec![Item::Permanent {
                        status: 413,
                        kind: "request_entity_too_large".into(),
                        reason: "one document is larger than http.max_content_length".into(),
                    }],
                };
                let mut item_start = 0;
                for (i, (item, &end)) in items.iter().zip(&ends).enumerate() {
                    let origin = pending.origin[start_item + i];
                    let bytes = &slice[item_start..end];
                    item_start = end;
                    match item {
                        Item::Done => indexed += 1,
                        Item::Retry { status, kind } => {
                            retry_needed = true;
                            self.metrics.exporter.send_failed.of(Signal::Logs).add(1);
                            let label = if kind.is_empty() {
                                status.to_string()
                            } else {
                                kind.clone()
                            };
                            self.metrics.failed(true, &label, 1);
                            next_body.extend_from_slice(bytes);
                            next.ends.push(next_body.len());
                            next.origin.push(origin);
                        }
                        Item::Permanent {
                            status,
                            kind,
                            reason,
                        } => {
                            self.metrics.exporter.send_failed.of(Signal::Logs).add(1);
                            self.metrics.failed(false, kind, 1);
                            if *status != 0 {
                                self.warn_item(*status, kind, reason, bytes);
                            }
                            failures.push(Failure {
                                item: origin,
                                status: *status,
                                kind: kind.clone(),
                                reason: reason.clone(),
                            });
                            failure_bytes.push((origin, bytes.to_vec()));
                        }
                    }
                }
                start_item = end_item;
            }
            next.body = Bytes::from(next_body);
            pending = next;
            if pending.ends.is_empty() {
                break;
            }
            let exhausted = !self.retry.enabled || attempt >= self.retry.max_retries;
            if exhausted {
                let n = pending.ends.len();
                tracing::warn!(
                    exporter = %self.id,
                    documents = n,
                    attempts = attempt + 1,
                    "documents still failing after the last retry"
                );
                let mut start = 0;
                for (i, &end) in pending.ends.iter().enumerate() {
                    failures.push(Failure {
                        item: pending.origin[i],
                        status: 0,
                        kind: "retries_exhausted".into(),
                        reason: format!("still failing after {} attempts", attempt + 1),
                    });
                    failure_bytes.push((pending.origin[i], pending.body[start..end].to_vec()));
                    start = end;
                }
                break;
            }
            if retry_needed {
                let wait = retry::backoff(
                    self.retry.initial_interval,
                    self.retry.max_interval,
                    attempt,
                    random(),
                );
                self.metrics.retried.add(pending.ends.len() as u64);
                attempt += 1;
                tokio::time::sleep(wait).await;
            }
        }
        self.metrics.exporter.sent.of(Signal::Logs).add(indexed);

        // Items that will not be indexed: dead-letter them, or fail their batches.
        let mut unsettled = vec![false; total];
        if !failures.is_empty() {
            let stored = match &self.dead_letter {
                Some(dl) => self.dead_letter(dl, &failures, &failure_bytes).await,
                None => false,
            };
            if stored {
                self.metrics.dead_lettered.add(failures.len() as u64);
            } else {
                self.metrics.given_up.add(failures.len() as u64);
                for f in &failures {
                    unsettled[f.item] = true;
                }
            }
        }
        let mut first = 0;
        for (envelope, count) in req.envelopes.into_iter().zip(req.per_envelope) {
            let all_settled = !unsettled[first..first + count].iter().any(|u| *u);
            first += count;
            if all_settled {
                envelope.delivered();
            } else {
                // Dropping fails the acknowledgement: the sender is told to retry.
                drop(envelope);
            }
        }
    }

    /// One `_bulk` request of `items` items.
    async fn attempt(&self, body: Bytes, items: usize) -> Answer {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-ndjson"),
        );
        let payload = match self.compression {
            Compression::Gzip => {
                headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                self.compression.compress(&body)
            }
            _ => body,
        };
        self.metrics.bulk_requests.add(1);
        let started = Instant::now();
        let sent = self
            .client
            .send(
                Method::Post,
                "_bulk",
                headers,
                None::<&()>,
                Some(payload),
                Some(self.timeout),
            )
            .await;
        let answer = match sent {
            Err(e) => Answer::RetryAll {
                kind: if e.is_timeout() {
                    "timeout".into()
                } else {
                    "transport_error".into()
                },
                why: sender::with_causes(&e),
            },
            Ok(resp) => {
                let status = resp.status_code().as_u16();
                match resp.bytes().await {
                    Err(e) => Answer::RetryAll {
                        kind: "transport_error".into(),
                        why: format!("reading the answer: {}", sender::with_causes(&e)),
                    },
                    Ok(text) => self.read(status, &text, items),
                }
            }
        };
        self.metrics.latency.observe(started.elapsed());
        if !matches!(answer, Answer::Items(_)) {
            self.metrics.bulk_failures.add(1);
        }
        answer
    }

    fn read(&self, status: u16, text: &[u8], items: usize) -> Answer {
        let explain = || {
            let t = String::from_utf8_lossy(&text[..text.len().min(300)]).into_owned();
            format!("HTTP {status}: {t}")
        };
        match status {
            200 => match response::items(text, items, &self.retry.retry_on_status) {
                Ok(items) => Answer::Items(items),
                // Which items were indexed is unknown: send them all again; their ids make
                // the ones that were answered 409, counted done.
                Err(e) => Answer::RetryAll {
                    kind: "unreadable_answer".into(),
                    why: e.to_string(),
                },
            },
            413 => Answer::TooLarge,
            s if self.retry.retry_on_status.contains(&s) => Answer::RetryAll {
                kind: s.to_string(),
                why: explain(),
            },
            s => Answer::RefuseAll {
                kind: s.to_string(),
                why: explain(),
            },
        }
    }

    fn warn(&self, kind: &str, why: &str, documents: usize) {
        if let Some(skipped) = self.throttle.admit(kind) {
            tracing::warn!(
                exporter = %self.id, error_type = kind, error = why, documents,
                similar_unlogged = skipped, "bulk request failed"
            );
        }
    }

    fn warn_item(&self, status: u16, kind: &str, reason: &str, item: &[u8]) {
        if let Some(skipped) = self.throttle.admit(kind) {
            tracing::warn!(
                exporter = %self.id, status, error_type = kind, reason,
                index = %index_of(item), similar_unlogged = skipped,
                "a document was refused for good"
            );
        }
    }

    /// Stores `failures` at the dead-letter destination; `false` if some could not be.
    async fn dead_letter(
        &self,
        dl: &DeadLetter,
        failures: &[Failure],
        bytes: &[(usize, Vec<u8>)],
    ) -> bool {
        let now = crate::codec::rfc3339(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0),
        );
        let mut body = Vec::new();
        let mut ends = Vec::new();
        for (f, (_, item)) in failures.iter().zip(bytes) {
            let (action, source) = split_item(item);
            let entry = serde_json::json!({
                "@timestamp": String::from_utf8_lossy(&now),
                "error": {"type": f.kind, "reason": f.reason, "status": f.status},
                "index": index_of(action),
                "event": {"original": String::from_utf8_lossy(source)},
            });
            if let DeadLetter::Index(index) = dl {
                let action = serde_json::json!({"create": {"_index": index}});
                let _ = serde_json::to_writer(&mut body, &action);
                body.push(b'\n');
            }
            let _ = serde_json::to_writer(&mut body, &entry);
            body.push(b'\n');
            ends.push(body.len());
        }
        match dl {
            DeadLetter::File(path) => {
                let result = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .and_then(|mut f| f.write_all(&body).and_then(|()| f.sync_data()));
                match result {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::error!(exporter = %self.id, file = %path.display(), error = %e,
                            "cannot write the dead-letter file");
                        false
                    }
                }
            }
            DeadLetter::Index(index) => {
                // Whole-request retries only: the dead letter has no dead letter of its own.
                let body = Bytes::from(body);
                for attempt in 0..=self.retry.max_retries {
                    match self.attempt(body.clone(), ends.len()).await {
                        Answer::Items(items) if items.iter().all(|i| *i == Item::Done) => {
                            return true;
                        }
                        Answer::Items(items) => {
                            let bad = items.iter().find(|i| **i != Item::Done);
                            tracing::error!(exporter = %self.id, index, item = ?bad,
                                "the dead-letter index refused documents");
                            // Resending all is safe enough: the rest are answered again.
                            if items.iter().any(|i| matches!(i, Item::Permanent { .. })) {
                                return false;
                            }
                        }
                        Answer::RefuseAll { why, .. } => {
                            tracing::error!(exporter = %self.id, index, error = %why,
                                "the dead-letter index refused the request");
                            return false;
                        }
                        Answer::RetryAll { .. } | Answer::TooLarge => {}
                    }
                    if !self.retry.enabled {
                        break;
                    }
                    tokio::time::sleep(retry::backoff(
                        self.retry.initial_interval,
                        self.retry.max_interval,
                        attempt,
                        random(),
                    ))
                    .await;
                }
                false
            }
        }
    }
}

/// An item's action line and source line.
fn split_item(item: &[u8]) -> (&[u8], &[u8]) {
    let cut = memchr::memchr(b'\n', item).unwrap_or(item.len());
    let source = item.get(cut + 1..).unwrap_or_default();
    let source = source.strip_suffix(b"\n").unwrap_or(source);
    (&item[..cut], source)
}

/// The `_index` an item's action line names.
fn index_of(item: &[u8]) -> String {
    let (action, _) = split_item(item);
    serde_json::from_slice::<serde_json::Value>(action)
        .ok()
        .and_then(|v| {
            v.as_object()?
                .values()
                .next()?
                .get("_index")?
                .as_str()
                .map(str::to_string)
        })
        .unwrap_or_default()
}

fn random() -> u64 {
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(yaml: &str) -> Vec<String> {
        crate::registry::build_errors(build, "exporters", "elasticsearch", yaml)
    }

    #[test]
    fn the_documented_settings_build() {
        assert!(errors("{endpoints: ['http://es:9200']}").is_empty());
        assert!(
            errors(
                "{endpoint: 'https://es:9200/prefix', user: u, password: p, \
                 mapping: {mode: ecs}, flush: {bytes: 1MiB, interval: 5s}, num_workers: 2, \
                 retry: {max_retries: 3, retry_on_status: [429]}, \
                 dead_letter: {index: dlq}, logs_index: app, pipeline: p}"
            )
            .is_empty()
        );
    }

    #[test]
    fn bad_settings_are_reported_with_their_paths() {
        assert_eq!(
            errors("{}"),
            ["exporters.elasticsearch.endpoints: required: at least one Elasticsearch URL"]
        );
        assert_eq!(
            errors("{endpoints: ['es:9200']}"),
            ["exporters.elasticsearch.endpoints: \"es:9200\" is not an http:// or https:// URL"]
        );
        assert_eq!(
            errors("{endpoint: 'http://es:9200', user: u}"),
            ["exporters.elasticsearch.user: user and password go together"]
        );
        assert_eq!(
            errors("{endpoint: 'http://es:9200', user: u, password: p, api_key: k}"),
            [
                "exporters.elasticsearch.api_key: choose one of user/password, api_key and bearer_token"
            ]
        );
        assert_eq!(
            errors("{endpoint: 'http://es:9200', compression: zstd}"),
            ["exporters.elasticsearch.compression: Elasticsearch takes gzip or none"]
        );
        assert_eq!(
            errors("{endpoint: 'http://es:9200', dead_letter: {}}"),
            ["exporters.elasticsearch.dead_letter: set exactly one of index and file"]
        );
        assert_eq!(
            errors("{endpoint: 'http://es:9200', mapping: {mode: flat}}").len(),
            1
        );
        assert_eq!(
            errors("{endpoint: 'http://es:9200', retry: {retry_on_status: [4290]}}"),
            ["exporters.elasticsearch.retry.retry_on_status: 4290 is not an HTTP status"]
        );
    }

    #[test]
    fn secrets_never_appear_in_config_errors() {
        let got = errors("{endpoint: 'ftp://elastic:s3cret@es:9200'}").join("\n");
        assert!(!got.contains("s3cret"), "{got}");
        assert!(got.contains("ftp://***@es:9200"), "{got}");
        let got = errors("{endpoint: 'http://es:9200', api_key: \"s3cret\\n\"}").join("\n");
        assert!(!got.contains("s3cret"), "{got}");
    }

    #[test]
    fn credentials_in_the_url_become_a_sensitive_header() {
        let cfg: Config =
            serde_yaml_ng::from_str("{endpoint: 'http://elastic:p%40ss@es:9200'}").unwrap();
        let mut errors = Vec::new();
        let p = prepare("x", &cfg, &mut errors);
        assert!(errors.is_empty());
        assert_eq!(p.urls[0].as_str(), "http://es:9200/");
        let auth = p.authorization.unwrap();
        assert!(auth.is_sensitive());
        // base64("elastic:p@ss")
        assert_eq!(auth.to_str().unwrap(), "Basic ZWxhc3RpYzpwQHNz");
        assert!(!format!("{auth:?}").contains("ZWxhc3RpYzpwQHNz"));
    }

    #[test]
    fn items_split_into_action_and_source() {
        let item = b"{\"create\":{\"_index\":\"logs-a-default\",\"_id\":\"x\"}}\n{\"m\":1}\n";
        let (a, s) = split_item(item);
        assert_eq!(s, b"{\"m\":1}");
        assert_eq!(index_of(a), "logs-a-default");
        assert_eq!(index_of(item), "logs-a-default");
    }

    #[test]
    fn the_throttle_logs_a_kind_once_per_period_and_counts_the_rest() {
        let t = Throttle::default();
        assert_eq!(t.admit("mapper_parsing_exception"), Some(0));
        assert_eq!(t.admit("mapper_parsing_exception"), None);
        assert_eq!(t.admit("mapper_parsing_exception"), None);
        assert_eq!(t.admit("es_rejected_execution_exception"), Some(0));
    }
}
