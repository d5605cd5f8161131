use super::*;
use crate::otlp::damage::damaged;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
    metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, span};
use prost::Message;

fn attr(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

/// An AnyValue `depth` levels deep: arrays and maps alternately around an int.
fn nested(depth: usize) -> AnyValue {
    let mut v = AnyValue {
        value: Some(any_value::Value::IntValue(1)),
    };
    for level in 1..depth {
        v = AnyValue {
            value: Some(if level % 2 == 0 {
                any_value::Value::ArrayValue(opentelemetry_proto::tonic::common::v1::ArrayValue {
                    values: vec![v],
                })
            } else {
                any_value::Value::KvlistValue(
                    opentelemetry_proto::tonic::common::v1::KeyValueList {
                        values: vec![KeyValue {
                            key: "k".into(),
                            value: Some(v),
                            ..Default::default()
                        }],
                    },
                )
            }),
        };
    }
    v
}

/// Forwarding (validated, kept encoded) and decoding (protobuf and JSON) agree on how deep
/// a value may nest, in a body and in an attribute.
#[test]
fn every_path_counts_nesting_the_same_way() {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    let max = crate::otlp::logs::MAX_DEPTH;
    for depth in [max - 1, max, max + 1, max + 2] {
        for in_body in [true, false] {
            let mut record = LogRecord::default();
            if in_body {
                record.body = Some(nested(depth));
            } else {
                record.attributes = vec![KeyValue {
                    key: "a".into(),
                    value: Some(nested(depth)),
                    ..Default::default()
                }];
            }
            let req = ExportLogsServiceRequest {
                resource_logs: vec![ResourceLogs {
                    scope_logs: vec![ScopeLogs {
                        log_records: vec![record],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
            };
            let proto = Bytes::from(req.encode_to_vec());
            let json = serde_json::to_vec(&req).unwrap();
            let ok = depth <= max;
            let case = format!("depth {depth}, in body: {in_body}");
            assert_eq!(decode_logs(&proto).is_ok(), ok, "forwarded, {case}");
            assert_eq!(
                crate::otlp::logs::decode(&proto).is_ok(),
                ok,
                "decoded, {case}"
            );
            assert_eq!(
                crate::otlp::json::decode_logs(&json).is_ok(),
                ok,
                "JSON, {case}"
            );
        }
    }
}

fn spans(service: &str, n: usize) -> ResourceSpans {
    ResourceSpans {
        resource: Some(Resource {
            attributes: vec![attr("service.name", service)],
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            spans: (0..n)
                .map(|i| Span {
                    trace_id: vec![1; 16],
                    span_id: vec![i as u8 + 1; 8],
                    name: format!("op{i}"),
                    kind: span::SpanKind::Server as i32,
                    events: vec![span::Event {
                        name: "e".into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn traces(parts: Vec<ResourceSpans>) -> Bytes {
    Bytes::from(
        ExportTraceServiceRequest {
            resource_spans: parts,
        }
        .encode_to_vec(),
    )
}

#[test]
fn spans_are_counted_per_resource_and_reencode_to_the_same_request() {
    let req = ExportTraceServiceRequest {
        resource_spans: vec![spans("a", 3), spans("b", 0), spans("c", 2)],
    };
    let bytes = Bytes::from(req.encode_to_vec());
    let batch = decode_traces(&bytes).unwrap();
    assert_eq!(
        batch.resources.iter().map(|(_, n)| *n).collect::<Vec<_>>(),
        [3, 2],
        "the empty resource is dropped"
    );
    let mut out = Vec::new();
    batch.encode(&mut out);
    let back = ExportTraceServiceRequest::decode(out.as_slice()).unwrap();
    assert_eq!(back.resource_spans, vec![spans("a", 3), spans("c", 2)]);
}

#[test]
fn metric_data_points_of_every_kind_are_counted() {
    // Two gauge points and a histogram's one.
    let batch = decode_metrics(&Bytes::from(metrics_request())).unwrap();
    assert_eq!(batch.len(), 3);
}

/// A metrics request with a gauge, a histogram (packed fields) and exemplar ids.
fn metrics_request() -> Vec<u8> {
    let point = NumberDataPoint {
        value: Some(number_data_point::Value::AsDouble(0.5)),
        attributes: vec![attr("k", "v")],
        time_unix_nano: 1_700_000_000_000_000_000,
        ..Default::default()
    };
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![
                    Metric {
                        name: "g".into(),
                        unit: "ms".into(),
                        data: Some(metric::Data::Gauge(Gauge {
                            data_points: vec![point.clone(), point],
                        })),
                        ..Default::default()
                    },
                    Metric {
                        name: "h".into(),
                        data: Some(metric::Data::Histogram(Histogram {
                            data_points: vec![HistogramDataPoint {
                                bucket_counts: vec![1, 2, 300],
                                explicit_bounds: vec![0.5, 1.0],
                                count: 303,
                                ..Default::default()
                            }],
                            aggregation_temporality: 2,
                        })),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

#[test]
fn the_key_byte_check_matches_the_general_reader_on_any_bytes() {
    // Requests of each signal, whole and damaged (bytes changed, cut short, inserted): the
    // check with one dispatch per one-byte key accepts and refuses exactly what the general
    // reader does, with the same error and the same count of items.
    let cases: [(Vec<u8>, &'static Schema, &'static Schema); 3] = [
        (
            traces(vec![spans("a", 3), spans("b", 2)]).to_vec(),
            &TRACES_REQUEST,
            &SPAN,
        ),
        (logs_request(), &LOGS_REQUEST, &LOG_RECORD),
        (metrics_request(), &METRICS_REQUEST, &NUMBER_POINT),
    ];
    let (mut accepted, mut refused) = (0, 0);
    for (base, request, counted) in &cases {
        for b in damaged(std::slice::from_ref(base), 3_000) {
            let (mut fast_items, mut general_items) = (0, 0);
            let fast = check_fields::<true>(&b, 0, b.len(), request, counted, &mut fast_items, 0);
            let general =
                check_fields::<false>(&b, 0, b.len(), request, counted, &mut general_items, 0);
            assert_eq!(fast, general, "{b:?}");
            if fast.is_ok() {
                assert_eq!(fast_items, general_items, "{b:?}");
                accepted += 1;
            } else {
                refused += 1;
            }
        }
    }
    // Both outcomes are exercised, so the comparison is not of errors alone.
    assert!(
        accepted > 500 && refused > 1_000,
        "{accepted} accepted, {refused} refused"
    );
}

#[test]
fn split_cuts_inside_a_resource_and_both_halves_keep_it() {
    let bytes = traces(vec![spans("a", 3), spans("b", 3), spans("c", 3)]);
    let mut batch = decode_traces(&bytes).unwrap();
    let head = batch.split_to(5);
    assert_eq!((head.len(), batch.len()), (5, 4));
    let decoded = |b: &RawBatch| {
        let mut out = Vec::new();
        b.encode(&mut out);
        ExportTraceServiceRequest::decode(&out[..]).unwrap()
    };
    let names = |r: &ExportTraceServiceRequest| -> Vec<(String, String)> {
        r.resource_spans
            .iter()
            .flat_map(|rs| {
                let service = match &rs.resource.as_ref().unwrap().attributes[0].value {
                    Some(AnyValue {
                        value: Some(any_value::Value::StringValue(s)),
                    }) => s.clone(),
                    _ => String::new(),
                };
                rs.scope_spans
                    .iter()
                    .flat_map(|ss| &ss.spans)
                    .map(move |sp| (service.clone(), sp.name.clone()))
            })
            .collect()
    };
    let (h, t) = (names(&decoded(&head)), names(&decoded(&batch)));
    let all = names(&ExportTraceServiceRequest::decode(&bytes[..]).unwrap());
    assert_eq!(
        [h.clone(), t.clone()].concat(),
        all,
        "every span once, in order"
    );
    assert_eq!(h.last().unwrap().0, "b", "resource b was cut");
    assert_eq!(t.first().unwrap().0, "b", "and its other half keeps it");
    // Parts re-check as valid requests with the counts they claim.
    let mut out = Vec::new();
    head.encode(&mut out);
    assert_eq!(decode_traces(&Bytes::from(out)).unwrap().len(), 5);
    let one = batch.split_to(1);
    assert_eq!((one.len(), batch.len()), (1, 3));
}

#[test]
fn metrics_are_cut_between_whole_scopes_never_inside_one() {
    let point = |v: f64| NumberDataPoint {
        value: Some(number_data_point::Value::AsDouble(v)),
        ..Default::default()
    };
    let gauge = |name: &str| Metric {
        name: name.into(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: vec![point(1.0), point(2.0)],
        })),
        ..Default::default()
    };
    let scope = |names: &[&str]| ScopeMetrics {
        metrics: names.iter().map(|n| gauge(n)).collect(),
        ..Default::default()
    };
    let bytes = Bytes::from(
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![scope(&["m1"]), scope(&["m2", "m3"]), scope(&["m4"])],
                ..Default::default()
            }],
        }
        .encode_to_vec(),
    );
    let mut batch = decode_metrics(&bytes).unwrap();
    assert_eq!(batch.len(), 8);
    let head = batch.split_to(3);
    assert_eq!(
        (head.len(), batch.len()),
        (2, 6),
        "the first scope only: the second would pass 3, and is not cut between m2 and m3"
    );
    let single = batch.split_to(1);
    assert_eq!(single.len(), 4, "one whole scope, over the size");
    assert_eq!(batch.len(), 2);
}

#[test]
fn malformed_requests_say_what_is_wrong() {
    let mut bad_id = spans("a", 1);
    bad_id.scope_spans[0].spans[0].trace_id = vec![1; 3];
    let err = decode_traces(&traces(vec![bad_id])).unwrap_err();
    assert_eq!(err.to_string(), "trace_id must be 16 bytes, not 3");

    let mut bad_name = spans("a", 1);
    bad_name.scope_spans[0].spans[0].name = "x".into();
    let mut raw = traces(vec![bad_name]).to_vec();
    let at = raw.iter().rposition(|&b| b == b'x').unwrap();
    raw[at] = 0xff;
    let err = decode_traces(&Bytes::from(raw)).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("a span name is not valid UTF-8")
    );

    let full = traces(vec![spans("a", 2)]);
    let cut = full.slice(..full.len() - 3);
    assert!(matches!(
        decode_traces(&cut),
        Err(DecodeError::Truncated(_))
    ));
    // A span name sent as a varint.
    let wrong_type = Bytes::from_static(&[0x0a, 0x06, 0x12, 0x04, 0x12, 0x02, 0x28, 0x01]);
    assert!(matches!(
        decode_traces(&wrong_type),
        Err(DecodeError::WireType { field: 5, .. })
    ));
}

#[test]
fn mutated_requests_never_panic() {
    let bytes = traces(vec![spans("a", 4), spans("b", 2)]).to_vec();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..20_000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut m = bytes.clone();
        let i = (seed as usize) % m.len();
        m[i] = (seed >> 32) as u8;
        if seed.is_multiple_of(3) {
            m.truncate((seed >> 40) as usize % m.len());
        }
        let _ = decode_traces(&Bytes::from(m));
    }
}

fn logs_request() -> Vec<u8> {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    let resource = |service: &str, n: usize| ResourceLogs {
        resource: Some(Resource {
            attributes: vec![attr("service.name", service)],
            ..Default::default()
        }),
        scope_logs: vec![ScopeLogs {
            log_records: (0..n)
                .map(|i| LogRecord {
                    time_unix_nano: i as u64,
                    severity_text: "INFO".into(),
                    body: Some(AnyValue {
                        value: Some(any_value::Value::StringValue(format!("line {i}"))),
                    }),
                    attributes: vec![attr("k", "v")],
                    trace_id: vec![7; 16],
                    span_id: vec![8; 8],
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    };
    ExportLogsServiceRequest {
        resource_logs: vec![resource("a", 3), resource("b", 2)],
    }
    .encode_to_vec()
}

#[test]
fn log_records_are_counted_per_resource_and_reencode_to_the_same_request() {
    let bytes = Bytes::from(logs_request());
    let batch = decode_logs(&bytes).unwrap();
    assert_eq!(batch.signal, Signal::Logs);
    assert_eq!(
        batch.resources.iter().map(|r| r.1).collect::<Vec<_>>(),
        [3, 2]
    );
    let mut out = Vec::new();
    batch.encode(&mut out);
    assert_eq!(out, bytes.to_vec());
    // What the decoding path would make of the same bytes.
    assert_eq!(super::super::logs::decode(&bytes).unwrap().len(), 5);
}

#[test]
fn decoded_logs_join_encoded_ones_as_one_valid_request() {
    let bytes = Bytes::from(logs_request());
    let mut batch = crate::pipeline::Batch::Logs(super::super::logs::decode(&bytes).unwrap());
    batch
        .append(crate::pipeline::Batch::Raw(decode_logs(&bytes).unwrap()))
        .unwrap();
    assert_eq!(batch.len(), 10);
    let crate::pipeline::Batch::Raw(raw) = &batch else {
        panic!("mixed logs become encoded");
    };
    let mut out = Vec::new();
    raw.encode(&mut out);
    let again = super::super::logs::decode(&Bytes::from(out)).unwrap();
    assert_eq!(again.len(), 10);
}

/// The agent forwards logs it only checked; the gateway decodes them. Whatever the check
/// lets through, the decoder must take too, or a gateway would refuse what an agent acked.
#[test]
fn whatever_the_log_check_accepts_the_decoder_accepts() {
    let bytes = logs_request();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut accepted = 0;
    for _ in 0..20_000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut m = bytes.clone();
        let i = (seed as usize) % m.len();
        m[i] = (seed >> 32) as u8;
        if seed.is_multiple_of(3) {
            m.truncate((seed >> 40) as usize % m.len());
        }
        let m = Bytes::from(m);
        if let Ok(raw) = decode_logs(&m) {
            accepted += 1;
            let decoded = super::super::logs::decode(&m);
            assert!(decoded.is_ok(), "byte {i}: {decoded:?}");
            assert_eq!(decoded.unwrap().len(), raw.len(), "byte {i}: same count");
        }
    }
    assert!(accepted > 1000, "the mutations leave many requests valid");
}
