use super::*;
use crate::exporters::elasticsearch::mapping::Mode;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint,
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
    exponential_histogram_data_point::Buckets, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use serde_json::{Value as Json, json};

const T: u64 = 1_705_314_600_123_456_789;
const START: u64 = 1_705_314_000_000_000_000;

fn s(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

fn number(attrs: Vec<KeyValue>, v: number_data_point::Value) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs,
        start_time_unix_nano: START,
        time_unix_nano: T,
        value: Some(v),
        ..Default::default()
    }
}

fn metric(name: &str, unit: &str, data: metric::Data) -> Metric {
    Metric {
        name: name.into(),
        unit: unit.into(),
        data: Some(data),
        ..Default::default()
    }
}

fn request(scopes: Vec<ScopeMetrics>) -> Bytes {
    Bytes::from(
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource {
                    attributes: vec![s("service.name", "checkout")],
                    ..Default::default()
                }),
                scope_metrics: scopes,
                schema_url: String::new(),
            }],
        }
        .encode_to_vec(),
    )
}

fn scope(metrics: Vec<Metric>) -> ScopeMetrics {
    ScopeMetrics {
        scope: Some(InstrumentationScope {
            name: "app".into(),
            ..Default::default()
        }),
        metrics,
        schema_url: String::new(),
    }
}

fn encode(bodies: &[Bytes]) -> (Vec<(Json, Json)>, Items) {
    let mut batch = RawBatch::new(Signal::Metrics);
    for b in bodies {
        batch.append(crate::otlp::raw::decode_metrics(b).unwrap());
    }
    let mut enc = BulkEncoder::new(Mode::Otel, None, None).with_ids(1);
    let (mut out, mut items, mut scratch) =
        (Vec::new(), Items::default(), MetricScratch::default());
    enc.encode_metrics(&batch, &mut scratch, &mut out, &mut items);
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

#[test]
fn points_sharing_time_attributes_and_unit_make_one_document_with_dynamic_templates() {
    use number_data_point::Value::{AsDouble, AsInt};
    let get = || vec![s("http.method", "GET"), s("data_stream.dataset", "web")];
    let body = request(vec![scope(vec![
        metric(
            "http.requests",
            "1",
            metric::Data::Sum(Sum {
                data_points: vec![number(get(), AsInt(42))],
                aggregation_temporality: 2,
                is_monotonic: true,
            }),
        ),
        metric(
            "http.inflight",
            "1",
            metric::Data::Gauge(Gauge {
                data_points: vec![number(get(), AsDouble(3.0))],
            }),
        ),
        metric(
            "http.delta",
            "1",
            metric::Data::Sum(Sum {
                data_points: vec![number(get(), AsDouble(f64::NAN))],
                aggregation_temporality: 1,
                is_monotonic: true,
            }),
        ),
        // Another unit: another document.
        metric(
            "http.bytes",
            "By",
            metric::Data::Gauge(Gauge {
                data_points: vec![number(get(), AsInt(7))],
            }),
        ),
    ])]);
    let (docs, items) = encode(&[body]);
    assert_eq!(docs.len(), 2);
    let names_hash = {
        let mut h = xxhash_rust::xxh64::Xxh64::new(0);
        for n in ["http.delta", "http.inflight", "http.requests"] {
            h.update(n.as_bytes());
        }
        format!("{:x}", h.digest())
    };
    assert_eq!(
        docs[0].0,
        json!({"create": {"_index": "metrics-web.otel-default", "dynamic_templates": {
            "metrics.http.requests": "counter_long",
            "metrics.http.inflight": "gauge_double",
            "metrics.http.delta": "gauge_double"}}}),
        "no _id: a time series data stream derives it; ids were asked for"
    );
    assert_eq!(
        docs[0].1,
        json!({
            "@timestamp": 1_705_314_600_123u64,
            "start_timestamp": 1_705_314_000_000u64,
            "unit": "1",
            "data_stream": {"type": "metrics", "dataset": "web.otel", "namespace": "default"},
            "attributes": {"http.method": "GET"},
            "resource": {"attributes": {"service.name": "checkout"}},
            "scope": {"name": "app"},
            "metrics": {"http.requests": 42, "http.inflight": 3.0, "http.delta": 0.0},
            "_metric_names_hash": names_hash,
        })
    );
    assert_eq!(docs[1].1["metrics"], json!({"http.bytes": 7}));
    assert_eq!(docs[1].1["unit"], "By");
    assert_eq!(items.units, [(Signal::Metrics, 3), (Signal::Metrics, 1)]);
    assert!(
        std::str::from_utf8(&serde_json::to_vec(&docs[0].1).unwrap())
            .unwrap()
            .contains("3.0"),
        "doubles keep their radix point"
    );
}

#[test]
fn a_group_split_across_requests_in_one_batch_is_one_document_and_repeats_are_refused() {
    use number_data_point::Value::AsInt;
    let gauge = |name: &str, v: i64| {
        metric(
            name,
            "",
            metric::Data::Gauge(Gauge {
                data_points: vec![number(vec![s("k", "v")], AsInt(v))],
            }),
        )
    };
    let first = request(vec![scope(vec![gauge("a", 1), gauge("b", 2)])]);
    let second = request(vec![scope(vec![gauge("c", 3), gauge("a", 9)])]);
    let (docs, items) = encode(&[first, second]);
    assert_eq!(docs.len(), 1, "one series, one timestamp: one document");
    assert_eq!(docs[0].1["metrics"], json!({"a": 1, "b": 2, "c": 3}));
    assert_eq!(items.refused.len(), 1);
    let refused = &items.refused[0];
    assert_eq!(refused.why.kind, "duplicate_metric_name");
    assert!(
        refused.why.reason.contains("\"a\""),
        "{}",
        refused.why.reason
    );
    let lone: Vec<Json> = refused
        .bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(
        lone[1]["metrics"],
        json!({"a": 9}),
        "the repeat, for the dead letter"
    );
    assert_eq!(items.units, [(Signal::Metrics, 3), (Signal::Metrics, 1)]);
}

#[test]
fn histograms_exponential_histograms_and_summaries_take_the_collectors_shapes() {
    let hist = HistogramDataPoint {
        time_unix_nano: T,
        count: 10,
        sum: Some(55.0),
        bucket_counts: vec![1, 0, 6, 3],
        explicit_bounds: vec![1.0, 5.0, 10.0],
        ..Default::default()
    };
    let bare = HistogramDataPoint {
        time_unix_nano: T + 1_000_000,
        count: 4,
        sum: Some(10.0),
        ..Default::default()
    };
    let exp = ExponentialHistogramDataPoint {
        time_unix_nano: T + 2_000_000,
        count: 6,
        scale: 0,
        zero_count: 1,
        positive: Some(Buckets {
            offset: 0,
            bucket_counts: vec![2, 3],
        }),
        negative: Some(Buckets {
            offset: 1,
            bucket_counts: vec![0],
        }),
        ..Default::default()
    };
    let summary = SummaryDataPoint {
        time_unix_nano: T + 3_000_000,
        count: 5,
        sum: 12.5,
        ..Default::default()
    };
    let invalid = HistogramDataPoint {
        time_unix_nano: T + 4_000_000,
        bucket_counts: vec![1, 2],
        explicit_bounds: vec![1.0, 2.0, 3.0],
        ..Default::default()
    };
    let body = request(vec![scope(vec![
        metric(
            "latency",
            "ms",
            metric::Data::Histogram(Histogram {
                data_points: vec![hist, bare, invalid],
                aggregation_temporality: 2,
            }),
        ),
        metric(
            "size",
            "By",
            metric::Data::ExponentialHistogram(ExponentialHistogram {
                data_points: vec![exp],
                aggregation_temporality: 2,
            }),
        ),
        metric(
            "rpc",
            "s",
            metric::Data::Summary(Summary {
                data_points: vec![summary],
            }),
        ),
    ])]);
    let (docs, items) = encode(&[body]);
    assert_eq!(docs.len(), 4);
    assert_eq!(
        docs[0].1["metrics"]["latency"],
        json!({"counts": [1, 6, 3], "values": [0.5, 7.5, 10.0]}),
        "bucket midpoints; the first bucket's half its bound; the overflow at the last bound"
    );
    assert_eq!(docs[0].1["_doc_count"], 10);
    assert_eq!(
        docs[0].0["create"]["dynamic_templates"],
        json!({"metrics.latency": "histogram"})
    );
    assert_eq!(
        docs[1].1["metrics"]["latency"],
        json!({"counts": [4], "values": [2.5]}),
        "no buckets: one centroid at the mean"
    );
    assert_eq!(
        docs[2].1["metrics"]["size"],
        json!({"counts": [1, 2, 3], "values": [0.0, 1.5, 3.0]}),
        "zero bucket, then positive buckets (1,2] and (2,4] at their midpoints"
    );
    assert_eq!(
        docs[3].1["metrics"]["rpc"],
        json!({"sum": 12.5, "value_count": 5})
    );
    assert_eq!(
        docs[3].0["create"]["dynamic_templates"],
        json!({"metrics.rpc": "summary"})
    );
    assert!(docs[3].1.get("_doc_count").is_none());
    assert_eq!(items.refused.len(), 1, "the histogram with too few counts");
    assert_eq!(items.refused[0].why.kind, "invalid_data_point");
}

#[test]
fn points_without_a_recorded_value_are_left_out() {
    use number_data_point::Value::AsInt;
    let mut p = number(vec![], AsInt(1));
    p.flags = 1;
    let body = request(vec![scope(vec![metric(
        "gone",
        "",
        metric::Data::Gauge(Gauge {
            data_points: vec![p],
        }),
    )])]);
    let (docs, items) = encode(&[body]);
    assert!(docs.is_empty());
    assert!(items.is_empty());
}
