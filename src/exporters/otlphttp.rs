//! `otlphttp`: OTLP/HTTP logs, traces and metrics to another collector (agent to gateway),
//! configured like the OTel Collector's exporter.
//!
//! ```yaml
//! exporters:
//!   otlphttp:
//!     endpoint: http://gateway:4318     # to <endpoint>/v1/logs, /v1/traces, /v1/metrics
//!     # logs_endpoint: http://gateway:4318/v1/logs   (overrides the above; also
//!     # traces_endpoint, metrics_endpoint)
//!     headers: { x-tenant: a }
//!     auth: { authenticator: bearertokenauth }   # its token sent with every request
//!     compression: gzip                 # default; or zstd, none
//!     timeout: 30s
//!     retry_on_failure: { initial_interval: 5s, max_interval: 30s, max_elapsed_time: 300s }
//!     sending_queue: { queue_size: 100000 }   # log records, spans or data points
//!     tls: { ca_file: /etc/ssl/gateway-ca.pem }   # for https:// endpoints (exporters::tls)
//! ```
//!
//! Queued batches are merged into one protobuf request (concatenated `ExportLogsServiceRequest`
//! messages are one valid request). 429, 502, 503, 504 and transport errors are retried with
//! capped exponential backoff, waiting as long as a `Retry-After` asks; a batch is released as
//! delivered only on a 2xx, so the receiver that took it answers its client only then. Other
//! answers (400: the peer will never take it) and retries past `max_elapsed_time` fail the batch,
//! and the original senders are told to retry. `https://` endpoints use TLS (rustls) as `tls`
//! says; `http://` ones are plaintext.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Uri;
use hyper::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;

use crate::component::{ALL_SIGNALS, Built, Context, Spec, Yaml};
use crate::config::{ConfigError, decode_squashed};
use crate::exporters::client::{ExtraHeaders, with_causes};
use crate::exporters::sender::{ClientConfig, OtlpExporter, Outcome, Transport};
use crate::exporters::tls;
use crate::model::Signal;
use crate::pipeline::Exporter;

/// Where `otlphttp` sends; the client settings (`tls`, `headers`, `auth`, `compression`,
/// `timeout`, `retry_on_failure`, `sending_queue`) are [`ClientConfig`], in the same mapping.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Base URL of the receiving collector; logs are POSTed to `<endpoint>/v1/logs`, traces
    /// to `/v1/traces`, metrics to `/v1/metrics`.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// The full URL for logs, overriding `endpoint`.
    #[serde(default)]
    pub logs_endpoint: Option<String>,
    /// The full URL for traces, overriding `endpoint`.
    #[serde(default)]
    pub traces_endpoint: Option<String>,
    /// The full URL for metrics, overriding `endpoint`.
    #[serde(default)]
    pub metrics_endpoint: Option<String>,
}

/// The `otlphttp` exporter type, as the registry lists it.
pub const SPEC: Spec<Box<dyn Exporter>> = Spec::new(
    "otlphttp",
    ALL_SIGNALS,
    build,
    "{endpoint: 'http://localhost:4318'}",
);

pub fn build(ctx: &Context, raw: Yaml) -> Built<Box<dyn Exporter>> {
    let (cfg, client): (Config, ClientConfig) =
        decode_squashed(ctx.path, raw).map_err(|e| vec![e])?;
    let at = |field: &str| format!("{}.{field}", ctx.path);
    let mut errors = Vec::new();
    let mut uri = |field: &'static str, own: &Option<String>, path: &str| -> Option<Uri> {
        let (field, url, written) = match (own, &cfg.endpoint) {
            (Some(u), _) => (field, u.clone(), u),
            (None, Some(base)) => (
                "endpoint",
                format!("{}/{path}", base.trim_end_matches('/')),
                base,
            ),
            (None, None) => return None,
        };
        match url.parse::<Uri>() {
            Ok(u) if matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some() => {
                Some(u)
            }
            _ => {
                errors.push(ConfigError::new(
                    at(field),
                    format!("{written:?} is not an http:// or https:// URL"),
                ));
                None
            }
        }
    };
    let uris = [
        uri("logs_endpoint", &cfg.logs_endpoint, "v1/logs"),
        uri("traces_endpoint", &cfg.traces_endpoint, "v1/traces"),
        uri("metrics_endpoint", &cfg.metrics_endpoint, "v1/metrics"),
    ];
    // Reported once even when endpoint itself was the bad one.
    errors.dedup_by(|a, b| a.to_string() == b.to_string());
    let tls = if uris
        .iter()
        .flatten()
        .any(|u| u.scheme_str() == Some("https"))
    {
        client.tls.client_config(ctx.path, &mut errors)
    } else {
        None
    };
    if uris.iter().all(Option::is_none) && errors.is_empty() {
        errors.push(ConfigError::new(
            at("endpoint"),
            "required (or logs_endpoint, traces_endpoint, metrics_endpoint)",
        ));
    }
    let headers = client.check(ctx, "not a valid HTTP header", &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    let connector = match tls {
        Some(config) => tls::connector(config, false, client.tls.server_name_override.clone()),
        None => tls::plaintext_connector(),
    };
    let transport = HttpTransport {
        client: Client::builder(TokioExecutor::new()).build(connector),
        uris,
        headers,
        encoding: client.compression.name(),
        timeout: client.timeout,
    };
    Ok(Box::new(OtlpExporter::new(ctx, client, transport)))
}

struct HttpTransport {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    uris: [Option<Uri>; 3],
    headers: ExtraHeaders,
    encoding: Option<&'static str>,
    timeout: Duration,
}

impl Transport for HttpTransport {
    async fn attempt(&self, signal: Signal, body: Bytes) -> Outcome {
        let slot = match signal {
            Signal::Logs => 0,
            Signal::Traces => 1,
            Signal::Metrics => 2,
        };
        let Some(uri) = self.uris[slot].clone() else {
            return Outcome::Permanent(format!(
                "no {}_endpoint is configured for {}",
                signal.name(),
                signal.name()
            ));
        };
        let mut req = hyper::Request::post(uri)
            .header(CONTENT_TYPE, "application/x-protobuf")
            .body(Full::new(body))
            .expect("a request from a validated URI");
        if let Some(e) = self.encoding {
            req.headers_mut()
                .insert(CONTENT_ENCODING, HeaderValue::from_static(e));
        }
        self.headers.apply(req.headers_mut());
        let resp = match tokio::time::timeout(self.timeout, self.client.request(req)).await {
            Err(_) => return Outcome::Retry("timed out".into(), None),
            Ok(Err(e)) => return Outcome::Retry(with_causes(&e), None),
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

    fn errors(yaml: &str) -> Vec<String> {
        crate::registry::build_errors(build, "exporters", "otlphttp", yaml)
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
            [
                "exporters.otlphttp.endpoint: required (or logs_endpoint, traces_endpoint, metrics_endpoint)"
            ]
        );
        assert!(errors("{endpoint: 'https://gw:4318'}").is_empty());
        assert_eq!(
            errors("{endpoint: 'ftp://gw:4318'}"),
            ["exporters.otlphttp.endpoint: \"ftp://gw:4318\" is not an http:// or https:// URL"]
        );
        assert_eq!(
            errors("{endpoint: 'https://gw:4318', tls: {ca_file: /nonexistent.pem}}"),
            [
                "exporters.otlphttp.tls.ca_file: cannot read /nonexistent.pem: I/O error: No such file or directory (os error 2)"
            ]
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
