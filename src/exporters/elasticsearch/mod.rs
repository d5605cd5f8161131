//! `elasticsearch`: logs, traces and metrics to Elasticsearch through the `_bulk` API, into data
//! streams or static indices, configured like the OTel Collector's exporter. Traces and metrics
//! take `mapping.mode: otel` only (`spans`, `metrics`); logs take every mode (`mapping`).
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
//!     # traces_index: my-spans     # else traces-<dataset>-<namespace>
//!     # metrics_index: my-metrics  # else metrics-<dataset>-<namespace>
//!     # pipeline: my-ingest-pipeline
//!     logs_dynamic_id: { enabled: false }        # a record's elasticsearch.document_id
//!                                                # attribute as its _id
//!     logs_dynamic_pipeline: { enabled: false }  # its elasticsearch.ingest_pipeline
//!                                                # attribute as its pipeline
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
//! Every log, span and span event document gets an `_id` from the exporter, so that retries
//! cannot store it twice (metric documents get theirs from the time series data stream);
//! `elasticsearch::bulk` retries failed requests and items and dead-letters what will not be
//! indexed. A batch is acknowledged only when each of its documents is indexed or
//! dead-lettered.
//!
//! The transport is reqwest (rustls) with the exporter's settings (`transport`), so that an
//! answer is read only up to what its request can legitimately get; the `elasticsearch`
//! crate's transport reads every answer whole. Bodies go out pre-encoded and, with
//! `compression: gzip`, pre-compressed at a fast level.
//!
//! The parts: `routing` picks each record's index (a data stream or a static index); `mapping`
//! writes decoded logs as `_bulk` NDJSON in the `otel`, `ecs` or `raw` document shapes;
//! `log_docs` writes the same `otel` documents from logs still encoded (an OTLP receiver keeps
//! them so when no processor in the pipeline reads them), and `spans` and `metrics` write
//! traces and metrics from their OTLP bytes (`wire_json`, `origin`); `bulk` sends it and
//! settles every item, reading answers with `response`, retrying as `retry` says and storing
//! what will not be indexed with `dead_letter`.

pub mod bulk;
pub mod dead_letter;
pub mod ecs;
pub mod geo;
pub mod log_docs;
pub mod mapping;
pub mod metrics;
pub mod origin;
pub mod response;
pub mod retry;
pub mod routing;
pub mod spans;
pub mod transport;
pub mod wire_json;

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::Duration;

use hyper::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde::Deserialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use url::Url;

use crate::component::{ALL_SIGNALS, Built, Context, Spec, Yaml};
use crate::config::{ConfigError, byte_size, decode, duration};
use crate::exporters::QueueConfig;
use crate::exporters::client::{self, Compression};
use crate::exporters::elasticsearch::bulk::{Metrics, Request, Scratch, Sender};
use crate::exporters::elasticsearch::dead_letter::{DeadLetter, DeadLetterConfig};
use crate::exporters::elasticsearch::mapping::{BulkEncoder, Dynamic, Mode, StaticIndices};
use crate::exporters::elasticsearch::retry::RetryConfig;
use crate::exporters::tls::Tls;
use crate::model::Signal;
use crate::pipeline::queue::{self, Take};
use crate::pipeline::{BoxFuture, Exporter};
use crate::shutdown::Shutdown;

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
    /// Every log record (and span event) goes to this index instead of a data stream.
    #[serde(default)]
    pub logs_index: Option<String>,
    /// Every span goes to this index instead of a data stream.
    #[serde(default)]
    pub traces_index: Option<String>,
    /// Every metric document goes to this index instead of a data stream. It must still be a
    /// time series data stream (or an index in `time_series` mode) for the grouping to mean
    /// anything; a plain index takes the documents too.
    #[serde(default)]
    pub metrics_index: Option<String>,
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
    /// `enabled: true`: a log record's non-empty `elasticsearch.document_id` attribute is its
    /// document's `_id` (ahead of an exporter-assigned one). A retry carries the same id, so a
    /// document is stored once; a 409 for it counts as stored. Default off, as in the
    /// Collector.
    #[serde(default)]
    pub logs_dynamic_id: Toggle,
    /// `enabled: true`: a log record's non-empty `elasticsearch.ingest_pipeline` attribute
    /// names its ingest pipeline, ahead of `pipeline`. Default off.
    #[serde(default)]
    pub logs_dynamic_pipeline: Toggle,
    #[serde(default)]
    pub sending_queue: QueueConfig,
}

/// An option switched on by `enabled: true` (the Collector's shape for it).
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Toggle {
    /// Default `false`.
    #[serde(default)]
    pub enabled: bool,
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
/// What `build` checked and prepared for the transport.
struct Prepared {
    dead_letter: Option<DeadLetter>,
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

/// The `elasticsearch` exporter type, as the registry lists it.
pub const SPEC: Spec<Box<dyn Exporter>> = Spec::new(
    "elasticsearch",
    ALL_SIGNALS,
    build,
    "{endpoint: 'http://localhost:9200'}",
);

pub fn build(ctx: &Context, raw: Yaml) -> Built<Box<dyn Exporter>> {
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

    let headers = client::headers(path, &cfg.headers, "not a valid HTTP header", errors);
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
    cfg.sending_queue.check(path, errors);
    cfg.retry.check(path, errors);
    for (field, value) in [
        ("logs_index", &cfg.logs_index),
        ("traces_index", &cfg.traces_index),
        ("metrics_index", &cfg.metrics_index),
        ("pipeline", &cfg.pipeline),
    ] {
        if value.as_deref().is_some_and(str::is_empty) {
            errors.push(ConfigError::new(at(field), "must not be empty"));
        }
    }
    let dead_letter = cfg
        .dead_letter
        .as_ref()
        .and_then(|d| d.target(path, errors));
    Prepared {
        dead_letter,
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
    fn sending_queue(&self) -> QueueConfig {
        self.cfg.sending_queue
    }

    /// In `otel` mode documents are written straight from the OTLP bytes (`log_docs`), so an
    /// OTLP receiver need not decode what no processor reads. The other modes map decoded
    /// records.
    fn takes_encoded_logs(&self) -> bool {
        self.cfg.mapping.mode == Mode::Otel
    }

    fn run(self: Box<Self>, queue: queue::Receiver, deadline: Shutdown) -> BoxFuture<()> {
        Box::pin(self.serve(queue, deadline))
    }

    fn refuses(&self, signal: Signal) -> Option<String> {
        match (self.cfg.mapping.mode, signal) {
            (_, Signal::Logs) | (Mode::Otel, _) => None,
            (mode, signal) => Some(format!(
                "mapping.mode {} takes logs only; {} need mapping.mode otel",
                mode.name(),
                signal.name()
            )),
        }
    }
}

impl ElasticsearchExporter {
    async fn serve(self: Box<Self>, mut queue: queue::Receiver, deadline: Shutdown) {
        let ElasticsearchExporter {
            id,
            cfg,
            prepared,
            metrics,
        } = *self;
        let dead_letter = prepared.dead_letter.clone();
        let client = match transport(&cfg, prepared) {
            Ok(c) => c,
            Err(e) => {
                // Everything was checked at build time, so this is not expected; every batch
                // is failed back to its sender rather than held.
                tracing::error!(exporter = %id, error = %e, "cannot build the Elasticsearch client");
                while let Some(e) = queue.recv().await {
                    drop(e);
                }
                return;
            }
        };
        let indices = StaticIndices {
            logs: cfg.logs_index.clone(),
            traces: cfg.traces_index.clone(),
            metrics: cfg.metrics_index.clone(),
        };
        let mut encoder =
            BulkEncoder::with_indices(cfg.mapping.mode, indices, cfg.pipeline.clone())
                .with_dynamic(Dynamic {
                    id: cfg.logs_dynamic_id.enabled,
                    pipeline: cfg.logs_dynamic_pipeline.enabled,
                });
        let mut scratch = Scratch::default();
        if cfg.assign_ids {
            let random = std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish();
            encoder = encoder.with_ids(random);
        }
        let mut sender = Sender::new(
            id.clone(),
            client,
            cfg.compression,
            cfg.timeout,
            cfg.retry.clone(),
            dead_letter,
            metrics,
            deadline.clone(),
        );
        sender.require_data_stream = cfg.mapping.mode == Mode::Otel;
        let sender = Arc::new(sender);
        let workers = Arc::new(Semaphore::new(cfg.num_workers));
        let mut tasks = JoinSet::new();
        let mut closed = false;
        while !closed {
            let Some(first) = queue.recv().await else {
                break;
            };
            if deadline.is_fired() {
                // Dropping the queue and the sending tasks fails everything still held.
                tracing::warn!(exporter = %id, "shutdown deadline: dropping what is left");
                return;
            }
            let mut req = Request::with_capacity(cfg.flush.bytes);
            req.add(first, &mut encoder, &mut scratch);
            let deadline = tokio::time::Instant::now() + cfg.flush.interval;
            let mut permit = None;
            loop {
                if req.len() < cfg.flush.bytes {
                    queue.take_ready(|e| {
                        req.add(e, &mut encoder, &mut scratch);
                        if req.len() < cfg.flush.bytes {
                            Take::More
                        } else {
                            Take::Full
                        }
                    });
                }
                if req.len() >= cfg.flush.bytes || tokio::time::Instant::now() >= deadline {
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
                        Some(e) => req.add(e, &mut encoder, &mut scratch),
                        None => { closed = true; break; }
                    },
                    p = Arc::clone(&workers).acquire_owned(), if cfg.flush.eager => {
                        permit = p.ok();
                        break;
                    }
                    _ = tokio::time::sleep_until(deadline) => break,
                }
            }
            if req.is_empty() {
                // Batches without records: nothing to send, acknowledged at once.
                sender.deliver(req).await;
                continue;
            }
            let permit = match permit {
                Some(p) => p,
                None => Arc::clone(&workers)
                    .acquire_owned()
                    .await
                    .expect("the semaphore is never closed"),
            };
            let sender = Arc::clone(&sender);
            tasks.spawn(async move {
                sender.deliver(req).await;
                drop(permit);
            });
            while tasks.try_join_next().is_some() {}
        }
        while tasks.join_next().await.is_some() {}
        tracing::debug!(exporter = %id, "exporter drained");
    }
}

fn transport(cfg: &Config, p: Prepared) -> Result<transport::Transport, String> {
    let mut headers = p.headers;
    if let Some(auth) = p.authorization {
        headers.insert(AUTHORIZATION, auth);
    }
    transport::Transport::new(transport::Settings {
        urls: p.urls,
        headers,
        timeout: cfg.timeout,
        insecure_skip_verify: cfg.tls.insecure_skip_verify,
        ca: p.ca,
        client_pem: p.client_pem,
    })
}

#[cfg(test)]
mod tests;
