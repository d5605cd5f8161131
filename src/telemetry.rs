//! sluice's own metrics, rendered in the Prometheus text format under the OTel Collector's metric
//! names (`otelcol_receiver_accepted_log_records_total{receiver="http_logs"}` and so on), so the
//! Collector's dashboards and alerts work unchanged.
//!
//! ```yaml
//! service:
//!   telemetry:
//!     metrics: { address: "127.0.0.1:8888" }   # GET /metrics
//! ```
//!
//! Counters are registered once at build time and handed to components as `Arc<AtomicU64>`
//! handles; the data path adds to them once per batch, never per record, and never takes a lock.

use crate::model::Signal;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A monotonically increasing count.
#[derive(Clone, Debug, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    pub fn add(&self, n: u64) {
        if n > 0 {
            self.0.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Clone, Debug, Default)]
pub struct Gauge(Arc<AtomicI64>);

impl Gauge {
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }

    pub fn add(&self, v: i64) {
        self.0.fetch_add(v, Ordering::Relaxed);
    }

    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A distribution of durations in fixed buckets (Prometheus `histogram`), for latencies.
#[derive(Clone, Debug)]
pub struct Histogram(Arc<HistogramInner>);

#[derive(Debug)]
struct HistogramInner {
    /// Upper bounds in seconds, ascending; `+Inf` is implied.
    bounds: &'static [f64],
    /// Observations per bucket (not cumulative), the last one for `+Inf`.
    counts: Box<[AtomicU64]>,
    sum_micros: AtomicU64,
}

/// Bucket bounds for request latencies, 1 ms to 60 s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram(Arc::new(HistogramInner {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
        }))
    }

    pub fn observe(&self, d: std::time::Duration) {
        let secs = d.as_secs_f64();
        let slot = self.0.bounds.partition_point(|b| *b < secs);
        self.0.counts[slot].fetch_add(1, Ordering::Relaxed);
        self.0
            .sum_micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.0
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (i, c) in self.0.counts.iter().enumerate() {
            cumulative += c.load(Ordering::Relaxed);
            let le = self
                .0
                .bounds
                .get(i)
                .map_or("+Inf".to_string(), f64::to_string);
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cumulative}"
            );
        }
        let braces = |l: &str| {
            if l.is_empty() {
                String::new()
            } else {
                format!("{{{l}}}")
            }
        };
        let sum = self.0.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{} {sum}", braces(labels));
        let _ = writeln!(out, "{name}_count{} {cumulative}", braces(labels));
    }
}

/// Counters told apart by labels whose values are only known at run time (error types): a
/// series appears when its values are first counted. The lock is taken only to find a
/// series, so it belongs on cold paths (failures), never per record.
#[derive(Clone, Debug)]
pub struct CounterFamily(Arc<FamilyInner>);

#[derive(Debug)]
struct FamilyInner {
    names: &'static [&'static str],
    series: Mutex<std::collections::BTreeMap<Vec<String>, Counter>>,
}

impl CounterFamily {
    /// The counter for these values of the family's labels, in their order.
    pub fn with(&self, values: &[&str]) -> Counter {
        let key: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        let mut series = self.0.series.lock().expect("metrics family lock poisoned");
        series.entry(key).or_default().clone()
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let series = self.0.series.lock().expect("metrics family lock poisoned");
        for (values, counter) in series.iter() {
            let mut all = labels.to_string();
            for (k, v) in self.0.names.iter().zip(values) {
                if !all.is_empty() {
                    all.push(',');
                }
                let _ = write!(all, "{k}=\"{}\"", escape(v));
            }
            let _ = writeln!(out, "{name}{{{all}}} {}", counter.get());
        }
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

enum Reading {
    Counter(Counter),
    Gauge(Gauge),
    Histogram(Histogram),
    Family(CounterFamily),
}

struct Series {
    name: &'static str,
    help: &'static str,
    labels: String,
    reading: Reading,
}

/// All registered series. The lock is taken at registration and scrape time only.
#[derive(Default)]
pub struct Registry {
    series: Mutex<Vec<Series>>,
}

impl Registry {
    /// The answer at `path` on `service.telemetry.metrics.address`: the Prometheus text at
    /// `/metrics`, 404 elsewhere.
    pub fn page(&self, path: &str) -> crate::server::HttpResponse {
        if path != "/metrics" {
            return crate::server::text(404, "not found; metrics are at /metrics\n");
        }
        let mut r = hyper::Response::new(self.render().into());
        r.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("text/plain; version=0.0.4"),
        );
        r
    }
}

impl Registry {
    pub fn new() -> Arc<Registry> {
        Arc::new(Registry::default())
    }

    pub fn counter(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[(&str, &str)],
    ) -> Counter {
        let c = Counter::default();
        self.push(name, help, labels, Reading::Counter(c.clone()));
        c
    }

    pub fn gauge(&self, name: &'static str, help: &'static str, labels: &[(&str, &str)]) -> Gauge {
        let g = Gauge::default();
        self.push(name, help, labels, Reading::Gauge(g.clone()));
        g
    }

    pub fn histogram(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[(&str, &str)],
        bounds: &'static [f64],
    ) -> Histogram {
        let h = Histogram::new(bounds);
        self.push(name, help, labels, Reading::Histogram(h.clone()));
        h
    }

    /// Counters with the fixed `labels` plus `names`, whose values come at run time.
    pub fn counter_family(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[(&str, &str)],
        names: &'static [&'static str],
    ) -> CounterFamily {
        let f = CounterFamily(Arc::new(FamilyInner {
            names,
            series: Mutex::default(),
        }));
        self.push(name, help, labels, Reading::Family(f.clone()));
        f
    }

    fn push(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[(&str, &str)],
        reading: Reading,
    ) {
        let mut rendered = String::new();
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                rendered.push(',');
            }
            let _ = write!(rendered, "{k}=\"{}\"", escape(v));
        }
        let mut series = self.series.lock().expect("metrics registry lock poisoned");
        series.push(Series {
            name,
            help,
            labels: rendered,
            reading,
        });
    }

    /// The Prometheus text exposition of every series, grouped by metric name.
    pub fn render(&self) -> String {
        let series = self.series.lock().expect("metrics registry lock poisoned");
        let mut names: Vec<&'static str> = series.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        let mut out = String::new();
        for name in names {
            let mut first = true;
            for s in series.iter().filter(|s| s.name == name) {
                if first {
                    let kind = match s.reading {
                        Reading::Counter(_) => "counter",
                        Reading::Gauge(_) => "gauge",
                        Reading::Histogram(_) => "histogram",
                        Reading::Family(_) => "counter",
                    };
                    let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} {kind}", s.help);
                    first = false;
                }
                let value = match &s.reading {
                    Reading::Counter(c) => c.get() as i64,
                    Reading::Gauge(g) => g.get(),
                    Reading::Histogram(h) => {
                        h.render(&mut out, name, &s.labels);
                        continue;
                    }
                    Reading::Family(f) => {
                        f.render(&mut out, name, &s.labels);
                        continue;
                    }
                };
                if s.labels.is_empty() {
                    let _ = writeln!(out, "{name} {value}");
                } else {
                    let _ = writeln!(out, "{name}{{{}}} {value}", s.labels);
                }
            }
        }
        out
    }
}

/// One counter per signal, named as the Collector names each signal's items (`log_records`,
/// `spans`, `metric_points`).
#[derive(Clone)]
pub struct PerSignal([Counter; 3]);

impl PerSignal {
    fn new(
        registry: &Registry,
        names: [&'static str; 3],
        help: &'static str,
        labels: &[(&str, &str)],
    ) -> Self {
        PerSignal(names.map(|name| registry.counter(name, help, labels)))
    }

    pub fn of(&self, signal: Signal) -> &Counter {
        &self.0[match signal {
            Signal::Logs => 0,
            Signal::Traces => 1,
            Signal::Metrics => 2,
        }]
    }
}

/// Per-receiver counters, named as the OTel Collector's receiver helper names them.
#[derive(Clone)]
pub struct ReceiverMetrics {
    pub accepted: PerSignal,
    pub refused: PerSignal,
    /// Requests the memory limiter refused before reading them, so their items are not
    /// counted in `refused`.
    pub refused_requests: Counter,
    pub accepted_bytes: Counter,
    /// Connections closed at once because `max_connections` or the process-wide budget was
    /// reached.
    pub refused_connections: Counter,
    /// Requests whose body did not arrive within `read_timeout`.
    pub timed_out_requests: Counter,
    /// Requests refused by the receiver's authenticator.
    pub unauthenticated: Counter,
    /// Connections whose TLS handshake failed or timed out.
    pub tls_failures: Counter,
}

impl ReceiverMetrics {
    pub fn new(registry: &Registry, id: &str, transport: &str) -> Self {
        let labels = [("receiver", id), ("transport", transport)];
        ReceiverMetrics {
            accepted: PerSignal::new(
                registry,
                [
                    "otelcol_receiver_accepted_log_records_total",
                    "otelcol_receiver_accepted_spans_total",
                    "otelcol_receiver_accepted_metric_points_total",
                ],
                "Items successfully pushed into the pipeline.",
                &labels,
            ),
            refused: PerSignal::new(
                registry,
                [
                    "otelcol_receiver_refused_log_records_total",
                    "otelcol_receiver_refused_spans_total",
                    "otelcol_receiver_refused_metric_points_total",
                ],
                "Items that could not be pushed into the pipeline.",
                &labels,
            ),
            refused_requests: registry.counter(
                "sluice_receiver_refused_unread_requests_total",
                "Requests refused by the memory limiter before their body was read.",
                &labels,
            ),
            accepted_bytes: registry.counter(
                "sluice_receiver_accepted_bytes_total",
                "Request body bytes (as received on the wire) of accepted requests.",
                &labels,
            ),
            refused_connections: registry.counter(
                "sluice_receiver_refused_connections_total",
                "Connections closed on accept because a connection limit was reached.",
                &labels,
            ),
            timed_out_requests: registry.counter(
                "sluice_receiver_timed_out_requests_total",
                "Requests whose body did not arrive within read_timeout.",
                &labels,
            ),
            unauthenticated: registry.counter(
                "sluice_receiver_unauthenticated_requests_total",
                "Requests refused for missing or invalid credentials (401 / UNAUTHENTICATED).",
                &labels,
            ),
            tls_failures: registry.counter(
                "sluice_receiver_tls_handshake_failures_total",
                "Connections closed because their TLS handshake failed or timed out.",
                &labels,
            ),
        }
    }
}

/// Per-exporter counters and queue gauges.
#[derive(Clone)]
pub struct ExporterMetrics {
    pub sent: PerSignal,
    pub send_failed: PerSignal,
}

impl ExporterMetrics {
    pub fn new(registry: &Registry, id: &str) -> Self {
        let labels = [("exporter", id)];
        ExporterMetrics {
            sent: PerSignal::new(
                registry,
                [
                    "otelcol_exporter_sent_log_records_total",
                    "otelcol_exporter_sent_spans_total",
                    "otelcol_exporter_sent_metric_points_total",
                ],
                "Items successfully delivered to the destination.",
                &labels,
            ),
            send_failed: PerSignal::new(
                registry,
                [
                    "otelcol_exporter_send_failed_log_records_total",
                    "otelcol_exporter_send_failed_spans_total",
                    "otelcol_exporter_send_failed_metric_points_total",
                ],
                "Items in failed send attempts (each attempt counts; items are retried).",
                &labels,
            ),
        }
    }

    /// The queue gauges. The queue belongs to the pipeline, not the exporter, so the service
    /// registers these when it creates the queue.
    pub fn queue_gauges(
        registry: &Registry,
        id: &str,
        capacity: usize,
        capacity_bytes: usize,
    ) -> crate::pipeline::queue::Gauges {
        let labels = [("exporter", id)];
        registry
            .gauge(
                "otelcol_exporter_queue_capacity",
                "Capacity of the exporter's queue, in log records.",
                &labels,
            )
            .set(capacity as i64);
        registry
            .gauge(
                "sluice_exporter_queue_capacity_bytes",
                "Capacity of the exporter's queue, in request bytes (sending_queue.queue_size_bytes).",
                &labels,
            )
            .set(capacity_bytes.min(i64::MAX as usize) as i64);
        crate::pipeline::queue::Gauges {
            items: registry.gauge(
                "otelcol_exporter_queue_size",
                "Log records waiting in or being sent from the exporter's queue.",
                &labels,
            ),
            bytes: registry.gauge(
                "sluice_exporter_queue_size_bytes",
                "Request bytes (as received, in KiB steps) of what waits in or is being sent from the exporter's queue.",
                &labels,
            ),
        }
    }
}

/// Per-processor counters.
#[derive(Clone)]
pub struct ProcessorMetrics {
    pub dropped: Counter,
    pub errors: Counter,
}

impl ProcessorMetrics {
    pub fn new(registry: &Registry, id: &str, pipeline: &str) -> Self {
        let labels = [("processor", id), ("pipeline", pipeline)];
        ProcessorMetrics {
            dropped: registry.counter(
                "otelcol_processor_dropped_log_records_total",
                "Log records the processor dropped on purpose.",
                &labels,
            ),
            errors: registry.counter(
                "sluice_processor_failed_log_records_total",
                "Log records the processor could not process (kept or dropped per on_error).",
                &labels,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_one_header_per_metric_and_escaped_labels() {
        let r = Registry::default();
        let a = r.counter("x_total", "Things.", &[("receiver", "a\"b")]);
        let b = r.counter("x_total", "Things.", &[("receiver", "c")]);
        let g = r.gauge("y", "Level.", &[]);
        a.add(2);
        b.add(3);
        g.set(-1);
        let text = r.render();
        assert_eq!(text.matches("# TYPE x_total counter").count(), 1);
        assert!(text.contains("x_total{receiver=\"a\\\"b\"} 2\n"));
        assert!(text.contains("x_total{receiver=\"c\"} 3\n"));
        assert!(text.contains("y -1\n"));
    }

    #[test]
    fn histograms_render_cumulative_buckets_sum_and_count() {
        let r = Registry::default();
        let h = r.histogram(
            "lat_seconds",
            "Latency.",
            &[("exporter", "es")],
            &[0.01, 0.1],
        );
        h.observe(std::time::Duration::from_millis(5));
        h.observe(std::time::Duration::from_millis(50));
        h.observe(std::time::Duration::from_secs(2));
        let text = r.render();
        assert!(text.contains("# TYPE lat_seconds histogram\n"), "{text}");
        assert!(text.contains("lat_seconds_bucket{exporter=\"es\",le=\"0.01\"} 1\n"));
        assert!(text.contains("lat_seconds_bucket{exporter=\"es\",le=\"0.1\"} 2\n"));
        assert!(text.contains("lat_seconds_bucket{exporter=\"es\",le=\"+Inf\"} 3\n"));
        assert!(
            text.contains("lat_seconds_sum{exporter=\"es\"} 2.055\n"),
            "{text}"
        );
        assert!(text.contains("lat_seconds_count{exporter=\"es\"} 3\n"));
    }

    #[test]
    fn counter_families_grow_a_series_per_label_value() {
        let r = Registry::default();
        let f = r.counter_family("fail_total", "Failures.", &[("exporter", "es")], &["type"]);
        f.with(&["mapper_parsing_exception"]).add(2);
        f.with(&["mapper_parsing_exception"]).add(1);
        f.with(&["a\"b"]).add(1);
        let text = r.render();
        assert_eq!(text.matches("# TYPE fail_total counter").count(), 1);
        assert!(text.contains("fail_total{exporter=\"es\",type=\"mapper_parsing_exception\"} 3\n"));
        assert!(
            text.contains("fail_total{exporter=\"es\",type=\"a\\\"b\"} 1\n"),
            "{text}"
        );
    }
}
