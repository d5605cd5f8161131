use super::*;
use crate::exporters::elasticsearch::mapping::{Mode, StaticIndices};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, Status, span::Event, span::Link,
};
use prost::Message;
use serde_json::{Value as Json, json};

fn s(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

fn i(k: &str, v: i64) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(v)),
        }),
        ..Default::default()
    }
}

fn request(span: Span) -> Bytes {
    let req = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    s("service.name", "checkout"),
                    s("data_stream.namespace", "prod"),
                ],
                dropped_attributes_count: 2,
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "io.opentelemetry.http".into(),
                    version: "1.2.0".into(),
                    attributes: vec![s("scope.k", "v")],
                    dropped_attributes_count: 0,
                }),
                spans: vec![span],
                schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
            }],
            schema_url: "https://opentelemetry.io/schemas/1.21.0".into(),
        }],
    };
    Bytes::from(req.encode_to_vec())
}

/// The action and document lines written for the spans of `body`.
fn encode(body: &Bytes, enc: &mut BulkEncoder) -> (Vec<(Json, Json)>, Items) {
    let batch = crate::otlp::raw::decode_traces(body).unwrap();
    let (mut out, mut items, mut scratch) = (Vec::new(), Items::default(), SpanScratch::default());
    for (entry, n) in &batch.resources {
        enc.encode_spans(entry, *n, &mut scratch, &mut out, &mut items);
    }
    assert_eq!(items.ends.last(), Some(&out.len()));
    let lines: Vec<Json> = out
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    let pairs = lines
        .chunks(2)
        .map(|p| (p[0].clone(), p[1].clone()))
        .collect();
    (pairs, items)
}

fn full_span() -> Span {
    Span {
        trace_id: (1..=16).collect(),
        span_id: (1..=8).collect(),
        trace_state: "vendor=1".into(),
        parent_span_id: (0..8).collect(),
        flags: 1,
        name: "GET /api/users".into(),
        kind: 2,
        start_time_unix_nano: 1_705_314_600_000_000_123,
        end_time_unix_nano: 1_705_314_600_150_000_123,
        attributes: vec![
            s("http.request.method", "GET"),
            i("http.response.status_code", 200),
            s("data_stream.dataset", "checkout"),
        ],
        dropped_attributes_count: 1,
        events: vec![Event {
            time_unix_nano: 1_705_314_600_100_000_000,
            name: "exception".into(),
            attributes: vec![s("exception.type", "ValueError"), s("event.name", "stale")],
            dropped_attributes_count: 3,
        }],
        dropped_events_count: 4,
        links: vec![Link {
            trace_id: (16..32).collect(),
            span_id: (8..16).collect(),
            trace_state: "t=2".into(),
            attributes: vec![s("link.type", "follows_from")],
            dropped_attributes_count: 5,
            flags: 0,
        }],
        dropped_links_count: 6,
        status: Some(Status {
            message: "boom".into(),
            code: 2,
        }),
    }
}

#[test]
fn a_span_becomes_the_collectors_otel_document_and_its_event_a_log_document() {
    let mut enc = BulkEncoder::new(Mode::Otel, None, None);
    let (docs, items) = encode(&request(full_span()), &mut enc);
    assert_eq!(docs.len(), 2, "the span and its event");
    let resource = json!({
        "schema_url": "https://opentelemetry.io/schemas/1.21.0",
        "attributes": {"service.name": "checkout"},
        "dropped_attributes_count": 2
    });
    let scope = json!({
        "schema_url": "https://opentelemetry.io/schemas/1.26.0",
        "name": "io.opentelemetry.http", "version": "1.2.0",
        "attributes": {"scope.k": "v"}
    });
    assert_eq!(
        docs[0].0,
        json!({"create": {"_index": "traces-checkout.otel-prod"}})
    );
    assert_eq!(
        docs[0].1,
        json!({
            "@timestamp": "2024-01-15T10:30:00.000000123Z",
            "data_stream": {"type": "traces", "dataset": "checkout.otel", "namespace": "prod"},
            "trace_id": "0102030405060708090a0b0c0d0e0f10",
            "span_id": "0102030405060708",
            "trace_state": "vendor=1",
            "parent_span_id": "0001020304050607",
            "name": "GET /api/users",
            "kind": "Server",
            "duration": 150_000_000,
            "attributes": {"http.request.method": "GET", "http.response.status_code": 200},
            "dropped_attributes_count": 1,
            "dropped_events_count": 4,
            "links": [{
                "trace_id": "101112131415161718191a1b1c1d1e1f",
                "span_id": "08090a0b0c0d0e0f",
                "trace_state": "t=2",
                "attributes": {"link.type": "follows_from"},
                "dropped_attributes_count": 5
            }],
            "dropped_links_count": 6,
            "status": {"message": "boom", "code": "Error"},
            "resource": resource,
            "scope": scope,
        })
    );
    assert_eq!(
        docs[1].0,
        json!({"create": {"_index": "logs-generic.otel-prod"}}),
        "events route by their own attributes, then scope and resource"
    );
    assert_eq!(
        docs[1].1,
        json!({
            "@timestamp": "2024-01-15T10:30:00.100000000Z",
            "data_stream": {"type": "logs", "dataset": "generic.otel", "namespace": "prod"},
            "trace_id": "0102030405060708090a0b0c0d0e0f10",
            "span_id": "0102030405060708",
            "dropped_attributes_count": 3,
            "event_name": "exception",
            "attributes": {"exception.type": "ValueError", "event.name": "exception"},
            "resource": resource,
            "scope": scope,
        })
    );
    assert_eq!(
        items.units,
        [(Signal::Traces, 1), (Signal::Traces, 0)],
        "the event document counts no span"
    );
}

#[test]
fn a_bare_span_writes_only_what_is_set_and_always_links_and_status() {
    let span = Span {
        trace_id: vec![0xab; 16],
        span_id: vec![0xcd; 8],
        name: "work".into(),
        start_time_unix_nano: 2_000,
        end_time_unix_nano: 1_000,
        ..Default::default()
    };
    let body = Bytes::from(
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![span],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
        .encode_to_vec(),
    );
    let mut enc = BulkEncoder::with_indices(
        Mode::Otel,
        StaticIndices {
            traces: Some("my-spans".into()),
            ..Default::default()
        },
        Some("enrich".into()),
    )
    .with_ids(7);
    let (docs, _) = encode(&body, &mut enc);
    let action = &docs[0].0["create"];
    assert_eq!(action["_index"], "my-spans");
    assert_eq!(action["pipeline"], "enrich");
    assert_eq!(action["_id"].as_str().map(str::len), Some(22));
    assert_eq!(
        docs[0].1,
        json!({
            "@timestamp": "1970-01-01T00:00:00.000002000Z",
            "trace_id": "abababababababababababababababab",
            "span_id": "cdcdcdcdcdcdcdcd",
            "name": "work",
            "kind": "Unspecified",
            "duration": 0,
            "links": [],
            "status": {"code": "Unset"},
            "resource": {},
            "scope": {},
        }),
        "a static index: no data_stream fields; an end before the start: duration 0"
    );
}

#[test]
fn spans_route_by_an_elasticsearch_index_attribute_and_merge_geo_points() {
    let span = Span {
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        name: "s".into(),
        attributes: vec![
            s("elasticsearch.index", "spans-audit"),
            KeyValue {
                key: "client.geo.location.lat".into(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::DoubleValue(48.85)),
                }),
                ..Default::default()
            },
            KeyValue {
                key: "client.geo.location.lon".into(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::DoubleValue(2.35)),
                }),
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let mut enc = BulkEncoder::new(Mode::Otel, None, None);
    let (docs, _) = encode(&request(span), &mut enc);
    assert_eq!(docs[0].0, json!({"create": {"_index": "spans-audit"}}));
    assert!(docs[0].1.get("data_stream").is_none());
    assert_eq!(
        docs[0].1["attributes"],
        json!({"client.geo.location": [2.35, 48.85]})
    );
}
