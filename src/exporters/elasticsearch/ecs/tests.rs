use super::*;
use crate::model::{KeyValue, Str};
use serde_json::{Value as Json, json};

fn s(v: &str) -> Value {
    Value::Str(Str::from(v.to_string()))
}

fn kv(k: &str, v: Value) -> KeyValue {
    (Str::from(k.to_string()), v)
}

fn doc(r: &LogRecord, o: &Origin) -> Json {
    let mut out = Vec::new();
    document(r, o, None, &mut Scratch::default(), &mut out);
    serde_json::from_slice(&out).unwrap()
}

#[test]
fn resources_map_by_the_collectors_table_and_agent_fields_come_from_the_sdk() {
    let origin = Origin {
        resource: vec![
            kv("telemetry.sdk.name", s("opentelemetry")),
            kv("telemetry.sdk.language", s("python")),
            kv("telemetry.sdk.version", s("1.45.2")),
            kv("host.name", s("node-3")),
            kv("os.type", s("darwin")),
            kv("os.name", s("macOS")),
            kv("k8s.statefulset.name", s("db")),
            kv("k8s.cluster.name", s("prod")),
            kv("service.instance.id", s("i-1")),
        ]
        .into(),
        scope_attributes: vec![kv("scope.k", s("v"))].into(),
        ..Default::default()
    };
    let r = LogRecord {
        time_unix_nano: 1_000_000_000,
        body: Value::Int(42),
        attributes: vec![
            kv("event.name", s("login")),
            kv("exception.type", s("ValueError")),
        ],
        ..Default::default()
    };
    assert_eq!(
        doc(&r, &origin),
        json!({
            "@timestamp": "1970-01-01T00:00:01.000000000Z",
            "agent.name": "opentelemetry/python",
            "agent.version": "1.45.2",
            "host.hostname": "node-3",
            "host.name": "node-3",
            "host.os.platform": "darwin",
            "host.os.name": "macOS",
            "host.os.type": "macos",
            "kubernetes.statefulset.name": "db",
            "orchestrator.cluster.name": "prod",
            "service.node.name": "i-1",
            "scope.k": "v",
            "event.action": "login",
            "error.type": "ValueError",
        }),
        "a number body is not a message; telemetry.sdk.* become agent.*"
    );
}

#[test]
fn a_field_that_is_also_a_parent_becomes_its_value_and_the_last_writer_wins() {
    let origin = Origin {
        resource: vec![kv("service.name", s("from-resource")), kv("a", s("r"))].into(),
        ..Default::default()
    };
    let r = LogRecord {
        body: s("hello"),
        attributes: vec![
            kv("service.name", s("from-record")),
            kv("a", s("x")),
            kv("a.b", s("y")),
            kv("a-c", s("z")),
        ],
        ..Default::default()
    };
    let got = doc(&r, &origin);
    assert_eq!(got["service.name"], "from-record", "the record wins");
    assert_eq!(
        got["a.value"], "x",
        "renamed: `a` is also the parent of `a.b`"
    );
    assert_eq!(got["a.b"], "y");
    assert_eq!(got["a-c"], "z");
    assert!(got.get("a").is_none());
    assert_eq!(got["message"], "hello");
    assert_eq!(got["agent.name"], "otlp");
}
