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
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Method, Request};
use serde::Deserialize;

use crate::component::{Built, Context, LOGS, Spec, Yaml};
use crate::config::decode_squashed;
use crate::model::{LogBatch, LogRecord, Origin, Str, Value, push_in_place};
use crate::pipeline::Batch;
use crate::pipeline::{BoxFuture, Consumer, Receiver, Running, StartError, WorkerSlot};
use crate::receivers::edge::Edge;
use crate::receivers::limits::HttpServerConfig;
use crate::receivers::step::{Invalid, PlainText, Step};
use crate::server::{self, HttpResponse};
use crate::shutdown::Shutdown;
use crate::telemetry::ReceiverMetrics;

/// `http_logs`' own keys; the listener's (`endpoint`, limits, `tls`, `auth`) are
/// [`HttpServerConfig`], written in the same mapping.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `newline_delimited` (default): one record per non-empty line, `\r\n` accepted.
    /// `bytes`: the whole body is one record.
    #[serde(default)]
    pub framing: Framing,
}

/// The listener: `endpoint` defaults to `localhost:9000`, `max_request_body_size` to `10MiB`.
pub type ServerConfig = HttpServerConfig<9000, 10>;

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
    server: ServerConfig,
    metrics: ReceiverMetrics,
    edge: Edge,
}

/// The `http_logs` receiver type, as the registry lists it.
pub const SPEC: Spec<Box<dyn Receiver>> =
    Spec::new("http_logs", LOGS, build, "{endpoint: '127.0.0.1:0'}");

pub fn build(ctx: &Context, raw: Yaml) -> Built<Box<dyn Receiver>> {
    let (cfg, server): (Config, ServerConfig) =
        decode_squashed(ctx.path, raw).map_err(|e| vec![e])?;
    let mut errors = Vec::new();
    let id = ctx.id.to_string();
    let metrics = ReceiverMetrics::new(ctx.telemetry, &id, "http");
    let edge = server.check(ctx.path, ctx, &metrics, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Box::new(HttpLogs {
        metrics,
        edge,
        id,
        cfg,
        server,
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
            let server = &self.server;
            let listener = server::bind(format!("receivers.{}", self.id), &server.endpoint).await?;
            tracing::info!(receiver = %self.id, endpoint = %server.endpoint, "http_logs receiver listening");
            let mut opts = server.server_options(&self.metrics);
            self.edge.apply(&mut opts, &self.metrics);
            let shared = Arc::new(Shared {
                framing: self.cfg.framing,
                step: server.step(self.metrics, shutdown.clone()),
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
    let cost = crate::receivers::step::per_byte(COST_PER_BYTE);
    shared.step.run(req, &slot, &PlainText, cost, decode).await
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

/// The most memory framing a body into records may take per byte of it, the body included: a
/// record costs about 200 bytes and a body may hold one per 8 bytes beyond its first 4,096
/// lines. `tests/request_cost.rs` measures it.
pub const COST_PER_BYTE: u64 = 32;

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
    if body.is_empty() {
        return Some(batch);
    }
    let record = |line: Str| LogRecord {
        observed_time_unix_nano,
        body: Value::Str(line),
        ..Default::default()
    };
    // One loop per way of making the text, so that neither merges with the other: merged, the
    // record went through a stack temporary (see `push_in_place`).
    if std::str::from_utf8(&body).is_ok() {
        split(body, framing, &mut batch.records, |b| {
            // SAFETY: the whole body is valid UTF-8 and `split` cuts only at '\n' (or '\r'
            // before it), which are single-byte characters, so every piece is valid too.
            record(unsafe { Str::from_utf8_unchecked(b) })
        })?;
    } else {
        split(body, framing, &mut batch.records, |b| {
            record(Str::from_utf8_lossy(b))
        })?;
    }
    Some(batch)
}

/// Appends a record made by `make` for each piece of `body` that `framing` cuts; `None` when
/// the body holds more lines than its size allows.
#[inline(always)]
fn split(
    body: Bytes,
    framing: Framing,
    records: &mut Vec<LogRecord>,
    make: impl Fn(Bytes) -> LogRecord,
) -> Option<()> {
    match framing {
        Framing::Bytes => records.push(make(body)),
        Framing::NewlineDelimited => {
            let budget = crate::otlp::logs::FREE_ITEMS
                .max(body.len() / crate::otlp::logs::MIN_BYTES_PER_ITEM);
            let estimate = estimate_lines(&body);
            if estimate > budget {
                // Likely too dense: count exactly before reserving, so that a body refused
                // for its density costs no room for the records it may not have.
                let lines =
                    memchr::memchr_iter(b'\n', &body).count() + usize::from(!body.ends_with(b"\n"));
                if lines > budget {
                    return None;
                }
                records.reserve_exact(lines);
            } else {
                records.reserve(estimate);
            }
            let mut newlines = memchr::memchr_iter(b'\n', &body);
            let mut start = 0;
            loop {
                let nl = newlines.next();
                let mut end = nl.unwrap_or(body.len());
                if end > start && body[end - 1] == b'\r' {
                    end -= 1;
                }
                if end > start {
                    if records.len() == records.capacity() {
                        // More lines than the first guess: count what is left once and
                        // reserve exactly. Cheaper than growing by doubling (which copies
                        // every record), and a body with more lines than its size allows is
                        // refused before their records are made.
                        let left = memchr::memchr_iter(b'\n', &body[end..]).count()
                            + usize::from(!body.ends_with(b"\n"));
                        if records.len() + left > budget {
                            return None;
                        }
                        records.reserve_exact(left);
                    }
                    // Built where it lands (see `push_in_place`): 7% of the guide's
                    // pipeline went to copying records on from stack temporaries.
                    push_in_place(records, || make(body.slice(start..end)));
                }
                match nl {
                    Some(nl) => start = nl + 1,
                    None => break,
                }
            }
        }
    }
    Some(())
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
