//! The hot path stage by stage, on 256 KiB bodies of varied Apache common log lines (the shape
//! lading sends in the Vector guide): framing, regex parsing, JSON and text encoding, and all of
//! them together. `cargo bench --bench hot_path`; Throughput is in input bytes.

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use sluice::codec::{JsonEncoder, encode_text_batch};
use sluice::processors::regex_parser::{self, Config};
use sluice::receivers::http_logs::{Framing, frame};

/// The binary's allocator, so the figures match what `sluice` runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const GUIDE_RE: &str = r#"^(?P<host>[\w\.]+) - (?P<user>[\w\-]+) \[(?P<timestamp>[^\]]*)\] "(?P<method>[\w]+) (?P<path>[^"]*)" (?P<status>[\d]+) (?P<bytes_out>[\d]+)$"#;

/// A deterministic body of about `size` bytes of varied Apache common log lines.
fn apache_body(size: usize) -> Bytes {
    const USERS: [&str; 6] = ["frank", "lavon", "kaia-m", "ops", "j.doe", "r2d2"];
    const METHODS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "HEAD"];
    const PATHS: [&str; 6] = [
        "/",
        "/index.html",
        "/api/v1/orders",
        "/static/app.js",
        "/fortunate",
        "/a/b/c?d=e",
    ];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut out = String::with_capacity(size + 256);
    while out.len() < size {
        let r = next();
        out.push_str(&format!(
            "{}.{}.{}.{} - {} [{:02}/Feb/2023:{:02}:{:02}:{:02} +0000] \"{} {}{} HTTP/1.{}\" {} {}\n",
            r % 256,
            (r >> 8) % 256,
            (r >> 16) % 256,
            (r >> 24) % 256,
            USERS[(r >> 32) as usize % USERS.len()],
            1 + (r >> 3) % 28,
            (r >> 5) % 24,
            (r >> 7) % 60,
            (r >> 9) % 60,
            METHODS[(r >> 40) as usize % METHODS.len()],
            PATHS[(r >> 44) as usize % PATHS.len()],
            (r >> 48) % 1000,
            (r >> 58) % 2,
            [200, 201, 301, 404, 500][(r >> 50) as usize % 5],
            (r >> 20) % 100_000,
        ));
    }
    Bytes::from(out)
}

fn parser(regex: Option<&str>) -> Box<dyn sluice::pipeline::Processor> {
    let cfg = Config {
        regex: regex.map(str::to_string),
        preset: regex
            .is_none()
            .then_some(regex_parser::Preset::ApacheCommon),
        parse_from: "body".into(),
        ..Default::default()
    };
    regex_parser::standalone(&cfg).expect("valid parser config")
}

fn stages(c: &mut Criterion) {
    let body = apache_body(256 << 10);
    let lines = frame(body.clone(), Framing::NewlineDelimited, 1)
        .expect("apache lines")
        .len();
    let mut g = c.benchmark_group("apache_256KiB");
    g.throughput(Throughput::Bytes(body.len() as u64));
    eprintln!(
        "{} lines per 256 KiB body ({} bytes/line)",
        lines,
        body.len() / lines
    );

    g.bench_function("frame", |b| {
        b.iter(|| frame(body.clone(), Framing::NewlineDelimited, 1))
    });

    for (name, re) in [
        ("parse_guide_regex", Some(GUIDE_RE)),
        ("parse_preset_apache_common", None),
    ] {
        let mut p = parser(re);
        g.bench_function(name, |b| {
            b.iter_batched_ref(
                || frame(body.clone(), Framing::NewlineDelimited, 1).expect("apache lines"),
                |batch| p.process(batch),
                BatchSize::LargeInput,
            )
        });
    }

    let mut parsed = frame(body.clone(), Framing::NewlineDelimited, 1).expect("apache lines");
    parser(Some(GUIDE_RE)).process(&mut parsed);
    let mut out = Vec::with_capacity(4 << 20);
    let mut json = JsonEncoder::default();
    g.bench_function("encode_json", |b| {
        b.iter(|| {
            out.clear();
            json.encode_batch(&parsed, &mut out);
        })
    });
    g.bench_function("encode_text", |b| {
        b.iter(|| {
            out.clear();
            encode_text_batch(&parsed, &mut out);
        })
    });

    let mut p = parser(Some(GUIDE_RE));
    g.bench_function("drop_parsed", |b| {
        b.iter_batched(
            || {
                let mut batch =
                    frame(body.clone(), Framing::NewlineDelimited, 1).expect("apache lines");
                p.process(&mut batch);
                batch
            },
            drop,
            BatchSize::LargeInput,
        )
    });
    g.bench_function("frame_parse_encode_json", |b| {
        b.iter(|| {
            let mut batch =
                frame(body.clone(), Framing::NewlineDelimited, 1).expect("apache lines");
            p.process(&mut batch);
            out.clear();
            json.encode_batch(&batch, &mut out);
        })
    });
    g.finish();
}

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value as V};

fn kv(k: &str, v: V) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

fn s(t: &str) -> V {
    V::StringValue(t.into())
}

/// The resource of the checkout service the requests below come from.
fn checkout() -> Option<opentelemetry_proto::tonic::resource::v1::Resource> {
    Some(opentelemetry_proto::tonic::resource::v1::Resource {
        attributes: vec![
            kv("service.name", s("checkout")),
            kv("service.version", s("1.4.2")),
            kv("k8s.namespace.name", s("shop")),
            kv("k8s.pod.name", s("checkout-7d9f8b6c4-x2x9z")),
            kv("host.name", s("node-3")),
        ],
        ..Default::default()
    })
}

/// `len` bytes that look random, as SDKs' trace and span ids are (ids of one repeated byte
/// would compress unlike real ones).
fn random_id(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed ^ 0x2545_f491_4f6c_dd1d;
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29);
            (x >> 56) as u8
        })
        .collect()
}

/// An OTLP logs request like sluice-loadgen's: 100 records of a checkout service, each with
/// severity, a message, ids and four attributes, under five resource attributes.
fn otlp_request() -> Bytes {
    otlp_request_from(0)
}

/// [`otlp_request`] with records numbered from `first`, so that requests differ.
fn otlp_request_from(first: u64) -> Bytes {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::AnyValue;
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use prost::Message;
    let records = (first..first + 100)
        .map(|i| LogRecord {
            time_unix_nano: 1_763_800_000_000_000_000 + i,
            severity_number: 9,
            severity_text: "INFO".into(),
            body: Some(AnyValue {
                value: Some(s(&format!(
                    "order {i} processed for user u{} in {} ms",
                    i * 7,
                    i % 500
                ))),
            }),
            attributes: vec![
                kv("http.method", s("GET")),
                kv("http.route", s("/api/orders/{id}")),
                kv("http.status_code", V::IntValue(200)),
                kv("user.id", s(&format!("u{}", i * 7))),
            ],
            trace_id: random_id(i, 16),
            span_id: random_id(i, 8),
            flags: 1,
            ..Default::default()
        })
        .collect();
    Bytes::from(
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: checkout(),
                scope_logs: vec![ScopeLogs {
                    log_records: records,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
        .encode_to_vec(),
    )
}

/// OTLP logs in: decoded into records (pipelines that read them) against checked and counted
/// only (pipelines that forward them). Throughput is in records.
fn otlp(c: &mut Criterion) {
    let body = otlp_request();
    let mut g = c.benchmark_group("otlp_logs_100");
    g.throughput(Throughput::Elements(100));
    g.bench_function("decode", |b| {
        b.iter(|| sluice::otlp::logs::decode(&body).unwrap())
    });
    g.bench_function("check", |b| {
        b.iter(|| sluice::otlp::raw::decode_logs(&body).unwrap())
    });
    g.finish();
}

/// `_bulk` encoding in each mapping mode, on the OTLP request above decoded (100 records of a
/// checkout service, ~300 bytes of document each in otel mode), with exporter-assigned `_id`s
/// as the exporter writes them by default. Throughput is in documents.
fn es_bulk(c: &mut Criterion) {
    use sluice::exporters::elasticsearch::mapping::{BulkEncoder, Items, Mode};
    let batch = sluice::otlp::logs::decode(&otlp_request()).unwrap();
    let mut g = c.benchmark_group("es_bulk_100");
    g.throughput(Throughput::Elements(batch.len() as u64));
    for (name, mode) in [("otel", Mode::Otel), ("ecs", Mode::Ecs), ("raw", Mode::Raw)] {
        let mut enc = BulkEncoder::new(mode, None, None).with_ids(0x5eed);
        let mut out = Vec::new();
        g.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                enc.encode_batch(&batch, &mut out)
            })
        });
    }
    // The same documents from the request's bytes, as the exporter writes them when the
    // pipeline kept the logs encoded (no processor reads them).
    let encoded = sluice::otlp::raw::decode_logs(&otlp_request()).unwrap();
    let mut enc = BulkEncoder::new(Mode::Otel, None, None).with_ids(0x5eed);
    let mut scratch = sluice::exporters::elasticsearch::log_docs::LogScratch::default();
    let (mut out, mut items) = (Vec::new(), Items::default());
    g.bench_function("otel_from_otlp_bytes", |b| {
        b.iter(|| {
            out.clear();
            items = Items::default();
            for (entry, n) in &encoded.resources {
                enc.encode_raw_logs(entry, *n, &mut scratch, &mut out, &mut items);
            }
        })
    });
    g.finish();
}

/// `compression: gzip` on a bulk body of the size the exporter sends by default (`flush.bytes`
/// 5 MB): `otel` documents of requests like the one above, each request's records numbered on
/// (a body of one request repeated would compress unlike real data). Throughput is in bytes
/// before compression: gzip's cost follows them.
fn gzip_bulk_body(c: &mut Criterion) {
    use sluice::exporters::elasticsearch::mapping::{BulkEncoder, Mode};
    let mut enc = BulkEncoder::new(Mode::Otel, None, None).with_ids(0x5eed);
    let (mut body, mut docs) = (Vec::new(), 0);
    while body.len() < 5_000_000 {
        let batch = sluice::otlp::logs::decode(&otlp_request_from(docs as u64)).unwrap();
        docs += enc.encode_batch(&batch, &mut body).len();
    }
    println!("gzip_bulk_body: {docs} documents, {} bytes", body.len());
    let mut g = c.benchmark_group("gzip_bulk_body");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.sample_size(20);
    g.bench_function("otel_5MB", |b| {
        b.iter(|| sluice::exporters::client::gzip(&body))
    });
    g.finish();
}

/// 100 spans of a checkout service as an SDK sends them: five attributes each, every other span
/// with an event, every tenth with a link, under five resource attributes.
fn spans_request() -> Bytes {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, span};
    use prost::Message;
    let spans = (0..100u64)
        .map(|i| Span {
            trace_id: vec![i as u8 | 1; 16],
            span_id: vec![i as u8 | 1; 8],
            parent_span_id: vec![7; 8],
            name: "GET /api/orders/{id}".into(),
            kind: 2,
            start_time_unix_nano: 1_763_800_000_000_000_000 + i * 1_000,
            end_time_unix_nano: 1_763_800_000_000_000_000 + i * 1_000 + 250_000,
            attributes: vec![
                kv("http.request.method", s("GET")),
                kv("http.route", s("/api/orders/{id}")),
                kv("http.response.status_code", V::IntValue(200)),
                kv("user.id", s(&format!("u{}", i * 7))),
                kv("server.address", s("checkout.shop.svc")),
            ],
            events: if i % 2 == 0 {
                vec![span::Event {
                    time_unix_nano: 1_763_800_000_000_100_000 + i,
                    name: "cache.miss".into(),
                    attributes: vec![kv("cache.key", s(&format!("order:{i}")))],
                    ..Default::default()
                }]
            } else {
                vec![]
            },
            links: if i % 10 == 0 {
                vec![span::Link {
                    trace_id: vec![3; 16],
                    span_id: vec![4; 8],
                    ..Default::default()
                }]
            } else {
                vec![]
            },
            ..Default::default()
        })
        .collect();
    Bytes::from(
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: checkout(),
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
        .encode_to_vec(),
    )
}

/// 100 data points: `series` attribute sets (pods), each with `100 / series` gauge and sum
/// metrics, as kubelet stats arrive: every point of a pod shares its time and attributes.
fn metrics_request(series: usize) -> Bytes {
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::metrics::v1::{
        Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, metric,
        number_data_point,
    };
    use prost::Message;
    let per = 100 / series;
    let point = |pod: usize, v: f64| NumberDataPoint {
        attributes: vec![
            kv("k8s.pod.name", s(&format!("checkout-{pod}"))),
            kv("k8s.namespace.name", s("shop")),
        ],
        start_time_unix_nano: 1_763_700_000_000_000_000,
        time_unix_nano: 1_763_800_000_000_000_000,
        value: Some(number_data_point::Value::AsDouble(v)),
        ..Default::default()
    };
    let metrics = (0..per)
        .map(|m| Metric {
            name: format!("k8s.pod.metric_{m}"),
            unit: "1".into(),
            data: Some(if m % 2 == 0 {
                metric::Data::Gauge(Gauge {
                    data_points: (0..series).map(|p| point(p, m as f64 * 1.5)).collect(),
                })
            } else {
                metric::Data::Sum(Sum {
                    data_points: (0..series).map(|p| point(p, m as f64 * 100.0)).collect(),
                    aggregation_temporality: 2,
                    is_monotonic: true,
                })
            }),
            ..Default::default()
        })
        .collect();
    Bytes::from(
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(opentelemetry_proto::tonic::resource::v1::Resource {
                    attributes: vec![
                        kv("k8s.node.name", s("node-3")),
                        kv("service.name", s("kubelet")),
                    ],
                    ..Default::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    metrics,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
        .encode_to_vec(),
    )
}

/// `_bulk` encoding of spans and of metric data points in otel mode, straight from the OTLP
/// bytes as the exporter does. Throughput is in documents: 150 for the spans (100 spans, 50
/// events); for metrics 100 (one point per series) or 20 (5 points each).
fn es_bulk_signals(c: &mut Criterion) {
    use sluice::exporters::elasticsearch::bulk::Scratch;
    use sluice::exporters::elasticsearch::mapping::{BulkEncoder, Items, Mode};
    let spans = sluice::otlp::raw::decode_traces(&spans_request()).unwrap();
    let mut g = c.benchmark_group("es_bulk_signals");
    let mut enc = BulkEncoder::new(Mode::Otel, None, None).with_ids(0x5eed);
    let mut scratch = Scratch::default();
    let mut out = Vec::new();
    g.throughput(Throughput::Elements(150));
    g.bench_function("spans_100_and_50_events", |b| {
        b.iter(|| {
            out.clear();
            let mut items = Items::default();
            for (entry, n) in &spans.resources {
                enc.encode_spans(entry, *n, &mut scratch.spans, &mut out, &mut items);
            }
            items
        })
    });
    for (name, series) in [
        ("metrics_100_series_1_point", 100),
        ("metrics_20_series_5_points", 20),
    ] {
        let batch = sluice::otlp::raw::decode_metrics(&metrics_request(series)).unwrap();
        g.throughput(Throughput::Elements(series as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                let mut items = Items::default();
                enc.encode_metrics(&batch, &mut scratch.metrics, &mut out, &mut items);
                items
            })
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    stages,
    otlp,
    es_bulk,
    gzip_bulk_body,
    es_bulk_signals
);
criterion_main!(benches);
