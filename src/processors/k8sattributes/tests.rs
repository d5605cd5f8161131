use super::*;
use crate::config::ComponentId;
use crate::model::{LogRecord, Origin};
use crate::telemetry::Registry;

fn processor(yaml: &str) -> Result<K8sAttributes, Vec<String>> {
    let id = ComponentId::parse("k8sattributes").unwrap();
    let telemetry = Registry::new();
    let ctx = Context::for_test(&id, "processors.k8sattributes", &telemetry);
    let raw: Yaml = serde_yaml_ng::from_str(yaml).unwrap();
    configure(&ctx, raw).map_err(|es| es.iter().map(|e| e.to_string()).collect())
}

fn pod(uid: &str, name: &str, ip: &str) -> Pod {
    Pod {
        uid: uid.into(),
        name: name.into(),
        namespace: "shop".into(),
        node: "node-1".into(),
        ip: ip.parse().ok(),
        start_time: Some("2026-11-28T00:00:00Z".into()),
        owner: Some((OwnerKind::ReplicaSet, "checkout-7d9f8b6c5".into())),
        containers: vec![
            pods::Container {
                name: "app".into(),
                image_name: "ghcr.io/acme/checkout".into(),
                image_tag: "1.4.2".into(),
                ids: vec![format!("cid-{uid}").into()],
            },
            pods::Container {
                name: "sidecar".into(),
                image_name: "envoy".into(),
                image_tag: "latest".into(),
                ids: vec![],
            },
        ],
        tags: vec![("app".into(), "checkout".into())],
    }
}

fn fill(p: &K8sAttributes) {
    let mut ix = p.inner.index.write().unwrap();
    ix.apply(pod("uid-1", "checkout-7d9f8b6c5-x2x9q", "10.1.0.5"));
    ix.apply(pod("uid-2", "checkout-7d9f8b6c5-abcde", "10.1.0.6"));
    ix.set_deployment("shop", "checkout-7d9f8b6c5", Some("checkout"));
}

fn s(v: &str) -> Value {
    Value::Str(Str::copied(v))
}

fn batch(resource: Vec<KeyValue>) -> LogBatch {
    LogBatch {
        origins: vec![Origin {
            resource: resource.into(),
            ..Default::default()
        }],
        records: vec![LogRecord::default()],
    }
}

fn resource(b: &LogBatch) -> Vec<(String, String)> {
    b.origins[0]
        .resource
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                v.as_str().map(|s| s.to_string()).unwrap_or_default(),
            )
        })
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn a_resource_with_a_pod_uid_gets_that_pods_metadata_and_keeps_its_own_values() {
    let mut p = processor("{}").unwrap();
    fill(&p);
    let mut b = batch(vec![
        (Str::from_static("k8s.pod.uid"), s("uid-2")),
        (Str::from_static("k8s.namespace.name"), s("kept-as-sent")),
        (Str::from_static("k8s.container.name"), s("app")),
    ]);
    p.process(&mut b);
    assert_eq!(
        resource(&b),
        pairs(&[
            ("k8s.pod.uid", "uid-2"),
            ("k8s.namespace.name", "kept-as-sent"),
            ("k8s.container.name", "app"),
            ("k8s.pod.name", "checkout-7d9f8b6c5-abcde"),
            ("k8s.pod.start_time", "2026-11-28T00:00:00Z"),
            ("k8s.deployment.name", "checkout"),
            ("k8s.node.name", "node-1"),
            ("container.image.name", "ghcr.io/acme/checkout"),
            ("container.image.tag", "1.4.2"),
            ("app", "checkout"),
        ])
    );
    assert_eq!(p.inner.associated.get(), 1);
}

#[test]
fn the_connection_finds_a_pod_by_its_ip_when_no_attribute_does() {
    let mut p = processor("{extract: {metadata: [k8s.pod.name, k8s.replicaset.name]}}").unwrap();
    fill(&p);
    let mut b = batch(vec![]);
    p.process_from(&mut b, Some("10.1.0.5".parse().unwrap()));
    assert_eq!(
        resource(&b),
        pairs(&[
            ("k8s.pod.name", "checkout-7d9f8b6c5-x2x9q"),
            ("k8s.replicaset.name", "checkout-7d9f8b6c5"),
            ("app", "checkout"),
        ])
    );
    let mut unknown = batch(vec![]);
    p.process_from(&mut unknown, Some("10.9.9.9".parse().unwrap()));
    assert!(resource(&unknown).is_empty());
    assert_eq!(p.inner.unassociated.get(), 1);
}

#[test]
fn rules_are_tried_in_order_and_a_compound_rule_needs_every_value_to_agree() {
    let yaml = r#"
pod_association:
  - sources:
      - {from: resource_attribute, name: k8s.pod.name}
      - {from: resource_attribute, name: k8s.namespace.name}
  - sources: [{from: resource_attribute, name: container.id}]
extract: {metadata: [k8s.pod.uid, k8s.container.name, container.id]}
"#;
    let mut p = processor(yaml).unwrap();
    fill(&p);
    let mut by_name = batch(vec![
        (
            Str::from_static("k8s.pod.name"),
            s("checkout-7d9f8b6c5-x2x9q"),
        ),
        (Str::from_static("k8s.namespace.name"), s("shop")),
    ]);
    p.process(&mut by_name);
    assert!(resource(&by_name).contains(&("k8s.pod.uid".into(), "uid-1".into())));
    let mut wrong_namespace = batch(vec![
        (
            Str::from_static("k8s.pod.name"),
            s("checkout-7d9f8b6c5-x2x9q"),
        ),
        (Str::from_static("k8s.namespace.name"), s("other")),
    ]);
    p.process(&mut wrong_namespace);
    assert_eq!(resource(&wrong_namespace).len(), 2, "nothing added");
    let mut by_container = batch(vec![(Str::from_static("container.id"), s("cid-uid-2"))]);
    p.process(&mut by_container);
    assert_eq!(
        resource(&by_container),
        pairs(&[
            ("container.id", "cid-uid-2"),
            ("k8s.pod.uid", "uid-2"),
            ("k8s.container.name", "app"),
            ("app", "checkout"),
        ])
    );
}

#[test]
fn passthrough_only_adds_the_connections_ip() {
    let mut p = processor("{passthrough: true}").unwrap();
    let mut b = batch(vec![(Str::from_static("service.name"), s("checkout"))]);
    p.process_from(
        &mut b,
        Some("::ffff:10.1.0.5".parse::<IpAddr>().unwrap().to_canonical()),
    );
    assert_eq!(
        resource(&b),
        pairs(&[("service.name", "checkout"), ("k8s.pod.ip", "10.1.0.5")])
    );
    let mut sent = batch(vec![(Str::from_static("k8s.pod.ip"), s("10.2.0.1"))]);
    p.process_from(&mut sent, Some("10.1.0.5".parse().unwrap()));
    assert_eq!(
        resource(&sent),
        pairs(&[("k8s.pod.ip", "10.2.0.1")]),
        "kept"
    );
}

#[test]
fn every_config_error_is_reported_at_once_with_its_path() {
    let yaml = r#"
filter: {node_from_env_var: SLUICE_TEST_SURELY_UNSET_VARIABLE}
extract:
  metadata: [k8s.pod.name, k8s.pod.colour]
  labels: [{key_regex: "("}, {tag_name: x}]
pod_association:
  - sources: [{from: resource_attribute, name: service.name}]
  - sources: []
wait_for_metadata_timeout: 1h
"#;
    let errors = processor(yaml).err().unwrap();
    let want = [
        "processors.k8sattributes.wait_for_metadata_timeout",
        "processors.k8sattributes.extract.metadata[1]",
        "processors.k8sattributes.filter.node_from_env_var",
        "processors.k8sattributes.extract.labels[0].key_regex",
        "processors.k8sattributes.extract.labels[1]",
        "processors.k8sattributes.pod_association[0].sources[0].name",
        "processors.k8sattributes.pod_association[1].sources",
    ];
    assert_eq!(errors.len(), want.len(), "{errors:#?}");
    for (e, path) in errors.iter().zip(want) {
        assert!(e.starts_with(path), "{e} at {path}");
    }
}

#[test]
fn encoded_spans_get_the_same_attributes_in_their_resource_and_stay_encoded() {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue as Kv, any_value};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use prost::Message;
    let kv = |k: &str, v: &str| Kv {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    };
    let spans = |resource: Vec<Kv>| ResourceSpans {
        resource: Some(Resource {
            attributes: resource,
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            spans: vec![Span {
                trace_id: vec![1; 16],
                span_id: vec![2; 8],
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let request = ExportTraceServiceRequest {
        resource_spans: vec![
            spans(vec![
                kv("k8s.pod.uid", "uid-2"),
                kv("k8s.container.name", "app"),
            ]),
            spans(vec![kv("service.name", "unknown")]),
        ],
    };
    let mut p = processor("{}").unwrap();
    fill(&p);
    let bytes = bytes::Bytes::from(request.encode_to_vec());
    let mut batch = crate::otlp::raw::decode_traces(&bytes).unwrap();
    p.process_encoded(&mut batch, None);
    let mut out = Vec::new();
    batch.encode(&mut out);
    let got = ExportTraceServiceRequest::decode(&out[..]).unwrap();
    let attrs = |i: usize| -> Vec<(String, String)> {
        got.resource_spans[i]
            .resource
            .as_ref()
            .unwrap()
            .attributes
            .iter()
            .map(
                |kv| match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                    Some(any_value::Value::StringValue(s)) => (kv.key.clone(), s.clone()),
                    _ => (kv.key.clone(), String::new()),
                },
            )
            .collect()
    };
    assert_eq!(
        attrs(0),
        pairs(&[
            ("k8s.pod.uid", "uid-2"),
            ("k8s.container.name", "app"),
            ("k8s.namespace.name", "shop"),
            ("k8s.pod.name", "checkout-7d9f8b6c5-abcde"),
            ("k8s.pod.start_time", "2026-11-28T00:00:00Z"),
            ("k8s.deployment.name", "checkout"),
            ("k8s.node.name", "node-1"),
            ("container.image.name", "ghcr.io/acme/checkout"),
            ("container.image.tag", "1.4.2"),
            ("app", "checkout"),
        ])
    );
    assert_eq!(
        attrs(1),
        pairs(&[("service.name", "unknown")]),
        "no pod: unchanged"
    );
    assert_eq!(
        got.resource_spans[0].scope_spans,
        request.resource_spans[0].scope_spans
    );
    assert_eq!(
        (p.inner.associated.get(), p.inner.unassociated.get()),
        (1, 1)
    );
}
