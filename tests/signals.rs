//! Traces and metrics on the EDOT path: the OpenTelemetry Python SDK sends spans and metrics to
//! a sluice agent (gRPC or HTTP), the agent forwards them over OTLP/gRPC to a sluice gateway,
//! and the gateway's `otlphttp` exporter hands them to a test server. What arrives is compared
//! field by field with what the SDK exported.

mod common;

use std::time::Duration;

use common::{Launch, OtlpSink, Sluice, run_python};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value as PValue};
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
use prost::Message;
use serde_json::{Value as Json, json};

fn any_json(v: &Option<AnyValue>) -> Json {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(PValue::StringValue(s)) => json!(s),
        Some(PValue::BoolValue(b)) => json!(b),
        Some(PValue::IntValue(i)) => json!(i),
        Some(PValue::DoubleValue(d)) => json!(d),
        Some(PValue::ArrayValue(a)) => Json::Array(
            a.values
                .iter()
                .map(|v| any_json(&Some(v.clone())))
                .collect(),
        ),
        other => panic!("unexpected value {other:?}"),
    }
}

fn attrs_json(kvs: &[KeyValue]) -> Json {
    Json::Object(
        kvs.iter()
            .map(|kv| (kv.key.clone(), any_json(&kv.value)))
            .collect(),
    )
}

/// An attribute's value as JSON (the SDK may send integral floats as ints: compare as f64).
fn same(a: &Json, b: &Json) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn same_attrs(got: &Json, want: &Json) -> bool {
    let (Some(g), Some(w)) = (got.as_object(), want.as_object()) else {
        return false;
    };
    g.len() == w.len() && w.iter().all(|(k, v)| g.get(k).is_some_and(|x| same(x, v)))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn start_pair(sink: &OtlpSink) -> (Sluice, Sluice, u16, u16) {
    let gateway = Launch::fixture("gateway_grpc_traces_metrics")
        .port("SINK_PORT", sink.port)
        .start();
    let agent = Launch::fixture("agent_traces_metrics")
        .port("GATEWAY_PORT", gateway.port("GRPC_PORT"))
        .ready_on("HTTP_PORT")
        .start();
    let (grpc, http) = (agent.port("GRPC_PORT"), agent.port("HTTP_PORT"));
    (agent, gateway, grpc, http)
}

fn sdk_spans_and_metrics_arrive_field_by_field(protocol: &str) {
    let sink = OtlpSink::start(Duration::ZERO);
    let (_agent, _gateway, grpc, http) = start_pair(&sink);
    let endpoint = match protocol {
        "grpc" => format!("127.0.0.1:{grpc}"),
        _ => format!("http://127.0.0.1:{http}"),
    };
    let sent = run_python("send_telemetry.py", &[endpoint.as_str(), "40", protocol]);
    let want_spans = sent["spans"].as_array().unwrap();
    assert_eq!(want_spans.len(), 40);

    // The SDK exports when flushed; everything was acked by the time it exited, so it is
    // at the gateway's exporter already or about to be.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let (mut traces, mut metrics) = (Vec::new(), Vec::new());
    loop {
        traces.clear();
        metrics.clear();
        for r in sink.received.lock().unwrap().iter() {
            match r.path.as_str() {
                "/v1/traces" => {
                    traces.push(ExportTraceServiceRequest::decode(&r.body[..]).unwrap())
                }
                "/v1/metrics" => {
                    metrics.push(ExportMetricsServiceRequest::decode(&r.body[..]).unwrap())
                }
                other => panic!("unexpected path {other}"),
            }
        }
        let spans: usize = traces
            .iter()
            .flat_map(|t| &t.resource_spans)
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        if (spans >= 40 && !metrics.is_empty()) || std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    let mut got = std::collections::HashMap::new();
    for rs in traces.iter().flat_map(|t| &t.resource_spans) {
        let resource = attrs_json(&rs.resource.as_ref().unwrap().attributes);
        assert_eq!(resource["service.name"], "checkout");
        assert_eq!(resource["service.version"], "1.4.2");
        for ss in &rs.scope_spans {
            let scope = ss.scope.as_ref().unwrap();
            assert_eq!(
                (scope.name.as_str(), scope.version.as_str()),
                ("shop", "2.0.0")
            );
            for span in &ss.spans {
                assert!(
                    got.insert(hex(&span.span_id), span.clone()).is_none(),
                    "span {} arrived twice",
                    hex(&span.span_id)
                );
            }
        }
    }
    assert_eq!(got.len(), 40, "every span arrives exactly once");
    for want in want_spans {
        let span = &got[want["span_id"].as_str().unwrap()];
        assert_eq!(span.name, want["name"]);
        assert_eq!(hex(&span.trace_id), want["trace_id"]);
        assert_eq!(hex(&span.parent_span_id), want["parent_span_id"]);
        assert_eq!(i64::from(span.kind), want["kind"]);
        assert_eq!(span.start_time_unix_nano, want["start"]);
        assert_eq!(span.end_time_unix_nano, want["end"]);
        assert!(
            same_attrs(&attrs_json(&span.attributes), &want["attributes"]),
            "{:?} vs {}",
            span.attributes,
            want["attributes"]
        );
        let events = want["events"].as_array().unwrap();
        assert_eq!(span.events.len(), events.len());
        for (e, w) in span.events.iter().zip(events) {
            assert_eq!(e.name, w["name"]);
            assert_eq!(e.time_unix_nano, w["time"]);
            assert!(same_attrs(&attrs_json(&e.attributes), &w["attributes"]));
        }
        let links = want["links"].as_array().unwrap();
        assert_eq!(span.links.len(), links.len());
        for (l, w) in span.links.iter().zip(links) {
            assert_eq!(hex(&l.trace_id), w["trace_id"]);
            assert_eq!(hex(&l.span_id), w["span_id"]);
            assert!(same_attrs(&attrs_json(&l.attributes), &w["attributes"]));
        }
        let status = span.status.clone().unwrap_or_default();
        assert_eq!(i64::from(status.code), want["status"]["code"]);
        assert_eq!(status.message, want["status"]["message"]);
    }

    let mut orders = std::collections::BTreeMap::new();
    let mut latency = None;
    for rm in metrics.iter().flat_map(|m| &m.resource_metrics) {
        let resource = attrs_json(&rm.resource.as_ref().unwrap().attributes);
        assert_eq!(resource["service.name"], "checkout");
        for m in rm.scope_metrics.iter().flat_map(|s| &s.metrics) {
            match (m.name.as_str(), &m.data) {
                ("orders", Some(metric::Data::Sum(sum))) => {
                    assert!(sum.is_monotonic);
                    assert_eq!(m.description, "Orders placed");
                    for p in &sum.data_points {
                        let region = attrs_json(&p.attributes)["region"].clone();
                        let Some(number_data_point::Value::AsInt(v)) = p.value else {
                            panic!("orders is an int counter")
                        };
                        orders.insert(region.as_str().unwrap().to_string(), v);
                    }
                }
                ("latency", Some(metric::Data::Histogram(h))) => {
                    let p = &h.data_points[0];
                    latency = Some((p.count, p.sum.unwrap_or_default()));
                }
                (name, _) => panic!("unexpected metric {name}"),
            }
        }
    }
    assert_eq!(orders["eu"], sent["orders"]["eu"]);
    assert_eq!(orders["us"], sent["orders"]["us"]);
    let (count, sum) = latency.expect("the histogram arrived");
    assert_eq!(count, sent["latency"]["count"]);
    assert_eq!(sum, sent["latency"]["sum"].as_f64().unwrap());
}

#[test]
fn sdk_spans_and_metrics_cross_agent_and_gateway_over_grpc() {
    sdk_spans_and_metrics_arrive_field_by_field("grpc");
}

#[test]
fn sdk_spans_and_metrics_cross_agent_and_gateway_over_http() {
    sdk_spans_and_metrics_arrive_field_by_field("http");
}

#[test]
fn traces_and_metrics_requests_get_clear_answers() {
    let sluice = Launch::fixture("otlp_http_traces_debug").start();
    let http = sluice.port("HTTP_PORT");
    let post = |path: &str, ct: &str, body: &[u8]| {
        common::Client::connect(http)
            .unwrap()
            .request("POST", path, &[("Content-Type", ct)], body)
            .unwrap()
    };
    let pb = "application/x-protobuf";
    // A span whose trace id is 3 bytes long.
    let bad = [0x0a, 0x09, 0x12, 0x07, 0x12, 0x05, 0x0a, 0x03, 1, 2, 3];
    let r = post("/v1/traces", pb, &bad);
    assert_eq!(r.status, 400);
    let msg = String::from_utf8_lossy(&r.body);
    assert!(
        msg.contains("invalid ExportTraceServiceRequest: trace_id must be 16 bytes, not 3"),
        "{msg}"
    );
    let r = post(
        "/v1/traces",
        "application/json",
        br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"spanId":"nothex!!"}]}]}]}"#,
    );
    assert_eq!(r.status, 400);
    let msg = String::from_utf8_lossy(&r.body);
    assert!(
        msg.contains("resourceSpans[0].scopeSpans[0].spans[0].spanId"),
        "the JSON path of the bad field: {msg}"
    );
    let r = post("/v1/metrics", pb, b"");
    assert_eq!(
        r.status, 404,
        "no metrics pipeline takes data from this receiver"
    );
    assert!(String::from_utf8_lossy(&r.body).contains("no metrics pipeline"));
    let r = post("/v1/traces", pb, b"");
    assert_eq!(r.status, 200, "an empty request is valid");
}

/// The OTLP specification's JSON examples (`examples/trace.json`, `examples/metrics.json` in
/// opentelemetry-proto) are accepted over OTLP/HTTP and forwarded as protobuf with every
/// field intact.
#[test]
fn otlp_json_examples_from_the_specification_are_forwarded() {
    let sink = OtlpSink::start(Duration::ZERO);
    let sluice = Launch::fixture("otlp_http_traces_metrics_forward")
        .port("SINK_PORT", sink.port)
        .start();
    let (http, metrics_port) = (sluice.port("HTTP_PORT"), sluice.port("METRICS_PORT"));
    let fixture = |name: &str| {
        std::fs::read(format!(
            "{}/tests/fixtures/otlp/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    };
    for (path, file) in [
        ("/v1/traces", "trace.json"),
        ("/v1/metrics", "metrics.json"),
    ] {
        let r = common::Client::connect(http)
            .unwrap()
            .request(
                "POST",
                path,
                &[("Content-Type", "application/json")],
                &fixture(file),
            )
            .unwrap();
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.body, b"{}", "an empty response, in JSON");
    }
    assert_eq!(sink.wait_for(2, Duration::from_secs(20)), 2);
    let got = sink.received.lock().unwrap().clone();
    let body = |p: &str| {
        got.iter()
            .find(|r| r.path == p)
            .unwrap_or_else(|| panic!("nothing on {p}"))
            .body
            .clone()
    };

    // Counted per signal, under the Collector's names.
    let series =
        |name: &str, labels: &str| common::metric(metrics_port, &format!("{name}{{{labels}}}"));
    let http_labels = r#"receiver="otlp",transport="http""#;
    assert_eq!(
        series("otelcol_receiver_accepted_spans_total", http_labels),
        1
    );
    assert_eq!(
        series("otelcol_receiver_accepted_metric_points_total", http_labels),
        4
    );
    assert_eq!(
        series("otelcol_receiver_accepted_log_records_total", http_labels),
        0
    );
    assert_eq!(
        series(
            "otelcol_exporter_sent_spans_total",
            r#"exporter="otlphttp""#
        ),
        1
    );
    assert_eq!(
        series(
            "otelcol_exporter_sent_metric_points_total",
            r#"exporter="otlphttp""#
        ),
        4
    );

    let traces = ExportTraceServiceRequest::decode(&body("/v1/traces")[..]).unwrap();
    let rs = &traces.resource_spans[0];
    assert_eq!(
        attrs_json(&rs.resource.as_ref().unwrap().attributes),
        json!({"service.name": "my.service"})
    );
    let ss = &rs.scope_spans[0];
    let scope = ss.scope.as_ref().unwrap();
    assert_eq!(
        (scope.name.as_str(), scope.version.as_str()),
        ("my.library", "1.0.0")
    );
    assert_eq!(
        attrs_json(&scope.attributes),
        json!({"my.scope.attribute": "some scope attribute"})
    );
    let span = &ss.spans[0];
    assert_eq!(hex(&span.trace_id), "5b8efff798038103d269b633813fc60c");
    assert_eq!(hex(&span.span_id), "eee19b7ec3c1b174");
    assert_eq!(hex(&span.parent_span_id), "eee19b7ec3c1b173");
    assert_eq!(span.name, "I'm a server span");
    assert_eq!(span.start_time_unix_nano, 1_544_712_660_000_000_000);
    assert_eq!(span.end_time_unix_nano, 1_544_712_661_000_000_000);
    assert_eq!(span.kind, 2, "SPAN_KIND_SERVER");
    assert_eq!(
        attrs_json(&span.attributes),
        json!({"my.span.attr": "some value"})
    );

    let metrics = ExportMetricsServiceRequest::decode(&body("/v1/metrics")[..]).unwrap();
    let ms = &metrics.resource_metrics[0].scope_metrics[0].metrics;
    let names: Vec<_> = ms.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "my.counter",
            "my.gauge",
            "my.histogram",
            "my.exponential.histogram"
        ]
    );
    match ms[0].data.as_ref().unwrap() {
        metric::Data::Sum(sum) => {
            assert!(sum.is_monotonic);
            assert_eq!(sum.aggregation_temporality, 1);
            let p = &sum.data_points[0];
            assert_eq!(p.value, Some(number_data_point::Value::AsDouble(5.0)));
            assert_eq!(p.start_time_unix_nano, 1_544_712_660_300_000_000);
            assert_eq!(
                attrs_json(&p.attributes),
                json!({"my.counter.attr": "some value"})
            );
        }
        other => panic!("my.counter is a sum, not {other:?}"),
    }
    match ms[2].data.as_ref().unwrap() {
        metric::Data::Histogram(h) => {
            let p = &h.data_points[0];
            assert_eq!((p.count, p.sum), (2, Some(2.0)));
            assert_eq!(p.bucket_counts, [1, 1]);
            assert_eq!(p.explicit_bounds, [1.0]);
            assert_eq!((p.min, p.max), (Some(0.0), Some(2.0)));
        }
        other => panic!("my.histogram is a histogram, not {other:?}"),
    }
    match ms[3].data.as_ref().unwrap() {
        metric::Data::ExponentialHistogram(h) => {
            let p = &h.data_points[0];
            assert_eq!((p.count, p.zero_count, p.scale), (3, 1, 0));
            let pos = p.positive.as_ref().unwrap();
            assert_eq!((pos.offset, pos.bucket_counts.as_slice()), (1, &[0, 2][..]));
        }
        other => panic!("the last metric is an exponential histogram, not {other:?}"),
    }
}

/// A forwarding logs pipeline (nothing in it reads records) sends what it received byte for
/// byte, unknown fields included: the logs were checked and counted, never decoded.
#[test]
fn forwarded_logs_leave_byte_for_byte_as_they_came() {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    let sink = OtlpSink::start(Duration::ZERO);
    let sluice = Launch::fixture("otlp_http_logs_forward")
        .port("SINK_PORT", sink.port)
        .start();
    let http = sluice.port("HTTP_PORT");
    let mut body = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord {
                    severity_number: 9,
                    body: Some(AnyValue {
                        value: Some(PValue::StringValue("kept as sent".into())),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec();
    // A field this OTLP version does not define, inside the ResourceLogs: 99 = "future".
    let tail = [0x9a, 0x06, 0x06, b'f', b'u', b't', b'u', b'r', b'e'];
    body[1] += tail.len() as u8;
    body.extend_from_slice(&tail);
    let r = common::Client::connect(http)
        .unwrap()
        .post_logs(&body)
        .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(sink.wait_for(1, Duration::from_secs(20)), 1);
    assert_eq!(sink.received.lock().unwrap()[0].body, body);
}
