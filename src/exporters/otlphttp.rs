//! `otlphttp`: OTLP/HTTP logs to another collector (agent to gateway), configured like the OTel
//! Collector's exporter.
//!
//! ```yaml
//! exporters:
//!   otlphttp:
//!     endpoint: http://gateway:4318     # logs go to <endpoint>/v1/logs
//!     # logs_endpoint: http://gateway:4318/v1/logs   (overrides the above)
//!     headers: { x-tenant: a }
//!     compression: gzip                 # default; or zstd, none
//!     timeout: 30s
//!     retry_on_failure: { initial_interval: 5s, max_interval: 30s, max_elapsed_time: 300s }
//!     sending_queue: { queue_size: 100000 }   # log records
//! ```
//!
//! Queued batches are merged into one protobuf request (concatenated `ExportLogsServiceRequest`
//! messages are one valid request). 429, 502, 503, 504 and transport errors are retried with
//! capped exponential backoff, waiting as long as a `Retry-After` asks; a batch is released as
//! delivered only on a 2xx, so the receiver that took it answers its client only then. Other
//! answers (400: the peer will never take it) and retries past `max_elapsed_time` fail the batch,
//! and the original senders are told to retry. Plain `http://` only for now: no TLS yet.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Uri;
use hyper::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;

use crate::config::{ConfigError, decode, duration};
use crate::exporters::QueueConfig;
use crate::otlp;
use crate::pipeline::queue::{self, Envelope};
use crate::pipeline::{BoxFuture, Exporter};
use crate::registry::Context;
use crate::telemetry::ExporterMetrics;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Base URL of the receiving collector; logs are POSTed to `<endpoint>/v1/logs`.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// The full URL for logs, overriding `endpoint`.
    #[serde(default)]
    pub logs_endpoint: Option<String>,
    /// Extra request headers (authentication, tenancy).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
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

pub struct OtlpHttp {
    id: String,
    cfg: Config,
    uri: Uri,
    headers: Vec<(HeaderName, HeaderValue)>,
    metrics: ExporterMetrics,
}

pub fn build(
    ctx: &Context,
    raw: serde_yaml_ng::Value,
) -> Result<Box<dyn Exporter>, Vec<ConfigError>> {
    let cfg: Config = decode(ctx.path, raw).map_err(|e| vec![e])?;
    let at = |field: &str| format!("{}.{field}", ctx.path);
    let mut errors = Vec::new();
    let url = match (&cfg.logs_endpoint, &cfg.endpoint) {
        (Some(u), _) => Some(("logs_endpoint", u.clone())),
        (None, Some(base)) => Some((
            "endpoint",
            format!("{}/v1/logs", base.trim_end_matches('/')),
        )),
        (None, None) => {
            errors.push(ConfigError::new(
                at("endpoint"),
                "required (or logs_endpoint)",
            ));
            None
        }
    };
    let uri = url.and_then(|(field, url)| match url.parse::<Uri>() {
        Ok(u) if u.scheme_str() == Some("http") && u.host().is_some() => Some(u),
        Ok(u) if u.scheme_str() == Some("https") => {
            errors.push(ConfigError::new(
                at(field),
                "https is not supported yet; use http://",
            ));
            None
        }
        _ => {
            errors.push(ConfigError::new(
                at(field),
                format!("{url:?} is not an http://host:port URL"),
            ));
            None
        }
    });
    let mut headers = Vec::new();
    for (k, v) in &cfg.headers {
        match (
            HeaderName::try_from(k.as_str()),
            HeaderValue::try_from(v.as_str()),
        ) {
            (Ok(k), Ok(v)) => headers.push((k, v)),
            _ => errors.push(ConfigError::new(
                at(&format!("headers.{k}")),
                "not a valid HTTP header",
            )),
        }
    }
    if cfg.sending_queue.queue_size == 0 {
        errors.push(ConfigError::new(
            at("sending_queue.queue_size"),
            "must be greater than zero",
        ));
    }
    let r = cfg.retry_on_failure;
    if r.initial_interval.is_zero() || r.max_interval < r.initial_interval {
        errors.push(ConfigError::new(
            at("retry_on_failure"),
            "need 0 < initial_interval <= max_interval",
        ));
    }
    if cfg.timeout.is_zero() || cfg.max_batch_records == 0 {
        errors.push(ConfigError::new(
            at("timeout"),
            "timeout and max_batch_records must be greater than zero",
        ));
    }
    let Some(uri) = uri.filter(|_| errors.is_empty()) else {
        return Err(errors);
    };
    let id = ctx.id.to_string();
    Ok(Box::new(OtlpHttp {
        metrics: ExporterMetrics::new(ctx.telemetry, &id),
        id,
        cfg,
        uri,
        headers,
    }))
}

impl Exporter for OtlpHttp {
    fn queue_capacity(&self) -> usize {
        self.cfg.sending_queue.queue_size
    }

    fn run(self: Box<Self>, queue: queue::Receiver) -> BoxFuture<()> {
        Box::pin(self.serve(queue))
    }
}

/// How one attempt ended.
enum Outcome {
    Delivered,
    /// Worth retrying, after at least the peer's `Retry-After` if it sent one.
    Retry(String, Option<Duration>),
    /// The peer will never take this request.
    Permanent(String),
}

impl OtlpHttp {
    async fn serve(self: Box<Self>, mut queue: queue::Receiver) {
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        let mut pending: Vec<Envelope> = Vec::new();
        let mut body = Vec::new();
        while let Some(first) = queue.recv().await {
            let mut records = first.records();
            pending.push(first);
            while records < self.cfg.max_batch_records {
                match queue.try_recv() {
                    Some(next) => {
                        records += next.records();
                        pending.push(next);
                    }
                    None => break,
                }
            }
            body.clear();
            for envelope in &pending {
                otlp::logs::encode(&envelope.batch, &mut body);
            }
            let payload = self.compress(&body);
            if self.deliver(&client, payload, records as u64).await {
                self.metrics.sent.add(records as u64);
                pending.drain(..).for_each(Envelope::delivered);
            } else {
                // Dropping undelivered envelopes fails their acks: the senders are told to retry.
                pending.clear();
            }
        }
        tracing::debug!(exporter = %self.id, "otlphttp exporter drained");
    }

    fn compress(&self, body: &[u8]) -> Bytes {
        match self.cfg.compression {
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

    /// Sends until delivered, the peer refuses for good, or retrying runs out of time.
    async fn deliver(
        &self,
        client: &Client<HttpConnector, Full<Bytes>>,
        body: Bytes,
        records: u64,
    ) -> bool {
        let retry = self.cfg.retry_on_failure;
        let started = Instant::now();
        let mut backoff = retry.initial_interval;
        loop {
            let (why, hint) = match self.attempt(client, body.clone()).await {
                Outcome::Delivered => return true,
                Outcome::Permanent(why) => {
                    tracing::warn!(exporter = %self.id, error = %why, "otlphttp: the peer refused the batch; failing it");
                    return false;
                }
                Outcome::Retry(why, hint) => (why, hint),
            };
            let wait = hint.unwrap_or(backoff).min(retry.max_interval.max(backoff));
            let out_of_time = !retry.max_elapsed_time.is_zero()
                && started.elapsed() + wait > retry.max_elapsed_time;
            self.metrics.send_failed.add(records);
            if !retry.enabled || out_of_time {
                tracing::warn!(exporter = %self.id, error = %why, "otlphttp: giving up on the batch");
                return false;
            }
            tracing::warn!(exporter = %self.id, error = %why, retry_in = ?wait, "otlphttp send failed");
            tokio::time::sleep(wait).await;
            backoff = (backoff * 2).min(retry.max_interval);
        }
    }

    async fn attempt(&self, client: &Client<HttpConnector, Full<Bytes>>, body: Bytes) -> Outcome {
        let mut req = hyper::Request::post(self.uri.clone())
            .header(CONTENT_TYPE, "application/x-protobuf")
            .body(Full::new(body))
            .expect("a request from a validated URI");
        let encoding = match self.cfg.compression {
            Compression::Gzip => Some("gzip"),
            Compression::Zstd => Some("zstd"),
            Compression::None => None,
        };
        if let Some(e) = encoding {
            req.headers_mut()
                .insert(CONTENT_ENCODING, HeaderValue::from_static(e));
        }
        for (k, v) in &self.headers {
            req.headers_mut().insert(k.clone(), v.clone());
        }
        let resp = match tokio::time::timeout(self.cfg.timeout, client.request(req)).await {
            Err(_) => return Outcome::Retry("timed out".into(), None),
            Ok(Err(e)) => return Outcome::Retry(format!("{e}"), None),
            Ok(Ok(resp)) => resp,
        };
        let status = resp.status();
        let hint = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        // Read the answer so the connection can be reused; its text explains a refusal.
        let text = match resp.into_body().collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => return Outcome::Retry(format!("reading the answer: {e}"), None),
        };
        let explain = || {
            let t = String::from_utf8_lossy(&text[..text.len().min(300)]).into_owned();
            format!("HTTP {status}: {t}")
        };
        match status.as_u16() {
            200..=299 => Outcome::Delivered,
            429 | 502 | 503 | 504 => Outcome::Retry(explain(), hint),
            _ => Outcome::Permanent(explain()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ComponentId;
    use crate::telemetry::Registry;

    fn errors(yaml: &str) -> Vec<String> {
        let id = ComponentId::parse("otlphttp").unwrap();
        let reg = Registry::default();
        let ctx = Context {
            id: &id,
            path: "exporters.otlphttp",
            telemetry: &reg,
            pipeline: "",
        };
        build(&ctx, serde_yaml_ng::from_str(yaml).unwrap())
            .err()
            .unwrap_or_default()
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn logs_go_to_the_v1_logs_path_of_the_endpoint() {
        assert!(errors("{endpoint: 'http://gw:4318/'}").is_empty());
        assert!(errors("{logs_endpoint: 'http://gw:4318/custom'}").is_empty());
    }

    #[test]
    fn bad_settings_are_reported_with_their_paths() {
        assert_eq!(
            errors("{}"),
            ["exporters.otlphttp.endpoint: required (or logs_endpoint)"]
        );
        assert_eq!(
            errors("{endpoint: 'https://gw:4318'}"),
            ["exporters.otlphttp.endpoint: https is not supported yet; use http://"]
        );
        assert_eq!(
            errors("{endpoint: 'http://gw:4318', headers: {'bad header': x}}"),
            ["exporters.otlphttp.headers.bad header: not a valid HTTP header"]
        );
        assert_eq!(
            errors(
                "{endpoint: 'http://gw', retry_on_failure: {initial_interval: 5s, max_interval: 1s}}"
            ),
            ["exporters.otlphttp.retry_on_failure: need 0 < initial_interval <= max_interval"]
        );
    }
}
