//! The `batch` processor over real sockets: OTLP requests in, OTLP/HTTP batches out to a test
//! server that shows what was sent and when.

mod common;

use std::time::{Duration, Instant};

use common::{Client, Launch, OtlpSink, Sluice, metric};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value::Value as PValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use prost::Message;

fn start(sink: &OtlpSink, batch: &str) -> (Sluice, u16, u16) {
    let sluice = Launch::fixture("otlp_http_batch_to_sink")
        .put("batch", &format!("batch: {batch}"))
        .port("SINK_PORT", sink.port)
        .start();
    let (http, metrics) = (sluice.port("HTTP_PORT"), sluice.port("METRICS_PORT"));
    (sluice, http, metrics)
}

/// A request of `n` records whose bodies are `"{tag}-{i}"`.
fn request(tag: &str, n: usize) -> Vec<u8> {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: (0..n)
                    .map(|i| LogRecord {
                        body: Some(AnyValue {
                            value: Some(PValue::StringValue(format!("{tag}-{i}"))),
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

/// Sends each request on its own connection at once; returns (status, when answered) per request.
fn send_concurrently(port: u16, bodies: Vec<Vec<u8>>) -> Vec<(u16, Instant)> {
    let threads: Vec<_> = bodies
        .into_iter()
        .map(|body| {
            std::thread::spawn(move || {
                let resp = Client::connect(port).unwrap().post_logs(&body).unwrap();
                (resp.status, Instant::now())
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

fn bodies_sent(sink: &OtlpSink) -> Vec<Vec<String>> {
    sink.received
        .lock()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r.path, "/v1/logs");
            ExportLogsServiceRequest::decode(r.body.as_slice())
                .unwrap()
                .resource_logs
                .iter()
                .flat_map(|rl| &rl.scope_logs)
                .flat_map(|sl| &sl.log_records)
                .map(|lr| match &lr.body {
                    Some(AnyValue {
                        value: Some(PValue::StringValue(s)),
                    }) => s.clone(),
                    other => panic!("unexpected body {other:?}"),
                })
                .collect()
        })
        .collect()
}

#[test]
fn small_requests_leave_in_batches_of_the_configured_size_and_are_answered_after_delivery() {
    let hold = Duration::from_millis(400);
    let sink = OtlpSink::start(hold);
    let (_sluice, port, metrics) = start(
        &sink,
        "{send_batch_size: 50, send_batch_max_size: 50, timeout: 30s}",
    );
    let bodies = (0..10).map(|t| request(&format!("t{t}"), 10)).collect();
    let answers = send_concurrently(port, bodies);

    let sent = bodies_sent(&sink);
    assert_eq!(
        sent.iter().map(Vec::len).collect::<Vec<_>>(),
        [50, 50],
        "100 records from 10 requests leave as two batches of 50"
    );
    let mut all: Vec<String> = sent.into_iter().flatten().collect();
    all.sort();
    let mut want: Vec<String> = (0..10)
        .flat_map(|t| (0..10).map(move |i| format!("t{t}-{i}")))
        .collect();
    want.sort();
    assert_eq!(all, want, "every record exactly once");

    let first_receipt = sink.received.lock().unwrap()[0].at;
    for (status, answered) in answers {
        assert_eq!(status, 200);
        assert!(
            answered >= first_receipt + hold,
            "a client was answered before the batch holding its records was delivered"
        );
    }
    assert_eq!(
        metric(
            metrics,
            "otelcol_processor_batch_batch_size_trigger_send_total{processor=\"batch\",pipeline=\"logs\"}"
        ),
        2
    );
}

#[test]
fn sigterm_sends_a_waiting_batch_at_once() {
    let sink = OtlpSink::start(Duration::ZERO);
    let (mut sluice, port, _) = start(&sink, "{send_batch_size: 1000, timeout: 60s}");
    let clients = std::thread::spawn(move || {
        send_concurrently(
            port,
            (0..3).map(|t| request(&format!("s{t}"), 10)).collect(),
        )
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(sink.count(), 0, "the batch waits for more records");
    let stopped = Instant::now();
    sluice.sigterm();
    assert_eq!(sink.wait_for(1, Duration::from_secs(10)), 1);
    assert!(stopped.elapsed() < Duration::from_secs(10));
    for (status, _) in clients.join().unwrap() {
        assert_eq!(status, 200);
    }
    assert_eq!(bodies_sent(&sink)[0].len(), 30);
    assert!(sluice.wait_exit(Duration::from_secs(10)).success());
}
