use super::*;
use crate::model::Str;
use serde_json::{Value as Json, json};

fn s(v: &str) -> Value {
    Value::Str(Str::from(v.to_string()))
}

fn kv(k: &'static str, v: Value) -> KeyValue {
    (Str::from_static(k), v)
}

fn sample() -> LogBatch {
    let origin = Origin {
        resource: vec![
            kv("service.name", s("checkout")),
            kv("host.name", s("node-3")),
            kv("k8s.pod.name", s("checkout-7d9f")),
        ]
        .into(),
        scope_name: Str::from_static("app.logger"),
        ..Default::default()
    };
    let record = LogRecord {
        time_unix_nano: 1_700_000_000_123_456_789,
        observed_time_unix_nano: 1_700_000_001_000_000_000,
        severity_number: 17,
        severity_text: Str::from_static("ERROR"),
        body: s("payment declined"),
        attributes: vec![
            kv("http.method", s("POST")),
            kv("data_stream.dataset", s("checkout")),
            kv("user.id", s("u42")),
        ],
        trace_id: [0xab; 16],
        span_id: [0xcd; 8],
        ..Default::default()
    };
    LogBatch {
        origins: vec![origin],
        records: vec![record],
    }
}

fn lines(mode: Mode, batch: &LogBatch) -> Vec<Json> {
    let mut out = Vec::new();
    let ends = BulkEncoder::new(mode, None, None).encode_batch(batch, &mut out);
    assert_eq!(ends.last(), Some(&out.len()));
    out.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

#[test]
fn otel_mode_writes_the_otel_index_template_layout() {
    let got = lines(Mode::Otel, &sample());
    assert_eq!(
        got[0],
        json!({"create": {"_index": "logs-checkout.otel-default"}})
    );
    assert_eq!(
        got[1],
        json!({
            "@timestamp": "2023-11-14T22:13:20.123456789Z",
            "observed_timestamp": "2023-11-14T22:13:21.000000000Z",
            "data_stream": {"type": "logs", "dataset": "checkout.otel", "namespace": "default"},
            "severity_text": "ERROR",
            "severity_number": 17,
            "body": {"text": "payment declined"},
            "attributes": {"http.method": "POST", "user.id": "u42"},
            "resource": {"attributes": {
                "service.name": "checkout", "host.name": "node-3", "k8s.pod.name": "checkout-7d9f"
            }},
            "scope": {"name": "app.logger"},
            "trace_id": "abababababababababababababababab",
            "span_id": "cdcdcdcdcdcdcdcd"
        })
    );
}

#[test]
fn ecs_mode_uses_ecs_names() {
    let got = lines(Mode::Ecs, &sample());
    assert_eq!(
        got[0],
        json!({"create": {"_index": "logs-checkout-default"}})
    );
    assert_eq!(
        got[1],
        json!({
            "@timestamp": "2023-11-14T22:13:20.123456789Z",
            "data_stream.type": "logs",
            "data_stream.dataset": "checkout",
            "data_stream.namespace": "default",
            "trace.id": "abababababababababababababababab",
            "span.id": "cdcdcdcdcdcdcdcd",
            "log.level": "ERROR",
            "event.severity": 17,
            "message": "payment declined",
            "http.method": "POST",
            "user.id": "u42",
            "service.name": "checkout",
            "host.hostname": "node-3",
            "host.name": "node-3",
            "kubernetes.pod.name": "checkout-7d9f",
            "agent.name": "otlp"
        }),
        "the Collector's mapping: record attributes keep their names but for a few; host.name \
         is also host.hostname; agent.name defaults to otlp"
    );
}

#[test]
fn apache_captures_map_to_ecs_fields_and_raw_keeps_them() {
    let preset = |name: &str| {
        let key = crate::processors::regex_parser::apache_captures()
            .find(|c| *c == name)
            .unwrap();
        Str::from_static(key)
    };
    let mut batch = sample();
    batch.records[0].attributes = vec![
        (preset("host"), s("127.0.0.1")),
        (preset("user"), s("frank")),
        (preset("method"), s("GET")),
        (preset("path"), s("/a.gif")),
        (preset("protocol"), s("HTTP/1.0")),
        (preset("status"), s("200")),
        (preset("bytes_out"), s("-")),
    ];
    let ecs = &lines(Mode::Ecs, &batch)[1];
    assert_eq!(ecs["source.address"], "127.0.0.1");
    assert_eq!(ecs["user.name"], "frank");
    assert_eq!(ecs["http.request.method"], "GET");
    assert_eq!(ecs["url.original"], "/a.gif");
    assert_eq!(ecs["http.version"], "1.0");
    assert_eq!(ecs["http.response.status_code"], "200");
    assert!(
        ecs.get("http.response.body.bytes").is_none(),
        "'-' is no number"
    );

    // The same names from anywhere else (another regex, an SDK) are not Apache's.
    let mut other = sample();
    other.records[0].attributes = vec![
        (Str::from("host".to_string()), s("db-1")),
        (Str::from("status".to_string()), s("ok")),
    ];
    let ecs = &lines(Mode::Ecs, &other)[1];
    assert_eq!(
        ecs["host.value"], "db-1",
        "kept, and renamed: `host` is also the parent of the resource's host.name"
    );
    assert_eq!(ecs["status"], "ok");
    assert!(ecs.get("source.address").is_none());

    let raw = &lines(Mode::Raw, &batch)[1];
    assert_eq!(raw["message"], "payment declined");
    assert_eq!(
        raw["host"], "127.0.0.1",
        "record attributes keep their names"
    );
    assert_eq!(raw["bytes_out"], "-");
    assert_eq!(raw["service.name"], "checkout");
}

#[test]
fn structured_bodies_and_a_static_index_with_a_pipeline() {
    let mut batch = sample();
    batch.records[0].body = Value::Map(vec![kv("event.action", s("login"))]);
    let mut out = Vec::new();
    let mut enc = BulkEncoder::new(Mode::Otel, Some("my-logs".into()), Some("geoip".into()));
    enc.encode_batch(&batch, &mut out);
    let got: Vec<Json> = out
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(
        got[0],
        json!({"create": {"_index": "my-logs", "pipeline": "geoip"}})
    );
    assert_eq!(
        got[1]["body"],
        json!({"structured": {"event.action": "login"}})
    );
    let ecs = lines(Mode::Ecs, &batch);
    assert_eq!(
        ecs[1]["event.action"], "login",
        "a map body's fields are fields"
    );
}

#[test]
fn each_item_ends_where_the_encoder_says() {
    let mut batch = sample();
    batch.records.push(batch.records[0].clone());
    batch.records[1].attributes.clear();
    let mut out = Vec::new();
    let ends = BulkEncoder::new(Mode::Otel, None, None).encode_batch(&batch, &mut out);
    assert_eq!(ends.len(), 2);
    let second = &out[ends[0]..ends[1]];
    let action: Json =
        serde_json::from_slice(second.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(
        action,
        json!({"create": {"_index": "logs-generic.otel-default"}}),
        "the second record has no dataset of its own"
    );
}

#[test]
fn assigned_ids_are_unique_and_sit_in_the_action_line() {
    let mut batch = sample();
    batch.records.push(batch.records[0].clone());
    let mut out = Vec::new();
    let mut enc = BulkEncoder::new(Mode::Otel, None, None).with_ids(0x0102_0304_0506_0708);
    enc.encode_batch(&batch, &mut out);
    enc.encode_batch(&batch, &mut out);
    let ids: Vec<String> = out
        .split(|b| *b == b'\n')
        .filter(|l| l.starts_with(b"{\"create\""))
        .map(|l| {
            let a: Json = serde_json::from_slice(l).unwrap();
            assert_eq!(a["create"]["_index"], "logs-checkout.otel-default");
            a["create"]["_id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(ids.len(), 4);
    assert!(
        ids.iter()
            .all(|id| id.len() == 22 && id.starts_with("AECAwQFBgcI"))
    );
    assert_eq!(ids[1], "AECAwQFBgcIAAAAAAAAAAB", "prefix, then the counter");
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 4, "{ids:?}");
}

/// The otel document of one record under `origin`.
fn otel_document(record: LogRecord, origin: Origin) -> (Json, Json) {
    let batch = LogBatch {
        origins: vec![origin],
        records: vec![record],
    };
    let got = lines(Mode::Otel, &batch);
    (got[0].clone(), got[1].clone())
}

fn at(nanos: u64) -> LogRecord {
    LogRecord {
        time_unix_nano: nanos,
        ..Default::default()
    }
}

#[test]
fn an_array_body_of_non_objects_is_wrapped_as_the_flattened_field_requires() {
    let mut r = at(1_000_000_000);
    r.body = Value::Array(vec![s("a"), Value::Int(1)]);
    let (_, doc) = otel_document(r, Origin::default());
    assert_eq!(
        doc,
        json!({
            "@timestamp": "1970-01-01T00:00:01.000000000Z",
            "data_stream": {"type": "logs", "dataset": "generic.otel", "namespace": "default"},
            "body": {"structured": {"value": ["a", 1]}},
            "resource": {},
            "scope": {},
        })
    );
    let mut objects = at(1_000_000_000);
    objects.body = Value::Array(vec![Value::Map(vec![kv("k", s("v"))])]);
    let (_, doc) = otel_document(objects, Origin::default());
    assert_eq!(
        doc["body"],
        json!({"structured": [{"k": "v"}]}),
        "an array of objects is kept"
    );
}

#[test]
fn namespaces_keep_dashes_and_datasets_get_the_otel_suffix_as_the_collector_names_them() {
    let mut r = at(1);
    r.attributes = vec![
        kv("data_stream.dataset", s("MyApp.otel")),
        kv("data_stream.namespace", s("prod-eu")),
    ];
    let (action, doc) = otel_document(r, Origin::default());
    assert_eq!(
        action,
        json!({"create": {"_index": "logs-myapp.otel.otel-prod-eu"}})
    );
    assert_eq!(
        doc["data_stream"],
        json!({"type": "logs", "dataset": "myapp.otel.otel", "namespace": "prod-eu"})
    );
    assert!(doc.get("attributes").is_some_and(|a| a == &json!({})));
}

#[test]
fn event_name_comes_from_the_field_else_from_the_event_name_attribute() {
    let mut r = at(1);
    r.attributes = vec![kv("event.name", s("browser.page_view"))];
    let (_, doc) = otel_document(r.clone(), Origin::default());
    assert_eq!(doc["event_name"], "browser.page_view");
    assert_eq!(
        doc["attributes"],
        json!({"event.name": "browser.page_view"}),
        "the attribute stays"
    );
    r.event_name = Str::from_static("device.app.lifecycle");
    let (_, doc) = otel_document(r, Origin::default());
    assert_eq!(doc["event_name"], "device.app.lifecycle", "the field wins");
}

#[test]
fn geo_coordinates_become_geo_points_and_resource_and_scope_carry_every_field() {
    let mut r = at(2_000_000_000);
    r.attributes = vec![
        kv("geo.location.lat", Value::Double(52.52)),
        kv("user.id", s("u1")),
        kv("geo.location.lon", Value::Double(13.4)),
        kv("client.geo.location.lat", Value::Double(48.85)),
    ];
    r.dropped_attributes_count = 2;
    let origin = Origin {
        resource: vec![kv("service.name", s("shop"))].into(),
        resource_schema_url: Str::from_static("https://opentelemetry.io/schemas/1.21.0"),
        resource_dropped_attributes_count: 3,
        scope_name: Str::from_static("app"),
        scope_version: Str::from_static("1.0"),
        scope_attributes: vec![kv("scope.k", s("v"))].into(),
        scope_dropped_attributes_count: 4,
        scope_schema_url: Str::from_static("https://opentelemetry.io/schemas/1.26.0"),
    };
    let (_, doc) = otel_document(r, origin);
    assert_eq!(
        doc,
        json!({
            "@timestamp": "1970-01-01T00:00:02.000000000Z",
            "data_stream": {"type": "logs", "dataset": "generic.otel", "namespace": "default"},
            "attributes": {
                "user.id": "u1",
                "geo.location": [13.4, 52.52],
                "client.geo.location.lat": 48.85
            },
            "dropped_attributes_count": 2,
            "resource": {
                "schema_url": "https://opentelemetry.io/schemas/1.21.0",
                "attributes": {"service.name": "shop"},
                "dropped_attributes_count": 3
            },
            "scope": {
                "schema_url": "https://opentelemetry.io/schemas/1.26.0",
                "name": "app",
                "version": "1.0",
                "attributes": {"scope.k": "v"},
                "dropped_attributes_count": 4
            },
        })
    );
}

#[test]
fn the_collectors_reserved_elasticsearch_attributes_are_not_stored() {
    let mut r = at(1);
    r.attributes = vec![
        kv("elasticsearch.document_id", s("doc-1")),
        kv("elasticsearch.ingest_pipeline", s("p")),
        kv("elasticsearch.index", s("i")),
        kv("elasticsearch.mapping.hints", s("_doc_count")),
        kv("elastic.mapping.mode", s("otel")),
        kv("keep", s("v")),
    ];
    let (_, doc) = otel_document(r, Origin::default());
    assert_eq!(doc["attributes"], json!({"keep": "v"}));
}

#[test]
fn an_elasticsearch_index_attribute_names_the_index_ahead_of_data_stream_routing() {
    let mut r = at(1);
    r.attributes = vec![
        kv("elasticsearch.index", s("audit-2026")),
        kv("data_stream.dataset", s("ignored")),
    ];
    let origin = Origin {
        resource: vec![kv("elasticsearch.index", s("from-resource"))].into(),
        ..Default::default()
    };
    let (action, doc) = otel_document(r, origin.clone());
    assert_eq!(action, json!({"create": {"_index": "audit-2026"}}));
    assert!(doc.get("data_stream").is_none(), "not a data stream");
    let (action, _) = otel_document(at(1), origin);
    assert_eq!(
        action,
        json!({"create": {"_index": "from-resource"}}),
        "the record's own, else the scope's, else the resource's"
    );
    let (action, doc) = otel_document(at(1), Origin::default());
    assert_eq!(
        action,
        json!({"create": {"_index": "logs-generic.otel-default"}})
    );
    assert!(doc.get("data_stream").is_some());
}

/// Every item's action line, with dynamic ids and pipelines as `dynamic` says.
fn actions(mode: Mode, dynamic: Dynamic, batch: &LogBatch) -> Vec<Json> {
    let mut out = Vec::new();
    BulkEncoder::new(mode, None, Some("default-pipe".into()))
        .with_ids(7)
        .with_dynamic(dynamic)
        .encode_batch(batch, &mut out);
    out.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .step_by(2)
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

#[test]
fn dynamic_ids_and_pipelines_come_from_the_records_own_attributes_when_enabled() {
    let mut own = at(1);
    own.attributes = vec![
        kv("elasticsearch.document_id", s("order-42")),
        kv("elasticsearch.ingest_pipeline", s("orders")),
        kv("keep", s("v")),
    ];
    let mut empty = at(1);
    empty.attributes = vec![
        kv("elasticsearch.document_id", s("")),
        kv("elasticsearch.ingest_pipeline", Value::Int(3)),
    ];
    let origin = Origin {
        // Only a record's own attributes steer its action, as in the Collector.
        resource: vec![kv("elasticsearch.document_id", s("from-resource"))].into(),
        ..Default::default()
    };
    let batch = LogBatch {
        origins: vec![origin],
        records: vec![own, empty, at(1)],
    };
    let on = Dynamic {
        id: true,
        pipeline: true,
    };
    for mode in [Mode::Otel, Mode::Ecs, Mode::Raw] {
        let got = actions(mode, on, &batch);
        let create = |i: usize| got[i]["create"].clone();
        assert_eq!(create(0)["_id"], "order-42", "{mode:?}");
        assert_eq!(create(0)["pipeline"], "orders", "{mode:?}");
        for i in [1, 2] {
            let id = create(i)["_id"].as_str().unwrap().to_string();
            assert_eq!(id.len(), 22, "{mode:?}: an exporter-assigned id, not {id}");
            assert_eq!(create(i)["pipeline"], "default-pipe", "{mode:?}");
        }
        let off = actions(mode, Dynamic::default(), &batch);
        assert_ne!(off[0]["create"]["_id"], "order-42", "{mode:?}");
        assert_eq!(off[0]["create"]["pipeline"], "default-pipe", "{mode:?}");
    }
    let docs = lines(Mode::Otel, &batch);
    assert_eq!(docs[1]["attributes"], json!({"keep": "v"}), "never stored");
}

#[test]
fn records_of_several_origins_interleaved_each_carry_their_own_resource_and_routing() {
    let origin = |service: &str, dataset: &str| Origin {
        resource: vec![
            kv("service.name", s(service)),
            kv("data_stream.dataset", s(dataset)),
        ]
        .into(),
        ..Default::default()
    };
    let record = |origin: u32| LogRecord { origin, ..at(1) };
    let batch = LogBatch {
        origins: vec![origin("a", "one"), origin("b", "two")],
        // The last record names an origin the batch lacks: an empty resource.
        records: vec![record(0), record(1), record(0), record(1), record(9)],
    };
    let got = lines(Mode::Otel, &batch);
    let want = [
        ("a", "logs-one.otel-default"),
        ("b", "logs-two.otel-default"),
        ("a", "logs-one.otel-default"),
        ("b", "logs-two.otel-default"),
    ];
    for (i, (service, index)) in want.iter().enumerate() {
        assert_eq!(got[2 * i]["create"]["_index"], *index);
        assert_eq!(
            got[2 * i + 1]["resource"],
            json!({"attributes": {"service.name": service}})
        );
    }
    assert_eq!(got[8]["create"]["_index"], "logs-generic.otel-default");
    assert_eq!(got[9]["resource"], json!({}));
}

#[test]
fn geo_coordinates_under_any_prefix_are_merged_whatever_letter_it_starts_with() {
    let mut r = at(1);
    r.attributes = vec![
        kv("destination.geo.location.lat", Value::Double(1.5)),
        kv("destination.geo.location.lon", Value::Double(2.5)),
        kv("event.name", s("flow")),
    ];
    let (_, doc) = otel_document(r, Origin::default());
    assert_eq!(
        doc["attributes"],
        json!({"event.name": "flow", "destination.geo.location": [2.5, 1.5]})
    );
    assert_eq!(doc["event_name"], "flow");
}

#[test]
fn a_receivers_scope_name_routes_to_its_dataset_ahead_of_the_attributes() {
    let mut r = at(1);
    r.attributes = vec![kv("data_stream.dataset", s("ignored"))];
    let origin = Origin {
        scope_name: Str::from_static(
            "github.com/open-telemetry/opentelemetry-collector-contrib/receiver/k8seventsreceiver",
        ),
        ..Default::default()
    };
    let (action, doc) = otel_document(r, origin);
    assert_eq!(
        action,
        json!({"create": {"_index": "logs-k8seventsreceiver.otel-default"}})
    );
    assert_eq!(doc["data_stream"]["dataset"], "k8seventsreceiver.otel");
}
