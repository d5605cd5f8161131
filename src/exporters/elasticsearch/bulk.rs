//! Sending `_bulk` requests and settling every item: indexed, retried alone, or dead-lettered.
//!
//! A whole request that failed (transport error, timeout, a `retry_on_status` answer, an
//! unreadable answer) is sent again as it was; after a 200, only the items whose status
//! `retry_on_status` lists are sent again, with exponential backoff and jitter. With ids
//! assigned by the encoder, an earlier attempt that did index a document is answered 409 on
//! `create` and counted done, so retries never store a document twice. A 413 splits the
//! request in halves. Items that fail for good (mapping conflicts, 400s) and items still
//! failing after `max_retries` go to the dead letter when there is one; without one, the
//! batches they came in are failed and their senders told to retry. A batch is acknowledged
//! only when each of its documents is indexed or dead-lettered.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderValue};

use super::dead_letter::{self, DeadLetter, Why};
use super::log_docs::LogScratch;
use super::mapping::{BulkEncoder, Items, Mode};
use super::metrics::MetricScratch;
use super::response::{self, Item};
use super::retry::{self, RetryConfig};
use super::spans::SpanScratch;
use super::transport::{Failed, Transport};
use crate::exporters::client::Compression;
use crate::model::Signal;
use crate::pipeline::Batch;
use crate::pipeline::queue::Envelope;
use crate::shutdown::Shutdown;
use crate::telemetry::{
    Counter, CounterFamily, ExporterMetrics, Histogram, LATENCY_BUCKETS, Registry,
};

/// One bulk request's worth of envelopes, encoded.
#[derive(Default)]
pub struct Request {
    body: Vec<u8>,
    items: Items,
    envelopes: Vec<Envelope>,
    /// Items per envelope, in order.
    per_envelope: Vec<usize>,
}

impl Request {
    /// Room for a full request and the batch that crosses the limit, so that the body is not
    /// copied as it grows.
    pub fn with_capacity(flush_bytes: usize) -> Self {
        Request {
            body: Vec::with_capacity(flush_bytes + flush_bytes / 4),
            ..Request::default()
        }
    }

    /// Encoded bytes so far.
    pub fn len(&self) -> usize {
        self.body.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Encodes `envelope`'s records, spans or data points and keeps it until they are settled.
    pub fn add(
        &mut self,
        mut envelope: Envelope,
        encoder: &mut BulkEncoder,
        scratch: &mut Scratch,
    ) {
        let before = self.items.len();
        match envelope.take_batch() {
            Batch::Logs(logs) => {
                let ends = encoder.encode_batch(&logs, &mut self.body);
                for end in ends {
                    self.items.sent(end, Signal::Logs, 1);
                }
            }
            Batch::Raw(raw) if raw.signal == Signal::Traces => {
                for (entry, spans) in &raw.resources {
                    encoder.encode_spans(
                        entry,
                        *spans,
                        &mut scratch.spans,
                        &mut self.body,
                        &mut self.items,
                    );
                }
            }
            Batch::Raw(raw) if raw.signal == Signal::Metrics => {
                encoder.encode_metrics(&raw, &mut scratch.metrics, &mut self.body, &mut self.items)
            }
            Batch::Raw(raw) if raw.signal == Signal::Logs && encoder.mode == Mode::Otel => {
                for (entry, records) in &raw.resources {
                    encoder.encode_raw_logs(
                        entry,
                        *records,
                        &mut scratch.logs,
                        &mut self.body,
                        &mut self.items,
                    );
                }
            }
            // Encoded logs in another mode: the wiring sends them decoded there
            // (`takes_encoded_logs`). Dropped, which fails the batch back to its sender.
            Batch::Raw(_) => return,
        }
        // Documents are encoded: the records, and the request body they point into, are freed
        // now rather than when Elasticsearch answers.
        self.per_envelope.push(self.items.len() - before);
        self.envelopes.push(envelope);
    }

    /// Acknowledges the envelopes whose items are all settled; an envelope with an item
    /// marked in `unsettled` is dropped, which fails it back to its sender.
    fn acknowledge(self, unsettled: &[bool]) {
        let mut first = 0;
        for (envelope, count) in self.envelopes.into_iter().zip(self.per_envelope) {
            let settled = !unsettled[first..first + count].iter().any(|u| *u);
            first += count;
            if settled {
                envelope.delivered();
            }
        }
    }
}

/// Scratch state the encoders keep between requests.
#[derive(Default)]
pub struct Scratch {
    pub logs: LogScratch,
    pub spans: SpanScratch,
    pub metrics: MetricScratch,
}

/// The exporter's counters. Failures are also counted per error type.
pub struct Metrics {
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
    pub fn new(registry: &Registry, id: &str) -> Self {
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

    /// One document failed an attempt; `units` are the spans, data points or records in it.
    fn failed(&self, retryable: bool, kind: &str, (signal, units): (Signal, u32)) {
        let failure = if retryable { "retryable" } else { "permanent" };
        self.failed.with(&[failure, kind]).add(1);
        self.exporter.send_failed.of(signal).add(u64::from(units));
    }
}

/// Logs a warning per error type at most once every ten seconds, with how many were
/// suppressed, so that a flood of rejected documents cannot flood the log.
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

/// Where a request's documents go: their own indices, or the dead-letter index.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Destination {
    Documents,
    DeadLetter,
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

/// Items still to be settled: their bytes, where each ends, and each one's position in the
/// original request.
struct Pending {
    /// Shared with the requests that carry it: a whole body or a 413 chunk goes out uncopied.
    body: Bytes,
    ends: Vec<usize>,
    origin: Vec<usize>,
}

/// An item that will not be indexed.
struct Failure {
    /// Its position in the original request.
    item: usize,
    /// Its action and document lines.
    bytes: Bytes,
    why: Why,
}

/// How the items of one request ended.
#[derive(Default)]
struct Settled {
    failures: Vec<Failure>,
    /// Items left unsettled at the shutdown deadline.
    abandoned: Vec<usize>,
}

/// Sends bulk requests for one exporter; shared by its sending tasks.
pub struct Sender {
    pub id: String,
    pub client: Transport,
    pub compression: Compression,
    pub timeout: Duration,
    pub retry: RetryConfig,
    pub dead_letter: Option<DeadLetter>,
    pub metrics: Metrics,
    throttle: Throttle,
    /// `otel` mode: documents must go to data streams (`?require_data_stream=true`), so that a
    /// static or named index that matches no data stream template is an error rather than a
    /// plain index with guessed mappings, as the Collector sends them. Not for the dead letter,
    /// which may well be a plain index.
    pub require_data_stream: bool,
    /// Fired at the shutdown deadline: retrying stops, and what is unsettled fails back to its
    /// senders (not to the dead letter: it was not refused).
    deadline: Shutdown,
}

impl Sender {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: String,
        client: Transport,
        compression: Compression,
        timeout: Duration,
        retry: RetryConfig,
        dead_letter: Option<DeadLetter>,
        metrics: Metrics,
        deadline: Shutdown,
    ) -> Self {
        Sender {
            deadline,
            id,
            client,
            compression,
            timeout,
            retry,
            dead_letter,
            metrics,
            throttle: Throttle::default(),
            require_data_stream: false,
        }
    }

    /// Settles every item of `req`, dead-letters what will not be indexed, then acknowledges
    /// each envelope whose items were all indexed or dead-lettered and fails the rest.
    pub async fn deliver(&self, mut req: Request) {
        let items = std::mem::take(&mut req.items);
        let total = items.len();
        let body = Bytes::from(std::mem::take(&mut req.body));
        let mut settled = self
            .settle(
                body,
                items.ends,
                items.numbers,
                &items.units,
                Destination::Documents,
            )
            .await;
        let mut failures = std::mem::take(&mut settled.failures);
        for r in items.refused {
            self.metrics.failed(false, &r.why.kind, items.units[r.item]);
            self.warn_item(r.why.status, &r.why.kind, &r.why.reason, &r.bytes);
            failures.push(Failure {
                item: r.item,
                bytes: Bytes::from(r.bytes),
                why: r.why,
            });
        }
        let mut unsettled = vec![false; total];
        let mut not_indexed = vec![false; total];
        for f in &failures {
            not_indexed[f.item] = true;
        }
        if !failures.is_empty() {
            let stored = match &self.dead_letter {
                Some(dl) => self.store_dead(dl, &failures, &items.units).await,
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
        for &item in &settled.abandoned {
            unsettled[item] = true;
            not_indexed[item] = true;
        }
        let mut sent = [0u64; 3];
        for (n, &(signal, units)) in items.units.iter().enumerate() {
            if !not_indexed[n] {
                sent[signal as usize] += u64::from(units);
            }
        }
        for signal in [Signal::Logs, Signal::Traces, Signal::Metrics] {
            if sent[signal as usize] > 0 {
                self.metrics
                    .exporter
                    .sent
                    .of(signal)
                    .add(sent[signal as usize]);
            }
        }
        req.acknowledge(&unsettled);
    }

    /// Sends the items ending at `ends` in `body` until each is indexed, failed for good, or
    /// out of retries.
    /// `origin` numbers the items (their places in the request); `units` says, by number,
    /// what each carries, for the per-signal counters.
    async fn settle(
        &self,
        body: Bytes,
        ends: Vec<usize>,
        origin: Vec<usize>,
        units: &[(Signal, u32)],
        to: Destination,
    ) -> Settled {
        let mut pending = Pending { origin, body, ends };
        let mut settled = Settled::default();
        let mut attempt = 0;
        // Items per request, halved by each 413.
        let mut chunk = usize::MAX;
        loop {
            pending = self
                .round(&pending, &mut chunk, &mut settled, units, to)
                .await;
            if pending.ends.is_empty() {
                return settled;
            }
            if self.retry.exhausted(attempt) {
                tracing::warn!(
                    exporter = %self.id, documents = pending.ends.len(), attempts = attempt + 1,
                    "documents still failing after the last retry"
                );
                let reason = format!("still failing after {} attempts", attempt + 1);
                let mut start = 0;
                for (&end, &item) in pending.ends.iter().zip(&pending.origin) {
                    settled.failures.push(Failure {
                        item,
                        bytes: pending.body.slice(start..end),
                        why: Why {
                            status: 0,
                            kind: "retries_exhausted".into(),
                            reason: reason.clone(),
                        },
                    });
                    start = end;
                }
                return settled;
            }
            if !self.deadline.sleep(self.retry.wait(attempt)).await {
                tracing::warn!(
                    exporter = %self.id, documents = pending.ends.len(),
                    "shutdown deadline: failing the unsettled documents back to their senders"
                );
                settled.abandoned = pending.origin;
                return settled;
            }
            self.metrics.retried.add(pending.ends.len() as u64);
            attempt += 1;
        }
    }

    /// Sends every pending item once (in chunks of `chunk` items); returns those to retry.
    async fn round(
        &self,
        pending: &Pending,
        chunk: &mut usize,
        settled: &mut Settled,
        units: &[(Signal, u32)],
        to: Destination,
    ) -> Pending {
        let mut again = Pending {
            body: Bytes::new(),
            ends: Vec::new(),
            origin: Vec::new(),
        };
        let mut again_body = Vec::new();
        let n = pending.ends.len();
        let mut first = 0;
        while first < n {
            let last = first.saturating_add(*chunk).min(n);
            let from = if first == 0 {
                0
            } else {
                pending.ends[first - 1]
            };
            let slice = pending.body.slice(from..pending.ends[last - 1]);
            let ends: Vec<usize> = pending.ends[first..last].iter().map(|e| e - from).collect();
            let items = match self.attempt(slice.clone(), ends.len(), to).await {
                Answer::Items(items) => items,
                Answer::TooLarge if ends.len() > 1 => {
                    // Not a retry: the same items again, in smaller requests.
                    *chunk = (ends.len() / 2).max(1);
                    continue;
                }
                Answer::TooLarge => vec![Item::Permanent {
                    status: 413,
                    kind: "request_entity_too_large".into(),
                    reason: "the document is larger than http.max_content_length".into(),
                }],
                Answer::RetryAll { kind, why } => {
                    self.warn(&kind, &why, ends.len());
                    vec![Item::Retry { status: 0, kind }; ends.len()]
                }
                Answer::RefuseAll { kind, why } => {
                    self.warn(&kind, &why, ends.len());
                    let refused = Item::Permanent {
                        status: 0,
                        kind,
                        reason: why,
                    };
                    vec![refused; ends.len()]
                }
            };
            let retry = retry::resend(&slice, &ends, &items);
            for (&end, &k) in retry.ends.iter().zip(&retry.origin) {
                again.ends.push(again_body.len() + end);
                again.origin.push(pending.origin[first + k]);
            }
            again_body.extend_from_slice(&retry.body);
            let mut start = 0;
            for (i, (item, &end)) in items.iter().zip(&ends).enumerate() {
                let bytes = slice.slice(start..end);
                start = end;
                let what = units
                    .get(pending.origin[first + i])
                    .copied()
                    .unwrap_or((Signal::Logs, 1));
                match item {
                    Item::Done => {}
                    Item::Retry { status, kind } if kind.is_empty() => {
                        self.metrics.failed(true, &status.to_string(), what)
                    }
                    Item::Retry { kind, .. } => self.metrics.failed(true, kind, what),
                    Item::Permanent {
                        status,
                        kind,
                        reason,
                    } => {
                        self.metrics.failed(false, kind, what);
                        if *status != 0 {
                            self.warn_item(*status, kind, reason, &bytes);
                        }
                        settled.failures.push(Failure {
                            item: pending.origin[first + i],
                            bytes,
                            why: Why {
                                status: *status,
                                kind: kind.clone(),
                                reason: reason.clone(),
                            },
                        });
                    }
                }
            }
            first = last;
        }
        again.body = Bytes::from(again_body);
        again
    }

    /// One `_bulk` request of `items` items.
    async fn attempt(&self, body: Bytes, items: usize, to: Destination) -> Answer {
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
        let query: &[(&str, &str)] = if self.require_data_stream && to == Destination::Documents {
            &[("require_data_stream", "true")]
        } else {
            &[]
        };
        let answer = match self
            .client
            .bulk(headers, query, payload, answer_bound(items))
            .await
        {
            Ok((status, text)) => self.read(status, &text, items),
            Err(e) => Answer::RetryAll {
                kind: match e {
                    Failed::Timeout(_) => "timeout",
                    Failed::Transport(_) => "transport_error",
                    Failed::TooLarge { .. } => "answer_too_large",
                }
                .into(),
                why: e.to_string(),
            },
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
                index = %dead_letter::index_of(item), similar_unlogged = skipped,
                "a document was refused for good"
            );
        }
    }

    /// Stores `failures` at the dead letter; `false` if some could not be stored.
    async fn store_dead(
        &self,
        dl: &DeadLetter,
        failures: &[Failure],
        units: &[(Signal, u32)],
    ) -> bool {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let now = crate::codec::rfc3339(nanos);
        let now = std::str::from_utf8(&now).unwrap_or_default();
        let index = match dl {
            DeadLetter::Index(i) => Some(i.as_str()),
            DeadLetter::File(_) => None,
        };
        let mut body = Vec::new();
        let mut ends = Vec::with_capacity(failures.len());
        for f in failures {
            dead_letter::entry(&mut body, &f.bytes, &f.why, now, index);
            ends.push(body.len());
        }
        match dl {
            DeadLetter::File(path) => match dead_letter::append(path.clone(), body).await {
                Ok(()) => true,
                Err(e) => {
                    tracing::error!(exporter = %self.id, file = %path.display(), error = %e,
                        "cannot write the dead-letter file");
                    false
                }
            },
            DeadLetter::Index(index) => {
                // Retried like any request (only the failed entries again); the dead letter
                // has no dead letter of its own.
                let origin = (0..ends.len()).collect();
                let what: Vec<(Signal, u32)> = failures.iter().map(|f| units[f.item]).collect();
                let settled = Box::pin(self.settle(
                    Bytes::from(body),
                    ends,
                    origin,
                    &what,
                    Destination::DeadLetter,
                ))
                .await;
                if let Some(f) = settled.failures.first() {
                    tracing::error!(exporter = %self.id, index, error_type = %f.why.kind,
                        reason = %f.why.reason, documents = settled.failures.len(),
                        "the dead-letter index did not take documents");
                }
                settled.failures.is_empty()
            }
        }
    }
}

/// The largest `_bulk` answer a request of `items` items can legitimately get: a success item
/// is about 250 bytes and an error item with its reason and causes a few KiB, so 4 KiB an item
/// and 64 KiB more. A larger answer (a broken or hostile server) is not read further: one that
/// declares its length is dropped unread, one sent chunked where it passes the bound.
pub fn answer_bound(items: usize) -> u64 {
    (64 << 10) + (items as u64).saturating_mul(4 << 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_throttle_logs_a_kind_once_per_period_and_counts_the_rest() {
        let t = Throttle::default();
        assert_eq!(t.admit("mapper_parsing_exception"), Some(0));
        assert_eq!(t.admit("mapper_parsing_exception"), None);
        assert_eq!(t.admit("mapper_parsing_exception"), None);
        assert_eq!(t.admit("es_rejected_execution_exception"), Some(0));
    }
}
