//! `sluice-es-mock` keeps Elasticsearch's documented `_bulk` contract: the shapes here are
//! those of the Elasticsearch reference (bulk API and error documents), so that exporter tests
//! against the mock test what a real cluster would answer.

mod common;

use common::{Client, Mock, Response, get};
use serde_json::{Value, json};
use std::io::Write;

fn json_of(r: &Response) -> Value {
    serde_json::from_slice(&r.body).unwrap()
}

const TWO: &[u8] = b"{\"create\":{\"_index\":\"logs-app-default\",\"_id\":\"a\"}}\n{\"@timestamp\":\"2024-01-01T00:00:00Z\",\"status\":200}\n{\"create\":{\"_index\":\"logs-app-default\"}}\n{\"@timestamp\":\"2024-01-01T00:00:01Z\",\"status\":\"oops\"}\n";

#[test]
fn root_and_bulk_answer_in_elasticsearch_shapes() {
    let mock = Mock::start(&[]);
    let root = get(mock.port, "/").unwrap();
    assert_eq!(root.header("x-elastic-product"), Some("Elasticsearch"));
    assert!(json_of(&root)["version"]["number"].is_string());

    let r = mock.bulk(TWO, &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-elastic-product"), Some("Elasticsearch"));
    let v = json_of(&r);
    assert_eq!(v["errors"], false);
    assert!(v["took"].is_number());
    assert_eq!(v["items"][0]["create"]["status"], 201);
    assert_eq!(v["items"][0]["create"]["_id"], "a");
    assert_eq!(v["items"][0]["create"]["result"], "created");
    assert_eq!(v["items"][1]["create"]["_index"], "logs-app-default");

    // The same _id again: a create conflicts.
    let again = json_of(&mock.bulk(TWO, &[]));
    assert_eq!(again["errors"], true);
    assert_eq!(again["items"][0]["create"]["status"], 409);
    assert_eq!(
        again["items"][0]["create"]["error"]["type"],
        "version_conflict_engine_exception"
    );
    assert_eq!(
        again["items"][1]["create"]["status"], 201,
        "no id: a new document"
    );

    let docs = String::from_utf8(get(mock.port, "/_mock/docs").unwrap().body).unwrap();
    let docs: Vec<Value> = docs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(docs.len(), 3);
    assert_eq!(docs[0]["_source"]["status"], 200);
}

#[test]
fn faults_reject_items_fail_mappings_and_take_the_cluster_down() {
    let mock = Mock::start(&["--long-field", "status", "--reject-share", "0.3"]);
    let mut body = Vec::new();
    for i in 0..200 {
        writeln!(body, "{{\"create\":{{\"_index\":\"logs-app-default\"}}}}").unwrap();
        writeln!(body, "{{\"n\":{i}}}").unwrap();
    }
    let v = json_of(&mock.bulk(&body, &[]));
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 200);
    let rejected: Vec<_> = items
        .iter()
        .filter(|i| i["create"]["status"] == 429)
        .collect();
    assert!(
        (30..=90).contains(&rejected.len()),
        "about 30% rejected: {}",
        rejected.len()
    );
    assert_eq!(
        rejected[0]["create"]["error"]["type"],
        "es_rejected_execution_exception"
    );

    let mock = Mock::start(&["--long-field", "status"]);
    let v = json_of(&mock.bulk(TWO, &[]));
    assert_eq!(v["items"][0]["create"]["status"], 201);
    assert_eq!(v["items"][1]["create"]["status"], 400);
    assert_eq!(
        v["items"][1]["create"]["error"]["type"],
        "document_parsing_exception"
    );
    assert!(
        v["items"][1]["create"]["error"]["reason"]
            .as_str()
            .unwrap()
            .contains("failed to parse field [status] of type [long]")
    );

    Client::connect(mock.port)
        .unwrap()
        .request("POST", "/_mock/down?seconds=30", &[], b"")
        .unwrap();
    let down = mock.bulk(TWO, &[]);
    assert_eq!(down.status, 503);
    assert_eq!(json_of(&down)["status"], 503);
    assert_eq!(mock.json("/_mock/stats")["bulk_requests"], 1);
}

#[test]
fn limits_gzip_and_auth_are_whole_request_answers() {
    let mock = Mock::start(&[
        "--max-content-length",
        "100",
        "--require-auth",
        "ApiKey c2VjcmV0",
    ]);
    let unauthenticated = mock.bulk(TWO, &[]);
    assert_eq!(unauthenticated.status, 401);
    assert_eq!(
        json_of(&unauthenticated)["error"]["type"],
        "security_exception"
    );

    let auth = [("Authorization", "ApiKey c2VjcmV0")];
    assert_eq!(mock.bulk(TWO, &auth).status, 413, "over max-content-length");

    let mock = Mock::start(&[]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(TWO).unwrap();
    let r = mock.bulk(&gz.finish().unwrap(), &[("Content-Encoding", "gzip")]);
    assert_eq!(json_of(&r)["items"].as_array().unwrap().len(), 2);
    assert_eq!(mock.json("/_mock/stats")["gzip_requests"], 1);

    let bad = mock.bulk(b"not json\n{}\n", &[]);
    assert_eq!(bad.status, 400);
    assert_eq!(
        json_of(&bad),
        json!({"error": {"root_cause": [{"type": "illegal_argument_exception",
            "reason": "Malformed action/metadata line [1], expected START_OBJECT"}],
            "type": "illegal_argument_exception",
            "reason": "Malformed action/metadata line [1], expected START_OBJECT"}, "status": 400})
    );
}

#[test]
fn metrics_indices_are_time_series_ids_derived_conflicts_409_and_client_ids_refused() {
    let mock = Mock::start(&[]);
    let doc = |t: u64, v: u64| {
        format!(
            "{{\"@timestamp\":{t},\"attributes\":{{\"host\":\"a\"}},\"_metric_names_hash\":\"1f\",\"metrics\":{{\"cpu\":{v}}}}}"
        )
    };
    let action = "{\"create\":{\"_index\":\"metrics-generic.otel-default\",\"dynamic_templates\":{\"metrics.cpu\":\"gauge_long\"}}}";
    let body = format!(
        "{action}\n{}\n{action}\n{}\n{action}\n{}\n{{\"create\":{{\"_index\":\"metrics-generic.otel-default\",\"_id\":\"x\"}}}}\n{}\n",
        doc(1000, 1),
        doc(1000, 2),
        doc(2000, 3),
        doc(3000, 4)
    );
    let v = json_of(&mock.bulk(body.as_bytes(), &[]));
    let status = |i: usize| v["items"][i]["create"]["status"].as_u64();
    assert_eq!(status(0), Some(201));
    assert_eq!(status(1), Some(409), "same series, same time: a conflict");
    assert_eq!(
        v["items"][1]["create"]["error"]["type"],
        "version_conflict_engine_exception"
    );
    assert_eq!(status(2), Some(201), "another time: another document");
    assert_eq!(status(3), Some(400), "a client _id in a time series index");
    let reason = v["items"][3]["create"]["error"]["reason"].as_str().unwrap();
    assert!(reason.contains("time_series mode"), "{reason}");
    let docs = mock.docs();
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0]["dynamic_templates"]["metrics.cpu"], "gauge_long");
    assert_eq!(docs[0]["_id"], v["items"][0]["create"]["_id"]);
}

#[test]
fn what_elasticsearch_refuses_per_item_is_refused_with_its_error_types() {
    let mock = Mock::start(&[]);
    let lines = [
        (
            r#"{"create":{"_index":"logs-App-default"}}"#,
            r#"{"@timestamp":1}"#,
        ),
        (r#"{"create":{"_index":"_hidden"}}"#, r#"{"@timestamp":1}"#),
        (
            r#"{"create":{"_index":"logs-generic.otel-default"}}"#,
            r#"{"@timestamp":1,"body":{"structured":["a",1]}}"#,
        ),
        (
            r#"{"create":{"_index":"logs-generic.otel-default"}}"#,
            r#"{"@timestamp":1,"body":{"structured":[{"a":1}]}}"#,
        ),
        (
            r#"{"create":{"_index":"logs-generic-default"}}"#,
            r#"{"@timestamp":1,"a":"x","a.b":"y"}"#,
        ),
        (
            r#"{"create":{"_index":"logs-generic-default"}}"#,
            r#"{"@timestamp":1,"a.value":"x","a.b":"y"}"#,
        ),
    ];
    let mut body = String::new();
    for (action, doc) in lines {
        body.push_str(action);
        body.push('\n');
        body.push_str(doc);
        body.push('\n');
    }
    let v = json_of(&mock.bulk(body.as_bytes(), &[]));
    let got: Vec<(u64, String)> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let c = &i["create"];
            (
                c["status"].as_u64().unwrap(),
                c["error"]["type"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (400, "invalid_index_name_exception".into()),
            (400, "invalid_index_name_exception".into()),
            (400, "document_parsing_exception".into()),
            (201, String::new()),
            (400, "document_parsing_exception".into()),
            (201, String::new()),
        ]
    );
}
