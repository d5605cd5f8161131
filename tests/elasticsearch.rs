//! The `elasticsearch` exporter against `sluice-es-mock`, a server keeping Elasticsearch's
//! documented `_bulk` contract (see `tests/es_mock.rs`). No Elasticsearch runs here: these tests
//! show that sluice keeps that contract's promises (per-item statuses inside a 200, 429s,
//! outages, mapping errors, auth, gzip), not that a real cluster's mappings accept the
//! documents; the document shapes are pinned to the layouts Elasticsearch documents for
//! `logs-*.otel-*` and ECS.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Client, Launch, Mock, Sluice, free_port, metric, run_python};
use serde_json::{Value as Json, json};

/// sluice with an `http_logs` receiver feeding `exporters` (YAML for the `exporters:` section,
/// whose ids are `names`) through `processors` (a whole `processors:` section, or nothing);
/// with its HTTP and metrics ports.
fn start(processors: &str, exporters: &str, names: &str) -> (Sluice, u16, u16) {
    let mut pipeline = format!("exporters: [{names}]");
    if !processors.is_empty() {
        pipeline.push_str("\nprocessors: [regex_parser]");
    }
    let sluice = Launch::fixture("http_logs_to")
        .put("processors", processors)
        .put("exporters", exporters)
        .put("pipeline", &pipeline)
        .start();
    let (http, metrics) = (sluice.port("HTTP_PORT"), sluice.port("METRICS_PORT"));
    (sluice, http, metrics)
}

/// Posts `lines` to http_logs until accepted, retrying on 429 and 503 as a client should.
/// Returns how many answers were refusals.
fn post_until_accepted(port: u16, lines: &[String]) -> usize {
    let body = lines.join("\n");
    let mut refused = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let status = Client::connect(port)
            .and_then(|mut c| c.post(body.as_bytes()))
            .map(|r| r.status)
            .unwrap_or(0);
        match status {
            200..=299 => return refused,
            429 | 503 | 0 => {
                refused += 1;
                assert!(Instant::now() < deadline, "never accepted");
                std::thread::sleep(Duration::from_millis(200));
            }
            other => panic!("unexpected answer {other}"),
        }
    }
}

/// Each stored document's `message` (raw and ecs modes), counted.
fn messages(docs: &[Json]) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for d in docs {
        let m = d["_source"]["message"].as_str().unwrap_or("").to_string();
        *out.entry(m).or_default() += 1;
    }
    out
}

fn assert_each_once(docs: &[Json], expected: usize) {
    let counts = messages(docs);
    let dups: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        dups.is_empty(),
        "stored twice: {:?}",
        &dups[..dups.len().min(5)]
    );
    assert_eq!(counts.len(), expected, "every document stored");
    assert_eq!(docs.len(), expected);
}

#[test]
fn python_sdk_logs_become_otel_and_ecs_documents_field_by_field() {
    let mock = Mock::start(&[]);
    let sluice = Launch::fixture("otlp_http_to_es_otel_and_ecs")
        .env("ES_URL", &format!("http://127.0.0.1:{}", mock.port))
        .start();
    let (http, metrics) = (sluice.port("HTTP_PORT"), sluice.port("METRICS_PORT"));
    let n = 120;
    let ids = run_python(
        "send_logs.py",
        &[&format!("http://127.0.0.1:{http}/v1/logs"), &n.to_string()],
    );
    let docs = mock.wait_for_docs(2 * n, Duration::from_secs(20));
    assert_eq!(docs.len(), 2 * n);
    let mut otel: Vec<&Json> = docs
        .iter()
        .filter(|d| d["_index"] == "logs-generic.otel-default")
        .collect();
    let mut ecs: Vec<&Json> = docs
        .iter()
        .filter(|d| d["_index"] == "logs-generic-default")
        .collect();
    assert_eq!((otel.len(), ecs.len()), (n, n));
    otel.sort_by_key(|d| d["_source"]["attributes"]["order.id"].as_i64());
    ecs.sort_by_key(|d| d["_source"]["order.id"].as_i64());
    let sdk = |src: &Json, field: &str| src[field].as_str().unwrap_or_default().to_string();
    for (i, (o, e)) in otel.iter().zip(&ecs).enumerate() {
        assert_eq!(o["_id"].as_str().map(str::len), Some(22), "assigned ids");
        let mut o = o["_source"].clone();
        // What the SDK adds on its own: where the call was made, and its version.
        let attrs = o["attributes"].as_object_mut().unwrap();
        let code: Vec<String> = attrs
            .keys()
            .filter(|k| k.starts_with("code."))
            .cloned()
            .collect();
        assert!(!code.is_empty(), "the SDK's code.* attributes are kept");
        code.iter().for_each(|k| {
            attrs.remove(k);
        });
        let res = o["resource"]["attributes"].as_object_mut().unwrap();
        let sdk_version = res.remove("telemetry.sdk.version").unwrap();
        let instance = res.remove("service.instance.id").unwrap();
        assert!(sdk_version.is_string() && instance.is_string());
        let ts = sdk(&o, "@timestamp");
        let observed = sdk(&o, "observed_timestamp");
        assert!(ts.ends_with('Z') && ts.len() == 30, "{ts}");
        assert!(observed >= ts, "observed after it happened");
        assert_eq!(
            o,
            json!({
                "@timestamp": ts,
                "observed_timestamp": observed,
                "data_stream": {"type": "logs", "dataset": "generic.otel", "namespace": "default"},
                "severity_text": "WARN",
                "severity_number": 13,
                "body": {"text": format!("order {i} failed")},
                "attributes": {"order.id": i, "user": format!("u{i}"), "log.level": "warn"},
                "resource": {"attributes": {
                    "service.name": "checkout",
                    "service.version": "1.4.2",
                    "telemetry.sdk.language": "python",
                    "telemetry.sdk.name": "opentelemetry"
                }},
                "scope": {"name": "shop"},
                "trace_id": ids["trace_id"],
                "span_id": ids["span_id"]
            }),
            "otel document {i}"
        );

        let mut e = e["_source"].clone();
        let fields = e.as_object_mut().unwrap();
        code.iter().for_each(|k| {
            assert!(fields.remove(k).is_some(), "ecs keeps {k}");
        });
        assert_eq!(
            fields.remove("agent.version"),
            Some(sdk_version),
            "the SDK's version is the agent's"
        );
        assert_eq!(
            fields.remove("service.node.name"),
            Some(instance),
            "ECS name"
        );
        assert_eq!(
            e,
            json!({
                "@timestamp": ts,
                "data_stream.type": "logs",
                "data_stream.dataset": "generic",
                "data_stream.namespace": "default",
                "trace.id": ids["trace_id"],
                "span.id": ids["span_id"],
                "log.level": "WARN",
                "event.severity": 13,
                "message": format!("order {i} failed"),
                "order.id": i,
                "user": format!("u{i}"),
                "service.name": "checkout",
                "service.version": "1.4.2",
                "agent.name": "opentelemetry/python",
            }),
            "ecs document {i}: the Collector's mapping; `user` is the SDK's attribute, not an \
             Apache capture, so it keeps its name"
        );
    }
    let sent = "otelcol_exporter_sent_log_records_total{exporter=\"elasticsearch/otel\"}";
    assert_eq!(metric(metrics, sent), n as u64);
}

fn numbered(from: usize, n: usize) -> Vec<String> {
    (from..from + n).map(|i| format!("line {i}")).collect()
}

fn es_exporter(mock: &Mock, extra: &str) -> String {
    format!(
        "  elasticsearch:\n    endpoint: http://127.0.0.1:{}\n    mapping: {{ mode: raw }}\n    flush: {{ interval: 50ms, bytes: 20000 }}\n{extra}",
        mock.port
    )
}

#[test]
fn items_answered_429_are_retried_until_each_is_stored_exactly_once() {
    let mock = Mock::start(&[]);
    let retry = "    retry: { initial_interval: 100ms, max_interval: 500ms, max_retries: 100 }\n";
    let (_sluice, http, metrics) = start("", &es_exporter(&mock, retry), "elasticsearch");
    // Rejections start once sluice is up, so a slow start cannot use up their window.
    let reject = Client::connect(mock.port)
        .unwrap()
        .request("POST", "/_mock/reject?share=0.3&seconds=4", &[], b"")
        .unwrap();
    assert_eq!(reject.status, 200);
    let (requests, per) = (40, 250);
    for r in 0..requests {
        post_until_accepted(http, &numbered(r * per, per));
    }
    let docs = mock.wait_for_docs(requests * per, Duration::from_secs(30));
    assert_each_once(&docs, requests * per);
    let stats = mock.json("/_mock/stats");
    assert!(stats["rejected"].as_u64().unwrap() > 100, "{stats}");
    let retried = metric(
        metrics,
        "sluice_elasticsearch_documents_retried_total{exporter=\"elasticsearch\"}",
    );
    assert_eq!(
        retried,
        stats["rejected"].as_u64().unwrap(),
        "only rejected items are re-sent"
    );
    let failed = "sluice_elasticsearch_documents_failed_total{exporter=\"elasticsearch\",failure=\"retryable\",error_type=\"es_rejected_execution_exception\"}";
    assert_eq!(metric(metrics, failed), retried);
}

#[test]
fn an_outage_under_load_pushes_back_then_every_document_arrives_once() {
    let mock = Mock::start(&[]);
    let extra = "    retry: { initial_interval: 200ms, max_interval: 2s, max_retries: 1000 }\n    num_workers: 2\n    sending_queue: { queue_size: 1000 }\n";
    let (sluice, http, _) = start("", &es_exporter(&mock, extra), "elasticsearch");
    let per = 200;
    let next = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicUsize::new(0));
    // More requests held at once than the queue has room for: some must be refused.
    let senders: Vec<_> = (0..8)
        .map(|_| {
            let (next, stop, refused) = (next.clone(), stop.clone(), refused.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let r = next.fetch_add(1, Ordering::Relaxed);
                    let n = post_until_accepted(http, &numbered(r * per, per));
                    refused.fetch_add(n, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    let before = mock.docs().len();
    assert!(before > 0, "documents flow before the outage");
    let down = Client::connect(mock.port)
        .unwrap()
        .request("POST", "/_mock/down?seconds=30", &[], b"")
        .unwrap();
    assert_eq!(down.status, 200);
    std::thread::sleep(Duration::from_secs(1));
    let down_at = mock.docs().len();
    std::thread::sleep(Duration::from_secs(20));
    assert!(
        refused.load(Ordering::Relaxed) > 0,
        "clients are pushed back while Elasticsearch is down"
    );
    assert_eq!(mock.docs().len(), down_at, "nothing is stored while down");
    std::thread::sleep(Duration::from_secs(11));
    stop.store(true, Ordering::Relaxed);
    senders.into_iter().for_each(|s| s.join().unwrap());
    let total = next.load(Ordering::Relaxed) * per;
    let docs = mock.wait_for_docs(total, Duration::from_secs(30));
    assert_each_once(&docs, total);
    assert_eq!(
        mock.json("/_mock/stats")["conflicts"],
        0,
        "no document was sent again after it was stored"
    );
    drop(sluice);
}

#[test]
fn mapping_errors_are_counted_and_dead_lettered_and_the_rest_stored() {
    let (to_file, to_index) = (
        Mock::start(&["--long-field", "code"]),
        Mock::start(&["--long-field", "code"]),
    );
    let dlq = std::env::temp_dir().join(format!("sluice-dlq-{}.ndjson", std::process::id()));
    let _ = std::fs::remove_file(&dlq);
    let exporters = format!(
        "{}{}",
        es_exporter(
            &to_file,
            &format!("    dead_letter: {{ file: {} }}\n", dlq.display())
        )
        .replace("elasticsearch:", "elasticsearch/file:"),
        es_exporter(&to_index, "    dead_letter: { index: logs-dlq }\n")
            .replace("elasticsearch:", "elasticsearch/index:")
    );
    let processors =
        "processors:\n  regex_parser:\n    regex: '^(?P<code>\\S+) (?P<text>.*)$'\n".to_string();
    let (_sluice, http, metrics) = start(
        &processors,
        &exporters,
        "elasticsearch/file, elasticsearch/index",
    );
    let lines: Vec<String> = (0..300)
        .map(|i| {
            if i % 10 == 3 {
                format!("oops request {i}")
            } else {
                format!("200 request {i}")
            }
        })
        .collect();
    assert_eq!(post_until_accepted(http, &lines), 0, "accepted at once");
    let good = to_file.wait_for_docs(270, Duration::from_secs(10));
    assert_each_once(&good, 270);
    assert!(good.iter().all(|d| d["_source"]["code"] == "200"));

    let dead: Vec<Json> = std::fs::read_to_string(&dlq)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(dead.len(), 30);
    for d in &dead {
        assert_eq!(d["error"]["type"], "document_parsing_exception");
        assert_eq!(d["error"]["status"], 400);
        assert_eq!(d["index"], "logs-generic-default");
        let original: Json =
            serde_json::from_str(d["event"]["original"].as_str().unwrap()).unwrap();
        assert_eq!(original["code"], "oops");
    }
    let in_index = to_index.wait_for_docs(300, Duration::from_secs(10));
    let (dlq_docs, rest): (Vec<Json>, Vec<Json>) = in_index
        .into_iter()
        .partition(|d| d["_index"] == "logs-dlq");
    assert_eq!((dlq_docs.len(), rest.len()), (30, 270));
    for (exporter, n) in [("elasticsearch/file", 30), ("elasticsearch/index", 30)] {
        let failed = format!(
            "sluice_elasticsearch_documents_failed_total{{exporter=\"{exporter}\",failure=\"permanent\",error_type=\"document_parsing_exception\"}}"
        );
        assert_eq!(metric(metrics, &failed), n);
        let dead = format!(
            "sluice_elasticsearch_documents_dead_lettered_total{{exporter=\"{exporter}\"}}"
        );
        assert_eq!(metric(metrics, &dead), n);
    }
    let _ = std::fs::remove_file(&dlq);
}

/// An answer that does not account for every document sent (one item short, no items, cut
/// off, or larger than the request can produce) acknowledges nothing: the client waits while
/// the request is re-sent, and once the answers are true again every document is stored once.
#[test]
fn an_answer_that_does_not_account_for_every_document_acknowledges_none() {
    let mock = Mock::start(&[]);
    let retry = "    retry: { initial_interval: 50ms, max_interval: 200ms, max_retries: 1000 }\n";
    let (_sluice, http, metrics) = start("", &es_exporter(&mock, retry), "elasticsearch");
    let control = |path: &str| {
        let r = Client::connect(mock.port)
            .unwrap()
            .request("POST", path, &[], b"")
            .unwrap();
        assert_eq!(r.status, 200);
    };
    let per = 10;
    for (round, mode) in ["short", "empty", "cut", "huge"].into_iter().enumerate() {
        control(&format!("/_mock/lie?mode={mode}"));
        let lies = mock.json("/_mock/stats")["lies"].as_u64().unwrap();
        let lines = numbered(round * per, per);
        let done = Arc::new(AtomicBool::new(false));
        let poster = {
            let done = Arc::clone(&done);
            std::thread::spawn(move || {
                let status = Client::connect(http)
                    .and_then(|mut c| c.post(lines.join("\n").as_bytes()))
                    .map(|r| r.status);
                done.store(true, Ordering::SeqCst);
                status
            })
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while mock.json("/_mock/stats")["lies"].as_u64().unwrap() < lies + 3 {
            assert!(Instant::now() < deadline, "{mode}: no retries");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            !done.load(Ordering::SeqCst),
            "{mode}: answered before any answer accounted for the documents"
        );
        control("/_mock/lie?mode=none");
        assert_eq!(poster.join().unwrap().unwrap(), 200, "{mode}");
        let docs = mock.wait_for_docs((round + 1) * per, Duration::from_secs(30));
        assert_each_once(&docs, (round + 1) * per);
    }
    let unreadable = "sluice_elasticsearch_bulk_request_failures_total{exporter=\"elasticsearch\"}";
    assert!(
        metric(metrics, unreadable) >= 12,
        "every lie counted as a failed request"
    );
}

#[test]
fn without_a_dead_letter_the_sender_is_told_its_data_was_not_stored() {
    let mock = Mock::start(&["--long-field", "code"]);
    let processors =
        "processors:\n  regex_parser:\n    regex: '^(?P<code>\\S+) (?P<text>.*)$'\n".to_string();
    let (_sluice, http, metrics) = start(&processors, &es_exporter(&mock, ""), "elasticsearch");
    let ok = Client::connect(http).unwrap().post(b"200 fine").unwrap();
    assert_eq!(ok.status, 200);
    let bad = Client::connect(http).unwrap().post(b"oops broken").unwrap();
    assert_eq!(
        bad.status, 503,
        "not acknowledged: the document was not stored"
    );
    let given_up = "sluice_elasticsearch_documents_given_up_total{exporter=\"elasticsearch\"}";
    assert_eq!(metric(metrics, given_up), 1);
}

#[test]
fn auth_header_and_gzip_as_configured_and_credentials_never_printed() {
    // base64("elastic:hunter2-secret")
    let want = "Basic ZWxhc3RpYzpodW50ZXIyLXNlY3JldA==";
    let mock = Mock::start(&["--require-auth", want]);
    let good = "    user: elastic\n    password: hunter2-secret\n";
    let (sluice, http, _) = start("", &es_exporter(&mock, good), "elasticsearch");
    post_until_accepted(http, &numbered(0, 50));
    assert_each_once(&mock.wait_for_docs(50, Duration::from_secs(10)), 50);
    let stats = mock.json("/_mock/stats");
    assert_eq!(stats["last_authorization"], want);
    assert_eq!(stats["gzip_requests"], stats["bulk_requests"], "{stats}");
    drop(sluice);

    // Wrong credentials: refused, reported, never printed.
    let bad = "    user: elastic\n    password: wrong-secret\n    retry: { enabled: false }\n";
    let (mut sluice, http, _) = start("", &es_exporter(&mock, bad), "elasticsearch");
    let r = Client::connect(http).unwrap().post(b"refused").unwrap();
    assert_eq!(r.status, 503, "not stored, so not acknowledged");
    sluice.sigterm();
    sluice.wait_exit(Duration::from_secs(10));
    let logs = sluice.logs();
    assert!(logs.contains("401"), "the refusal is reported:\n{logs}");
    for secret in ["wrong-secret", "ZWxhc3RpYzp3cm9uZy1zZWNyZXQ="] {
        assert!(!logs.contains(secret), "a secret was printed:\n{logs}");
    }
}

#[test]
fn a_dead_endpoint_fails_over_and_a_413_splits_the_request() {
    // Bodies over 20 kB are refused 413, as http.max_content_length refuses them.
    let mock = Mock::start(&["--max-content-length", "20000"]);
    let dead = free_port();
    let exporter = format!(
        "  elasticsearch:\n    endpoints: [http://127.0.0.1:{dead}, http://127.0.0.1:{}]\n    \
         mapping: {{ mode: raw }}\n    compression: none\n    flush: {{ bytes: 200000, interval: 50ms }}\n    \
         retry: {{ initial_interval: 50ms, max_interval: 200ms }}\n",
        mock.port
    );
    let (_sluice, http, metrics) = start("", &exporter, "elasticsearch");
    for r in 0..10 {
        assert_eq!(post_until_accepted(http, &numbered(r * 300, 300)), 0);
    }
    assert_each_once(&mock.docs(), 3000);
    let series = |name: &str| format!("{name}{{exporter=\"elasticsearch\"}}");
    let failures = metric(
        metrics,
        &series("sluice_elasticsearch_bulk_request_failures_total"),
    );
    let transport = "sluice_elasticsearch_documents_failed_total{exporter=\"elasticsearch\",failure=\"retryable\",error_type=\"transport_error\"}";
    assert!(
        metric(metrics, transport) > 0,
        "the dead endpoint was tried"
    );
    assert!(failures > 0);
    let requests = metric(metrics, &series("sluice_elasticsearch_bulk_requests_total"));
    let observed = metric(
        metrics,
        &series("sluice_elasticsearch_bulk_latency_seconds_count"),
    );
    assert_eq!(observed, requests, "every request's latency is observed");
    let stats = mock.json("/_mock/stats");
    assert_eq!(stats["conflicts"], 0);
}

#[test]
fn otel_mode_requires_data_streams_so_a_plain_static_index_is_refused_and_dead_lettered() {
    let mock = Mock::start(&[]);
    let exporters = es_exporter(
        &mock,
        "    logs_index: my-plain-index\n    dead_letter: { index: dlq-plain }\n",
    )
    .replace("mode: raw", "mode: otel");
    let (_sluice, http, _) = start("", &exporters, "elasticsearch");
    assert_eq!(post_until_accepted(http, &numbered(0, 20)), 0);
    let docs = mock.wait_for_docs(20, Duration::from_secs(10));
    assert_eq!(docs.len(), 20, "all dead-lettered");
    for d in &docs {
        assert_eq!(
            d["_index"], "dlq-plain",
            "the dead letter may be a plain index"
        );
        assert_eq!(d["_source"]["error"]["type"], "illegal_argument_exception");
        assert_eq!(d["_source"]["index"], "my-plain-index");
    }
}

/// An OTLP/JSON logs request: a record per `(body, attributes)`.
fn otlp_json_logs(records: &[(&str, Json)]) -> Vec<u8> {
    let records: Vec<Json> = records
        .iter()
        .map(|(body, attrs)| {
            let attributes: Vec<Json> = attrs
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| json!({"key": k, "value": {"stringValue": v}}))
                .collect();
            json!({"timeUnixNano": "1700000000000000000", "body": {"stringValue": body},
                   "attributes": attributes})
        })
        .collect();
    json!({"resourceLogs": [{"resource": {}, "scopeLogs": [{"logRecords": records}]}]})
        .to_string()
        .into_bytes()
}

#[test]
fn records_naming_their_own_id_and_pipeline_are_stored_under_them_once_across_resends() {
    let mock = Mock::start(&[]);
    let sluice = Launch::fixture("otlp_http_all_to_es")
        .env("ES_URL", &format!("http://127.0.0.1:{}", mock.port))
        .put(
            "exporter",
            "pipeline: default-pipe\nlogs_dynamic_id: { enabled: true }\nlogs_dynamic_pipeline: { enabled: true }",
        )
        .start();
    let http = sluice.port("HTTP_PORT");
    let body = otlp_json_logs(&[
        (
            "order 42 paid",
            json!({"elasticsearch.document_id": "order-42",
                   "elasticsearch.ingest_pipeline": "orders", "shop": "eu"}),
        ),
        ("plain", json!({"shop": "eu"})),
    ]);
    let json_type = [("Content-Type", "application/json")];
    // The same record sent twice, as a client does when an answer is lost: its own id makes
    // the second a 409, which is counted as stored.
    for _ in 0..2 {
        let answer = Client::connect(http)
            .unwrap()
            .request("POST", "/v1/logs", &json_type, &body)
            .unwrap();
        assert_eq!(
            answer.status,
            200,
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
    }
    // Answered 200 only once delivered: everything is in the mock already.
    let docs = mock.docs();
    let own: Vec<&Json> = docs.iter().filter(|d| d["_id"] == "order-42").collect();
    assert_eq!(own.len(), 1, "stored once: {docs:?}");
    assert_eq!(own[0]["pipeline"], "orders");
    assert_eq!(own[0]["_source"]["attributes"], json!({"shop": "eu"}));
    let plain: Vec<&Json> = docs.iter().filter(|d| d["_id"] != "order-42").collect();
    assert_eq!(
        plain.len(),
        2,
        "no id of their own: each send stored: {docs:?}"
    );
    for d in plain {
        assert_eq!(d["pipeline"], "default-pipe");
        assert_eq!(d["_id"].as_str().map(str::len), Some(22), "an assigned id");
    }
    assert_eq!(mock.json("/_mock/stats")["conflicts"], 1);
}
