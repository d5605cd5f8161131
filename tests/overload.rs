//! Overload: clients send faster than a small `memory_limiter` allows while the next hop is
//! stalled. They must see 429 with `Retry-After`, sluice's memory must stay under the limit, and
//! once the next hop recovers every record a client retried must arrive.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Client, Launch, OtlpSink, metric, peak_rss_mib};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value::Value as PValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use prost::Message;

// Each request is about 0.9 MB on the wire and as much again decoded. Clients wait for their
// answer and answers wait for delivery, so what sluice holds is the requests in flight: 48
// clients could bring ~85 MB in, and the limiter must stop them at the soft limit (48 MiB).
const LIMIT_MIB: u64 = 128;
const SPIKE_MIB: u64 = 80;
const THREADS: usize = 48;
const REQUESTS_PER_THREAD: usize = 3;
const RECORDS: usize = 2000;

fn request(thread: usize, n: usize) -> Vec<u8> {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: (0..RECORDS)
                    .map(|i| LogRecord {
                        body: Some(AnyValue {
                            value: Some(PValue::StringValue(format!(
                                "{thread}-{n}-{i} {}",
                                "x".repeat(400)
                            ))),
                        }),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

/// The limiter measures the live heap, which falls as soon as delivered data is freed, so the
/// retries get in once the next hop recovers. (On RSS it refused forever: the allocator keeps
/// freed pages mapped.)
#[test]
fn refused_records_are_retried_and_all_arrive_with_memory_under_the_limit() {
    let sink = OtlpSink::start(Duration::ZERO);
    sink.paused.store(true, Ordering::Relaxed);
    let sluice = Launch::fixture("otlp_http_limited_to_sink")
        .env("LIMIT_MIB", &LIMIT_MIB.to_string())
        .env("SPIKE_MIB", &SPIKE_MIB.to_string())
        .port("SINK_PORT", sink.port)
        .start();
    let http = sluice.port("HTTP_PORT");

    // Clients that retry refused requests after Retry-After, as OTel SDKs do.
    let refusals = Arc::new(AtomicUsize::new(0));
    let hints_ok = Arc::new(AtomicBool::new(true));
    let closes_ok = Arc::new(AtomicBool::new(true));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (refusals, hints_ok) = (Arc::clone(&refusals), Arc::clone(&hints_ok));
            let closes_ok = Arc::clone(&closes_ok);
            std::thread::spawn(move || {
                let mut client = Client::connect(http).unwrap();
                for n in 0..REQUESTS_PER_THREAD {
                    let body = request(t, n);
                    loop {
                        let resp = client.post_logs(&body).unwrap();
                        match resp.status {
                            200 => break,
                            429 => {
                                refusals.fetch_add(1, Ordering::Relaxed);
                                let wait: u64 = match resp.header("retry-after") {
                                    Some(v) => v.parse().unwrap_or(0),
                                    None => 0,
                                };
                                if wait == 0 {
                                    hints_ok.store(false, Ordering::Relaxed);
                                }
                                // Over the memory limit the connection is closed too, so
                                // that its read buffer goes: the retry reconnects.
                                if resp.header("connection") != Some("close") {
                                    closes_ok.store(false, Ordering::Relaxed);
                                }
                                std::thread::sleep(Duration::from_secs(wait.max(1)));
                                client = Client::connect(http).unwrap();
                            }
                            other => panic!("unexpected status {other}"),
                        }
                    }
                }
            })
        })
        .collect();

    // Hold the next hop until the limiter has refused for a while, then let data through.
    let deadline = Instant::now() + Duration::from_secs(60);
    while refusals.load(Ordering::Relaxed) < THREADS * 2 {
        assert!(
            Instant::now() < deadline,
            "the memory limiter never refused"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(2));
    sink.paused.store(false, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    assert!(
        hints_ok.load(Ordering::Relaxed),
        "every 429 carries Retry-After"
    );
    assert!(
        closes_ok.load(Ordering::Relaxed),
        "every refusal over the memory limit closes the connection"
    );

    let want = THREADS * REQUESTS_PER_THREAD * RECORDS;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = BTreeSet::new();
    while seen.len() < want && Instant::now() < deadline {
        seen.clear();
        for r in sink.received.lock().unwrap().iter() {
            let req = ExportLogsServiceRequest::decode(&r.body[..]).unwrap();
            for lr in req
                .resource_logs
                .iter()
                .flat_map(|rl| &rl.scope_logs)
                .flat_map(|sl| &sl.log_records)
            {
                if let Some(AnyValue {
                    value: Some(PValue::StringValue(s)),
                }) = &lr.body
                {
                    seen.insert(s.split(' ').next().unwrap_or("").to_string());
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(seen.len(), want, "every record a client sent arrives");
    // The limit is on the live heap, what the limiter measures (README: size `limit_mib` below
    // the container's limit with room for the allocator). Resident memory sits above it by the
    // allocator's retained pages, thread stacks and, in this debug build, the binary's touched
    // pages: 113-136 MiB here against a heap peak near 60 MiB. It gets a loose bound, which
    // memory growing with the offered load would still break.
    let series =
        "sluice_memory_limiter_heap_peak_bytes{processor=\"memory_limiter\",pipeline=\"logs\"}";
    let heap_peak = metric(sluice.port("METRICS_PORT"), series) >> 20;
    let peak = peak_rss_mib(sluice.child.id());
    eprintln!(
        "refusals: {}, peak live heap {heap_peak} MiB, peak RSS {peak} MiB",
        refusals.load(Ordering::Relaxed)
    );
    assert!(
        heap_peak < LIMIT_MIB,
        "peak live heap {heap_peak} MiB is over limit_mib {LIMIT_MIB}"
    );
    assert!(
        peak < 2 * LIMIT_MIB,
        "peak resident memory {peak} MiB is over twice limit_mib {LIMIT_MIB}"
    );
}

/// A burst of large, costly requests at once: 8 OTLP/HTTP requests of 4 MB of empty attributes
/// (each about 160 MiB decoded) and 8 `http_logs` bodies of 10 MiB of short lines, all sent
/// together to a 400 MiB limiter. The limiter once looked at the heap only as each request
/// came in, so all of them got in before any had allocated: 1.3 GiB of heap. Now each request
/// reserves what it may cost before it is read and decoded, so the live heap stays under the
/// limit, every request is answered 200 or 429 with `Retry-After`, and some get through.
#[test]
fn a_burst_of_costly_requests_keeps_the_heap_under_the_limit() {
    use opentelemetry_proto::tonic::common::v1::KeyValue;
    let sluice = Launch::fixture("burst_limited_decoded").start();
    let (otlp, lines, metrics) = (
        sluice.port("HTTP_PORT"),
        sluice.port("LINES_PORT"),
        sluice.port("METRICS_PORT"),
    );
    let attributes = Arc::new(
        common::one_record(LogRecord {
            attributes: vec![KeyValue::default(); 2_000_000],
            ..Default::default()
        })
        .encode_to_vec(),
    );
    let text = Arc::new("abcdefg\n".repeat(10 << 17).into_bytes());
    let start = Arc::new(std::sync::Barrier::new(16));
    let mut clients = Vec::new();
    for i in 0..16 {
        let (attributes, text, start) = (attributes.clone(), text.clone(), start.clone());
        clients.push(std::thread::spawn(move || {
            let mut c = Client::connect(if i < 8 { otlp } else { lines }).unwrap();
            start.wait();
            let r = if i < 8 {
                c.post_logs(&attributes)
            } else {
                c.post(&text)
            };
            r.map(|r| (r.status, r.header("retry-after").map(str::to_string)))
        }));
    }
    let answers: Vec<_> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    for a in &answers {
        match a {
            Ok((200, _)) => {}
            Ok((429, retry)) => assert_eq!(retry.as_deref(), Some("1"), "{answers:?}"),
            other => panic!("{other:?} in {answers:?}"),
        }
    }
    let series =
        "sluice_memory_limiter_heap_peak_bytes{processor=\"memory_limiter\",pipeline=\"logs\"}";
    let heap_peak = metric(metrics, series) >> 20;
    eprintln!("peak live heap {heap_peak} MiB");
    assert!(
        answers.iter().any(|a| matches!(a, Ok((200, _)))),
        "{answers:?}"
    );
    assert!(
        heap_peak <= 400,
        "peak live heap {heap_peak} MiB over limit_mib 400"
    );
}
