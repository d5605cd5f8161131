use super::*;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;

/// A summary shaped like a kubelet's (fields it does not read included), one pod with one
/// container and one volume.
pub const SUMMARY: &str = r#"{
  "node": {
    "nodeName": "node-1", "startTime": "2026-11-01T00:00:00Z",
    "cpu": {"time": "2026-11-28T00:00:00Z", "usageNanoCores": 250000000, "usageCoreNanoSeconds": 3600000000000},
    "memory": {"time": "2026-11-28T00:00:00Z", "availableBytes": 1000, "usageBytes": 2000,
               "workingSetBytes": 1500, "rssBytes": 1200, "pageFaults": 7, "majorPageFaults": 1},
    "network": {"time": "2026-11-28T00:00:00Z", "name": "eth0", "rxBytes": 10, "rxErrors": 0,
                "txBytes": 20, "txErrors": 2, "interfaces": [{"name": "eth0", "rxBytes": 10}]},
    "fs": {"availableBytes": 5, "capacityBytes": 9, "usedBytes": 4, "inodesFree": 1, "inodes": 2, "inodesUsed": 1},
    "runtime": {"imageFs": {"availableBytes": 1}}, "systemContainers": [{"name": "kubelet"}]
  },
  "pods": [{
    "podRef": {"name": "checkout-a", "namespace": "shop", "uid": "uid-1"},
    "startTime": "2026-11-27T10:00:00Z",
    "containers": [{"name": "app", "startTime": "2026-11-27T10:00:01Z",
                    "cpu": {"usageNanoCores": 5000000, "usageCoreNanoSeconds": 12000000000},
                    "memory": {"workingSetBytes": 300, "usageBytes": 400},
                    "rootfs": {"availableBytes": 50, "capacityBytes": 90, "usedBytes": 40},
                    "logs": {"usedBytes": 3}}],
    "cpu": {"usageNanoCores": 6000000},
    "memory": {"workingSetBytes": 350},
    "network": {"name": "eth0", "rxBytes": 100, "txBytes": 200},
    "volume": [{"name": "data", "availableBytes": 11, "capacityBytes": 22, "usedBytes": 11,
                "inodes": 100, "inodesFree": 60, "inodesUsed": 40, "pvcRef": {"name": "data-0", "namespace": "shop"}}],
    "ephemeral-storage": {"availableBytes": 70, "capacityBytes": 90, "usedBytes": 20}
  }]
}"#;

/// `(resource attributes, [(metric, unit, points as (attributes, value))])`.
type Flat = Vec<(
    Vec<(String, String)>,
    Vec<(String, String, Vec<(Vec<(String, String)>, String)>)>,
)>;

fn strings(kvs: &[ProtoKv]) -> Vec<(String, String)> {
    kvs.iter()
        .map(|kv| {
            let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(any_value::Value::StringValue(s)) => s.clone(),
                other => format!("{other:?}"),
            };
            (kv.key.clone(), v)
        })
        .collect()
}

fn flat(req: &ExportMetricsServiceRequest) -> Flat {
    req.resource_metrics
        .iter()
        .map(|rm| {
            let sm = &rm.scope_metrics[0];
            assert_eq!(sm.scope.as_ref().unwrap().name, SCOPE);
            let metrics = sm
                .metrics
                .iter()
                .map(|m| {
                    let points = match m.data.as_ref().unwrap() {
                        Data::Gauge(g) => &g.data_points,
                        Data::Sum(s) => {
                            assert!(s.is_monotonic);
                            assert_eq!(s.aggregation_temporality, 2, "cumulative");
                            &s.data_points
                        }
                        other => panic!("{other:?}"),
                    };
                    let points = points
                        .iter()
                        .map(|p| {
                            let v = match p.value.unwrap() {
                                number_data_point::Value::AsInt(i) => i.to_string(),
                                number_data_point::Value::AsDouble(d) => format!("{d}"),
                            };
                            assert_eq!(p.time_unix_nano, 7);
                            (strings(&p.attributes), v)
                        })
                        .collect();
                    (m.name.clone(), m.unit.clone(), points)
                })
                .collect();
            (strings(&rm.resource.as_ref().unwrap().attributes), metrics)
        })
        .collect()
}

fn names(f: &Flat, resource: usize) -> Vec<String> {
    f[resource].1.iter().map(|(n, _, _)| n.clone()).collect()
}

#[test]
fn a_summary_becomes_the_collectors_metrics_per_node_pod_container_and_volume() {
    let s: Summary = serde_json::from_str(SUMMARY).unwrap();
    let all = [Group::Node, Group::Pod, Group::Container, Group::Volume];
    let req = metrics_of(&s, &all, 7);
    let f = flat(&req);
    assert_eq!(f.len(), 4);
    let kv = |k: &str, v: &str| (k.to_string(), v.to_string());
    assert_eq!(f[0].0, vec![kv("k8s.node.name", "node-1")]);
    assert_eq!(
        names(&f, 0),
        [
            "k8s.node.cpu.usage",
            "k8s.node.cpu.time",
            "k8s.node.memory.available",
            "k8s.node.memory.usage",
            "k8s.node.memory.rss",
            "k8s.node.memory.working_set",
            "k8s.node.memory.page_faults",
            "k8s.node.memory.major_page_faults",
            "k8s.node.filesystem.available",
            "k8s.node.filesystem.capacity",
            "k8s.node.filesystem.usage",
            "k8s.node.network.io",
            "k8s.node.network.errors",
        ]
    );
    let node = &f[0].1;
    assert_eq!(
        (node[0].1.as_str(), node[0].2[0].1.as_str()),
        ("{cpu}", "0.25")
    );
    assert_eq!((node[1].1.as_str(), node[1].2[0].1.as_str()), ("s", "3600"));
    assert_eq!(
        node[11].2,
        vec![
            (
                vec![kv("interface", "eth0"), kv("direction", "receive")],
                "10".to_string()
            ),
            (
                vec![kv("interface", "eth0"), kv("direction", "transmit")],
                "20".to_string()
            ),
        ]
    );
    assert_eq!(node[11].1, "By");
    let pod = vec![
        kv("k8s.pod.uid", "uid-1"),
        kv("k8s.pod.name", "checkout-a"),
        kv("k8s.namespace.name", "shop"),
    ];
    assert_eq!(f[1].0, pod);
    assert_eq!(
        names(&f, 1),
        [
            "k8s.pod.cpu.usage",
            "k8s.pod.memory.working_set",
            "k8s.pod.filesystem.available",
            "k8s.pod.filesystem.capacity",
            "k8s.pod.filesystem.usage",
            "k8s.pod.network.io",
            "k8s.pod.network.errors",
        ][..6],
        "only what the kubelet reported; no errors reported, so no error metric"
    );
    let mut container = pod.clone();
    container.push(kv("k8s.container.name", "app"));
    assert_eq!(f[2].0, container);
    assert_eq!(
        names(&f, 2),
        [
            "container.cpu.usage",
            "container.cpu.time",
            "container.memory.usage",
            "container.memory.working_set",
            "container.filesystem.available",
            "container.filesystem.capacity",
            "container.filesystem.usage",
        ]
    );
    let mut volume = pod.clone();
    volume.push(kv("k8s.volume.name", "data"));
    volume.push(kv("k8s.persistentvolumeclaim.name", "data-0"));
    assert_eq!(f[3].0, volume);
    assert_eq!(
        f[3].1
            .iter()
            .map(|(n, u, p)| format!("{n} {u} {}", p[0].1))
            .collect::<Vec<_>>(),
        [
            "k8s.volume.available By 11",
            "k8s.volume.capacity By 22",
            "k8s.volume.inodes 1 100",
            "k8s.volume.inodes.free 1 60",
            "k8s.volume.inodes.used 1 40",
        ]
    );
    // Cumulative sums start when the node, pod or container did.
    let start = |r: &ResourceMetrics, m: usize| match rm_data(r, m) {
        Data::Sum(s) => s.data_points[0].start_time_unix_nano,
        _ => 0,
    };
    assert_eq!(
        start(&req.resource_metrics[0], 1),
        1_793_491_200_000_000_000
    );
    assert_eq!(
        start(&req.resource_metrics[2], 1),
        1_795_773_601_000_000_000
    );
    // The request is valid OTLP, as the pipeline checks it.
    let bytes = bytes::Bytes::from(req.encode_to_vec());
    let batch = crate::otlp::raw::decode_metrics(&bytes).unwrap();
    assert_eq!(batch.len(), 15 + 7 + 7 + 5, "data points");
}

fn rm_data(r: &ResourceMetrics, m: usize) -> &Data {
    r.scope_metrics[0].metrics[m].data.as_ref().unwrap()
}

#[test]
fn groups_choose_what_is_reported() {
    let s: Summary = serde_json::from_str(SUMMARY).unwrap();
    let f = flat(&metrics_of(&s, &[Group::Pod], 7));
    assert_eq!(f.len(), 1);
    assert!(f[0].1.iter().all(|(n, ..)| n.starts_with("k8s.pod.")));
    let empty: Summary = serde_json::from_str("{}").unwrap();
    assert!(
        metrics_of(&empty, &[Group::Pod], 7)
            .resource_metrics
            .is_empty()
    );
}
