//! Black-box tests of the `otlp` receiver over real sockets: real OTLP clients (the
//! OpenTelemetry Python SDK, and prost-encoded requests), records compared field by field as
//! the `tcp` exporter writes them.

mod common;

use std::io::Write;
use std::time::Duration;

use common::{Client, Collector, Launch, Response, Sluice, free_port, metric, run_python};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value as PValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use serde_json::Value as Json;

fn start() -> (Sluice, Collector, u16, u16) {
    let collector = Collector::start();
    let sluice = Launch::fixture("otlp_http_to_tcp")
        .env("TCP_ADDR", &collector.addr.to_string())
        .start();
    let (http, metrics) = (sluice.port("HTTP_PORT"), sluice.port("METRICS_PORT"));
    (sluice, collector, http, metrics)
}

fn send(port: u16, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    Client::connect(port)
        .unwrap()
        .request("POST", path, headers, body)
        .unwrap()
}

fn lines(collector: &Collector, n: usize) -> Vec<Json> {
    let got = collector.wait_for(n, Duration::from_secs(30));
    assert_eq!(got.len(), n, "records delivered");
    got.iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn kv(k: &str, v: PValue) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

fn request() -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![kv("service.name", PValue::StringValue("cart".into()))],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord {
                    time_unix_nano: 1_700_000_000_123_456_789,
                    severity_number: 17,
                    severity_text: "ERROR".into(),
                    body: Some(AnyValue {
                        value: Some(PValue::StringValue("payment \"declined\"".into())),
                    }),
                    attributes: vec![
                        kv("http.status_code", PValue::IntValue(502)),
                        kv("retry", PValue::BoolValue(true)),
                    ],
                    trace_id: vec![0xab; 16],
                    span_id: vec![0xcd; 8],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[test]
fn protobuf_and_json_logs_arrive_with_every_field() {
    let (_sluice, collector, port, metrics) = start();
    let proto = request().encode_to_vec();
    let resp = send(
        port,
        "/v1/logs",
        &[("Content-Type", "application/x-protobuf")],
        &proto,
    );
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
    assert_eq!(resp.header("content-type"), Some("application/x-protobuf"));
    assert!(resp.body.is_empty(), "an empty ExportLogsServiceResponse");

    let spec = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/otlp/logs.json"
    ))
    .unwrap();
    let resp = send(
        port,
        "/v1/logs",
        &[("Content-Type", "application/json")],
        &spec,
    );
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
    assert_eq!(resp.body, b"{}");

    let got = lines(&collector, 2);
    let p = &got[0];
    assert_eq!(p["body"], "payment \"declined\"");
    assert_eq!(p["timestamp"], "2023-11-14T22:13:20.123456789Z");
    assert_eq!(p["severity_text"], "ERROR");
    assert_eq!(p["severity_number"], 17);
    assert_eq!(p["attributes"]["http.status_code"], 502);
    assert_eq!(p["attributes"]["retry"], true);
    assert_eq!(p["resource"]["service.name"], "cart");
    assert_eq!(p["trace_id"], "ab".repeat(16));
    assert_eq!(p["span_id"], "cd".repeat(8));

    let j = &got[1];
    assert_eq!(j["body"], "Example log record");
    assert_eq!(j["severity_number"], 10);
    assert_eq!(j["trace_id"], "5b8efff798038103d269b633813fc60c");
    assert_eq!(
        j["attributes"]["array.attribute"],
        serde_json::json!(["many", "values"])
    );
    assert_eq!(
        j["attributes"]["map.attribute"]["some.map.key"],
        "some value"
    );
    assert_eq!(j["resource"]["service.name"], "my.service");

    let series =
        "otelcol_receiver_accepted_log_records_total{receiver=\"otlp\",transport=\"http\"}";
    assert_eq!(metric(metrics, series), 2);
}

#[test]
fn gzip_and_zstd_requests_are_decoded() {
    let (_sluice, collector, port, _) = start();
    let proto = request().encode_to_vec();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&proto).unwrap();
    let gz = gz.finish().unwrap();
    let zst = zstd::encode_all(&proto[..], 3).unwrap();
    for (encoding, body) in [("gzip", gz), ("zstd", zst)] {
        let resp = send(
            port,
            "/v1/logs",
            &[
                ("Content-Type", "application/x-protobuf"),
                ("Content-Encoding", encoding),
            ],
            &body,
        );
        assert_eq!(resp.status, 200, "{encoding}");
    }
    assert_eq!(lines(&collector, 2).len(), 2);
}

/// Decodes a `google.rpc.Status` body: (code, message).
fn status_of(resp: &Response) -> (i32, String) {
    if resp.header("content-type") == Some("application/json") {
        let v: Json = serde_json::from_slice(&resp.body).unwrap();
        return (
            v["code"].as_i64().unwrap() as i32,
            v["message"].as_str().unwrap().to_string(),
        );
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct Status {
        #[prost(int32, tag = "1")]
        code: i32,
        #[prost(string, tag = "2")]
        message: String,
    }
    let s = Status::decode(&resp.body[..]).unwrap();
    (s.code, s.message)
}

#[test]
fn malformed_requests_get_a_clear_4xx_with_a_status_body() {
    let (_sluice, collector, port, _) = start();
    let pb = [("Content-Type", "application/x-protobuf")];

    let resp = send(port, "/v1/logs", &pb, b"\x0a\x05ab");
    assert_eq!(resp.status, 400);
    let (code, message) = status_of(&resp);
    assert_eq!(code, 3, "INVALID_ARGUMENT");
    assert!(message.contains("truncated"), "{message}");

    let resp = send(
        port,
        "/v1/logs",
        &[("Content-Type", "application/json")],
        br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"spanId":"zz"}]}]}]}"#,
    );
    assert_eq!(resp.status, 400);
    let (_, message) = status_of(&resp);
    assert!(message.contains("logRecords[0].spanId"), "{message}");

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&request().encode_to_vec()).unwrap();
    let gz = gz.finish().unwrap();
    let resp = send(
        port,
        "/v1/logs",
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "gzip"),
        ],
        &gz[..gz.len() / 2],
    );
    assert_eq!(resp.status, 400, "truncated gzip");

    let resp = send(port, "/v1/logs", &[("Content-Type", "text/plain")], b"hi");
    assert_eq!(resp.status, 415);
    assert_eq!(send(port, "/v1/traces", &pb, b"").status, 404);
    assert_eq!(send(port, "/elsewhere", &pb, b"").status, 404);
    let resp = Client::connect(port)
        .unwrap()
        .request("GET", "/v1/logs", &pb, b"")
        .unwrap();
    assert_eq!(resp.status, 405);

    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(collector.count(), 0, "nothing malformed is forwarded");
}

#[test]
fn a_full_pipeline_answers_429_with_retry_after_and_a_status() {
    // The exporter's port has no listener, so nothing leaves its one-record queue.
    let mut sluice = Launch::fixture("otlp_http_to_tcp")
        .env("TCP_ADDR", &format!("127.0.0.1:{}", free_port()))
        .env("QUEUE_SIZE", "1")
        .env("RETRY_AFTER", "3s")
        .start();
    let (http, metrics) = (sluice.port("HTTP_PORT"), sluice.port("METRICS_PORT"));
    let pb = [("Content-Type", "application/x-protobuf")];
    let held =
        std::thread::spawn(move || send(http, "/v1/logs", &pb, &request().encode_to_vec()).status);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while metric(metrics, r#"otelcol_exporter_queue_size{exporter="tcp"}"#) != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the first request is queued"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let refused = send(http, "/v1/logs", &pb, &request().encode_to_vec());
    assert_eq!(refused.status, 429);
    assert_eq!(refused.header("retry-after"), Some("3"));
    assert_eq!(status_of(&refused).0, 8, "RESOURCE_EXHAUSTED");
    let series = "otelcol_receiver_refused_log_records_total{receiver=\"otlp\",transport=\"http\"}";
    assert_eq!(metric(metrics, series), 1);
    // The held request cannot be delivered before the shutdown deadline: it is told to retry.
    sluice.sigterm();
    assert_eq!(held.join().unwrap(), 503);
    assert!(sluice.wait_exit(Duration::from_secs(10)).success());
}

/// Runs `tests/python/send_logs.py` against `port`; returns the ids it logged under.
fn python_sdk_sends(port: u16, n: usize) -> Json {
    python_sdk_sends_with(&format!("http://127.0.0.1:{port}/v1/logs"), n, "http")
}

fn python_sdk_sends_with(endpoint: &str, n: usize, protocol: &str) -> Json {
    run_python("send_logs.py", &[endpoint, &n.to_string(), protocol])
}

#[test]
fn python_sdk_logs_arrive_over_otlp_http_field_by_field() {
    let (_sluice, collector, port, _) = start();
    let n = 250;
    let ids = python_sdk_sends(port, n);
    check_python_records(&collector, n, &ids);
}

fn check_python_records(collector: &Collector, n: usize, ids: &Json) {
    let mut got = lines(collector, n);
    got.sort_by_key(|r| r["attributes"]["order.id"].as_i64());
    for (i, r) in got.iter().enumerate() {
        assert_eq!(r["body"], format!("order {i} failed"));
        assert_eq!(r["severity_number"], 13, "WARN");
        assert_eq!(r["severity_text"], "WARN");
        assert_eq!(r["attributes"]["order.id"], i);
        assert_eq!(r["attributes"]["user"], format!("u{i}"));
        assert_eq!(r["resource"]["service.name"], "checkout");
        assert_eq!(r["resource"]["service.version"], "1.4.2");
        assert_eq!(r["trace_id"], ids["trace_id"]);
        assert_eq!(r["span_id"], ids["span_id"]);
        assert!(r["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(collector.count(), n, "no duplicates");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(collector.count(), n, "no duplicates");
}

/// sluice with gRPC and HTTP enabled, feeding a TCP collector; returns (sluice, collector,
/// grpc port, metrics port).
fn start_grpc(extra: &str, exporter: &str) -> (Sluice, Collector, u16, u16) {
    let collector = Collector::start();
    let mut launch = Launch::fixture("otlp_grpc_http_to_tcp").put("grpc", extra);
    launch = if exporter.is_empty() {
        launch.env("TCP_ADDR", &collector.addr.to_string())
    } else {
        launch.env("TCP_ADDR", exporter).env("QUEUE_SIZE", "1")
    };
    let sluice = launch.start();
    let (grpc, metrics) = (sluice.port("GRPC_PORT"), sluice.port("METRICS_PORT"));
    (sluice, collector, grpc, metrics)
}

#[test]
fn python_sdk_logs_arrive_over_otlp_grpc_field_by_field() {
    let (_sluice, collector, port, metrics) = start_grpc("", "");
    let n = 250;
    let ids = python_sdk_sends_with(&format!("127.0.0.1:{port}"), n, "grpc");
    check_python_records(&collector, n, &ids);
    let series =
        "otelcol_receiver_accepted_log_records_total{receiver=\"otlp\",transport=\"grpc\"}";
    assert_eq!(metric(metrics, series), n as u64);
}

/// One raw unary call through grpcio; the status it saw, decoded with Google's own types.
fn grpc_call(port: u16, method: &str, body: &[u8], compression: &str) -> Json {
    let file = common::write_config("");
    std::fs::write(&file, body).unwrap();
    run_python(
        "grpc_call.py",
        &[
            &format!("127.0.0.1:{port}"),
            method,
            &file.to_string_lossy(),
            compression,
        ],
    )
}

const LOGS: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";

#[test]
fn grpc_answers_say_what_was_wrong() {
    let (_sluice, collector, port, _) = start_grpc("max_recv_msg_size_mib: 1", "");
    let ok = grpc_call(port, LOGS, &request().encode_to_vec(), "gzip");
    assert_eq!(ok["code"], "OK", "{ok}");
    let bad = grpc_call(port, LOGS, b"\x0a\x05ab", "");
    assert_eq!(bad["code"], "INVALID_ARGUMENT");
    assert!(
        bad["message"].as_str().unwrap().contains("truncated"),
        "{bad}"
    );
    let big = grpc_call(port, LOGS, &vec![0u8; 2 << 20], "");
    assert_eq!(big["code"], "RESOURCE_EXHAUSTED");
    assert!(
        big["retry_delay_s"].is_null(),
        "too large is not worth retrying"
    );
    let traces = grpc_call(
        port,
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        b"",
        "",
    );
    assert_eq!(traces["code"], "UNIMPLEMENTED");
    assert_eq!(lines(&collector, 1).len(), 1);
}

#[test]
fn full_pipeline_is_resource_exhausted_with_retry_info() {
    // The exporter's port has no listener: its one-record queue stays full.
    let dead = format!("127.0.0.1:{}", free_port());
    let (mut sluice, _collector, port, metrics) = start_grpc("retry_after: 2500ms", &dead);
    let held = std::thread::spawn(move || grpc_call(port, LOGS, &request().encode_to_vec(), ""));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while metric(metrics, r#"otelcol_exporter_queue_size{exporter="tcp"}"#) != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the first call is queued"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let refused = grpc_call(port, LOGS, &request().encode_to_vec(), "");
    assert_eq!(refused["code"], "RESOURCE_EXHAUSTED", "{refused}");
    assert_eq!(refused["retry_delay_s"], 2.5);
    sluice.sigterm();
    let held = held.join().unwrap();
    assert_eq!(held["code"], "UNAVAILABLE", "{held}");
    assert!(held["retry_delay_s"].is_number());
    assert!(sluice.wait_exit(Duration::from_secs(10)).success());
}

/// The EDOT guide's agent-to-gateway path: SDK -> sluice agent -> `otlp` (gRPC, DNS balancing)
/// or `otlphttp` exporter -> sluice gateway -> tcp. The gateway starts after the SDK has begun
/// sending, so the agent must hold its clients and retry; every record still arrives once,
/// unchanged.
fn agent_forwards_to_a_late_gateway(protocol: &str) {
    let collector = Collector::start();
    let gateway_port = free_port();
    let exporter = match protocol {
        "grpc" => format!(
            "otlp:\n  endpoint: 127.0.0.1:{gateway_port}\n  tls: {{ insecure: true }}\n  balancing: dns"
        ),
        _ => format!("otlphttp:\n  endpoint: http://127.0.0.1:{gateway_port}\n  compression: zstd"),
    };
    let exporter = format!(
        "{exporter}\n  retry_on_failure: {{ initial_interval: 100ms, max_interval: 500ms }}"
    );
    let listen = |port: &str| format!("{protocol}: {{ endpoint: '127.0.0.1:${{env:{port}}}' }}");
    let _agent = Launch::fixture("otlp_logs_to")
        .put("protocols", &listen("AGENT_PORT"))
        .put("exporter", &exporter)
        .env("EXPORTER", exporter.split(':').next().unwrap_or_default())
        .port("GATEWAY_PORT", gateway_port)
        .start();
    let agent_port = _agent.port("AGENT_PORT");
    let gateway = Launch::fixture("otlp_logs_to")
        .put("protocols", &listen("GATEWAY_PORT"))
        .put(
            "exporter",
            &format!("tcp: {{ endpoint: '{}' }}", collector.addr),
        )
        .env("EXPORTER", "tcp")
        .env("GATEWAY_PORT", &gateway_port.to_string());
    let n = 300;
    let endpoint = match protocol {
        "grpc" => format!("127.0.0.1:{agent_port}"),
        _ => format!("http://127.0.0.1:{agent_port}/v1/logs"),
    };
    let protocol_name = protocol.to_string();
    let sender = std::thread::spawn(move || python_sdk_sends_with(&endpoint, n, &protocol_name));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(collector.count(), 0);
    let _gateway = gateway.start();
    let ids = sender.join().unwrap();
    check_python_records(&collector, n, &ids);
}

#[test]
fn agent_forwards_sdk_logs_over_http_to_a_gateway_that_comes_up_late() {
    agent_forwards_to_a_late_gateway("http");
}

#[test]
fn agent_forwards_sdk_logs_over_grpc_to_a_gateway_that_comes_up_late() {
    agent_forwards_to_a_late_gateway("grpc");
}

#[test]
fn grpc_connections_are_closed_after_max_connection_age() {
    let (_sluice, collector, grpc, _) = start_grpc(
        "keepalive: { server_parameters: { max_connection_age: 1s, max_connection_age_grace: 1s } }",
        "",
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let lived = rt.block_on(async {
        use http_body_util::{BodyExt, Full};
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", grpc))
            .await
            .unwrap();
        let (mut send, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(tcp),
        )
        .await
        .unwrap();
        let opened = std::time::Instant::now();
        let ended = tokio::spawn(async move {
            let _ = conn.await;
            opened.elapsed()
        });
        let body = sluice::otlp::grpc::frame(&request().encode_to_vec(), false);
        let req = hyper::Request::post(format!(
            "http://127.0.0.1:{grpc}{}",
            sluice::otlp::grpc::LOGS_EXPORT
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(body))
        .unwrap();
        let resp = send.send_request(req).await.unwrap();
        let (parts, body) = resp.into_parts();
        let trailers = body.collect().await.unwrap().trailers().cloned();
        let status = parts
            .headers
            .get("grpc-status")
            .or(trailers.as_ref().and_then(|t| t.get("grpc-status")))
            .map(|v| v.to_str().unwrap().to_string());
        assert_eq!(status.as_deref(), Some("0"));
        tokio::time::timeout(Duration::from_secs(10), ended)
            .await
            .expect("the server closes the connection")
            .unwrap()
    });
    assert!(
        lived >= Duration::from_millis(900) && lived < Duration::from_secs(6),
        "connection lived {lived:?}"
    );
    assert_eq!(collector.wait_for(1, Duration::from_secs(5)).len(), 1);
}
