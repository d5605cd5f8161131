//! What decoding a request costs in memory, measured by sluice's own counting allocator: for
//! the costliest shapes each decoder accepts (empty records, attributes, map entries and array
//! elements, one-character lines, JSON of empty objects), the peak heap while decoding must stay
//! within the bytes per body byte that the receiver charges the memory limiter before it
//! decodes (`COST_PER_BYTE` of each decoder). A decoder that grew costlier than it says would
//! let concurrent requests past the limiter's budget.

mod common;

use std::sync::Mutex;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use sluice::alloc::{Counting, mark_installed, peak_bytes, reset_peak};

#[global_allocator]
static GLOBAL: Counting<std::alloc::System> = Counting::new(std::alloc::System);

/// Tests run on threads of their own; the peak is the process's, so they take turns.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The peak heap `work` adds, in bytes per byte of `input`.
fn cost_per_byte<T>(input: &[u8], work: impl FnOnce() -> T) -> f64 {
    mark_installed();
    reset_peak();
    let before = peak_bytes().unwrap();
    let out = std::hint::black_box(work());
    let peak = peak_bytes().unwrap();
    drop(out);
    (peak - before) as f64 / input.len() as f64
}

/// The costliest OTLP log requests of about 4 MB: each item is as small as the wire allows
/// (and as the decoders' density check lets through).
fn costly_log_requests() -> Vec<(&'static str, Vec<u8>)> {
    let mut out: Vec<(&'static str, Vec<u8>)> = common::costliest_records(2_000_000)
        .into_iter()
        .map(|(what, r)| (what, r.encode_to_vec()))
        .collect();
    // A record of 9 bytes (one fixed64), the fewest the density check lets in.
    let tiny = LogRecord {
        observed_time_unix_nano: 1,
        ..Default::default()
    };
    let records = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![tiny; 4_000_000 / 11],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    out.push(("records", records.encode_to_vec()));
    out
}

#[test]
fn decoded_otlp_logs_cost_at_most_what_is_charged() {
    let _turn = ONE_AT_A_TIME.lock().unwrap();
    for (what, request) in costly_log_requests() {
        let buf = Bytes::from(request);
        let cost = cost_per_byte(&buf, || sluice::otlp::logs::decode(&buf).unwrap());
        eprintln!("decoded {what}: {cost:.1} bytes per byte");
        assert!(
            cost <= sluice::otlp::logs::COST_PER_BYTE as f64,
            "{what}: {cost:.1} bytes per byte"
        );
        let cost = cost_per_byte(&buf, || sluice::otlp::raw::decode_logs(&buf).unwrap());
        eprintln!("encoded {what}: {cost:.1} bytes per byte");
        assert!(
            cost <= sluice::otlp::raw::COST_PER_BYTE as f64,
            "{what}: {cost:.1} bytes per byte"
        );
    }
}

#[test]
fn encoded_spans_cost_at_most_what_is_charged() {
    let _turn = ONE_AT_A_TIME.lock().unwrap();
    let span = Span {
        start_time_unix_nano: 1,
        ..Default::default()
    };
    let request = ExportTraceServiceRequest {
        resource_spans: vec![
            ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![span; 10],
                    ..Default::default()
                }],
                ..Default::default()
            };
            30_000
        ],
    }
    .encode_to_vec();
    let buf = Bytes::from(request);
    let cost = cost_per_byte(&buf, || sluice::otlp::raw::decode_traces(&buf).unwrap());
    eprintln!("spans, one resource each: {cost:.1} bytes per byte");
    assert!(cost <= sluice::otlp::raw::COST_PER_BYTE as f64, "{cost:.1}");
}

/// The peak heap `work` adds, over what `sluice::otlp::json::cost` charges for `body`.
fn json_share<T>(body: &str, work: impl FnOnce() -> T) -> f64 {
    let charged = sluice::otlp::json::cost(body.as_bytes()) as f64;
    cost_per_byte(body.as_bytes(), work) * body.len() as f64 / charged
}

#[test]
fn otlp_json_costs_at_most_what_is_charged() {
    let _turn = ONE_AT_A_TIME.lock().unwrap();
    let n = 1_000_000;
    let logs = |records: &str| {
        format!(r#"{{"resourceLogs":[{{"scopeLogs":[{{"logRecords":[{records}]}}]}}]}}"#)
    };
    let many = |item: &str, n: usize| vec![item; n].join(",");
    let shapes = [
        (
            "empty attributes",
            logs(&format!(r#"{{"attributes":[{}]}}"#, many("{}", n))),
        ),
        (
            "empty array values",
            logs(&format!(
                r#"{{"body":{{"arrayValue":{{"values":[{}]}}}}}}"#,
                many("{}", n)
            )),
        ),
        ("records of one field", logs(&many(r#"{"flags":1}"#, n / 3))),
        ("records of an empty key", logs(&many(r#"{"":1}"#, n / 2))),
        (
            "a map of many keys",
            logs(&format!(
                r#"{{"attributes":[{{"key":"k","value":{{"kvlistValue":{{"values":[{}]}}}}}}]}}"#,
                (0..n / 4)
                    .map(|i| format!(r#"{{"key":"{i}"}}"#))
                    .collect::<Vec<_>>()
                    .join(",")
            )),
        ),
        (
            "numbers",
            logs(&format!(
                r#"{{"body":{{"arrayValue":{{"values":[{}]}}}}}}"#,
                many(r#"{"intValue":1}"#, n / 4)
            )),
        ),
        (
            "long strings",
            logs(&many(
                &format!(r#"{{"body":{{"stringValue":"{}"}}}}"#, "x".repeat(4000)),
                1000,
            )),
        ),
    ];
    for (what, body) in shapes {
        let share = json_share(&body, || sluice::otlp::json::decode_logs(body.as_bytes()));
        eprintln!("JSON {what}: {share:.2} of the charge");
        assert!(share <= 1.0, "{what}: {share:.2} of the charge");
    }
    let spans = format!(
        r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{}]}}]}}]}}"#,
        many("{}", n)
    );
    let share = json_share(&spans, || {
        sluice::otlp::transcode::decode_traces(spans.as_bytes())
    });
    eprintln!("JSON spans: {share:.2} of the charge");
    assert!(share <= 1.0, "{share:.2}");
    let points = format!(
        r#"{{"resourceMetrics":[{{"scopeMetrics":[{{"metrics":[{{"name":"h","histogram":{{"dataPoints":[{{"bucketCounts":[{}]}}]}}}}]}}]}}]}}"#,
        many("1", n)
    );
    let share = json_share(&points, || {
        sluice::otlp::transcode::decode_metrics(points.as_bytes())
    });
    eprintln!("JSON bucket counts: {share:.2} of the charge");
    assert!(share <= 1.0, "{share:.2}");
}

#[test]
fn http_log_lines_cost_at_most_what_is_charged() {
    let _turn = ONE_AT_A_TIME.lock().unwrap();
    use sluice::receivers::http_logs::{COST_PER_BYTE, Framing, frame};
    // The shortest lines the density check lets in: one per 8 bytes.
    let body = Bytes::from("abcdefg\n".repeat(4 << 17));
    let cost = cost_per_byte(&body, || {
        frame(body.clone(), Framing::NewlineDelimited, 1).unwrap()
    });
    eprintln!("lines: {cost:.1} bytes per byte");
    assert!(cost <= COST_PER_BYTE as f64, "{cost:.1}");
    // Too dense, refused: it costs nothing like the records it may not have (it once reserved
    // room for as many as its size allowed, 28 bytes per byte).
    let dense = Bytes::from("a\n".repeat(5 << 20));
    let cost = cost_per_byte(&dense, || {
        assert!(frame(dense.clone(), Framing::NewlineDelimited, 1).is_none())
    });
    eprintln!("refused one-character lines: {cost:.1} bytes per byte");
    assert!(cost < 1.0, "{cost:.1}");
}
