//! `http_logs`: newline-delimited log lines POSTed over HTTP, like Vector's `http_server` source.
//!
//! ```yaml
//! receivers:
//!   http_logs:
//!     endpoint: 127.0.0.1:9000        # default localhost:9000
//!     framing: newline_delimited      # or bytes: the whole body is one record
//!     max_request_body_size: 10MiB    # compressed and decompressed; 413 beyond it
//!     max_connection_age: 5m          # close connections after this (default: never)
//!     read_timeout: 30s               # the whole body within this, else 408
//!     read_header_timeout: 30s        # drop clients that do not send headers in time
//!     idle_timeout: 60s               # close keep-alive connections idle this long
//!     max_connections: 4096           # more are closed on accept
//!     tls: { cert_file: /etc/tls/tls.crt, key_file: /etc/tls/tls.key }   # default: plaintext
//!     auth: { authenticator: basicauth }                                  # default: none
//! ```
//!
//! Each line becomes one record whose body is a slice of the request buffer. The answer is 200
//! only after every exporter has delivered the records; 429 with `Retry-After` when an exporter
//! queue is full; 503 while shutting down. `Content-Encoding: gzip`, `deflate` and `zstd` are
//! decoded with a bound on the output, so a decompression bomb gets 413, not an OOM.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Method, Request};
use serde::Deserialize;

use crate::auth::AuthConfig;
use crate::component::Context;
use crate::config::{ConfigError, byte_size, check_endpoint, decode};
use crate::model::{LogBatch, LogRecord, Origin, Str, Value};
use crate::pipeline::Batch;
use crate::pipeline::{BoxFuture, Consumer, Receiver, Running, StartError, WorkerSlot};
use crate::receivers::edge::{Edge, Protocol};
use crate::receivers::limits::{self, HttpLimits};
use crate::receivers::step::{Invalid, PlainText, Step};
use crate::receivers::tls::TlsSettings;
use crate::server::{self, HttpResponse};
use crate::shutdown::Shutdown;
use crate::telemetry::ReceiverMetrics;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `host:port` to listen on. Default `localhost:9000`.
    #[serde(default = "default_endpoint")]
    pub endpoint: String,
    /// `newline_delimited` (default): one record per non-empty line, `\r\n` accepted.
    /// `bytes`: the whole body is one record.
    #[serde(default)]
    pub framing: Framing,
    /// Largest accepted body, before and after decompression. Default `10MiB`, at most `1GiB`.
    #[serde(default = "default_max_body", deserialize_with = "byte_size")]
    pub max_request_body_size: usize,
    /// Close each connection once it is this old (after its current request). Default: never.
    #[serde(default, deserialize_with = "crate::config::optional_duration")]
    pub max_connection_age: Option<Duration>,
    /// The whole body must arrive within this (408 otherwise). Default `30s`, at most `1h`.
    #[serde(
        default = "limits::default_read_timeout",
        deserialize_with = "crate::config::duration"
    )]
    pub read_timeout: Duration,
    /// Close a connection whose request headers take longer than this to arrive. Default
    /// `30s`, at most `1h`.
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

fn default_endpoint() -> String {
    "localhost:9000".to_string()
}

fn default_max_body() -> usize {
    10 << 20
}

impl Config {
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

#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Framing {
    #[default]
    NewlineDelimited,
    Bytes,
}

pub struct HttpLogs {
    id: String,
    cfg: Config,
    metrics: ReceiverMetrics,
    edge: Edge,
}

/// The `http_logs` receiver type, as the registry lists it.
pub const SPEC: crate::component::Spec<Box<dyn crate::pipeline::Receiver>> =
    crate::component::Spec {
        kind: "http_logs",
        signals: crate::component::LOGS,
        build,
        example: "{endpoint: '127.0.0.1:0'}",
    };

pub fn build(
    ctx: &Context,
    raw: serde_yaml_ng::Value,
) -> Result<Box<dyn Receiver>, Vec<ConfigError>> {
    let cfg: Config = decode(ctx.path, raw).map_err(|e| vec![e])?;
    let mut errors = Vec::new();
    if let Err(e) = check_endpoint(&cfg.endpoint) {
        errors.push(ConfigError::new(format!("{}.endpoint", ctx.path), e));
    }
    cfg.limits().check(ctx.path, &mut errors);
    let id = ctx.id.to_string();
    let metrics = ReceiverMetrics::new(ctx.telemetry, &id, "http");
    let edge = Edge::build(
        ctx.path,
        cfg.tls.as_ref(),
        cfg.auth.as_ref(),
        ctx.auth,
        Protocol::Http1,
        &metrics,
        &mut errors,
    );
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Box::new(HttpLogs {
        metrics,
        edge,
        id,
        cfg,
    }))
}

struct Shared {
    framing: Framing,
    step: Step,
}

impl Receiver for HttpLogs {
    fn start(
        self: Box<Self>,
        consumer: Consumer,
        shutdown: Shutdown,
    ) -> BoxFuture<Result<Running, StartError>> {
        Box::pin(async move {
            let listener =
                server::bind(format!("receivers.{}", self.id), &self.cfg.endpoint).await?;
            tracing::info!(receiver = %self.id, endpoint = %self.cfg.endpoint, "http_logs receiver listening");
            let limits = self.cfg.limits();
            let mut opts = limits.server_options(&self.metrics);
            self.edge.apply(&mut opts, &self.metrics);
            let shared = Arc::new(Shared {
                framing: self.cfg.framing,
                step: limits.step(self.metrics, shutdown.clone()),
            });
            let running: Running = Box::pin(server::serve(listener, shutdown, opts, move || {
                // One worker per connection: HTTP/1.1 serves its requests one at a time, so the
                // mutex is never contended; it only satisfies the `Fn` handler signature.
                let worker = WorkerSlot::new(consumer.clone());
                let shared = Arc::clone(&shared);
                move |req| handle(req, Arc::clone(&shared), Arc::clone(&worker))
            }));
            Ok(running)
        })
    }
}

async fn handle(
    req: Request<Incoming>,
    shared: Arc<Shared>,
    slot: Arc<WorkerSlot>,
) -> HttpResponse {
    if req.method() != Method::POST && req.method() != Method::PUT {
        let mut resp = server::text(405, "only POST and PUT are accepted\n");
        resp.headers_mut()
            .insert(hyper::header::ALLOW, HeaderValue::from_static("POST, PUT"));
        return resp;
    }
    let framing = shared.framing;
    let decode = |body| {
        frame(body, framing, now_unix_nano())
            .map(Batch::Logs)
            .ok_or_else(|| Invalid {
                status: 413,
                message: TOO_DENSE.into(),
            })
    };
    shared.step.run(req, &slot, &PlainText, decode).await
}

fn now_unix_nano() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Lines in `body`, estimated from its first 4 KiB (and a little over, so that the exact count
/// of what is left, made when the estimate runs out, covers only a short tail).
fn estimate_lines(body: &[u8]) -> usize {
    let sample = &body[..body.len().min(4096)];
    let n = memchr::memchr_iter(b'\n', sample).count();
    if n == 0 {
        return body.len() / 96 + 1;
    }
    let lines = body.len() * n / sample.len();
    lines + lines / 16 + 1
}

const TOO_DENSE: &str = "too many lines for the body's size: beyond the first 4096 lines, a body may hold one line per 8 bytes; split it\n";

/// Splits a body into records. Lines share `body`'s buffer; UTF-8 is checked once for the whole
/// body, and only a body with invalid bytes is checked (and repaired) line by line.
///
/// `None` when the body holds more lines than its size allows (see
/// `otlp::logs::MIN_BYTES_PER_ITEM`): a record costs about 200 bytes, an empty line 1, so
/// without the limit a 10 MiB body of one-character lines would cost over a gigabyte.
pub fn frame(body: Bytes, framing: Framing, observed_time_unix_nano: u64) -> Option<LogBatch> {
    let mut batch = LogBatch {
        origins: vec![Origin::default()],
        records: Vec::new(),
    };
    let record = |line: Str| LogRecord {
        observed_time_unix_nano,
        body: Value::Str(line),
        ..Default::default()
    };
    if body.is_empty() {
        return Some(batch);
    }
    let all_valid = std::str::from_utf8(&body).is_ok();
    let to_str = |b: Bytes| {
        if all_valid {
            // SAFETY: the whole body is valid UTF-8 and we cut only at '\n' (or '\r' before
            // it), which are single-byte characters, so every piece is valid too.
            unsafe { Str::from_utf8_unchecked(b) }
        } else {
            Str::from_utf8_lossy(b)
        }
    };
    match framing {
        Framing::Bytes => batch.records.push(record(to_str(body))),
        Framing::NewlineDelimited => {
            let budget = crate::otlp::logs::FREE_ITEMS
                .max(body.len() / crate::otlp::logs::MIN_BYTES_PER_ITEM);
            batch.records.reserve(estimate_lines(&body).min(budget));
            let mut newlines = memchr::memchr_iter(b'\n', &body);
            let mut start = 0;
            loop {
                let nl = newlines.next();
                let mut end = nl.unwrap_or(body.len());
                if end > start && body[end - 1] == b'\r' {
                    end -= 1;
                }
                if end > start {
                    if batch.records.len() == batch.records.capacity() {
                        // More lines than the first guess: count what is left once and
                        // reserve exactly. Cheaper than growing by doubling (which copies
                        // every record), and a body with more lines than its size allows is
                        // refused before their records are made.
                        let left = memchr::memchr_iter(b'\n', &body[end..]).count()
                            + usize::from(!body.ends_with(b"\n"));
                        if batch.records.len() + left > budget {
                            return None;
                        }
                        batch.records.reserve_exact(left);
                    }
                    batch.records.push(record(to_str(body.slice(start..end))));
                }
                match nl {
                    Some(nl) => start = nl + 1,
                    None => break,
                }
            }
        }
    }
    Some(batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bodies(b: &LogBatch) -> Vec<String> {
        b.records
            .iter()
            .map(|r| r.body.as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn splits_lines_skipping_empty_ones_and_crlf() {
        let b = frame(
            Bytes::from_static(b"a\r\n\nb\nc"),
            Framing::NewlineDelimited,
            7,
        )
        .unwrap();
        assert_eq!(bodies(&b), ["a", "b", "c"]);
        assert!(b.records.iter().all(|r| r.observed_time_unix_nano == 7));
    }

    #[test]
    fn empty_body_has_no_records() {
        assert!(
            frame(Bytes::new(), Framing::NewlineDelimited, 0)
                .unwrap()
                .is_empty()
        );
        assert!(
            frame(Bytes::from_static(b"\n\n"), Framing::NewlineDelimited, 0)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn bytes_framing_keeps_the_body_whole() {
        let b = frame(Bytes::from_static(b"a\nb\n"), Framing::Bytes, 0).unwrap();
        assert_eq!(bodies(&b), ["a\nb\n"]);
    }

    #[test]
    fn invalid_utf8_is_replaced_only_in_its_own_line() {
        let b = frame(
            Bytes::from_static(b"ok\nbad\xffline\n"),
            Framing::NewlineDelimited,
            0,
        )
        .unwrap();
        assert_eq!(bodies(&b), ["ok", "bad\u{fffd}line"]);
    }

    #[test]
    fn a_body_of_more_lines_than_its_size_allows_is_refused() {
        let free = crate::otlp::logs::FREE_ITEMS;
        // Short lines are fine up to the free allowance, and in bodies of longer lines.
        let short = Bytes::from("a\n".repeat(free));
        assert_eq!(
            frame(short, Framing::NewlineDelimited, 0).unwrap().len(),
            free
        );
        let fuller = Bytes::from("1234567\n".repeat(4 * free));
        assert!(frame(fuller, Framing::NewlineDelimited, 0).is_some());
        let dense = Bytes::from("a\n".repeat(4 * free));
        assert!(frame(dense, Framing::NewlineDelimited, 0).is_none());
    }
}
