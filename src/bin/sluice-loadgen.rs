//! `sluice-loadgen`: an OTLP load generator for benchmarks (here and in `deploy/bench`): logs
//! by default, or spans or metric data points (`--signal`).
//!
//! ```text
//! sluice-loadgen http://127.0.0.1:4318 --connections 100 --records 100 --duration 20
//! sluice-loadgen grpc://127.0.0.1:4317 --rate 200000          # records/s over all connections
//! sluice-loadgen http://127.0.0.1:4318 --signal metrics       # 100 data points per request
//! sluice-loadgen http://127.0.0.1:4318 --acked acked.txt --retry-for 60   # fault drills
//! ```
//!
//! `--acked FILE` (logs, for `bench/drills.sh`) numbers every record: bodies are `drill-N`, N
//! unique over the run. A refused or failed request is sent again with the same records until
//! it is accepted, as an SDK retries, for up to `--retry-for` seconds past `--duration`; the
//! first number of every accepted request goes to FILE, one per line after a `records R` line,
//! so a checker knows exactly which records the sender was told were taken.
//!
//! Each connection sends one request at a time (HTTP/1.1 keep-alive, or one HTTP/2 connection
//! per gRPC client) and waits for the answer, so what it reports is what the server accepted:
//! records in 2xx / gRPC OK answers per second. Refusals (429, RESOURCE_EXHAUSTED, 503,
//! UNAVAILABLE) are counted apart and their retry hint is honoured, as an OTel SDK would.
//! Requests are built once, up front, from realistic records (resource with service and k8s
//! attributes, severity, a message, ids, four attributes), so the generator spends its CPU on
//! the wire, not on encoding.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use opentelemetry_proto::tonic::common::v1::{self as otlp_common, any_value};
use sluice::model::{KeyValue, LogBatch, LogRecord, Origin, Str, Value};
use tokio::net::TcpStream;

#[derive(Parser, Clone)]
#[command(name = "sluice-loadgen", version, about = "OTLP load generator")]
struct Args {
    /// `http://host:port` (OTLP/HTTP, POST /v1/logs) or `grpc://host:port` (OTLP/gRPC).
    endpoint: String,
    /// What to send: `logs`, `traces` (spans of a checkout service, every other one with an
    /// event) or `metrics` (pod gauges and counters: five metrics per pod, as kubelet stats
    /// arrive). `--records` counts log records, spans or data points.
    #[arg(long, default_value = "logs")]
    signal: String,
    /// Concurrent connections, each with one request in flight.
    #[arg(long, default_value_t = 10)]
    connections: usize,
    /// Log records per request.
    #[arg(long, default_value_t = 100)]
    records: usize,
    /// Target records per second over all connections; 0 sends as fast as answers come.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Seconds to run.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Request compression: none, gzip or zstd.
    #[arg(long, default_value = "none")]
    compression: String,
    /// Number every log record and write what was accepted to this file (see above).
    #[arg(long)]
    acked: Option<std::path::PathBuf>,
    /// With `--acked`: how long past `--duration` a request not yet accepted is retried.
    #[arg(long, default_value_t = 0.0)]
    retry_for: f64,
    /// With `--acked`: the first record number, so that runs into one sink do not overlap.
    #[arg(long, default_value_t = 0)]
    first_number: u64,
}

/// The next record number (`--acked`).
static NUMBERED: AtomicU64 = AtomicU64::new(0);

/// A request whose records are numbered `first..first + n` (`--acked`).
fn numbered(args: &Args, proto: Proto, template: &mut LogBatch, first: u64) -> Bytes {
    for (i, r) in template.records.iter_mut().enumerate() {
        r.body = Value::Str(Str::from(format!("drill-{}", first + i as u64)));
    }
    let mut body = Vec::new();
    sluice::otlp::logs::encode(template, &mut body);
    wrap(args, proto, &body).expect("compression checked at start")
}

#[derive(Default)]
struct Totals {
    requests: AtomicU64,
    accepted: AtomicU64,
    refused: AtomicU64,
    failed: AtomicU64,
    bytes: AtomicU64,
    /// The first failure, to say why requests failed.
    first_failure: std::sync::Mutex<Option<String>>,
}

#[derive(Clone, Copy, PartialEq)]
enum Proto {
    Http,
    Grpc,
}

/// How one request ended.
enum Answer {
    Accepted,
    /// Retryable refusal, with the server's hint.
    Refused(Option<Duration>),
    Failed(String),
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (proto, authority) = match args.endpoint.split_once("://") {
        Some(("http", a)) => (Proto::Http, a.trim_end_matches('/').to_string()),
        Some(("grpc", a)) => (Proto::Grpc, a.trim_end_matches('/').to_string()),
        _ => bail!(
            "endpoint must be http://host:port or grpc://host:port, not {:?}",
            args.endpoint
        ),
    };
    if args.connections == 0 || args.records == 0 {
        bail!("--connections and --records must be at least 1");
    }
    if args.acked.is_some() && args.signal != "logs" {
        bail!("--acked numbers log records; use it with --signal logs");
    }
    NUMBERED.store(args.first_number, Ordering::Relaxed);
    let bodies = requests(&args, proto)?;
    let size = bodies[0].ready.len();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let totals = Arc::new(Totals::default());
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(args.duration);
    let latencies = rt.block_on(async {
        let mut tasks = Vec::new();
        for c in 0..args.connections {
            let (args, authority, bodies, totals) = (
                args.clone(),
                authority.clone(),
                bodies.clone(),
                Arc::clone(&totals),
            );
            tasks.push(tokio::spawn(async move {
                connection(c, args, proto, authority, bodies, totals, deadline).await
            }));
        }
        let mut all = Vec::new();
        let mut acked = Vec::new();
        for t in tasks {
            if let Ok((l, a)) = t.await {
                all.extend(l);
                acked.extend(a);
            }
        }
        (all, acked)
    });
    let (latencies, acked) = latencies;
    let secs = started.elapsed().as_secs_f64();
    report(&args, &totals, latencies, secs, size);
    if let Some(path) = &args.acked {
        let mut out = format!("records {}\n", args.records);
        for first in &acked {
            out.push_str(&first.to_string());
            out.push('\n');
        }
        std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))?;
        let unanswered = NUMBERED.load(Ordering::Relaxed)
            - args.first_number
            - acked.len() as u64 * args.records as u64;
        println!("numbered_records_never_accepted={unanswered}");
    }
    Ok(())
}

/// A request body, ready to send; or, for metrics, a template whose timestamps are set anew for
/// every send: a series' point at a given time exists once, and a gateway that groups points
/// into time series documents rightly refuses the same series and time sent twice.
#[derive(Clone)]
struct Body {
    ready: Bytes,
    /// The uncompressed request and where its timestamps are (metrics only).
    template: Arc<(Vec<u8>, Vec<usize>)>,
}

/// The timestamp placeholder in metric templates, found again by its bytes.
const STAMP: u64 = 0x5a17_ce5a_17ce_5a17;

/// Sends so far over all connections: each metric send gets its own time.
static STAMPS: AtomicU64 = AtomicU64::new(0);

impl Body {
    fn new(args: &Args, proto: Proto, raw: Vec<u8>) -> anyhow::Result<Body> {
        let stamps: Vec<usize> = if args.signal == "metrics" {
            let pattern = STAMP.to_le_bytes();
            raw.windows(8)
                .enumerate()
                .filter(|(_, w)| *w == pattern)
                .map(|(i, _)| i)
                .collect()
        } else {
            Vec::new()
        };
        let ready = wrap(args, proto, &raw)?;
        Ok(Body {
            ready,
            template: Arc::new((raw, stamps)),
        })
    }

    /// The bytes to send now.
    fn next(&self, args: &Args, proto: Proto) -> Bytes {
        let (raw, stamps) = &*self.template;
        if stamps.is_empty() {
            return self.ready.clone();
        }
        let n = STAMPS.fetch_add(1, Ordering::Relaxed);
        // A millisecond apart: Elasticsearch keeps metric times at millisecond precision.
        let time = 1_763_800_000_000_000_000u64 + n * 1_000_000;
        let mut body = raw.clone();
        for &at in stamps {
            body[at..at + 8].copy_from_slice(&time.to_le_bytes());
        }
        wrap(args, proto, &body).unwrap_or_else(|_| self.ready.clone())
    }
}

/// Compresses and frames a request body as `args` say.
fn wrap(args: &Args, proto: Proto, body: &[u8]) -> anyhow::Result<Bytes> {
    let body = match args.compression.as_str() {
        "none" => body.to_vec(),
        "gzip" => {
            use std::io::Write;
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(body)?;
            enc.finish()?
        }
        "zstd" => zstd::encode_all(body, 1)?,
        other => bail!("--compression must be none, gzip or zstd, not {other:?}"),
    };
    Ok(match proto {
        Proto::Http => Bytes::from(body),
        Proto::Grpc => sluice::otlp::grpc::frame(&body, args.compression != "none"),
    })
}

/// Sixteen different requests, so the server does not see one body over and over.
fn requests(args: &Args, proto: Proto) -> anyhow::Result<Vec<Body>> {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut out = Vec::new();
    for _ in 0..16 {
        let body = match args.signal.as_str() {
            "logs" => {
                let batch = batch(args.records, &mut next);
                let mut body = Vec::new();
                sluice::otlp::logs::encode(&batch, &mut body);
                body
            }
            "traces" => spans(args.records, &mut next),
            "metrics" => data_points(args.records, &mut next),
            other => bail!("--signal must be logs, traces or metrics, not {other:?}"),
        };
        out.push(Body::new(args, proto, body)?);
    }
    Ok(out)
}

fn kv(k: &str, v: any_value::Value) -> otlp_common::KeyValue {
    otlp_common::KeyValue {
        key: k.into(),
        value: Some(otlp_common::AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

fn text(t: &str) -> any_value::Value {
    any_value::Value::StringValue(t.into())
}

fn resource() -> Option<opentelemetry_proto::tonic::resource::v1::Resource> {
    Some(opentelemetry_proto::tonic::resource::v1::Resource {
        attributes: vec![
            kv("service.name", text("checkout")),
            kv("service.version", text("1.4.2")),
            kv("k8s.namespace.name", text("shop")),
            kv("k8s.pod.name", text("checkout-7d9f8b6c4-x2x9z")),
            kv("host.name", text("node-3")),
        ],
        ..Default::default()
    })
}

/// An `ExportTraceServiceRequest` of `n` server spans, five attributes each, every other one
/// with an event.
fn spans(n: usize, next: &mut impl FnMut() -> u64) -> Vec<u8> {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, span};
    use prost::Message;
    let spans = (0..n)
        .map(|i| {
            let r = next();
            let start = 1_763_800_000_000_000_000 + i as u64 * 1_000_000;
            Span {
                trace_id: r.to_le_bytes().repeat(2),
                span_id: (r ^ 0x5555).to_le_bytes().to_vec(),
                parent_span_id: (r >> 3).to_le_bytes().to_vec(),
                name: "GET /api/orders/{id}".into(),
                kind: 2,
                start_time_unix_nano: start,
                end_time_unix_nano: start + (r >> 40) % 500_000_000,
                attributes: vec![
                    kv(
                        "http.request.method",
                        text(["GET", "POST"][(r >> 32) as usize % 2]),
                    ),
                    kv("http.route", text("/api/orders/{id}")),
                    kv(
                        "http.response.status_code",
                        any_value::Value::IntValue(
                            [200, 200, 201, 404, 500][(r >> 36) as usize % 5],
                        ),
                    ),
                    kv("user.id", text(&format!("u{}", (r >> 8) % 10_000))),
                    kv("server.address", text("checkout.shop.svc")),
                ],
                events: if i % 2 == 0 {
                    vec![span::Event {
                        time_unix_nano: start + 1_000,
                        name: "cache.miss".into(),
                        attributes: vec![kv("cache.key", text(&format!("order:{i}")))],
                        ..Default::default()
                    }]
                } else {
                    vec![]
                },
                ..Default::default()
            }
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

/// An `ExportMetricsServiceRequest` of `n` data points: five metrics (gauges and cumulative
/// counters) per pod, each pod's points sharing its time and attributes.
fn data_points(n: usize, next: &mut impl FnMut() -> u64) -> Vec<u8> {
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::metrics::v1::{
        Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, metric,
        number_data_point,
    };
    use prost::Message;
    const PER_POD: usize = 5;
    let pods = n.div_ceil(PER_POD);
    let base = next() % 1_000;
    // Set for every send (`Body::next`).
    let time = STAMP;
    let metrics = (0..PER_POD)
        .map(|m| {
            let points: Vec<NumberDataPoint> = (0..pods)
                .filter(|p| p * PER_POD + m < n)
                .map(|p| NumberDataPoint {
                    attributes: vec![
                        kv("k8s.pod.name", text(&format!("checkout-{base}-{p}"))),
                        kv("k8s.namespace.name", text("shop")),
                    ],
                    start_time_unix_nano: 1_763_700_000_000_000_000,
                    time_unix_nano: time,
                    value: Some(number_data_point::Value::AsDouble(
                        (next() % 10_000) as f64 / 7.0,
                    )),
                    ..Default::default()
                })
                .collect();
            Metric {
                name: format!("k8s.pod.metric_{m}"),
                unit: "1".into(),
                data: Some(if m % 2 == 0 {
                    metric::Data::Gauge(Gauge {
                        data_points: points,
                    })
                } else {
                    metric::Data::Sum(Sum {
                        data_points: points,
                        aggregation_temporality: 2,
                        is_monotonic: true,
                    })
                }),
                ..Default::default()
            }
        })
        .collect();
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(),
            scope_metrics: vec![ScopeMetrics {
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

fn batch(n: usize, next: &mut impl FnMut() -> u64) -> LogBatch {
    let kv = |k: &'static str, v: Value| -> KeyValue { (Str::from_static(k), v) };
    let s = |t: String| Value::Str(Str::from(t));
    let origin = Origin {
        resource: vec![
            kv("service.name", s("checkout".into())),
            kv("service.version", s("1.4.2".into())),
            kv("k8s.namespace.name", s("shop".into())),
            kv("k8s.pod.name", s("checkout-7d9f8b6c4-x2x9z".into())),
            kv("host.name", s("node-3".into())),
        ]
        .into(),
        scope_name: Str::from_static("checkout.logger"),
        scope_version: Str::from_static("1.0"),
        ..Default::default()
    };
    let records = (0..n)
        .map(|i| {
            let r = next();
            let level = [9u8, 9, 9, 13, 17][(r % 5) as usize];
            LogRecord {
                time_unix_nano: 1_763_800_000_000_000_000 + i as u64 * 1_000_000,
                severity_number: level,
                severity_text: Str::from_static(match level {
                    9 => "INFO",
                    13 => "WARN",
                    _ => "ERROR",
                }),
                body: s(format!(
                    "order {i} processed for user u{} in {} ms",
                    (r >> 8) % 10_000,
                    (r >> 24) % 500
                )),
                attributes: vec![
                    kv(
                        "http.method",
                        s(["GET", "POST"][(r >> 32) as usize % 2].into()),
                    ),
                    kv("http.route", s("/api/orders/{id}".into())),
                    kv(
                        "http.status_code",
                        Value::Int([200, 200, 201, 404, 500][(r >> 36) as usize % 5]),
                    ),
                    kv("user.id", s(format!("u{}", (r >> 40) % 10_000))),
                ],
                trace_id: (u128::from(next()) << 64 | u128::from(next())).to_le_bytes(),
                span_id: next().to_le_bytes(),
                flags: 1,
                ..Default::default()
            }
        })
        .collect();
    LogBatch {
        origins: vec![origin],
        records,
    }
}

/// One connection's loop: connect (again after the server closes it), send, classify.
async fn connection(
    index: usize,
    args: Args,
    proto: Proto,
    authority: String,
    bodies: Vec<Body>,
    totals: Arc<Totals>,
    deadline: Instant,
) -> (Vec<u32>, Vec<u64>) {
    let mut latencies = Vec::new();
    // `--acked`: the request in flight (retried until accepted) and the accepted ones.
    let mut template = args.acked.is_some().then(|| {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ index as u64;
        batch(args.records, &mut move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        })
    });
    let mut pending: Option<(u64, Bytes)> = None;
    let mut acked = Vec::new();
    let retry_until = deadline + Duration::from_secs_f64(args.retry_for);
    let running = |pending: &Option<(u64, Bytes)>| {
        let now = Instant::now();
        now < deadline || (pending.is_some() && now < retry_until)
    };
    // Each connection's share of the rate, as a fixed interval between its requests.
    let interval = (args.rate > 0).then(|| {
        Duration::from_secs_f64(args.records as f64 * args.connections as f64 / args.rate as f64)
    });
    let mut next_send = Instant::now()
        + interval.map_or(Duration::ZERO, |i| {
            i.mul_f64(index as f64 / args.connections as f64)
        });
    let mut sent = index;
    while running(&pending) {
        let mut sender = match Sender::connect(proto, &authority).await {
            Ok(s) => s,
            Err(e) => {
                totals.failed.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut first) = totals.first_failure.lock() {
                    first.get_or_insert(format!("{e:#}"));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        while running(&pending) {
            if let Some(i) = interval {
                let now = Instant::now();
                if next_send > now {
                    tokio::time::sleep(next_send - now).await;
                }
                next_send += i;
            }
            let body = match &mut template {
                None => bodies[sent % bodies.len()].next(&args, proto),
                Some(_) if pending.is_some() => pending.as_ref().expect("checked").1.clone(),
                Some(_) if Instant::now() >= deadline => break,
                Some(t) => {
                    let first = NUMBERED.fetch_add(args.records as u64, Ordering::Relaxed);
                    let body = numbered(&args, proto, t, first);
                    pending = Some((first, body.clone()));
                    body
                }
            };
            sent += 1;
            let len = body.len() as u64;
            let t = Instant::now();
            let answer = sender.send(&args, &authority, body).await;
            latencies.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
            totals.requests.fetch_add(1, Ordering::Relaxed);
            match answer {
                Answer::Accepted => {
                    if let Some((first, _)) = pending.take() {
                        acked.push(first);
                    }
                    totals
                        .accepted
                        .fetch_add(args.records as u64, Ordering::Relaxed);
                    totals.bytes.fetch_add(len, Ordering::Relaxed);
                }
                Answer::Refused(hint) => {
                    totals
                        .refused
                        .fetch_add(args.records as u64, Ordering::Relaxed);
                    let wait = hint
                        .unwrap_or(Duration::from_millis(100))
                        .min(Duration::from_secs(1));
                    tokio::time::sleep(wait).await;
                }
                Answer::Failed(why) => {
                    totals.failed.fetch_add(1, Ordering::Relaxed);
                    if let Ok(mut first) = totals.first_failure.lock() {
                        first.get_or_insert(why);
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    break; // reconnect
                }
            }
        }
    }
    (latencies, acked)
}

enum Sender {
    Http(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    Grpc(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

impl Sender {
    async fn connect(proto: Proto, authority: &str) -> anyhow::Result<Sender> {
        let tcp = TcpStream::connect(authority)
            .await
            .with_context(|| format!("connecting to {authority}"))?;
        tcp.set_nodelay(true)?;
        let io = TokioIo::new(tcp);
        Ok(match proto {
            Proto::Http => {
                let (send, conn) = hyper::client::conn::http1::handshake(io).await?;
                tokio::spawn(conn);
                Sender::Http(send)
            }
            Proto::Grpc => {
                let (send, conn) =
                    hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await?;
                tokio::spawn(conn);
                Sender::Grpc(send)
            }
        })
    }

    async fn send(&mut self, args: &Args, authority: &str, body: Bytes) -> Answer {
        let compressed = args.compression != "none";
        match self {
            Sender::Http(s) => {
                let mut req = Request::post(format!("http://{authority}/v1/{}", args.signal))
                    .header("content-type", "application/x-protobuf")
                    .header("host", authority);
                if compressed {
                    req = req.header("content-encoding", args.compression.as_str());
                }
                let Ok(req) = req.body(Full::new(body)) else {
                    return Answer::Failed("bad request".into());
                };
                let resp = match s.send_request(req).await {
                    Ok(r) => r,
                    Err(e) => return Answer::Failed(e.to_string()),
                };
                let status = resp.status().as_u16();
                let hint = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .map(Duration::from_secs);
                if resp.into_body().collect().await.is_err() {
                    return Answer::Failed("reading the answer".into());
                }
                match status {
                    200..=299 => Answer::Accepted,
                    429 | 503 => Answer::Refused(hint),
                    s => Answer::Failed(format!("HTTP {s}")),
                }
            }
            Sender::Grpc(s) => {
                let method = match args.signal.as_str() {
                    "traces" => sluice::otlp::grpc::TRACES_EXPORT,
                    "metrics" => sluice::otlp::grpc::METRICS_EXPORT,
                    _ => sluice::otlp::grpc::LOGS_EXPORT,
                };
                let mut req = Request::post(format!("http://{authority}{method}"))
                    .header("content-type", "application/grpc")
                    .header("te", "trailers");
                if compressed {
                    req = req.header("grpc-encoding", args.compression.as_str());
                }
                let Ok(req) = req.body(Full::new(body)) else {
                    return Answer::Failed("bad request".into());
                };
                if s.ready().await.is_err() {
                    return Answer::Failed("connection closed".into());
                }
                let resp = match s.send_request(req).await {
                    Ok(r) => r,
                    Err(e) => return Answer::Failed(e.to_string()),
                };
                let (parts, body) = resp.into_parts();
                let mut code = parts
                    .headers
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<i32>().ok());
                match body.collect().await {
                    Ok(collected) => {
                        if let Some(t) = collected.trailers() {
                            code = code.or_else(|| {
                                t.get("grpc-status")
                                    .and_then(|v| v.to_str().ok())
                                    .and_then(|v| v.parse().ok())
                            });
                        }
                    }
                    Err(e) => return Answer::Failed(e.to_string()),
                }
                match code {
                    Some(0) => Answer::Accepted,
                    // RESOURCE_EXHAUSTED, UNAVAILABLE: the hint is in RetryInfo; back off a bit.
                    Some(8) | Some(14) => Answer::Refused(None),
                    other => Answer::Failed(format!("grpc-status {other:?}")),
                }
            }
        }
    }
}

fn report(args: &Args, t: &Totals, mut latencies: Vec<u32>, secs: f64, size: usize) {
    latencies.sort_unstable();
    let pct = |p: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let i = ((latencies.len() - 1) as f64 * p).round() as usize;
        f64::from(latencies[i]) / 1000.0
    };
    let accepted = t.accepted.load(Ordering::Relaxed);
    println!(
        "{} connections, {} records ({} bytes) per request, {:.1} s",
        args.connections, args.records, size, secs
    );
    println!("requests={}", t.requests.load(Ordering::Relaxed));
    println!("accepted_records={accepted}");
    println!("refused_records={}", t.refused.load(Ordering::Relaxed));
    println!("failed_requests={}", t.failed.load(Ordering::Relaxed));
    if let Some(why) = t.first_failure.lock().ok().and_then(|f| f.clone()) {
        println!("first_failure={why:?}");
    }
    println!("accepted_records_per_s={:.0}", accepted as f64 / secs);
    println!(
        "accepted_mib_per_s={:.1}",
        t.bytes.load(Ordering::Relaxed) as f64 / secs / (1 << 20) as f64
    );
    println!(
        "latency_ms_p50={:.2} latency_ms_p99={:.2}",
        pct(0.5),
        pct(0.99)
    );
}
