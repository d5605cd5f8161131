//! Traces and metrics through the `elasticsearch` exporter, from the OpenTelemetry Python SDK
//! to `sluice-es-mock` (Elasticsearch's `_bulk` contract, with `metrics-*` indices behaving as
//! time series data streams). The stored documents are compared field by field with what the
//! SDK recorded, in the layout the Collector's exporter writes in `otel` mode. No Elasticsearch
//! runs here: the templates' mappings themselves are not exercised.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use common::{Launch, Mock, Sluice, metric, run_python};
use serde_json::{Value as Json, json};

fn start(mock: &Mock) -> (Sluice, u16, u16) {
    let sluice = Launch::fixture("otlp_http_all_to_es")
        .env("ES_URL", &format!("http://127.0.0.1:{}", mock.port))
        .start();
    let (http, metrics) = (sluice.port("HTTP_PORT"), sluice.port("METRICS_PORT"));
    (sluice, http, metrics)
}

/// `n` spans (with events and links) and every kind of metric from the Python SDK, over
/// OTLP/HTTP; what the SDK recorded.
fn send_every_kind(http: u16, n: usize) -> Json {
    let endpoint = format!("http://127.0.0.1:{http}");
    run_python(
        "send_telemetry.py",
        &[&endpoint, &n.to_string(), "http", "all"],
    )
}

/// The documents in indices starting with `prefix`.
fn of<'a>(docs: &'a [Json], prefix: &str) -> Vec<&'a Json> {
    docs.iter()
        .filter(|d| d["_index"].as_str().unwrap_or("").starts_with(prefix))
        .collect()
}

/// Waits until the mock holds `spans` span documents, `events` event documents and a document
/// for each of `metrics`.
fn wait_for(mock: &Mock, spans: usize, events: usize, metrics: &[&str]) -> Vec<Json> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let docs = mock.docs();
        let have_metrics = metrics.iter().all(|m| {
            of(&docs, "metrics-")
                .iter()
                .any(|d| d["_source"]["metrics"].get(*m).is_some())
        });
        if (of(&docs, "traces-").len() >= spans
            && of(&docs, "logs-").len() >= events
            && have_metrics)
            || Instant::now() > deadline
        {
            // A moment more, so that anything stored twice would show.
            std::thread::sleep(Duration::from_millis(500));
            return mock.docs();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn time(nanos: &Json) -> String {
    let bytes = sluice::codec::rfc3339(nanos.as_u64().unwrap());
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// The latest point of metric `name` per attribute set: (attributes, value, document). The
/// SDK exports cumulative metrics at each collection (its flush, then its shutdown), so a series
/// has a document per collection; the last holds the totals.
fn points<'a>(docs: &'a [&'a Json], name: &str) -> Vec<(&'a Json, &'a Json, &'a Json)> {
    let mut latest: BTreeMap<String, (&Json, &Json, &Json)> = BTreeMap::new();
    for d in docs {
        let Some(v) = d["_source"]["metrics"].get(name) else {
            continue;
        };
        let attrs = &d["_source"]["attributes"];
        let t = d["_source"]["@timestamp"].as_u64();
        let slot = latest.entry(attrs.to_string()).or_insert((attrs, v, *d));
        if t > slot.2["_source"]["@timestamp"].as_u64() {
            *slot = (attrs, v, *d);
        }
    }
    latest.into_values().collect()
}

fn histogram_count(v: &Json) -> u64 {
    v["counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .sum()
}

#[test]
fn python_sdk_spans_events_and_every_metric_kind_become_otel_documents_field_by_field() {
    let mock = Mock::start(&[]);
    let (_sluice, http, metrics_port) = start(&mock);
    let n = 30;
    let sent = send_every_kind(http, n);
    let names = ["orders", "latency", "temperature", "payload"];
    let docs = wait_for(&mock, n, n - 1, &names);
    let spans = of(&docs, "traces-");
    let events = of(&docs, "logs-");
    assert_eq!((spans.len(), events.len()), (n, n - 1));

    let by_id: HashMap<&str, &Json> = spans
        .iter()
        .map(|d| (d["_source"]["span_id"].as_str().unwrap(), *d))
        .collect();
    let kinds = ["", "Internal", "Server", "Client", "Producer", "Consumer"];
    let codes = ["Unset", "Ok", "Error"];
    for want in sent["spans"].as_array().unwrap() {
        let doc = by_id[want["span_id"].as_str().unwrap()];
        assert_eq!(doc["_index"], "traces-generic.otel-default");
        assert_eq!(
            doc["_id"].as_str().map(str::len),
            Some(22),
            "an assigned id"
        );
        let src = &doc["_source"];
        let mut expected = json!({
            "@timestamp": time(&want["start"]),
            "data_stream": {"type": "traces", "dataset": "generic.otel", "namespace": "default"},
            "trace_id": want["trace_id"],
            "span_id": want["span_id"],
            "name": want["name"],
            "kind": kinds[want["kind"].as_u64().unwrap() as usize],
            "duration": want["end"].as_u64().unwrap() - want["start"].as_u64().unwrap(),
            "links": want["links"],
            "status": {"code": codes[want["status"]["code"].as_u64().unwrap() as usize]},
            "resource": src["resource"],
            "scope": {"name": "shop", "version": "2.0.0"},
        });
        if want["parent_span_id"] != "" {
            expected["parent_span_id"] = want["parent_span_id"].clone();
        }
        if want["attributes"] != json!({}) {
            expected["attributes"] = want["attributes"].clone();
        }
        if want["status"]["message"] != "" {
            expected["status"]["message"] = want["status"]["message"].clone();
        }
        assert_eq!(src, &expected);
        let resource = &src["resource"]["attributes"];
        assert_eq!(resource["service.name"], "checkout");
        assert_eq!(resource["service.version"], "1.4.2");
        assert_eq!(resource["telemetry.sdk.language"], "python");

        for e in want["events"].as_array().unwrap() {
            let doc = events
                .iter()
                .find(|d| d["_source"]["span_id"] == want["span_id"])
                .expect("the span's event document");
            assert_eq!(doc["_index"], "logs-generic.otel-default");
            let mut attributes = e["attributes"].clone();
            attributes["event.name"] = e["name"].clone();
            assert_eq!(
                doc["_source"],
                json!({
                    "@timestamp": time(&e["time"]),
                    "data_stream": {"type": "logs", "dataset": "generic.otel", "namespace": "default"},
                    "trace_id": want["trace_id"],
                    "span_id": want["span_id"],
                    "event_name": e["name"],
                    "attributes": attributes,
                    "resource": src["resource"],
                    "scope": src["scope"],
                })
            );
        }
    }

    let metric_docs = of(&docs, "metrics-");
    for d in &metric_docs {
        assert_eq!(d["_index"], "metrics-generic.otel-default");
        assert!(
            d["_id"].as_str().unwrap().starts_with("ts-"),
            "no client id: the time series data stream derived it"
        );
        let src = &d["_source"];
        assert!(
            src["@timestamp"].is_u64(),
            "epoch milliseconds, as the Collector writes"
        );
        let cumulative = ["orders", "latency", "payload"];
        if cumulative.iter().any(|m| src["metrics"].get(m).is_some()) {
            assert!(src["start_timestamp"].is_u64(), "{src}");
        }
        assert!(src["_metric_names_hash"].is_string());
        assert_eq!(src["scope"], json!({"name": "shop", "version": "2.0.0"}));
        assert_eq!(src["resource"]["attributes"]["service.name"], "checkout");
        assert_eq!(
            src["data_stream"],
            json!({"type": "metrics", "dataset": "generic.otel", "namespace": "default"})
        );
    }
    let template =
        |doc: &Json, name: &str| doc["dynamic_templates"][format!("metrics.{name}")].clone();
    let orders = points(&metric_docs, "orders");
    assert_eq!(orders.len(), 2, "one per region");
    for (attrs, value, doc) in &orders {
        let region = attrs["region"].as_str().unwrap();
        assert_eq!(value, &&sent["orders"][region]);
        assert_eq!(template(doc, "orders"), "counter_long");
        assert_eq!(doc["_source"]["unit"], "1");
    }
    let temperature = points(&metric_docs, "temperature");
    assert_eq!(temperature.len(), 2);
    for (attrs, value, doc) in &temperature {
        let region = attrs["region"].as_str().unwrap();
        assert_eq!(value.as_f64(), sent["temperature"][region].as_f64());
        assert_eq!(template(doc, "temperature"), "gauge_double");
        assert_eq!(doc["_source"]["unit"], "Cel");
    }
    for name in ["latency", "payload"] {
        let found = points(&metric_docs, name);
        assert_eq!(found.len(), 1, "{name}");
        let (_, value, doc) = found[0];
        assert_eq!(template(doc, name), "histogram");
        assert_eq!(
            histogram_count(value),
            n as u64,
            "{name}: every recording counted"
        );
        assert_eq!(
            doc["_source"]["_doc_count"], n as u64,
            "{name}: alone in its document"
        );
        let values: Vec<f64> = value["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert!(values.windows(2).all(|w| w[0] < w[1]), "{name}: {values:?}");
    }

    let sent_spans = r#"otelcol_exporter_sent_spans_total{exporter="elasticsearch"}"#;
    let sent_points = r#"otelcol_exporter_sent_metric_points_total{exporter="elasticsearch"}"#;
    assert_eq!(metric(metrics_port, sent_spans), n as u64);
    let stored: usize = metric_docs
        .iter()
        .map(|d| d["_source"]["metrics"].as_object().unwrap().len())
        .sum();
    assert_eq!(
        metric(metrics_port, sent_points),
        stored as u64,
        "each stored data point counted once"
    );
    assert!(
        stored >= 6,
        "2 orders, 2 gauges, 2 histograms at least once each"
    );
}

#[test]
fn with_30_percent_of_items_refused_429_every_span_event_and_point_is_stored_exactly_once() {
    let mock = Mock::start(&["--reject-share", "0.3"]);
    let (_sluice, http, _) = start(&mock);
    let n = 150;
    let sent = send_every_kind(http, n);
    let docs = wait_for(
        &mock,
        n,
        n - 1,
        &["orders", "latency", "temperature", "payload"],
    );
    let stats = mock.json("/_mock/stats");
    assert!(
        stats["rejected"].as_u64().unwrap() > 0,
        "items were refused: {stats}"
    );

    let unique = |docs: &[&Json], field: &str| -> usize {
        docs.iter()
            .map(|d| d["_source"][field].as_str().unwrap().to_string())
            .collect::<HashSet<_>>()
            .len()
    };
    let spans = of(&docs, "traces-");
    assert_eq!(spans.len(), n, "every span once");
    assert_eq!(unique(&spans, "span_id"), n);
    let events = of(&docs, "logs-");
    assert_eq!(events.len(), n - 1, "every event once");
    assert_eq!(unique(&events, "span_id"), n - 1);

    // Each (metric, attributes, time) once, the latest with the value the SDK recorded.
    let metric_docs = of(&docs, "metrics-");
    let mut seen: BTreeMap<(String, String, u64), usize> = BTreeMap::new();
    for d in &metric_docs {
        let src = &d["_source"];
        for name in src["metrics"].as_object().unwrap().keys() {
            let key = (
                name.clone(),
                src["attributes"].to_string(),
                src["@timestamp"].as_u64().unwrap(),
            );
            *seen.entry(key).or_default() += 1;
        }
    }
    assert!(seen.values().all(|c| *c == 1), "stored twice: {seen:?}");
    let series: HashSet<_> = seen.keys().map(|(n, a, _)| (n, a)).collect();
    assert_eq!(series.len(), 6);
    for (attrs, value, _) in points(&metric_docs, "orders") {
        assert_eq!(value, &sent["orders"][attrs["region"].as_str().unwrap()]);
    }
    for name in ["latency", "payload"] {
        let (_, value, _) = points(&metric_docs, name)[0];
        assert_eq!(histogram_count(value), n as u64);
    }
}
