//! The Kubernetes components against `sluice-kube-mock`, an in-repo server that keeps the API
//! server's list/watch contract (resourceVersion, bookmarks, 410 after compaction, watch
//! timeouts). No Kubernetes API server can run here: these tests show that sluice keeps that
//! contract's side (kube-rs's watcher does the listing and watching), not that a real cluster
//! serves what the mock serves. Senders get distinct source addresses from the loopback range
//! (curl `--interface 127.0.0.N`), so `connection` association sees real, different peers.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{KubeMock, Launch, Mock, Sluice, metric};
use serde_json::{Value as Json, json};

fn pod(name: &str, node: &str, ip: &str) -> Json {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name, "namespace": "shop", "labels": {"app": "checkout"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                 "name": "checkout-7d9f8b6c5", "uid": "rs-uid",
                                 "controller": true}]
        },
        "spec": {"nodeName": node, "containers": [
            {"name": "app", "image": "ghcr.io/acme/checkout:1.4.2"},
            {"name": "envoy", "image": "envoyproxy/envoy:v1.31"}
        ]},
        "status": {"podIP": ip, "startTime": "2026-11-28T01:02:03Z", "containerStatuses": [
            {"name": "app", "containerID": format!("containerd://{name}-app"), "image": "",
             "imageID": "", "ready": true, "restartCount": 0}
        ]}
    })
}

fn cluster(kube: &KubeMock) -> Json {
    kube.apply(json!([
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": "shop", "annotations": {"team": "payments"}}},
        {"apiVersion": "apps/v1", "kind": "ReplicaSet",
         "metadata": {"name": "checkout-7d9f8b6c5", "namespace": "shop",
                      "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                           "name": "checkout", "uid": "d-uid",
                                           "controller": true}]}},
        pod("checkout-a", "node-1", "127.0.0.2"),
        pod("elsewhere", "node-2", "127.0.0.3"),
    ]))
}

/// Sends one OTLP/JSON log record with `body` and `resource` attributes from source address
/// `from`, with curl; returns the HTTP status.
fn send(port: u16, from: &str, body: &str, resource: &[(&str, &str)]) -> u16 {
    let attributes: Vec<Json> = resource
        .iter()
        .map(|(k, v)| json!({"key": k, "value": {"stringValue": v}}))
        .collect();
    let request = json!({"resourceLogs": [{"resource": {"attributes": attributes},
        "scopeLogs": [{"logRecords": [{"timeUnixNano": "1764288000000000000",
                                       "body": {"stringValue": body}}]}]}]});
    post_json(port, from, "/v1/logs", &request)
}

/// POSTs OTLP/JSON `request` to `path` from source address `from`, with curl; returns the
/// HTTP status.
fn post_json(port: u16, from: &str, path: &str, request: &Json) -> u16 {
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--interface",
            from,
        ])
        .args(["-H", "Content-Type: application/json", "--data-binary"])
        .arg(request.to_string())
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .expect("curl runs");
    String::from_utf8_lossy(&out.stdout).parse().unwrap_or(0)
}

/// The resource attributes of the stored document whose body is `body`.
fn resource_of(es: &Mock, body: &str) -> Json {
    let docs = es.docs();
    let doc = docs
        .iter()
        .find(|d| d["_source"]["body"]["text"] == body)
        .unwrap_or_else(|| panic!("no document {body:?}"));
    doc["_source"]["resource"]["attributes"].clone()
}

/// Sends (as a new record each time) until the stored document is tagged with `pod`.
fn wait_tagged(port: u16, es: &Mock, from: &str, pod: &str, attrs: &[(&str, &str)]) -> Json {
    let deadline = Instant::now() + Duration::from_secs(20);
    for n in 0.. {
        let body = format!("{pod} try {n}");
        assert_eq!(send(port, from, &body, attrs), 200);
        let r = resource_of(es, &body);
        if r["k8s.pod.name"] == pod {
            return r;
        }
        assert!(Instant::now() < deadline, "{pod} never tagged: {r}");
        std::thread::sleep(Duration::from_millis(100));
    }
    unreachable!()
}

fn start(kube: &KubeMock, es: &Mock) -> (Sluice, u16, u16) {
    let sluice = Launch::fixture("otlp_k8sattributes_to_es")
        .env("ES_URL", &format!("http://127.0.0.1:{}", es.port))
        .env("KUBECONFIG", kube.kubeconfig().to_str().unwrap())
        .env("K8S_NODE_NAME", "node-1")
        .start();
    let (http, metrics) = (sluice.port("HTTP_PORT"), sluice.port("METRICS_PORT"));
    (sluice, http, metrics)
}

#[test]
fn records_get_their_pods_metadata_by_uid_or_connection_for_this_nodes_pods_only() {
    let kube = KubeMock::start(&[]);
    let stored = cluster(&kube);
    let uid = stored[2]["metadata"]["uid"].as_str().unwrap().to_string();
    let es = Mock::start(&[]);
    let (_sluice, http, metrics) = start(&kube, &es);

    // wait_for_metadata: the first request after start is tagged already.
    assert_eq!(
        send(
            http,
            "127.0.0.2",
            "by connection",
            &[("service.name", "checkout")]
        ),
        200
    );
    let want = json!({
        "service.name": "checkout",
        "k8s.namespace.name": "shop",
        "k8s.pod.name": "checkout-a",
        "k8s.pod.uid": uid,
        "k8s.pod.start_time": "2026-11-28T01:02:03Z",
        "k8s.deployment.name": "checkout",
        "k8s.replicaset.name": "checkout-7d9f8b6c5",
        "k8s.node.name": "node-1",
        "app": "checkout",
        "k8s.namespace.annotations.team": "payments",
    });
    assert_eq!(resource_of(&es, "by connection"), want);

    // By uid, from an address no pod has; the container named by the sender.
    let by_uid = [("k8s.pod.uid", uid.as_str()), ("k8s.container.name", "app")];
    assert_eq!(send(http, "127.0.0.9", "by uid", &by_uid), 200);
    let r = resource_of(&es, "by uid");
    assert_eq!(r["k8s.pod.name"], "checkout-a");
    assert_eq!(r["container.image.name"], "ghcr.io/acme/checkout");
    assert_eq!(r["container.image.tag"], "1.4.2");

    // A pod of another node is not watched (filter.node_from_env_var).
    assert_eq!(send(http, "127.0.0.3", "other node", &[]), 200);
    assert_eq!(
        resource_of(&es, "other node"),
        Json::Null,
        "no attributes at all"
    );
    let unassociated =
        "sluice_k8sattributes_unassociated_total{processor=\"k8sattributes\",pipeline=\"logs\"}";
    assert_eq!(metric(metrics, unassociated), 1);
    let stats = kube.stats();
    assert!(
        stats["requests"]
            .as_object()
            .unwrap()
            .keys()
            .all(|k| !k.contains("/pods") || k.starts_with("GET /api/v1/pods")),
        "{stats}"
    );
    assert_eq!(
        stats["tokens"]["test-token"].as_u64().map(|n| n > 0),
        Some(true)
    );
    // Two pipelines list k8sattributes; one set of watches serves both (pods, replicasets,
    // namespaces: one list each).
    assert_eq!(stats["lists"], 3, "{stats}");

    // Spans (kept encoded) get the same, by the same connection.
    let spans = json!({"resourceSpans": [{"resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": "checkout"}}]},
        "scopeSpans": [{"spans": [{"traceId": "5b8efff798038103d269b633813fc60c",
            "spanId": "eee19b7ec3c1b174", "name": "GET /pay", "kind": 2,
            "startTimeUnixNano": "1764288000000000000", "endTimeUnixNano": "1764288000100000000"}]}]}]});
    assert_eq!(post_json(http, "127.0.0.2", "/v1/traces", &spans), 200);
    let docs = es.docs();
    let span = docs
        .iter()
        .find(|d| d["_source"]["name"] == "GET /pay")
        .expect("the span is stored");
    assert_eq!(span["_index"], "traces-generic.otel-default");
    assert_eq!(span["_source"]["resource"]["attributes"], want);
}

#[test]
fn new_pods_are_picked_up_deleted_pods_stay_known_and_a_410_relists() {
    let kube = KubeMock::start(&["--bookmark-ms", "200"]);
    cluster(&kube);
    let es = Mock::start(&[]);
    let (_sluice, http, _) = start(&kube, &es);

    // Created after start: found once its watch event arrives.
    kube.apply(pod("checkout-late", "node-1", "127.0.0.4"));
    wait_tagged(http, &es, "127.0.0.4", "checkout-late", &[]);

    // Deleted: its last records are still tagged (two minutes' grace).
    kube.delete("v1", "Pod", "shop", "checkout-late");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(send(http, "127.0.0.4", "after delete", &[]), 200);
    assert_eq!(
        resource_of(&es, "after delete")["k8s.pod.name"],
        "checkout-late"
    );

    // The history is compacted and every watch cut: the watcher's resume gets 410 Gone, it
    // lists again, and a pod created meanwhile is found.
    kube.control("compact", Json::Null);
    kube.apply(pod("checkout-relisted", "node-1", "127.0.0.5"));
    kube.control("compact", Json::Null);
    kube.control("close-watches", Json::Null);
    wait_tagged(http, &es, "127.0.0.5", "checkout-relisted", &[]);
    // The pods still there stay known through the relist.
    wait_tagged(http, &es, "127.0.0.2", "checkout-a", &[]);
    let stats = kube.stats();
    assert!(stats["expired"].as_u64().unwrap() >= 1, "{stats}");
    assert!(stats["lists"].as_u64().unwrap() >= 2, "{stats}");
}

#[test]
fn without_an_api_server_wait_for_metadata_fails_the_start_with_a_clear_error() {
    let kube = KubeMock::start(&[]);
    let config = kube.kubeconfig();
    drop(kube);
    let es = Mock::start(&[]);
    let yaml = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/configs/otlp_k8sattributes_to_es.yaml"
    ))
    .unwrap()
    .replace(
        "wait_for_metadata: true",
        "wait_for_metadata: true\n    wait_for_metadata_timeout: 2s",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["--config", common::write_config(&yaml).to_str().unwrap()])
        .env("KUBECONFIG", &config)
        .env("K8S_NODE_NAME", "node-1")
        .env("ES_URL", format!("http://127.0.0.1:{}", es.port))
        .env("HTTP_PORT", common::free_port().to_string())
        .env("METRICS_PORT", common::free_port().to_string())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("did not sync within 2s"),
        "the reason is given: {err}"
    );
}

/// Waits until `kube`'s stats show `n` more hostile answers than `from`.
fn hostile_answers(kube: &KubeMock, at_least: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while kube.stats()["hostile_answers"].as_u64().unwrap() < at_least {
        assert!(Instant::now() < deadline, "{}", kube.stats());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A broken or hostile API server: a watch line that never ends, a list page that ignores
/// `limit` and never ends, a list that is never answered. Each answer is cut off at its bound
/// (`api_limits`), the reason is logged, the watcher tries again, sluice's memory stays small
/// (a gigabyte line once took it to 3 GB and an abort), and once the server behaves the
/// metadata is current again.
#[test]
fn a_hostile_api_server_is_cut_off_at_the_bounds_and_tried_again() {
    let kube = KubeMock::start(&["--bookmark-ms", "200"]);
    cluster(&kube);
    let es = Mock::start(&[]);
    let sluice = Launch::fixture("otlp_k8sattributes_to_es")
        .env("ES_URL", &format!("http://127.0.0.1:{}", es.port))
        .env("KUBECONFIG", kube.kubeconfig().to_str().unwrap())
        .env("K8S_NODE_NAME", "node-1")
        .env("ANSWER_TIMEOUT", "2s")
        .start();
    let http = sluice.port("HTTP_PORT");
    wait_tagged(http, &es, "127.0.0.2", "checkout-a", &[]);
    for (mode, reason) in [
        ("endless-line", "max_event_size (4194304 bytes)"),
        ("huge-list", "max_answer_size (33554432 bytes)"),
        ("stall-list", "answer_timeout (2s)"),
    ] {
        let seen = kube.stats()["hostile_answers"].as_u64().unwrap();
        kube.control(&format!("hostile?mode={mode}"), Json::Null);
        // A watch resumes with a watch; a list comes after a 410.
        kube.control("compact", Json::Null);
        kube.control("close-watches", Json::Null);
        hostile_answers(&kube, seen + 2);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !sluice.logs().contains(reason) {
            assert!(
                Instant::now() < deadline,
                "{mode}: no {reason:?} in {}",
                sluice.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        kube.control("hostile?mode=none", Json::Null);
    }
    // Well again: a pod created now is found.
    kube.apply(pod("checkout-after", "node-1", "127.0.0.6"));
    kube.control("close-watches", Json::Null);
    wait_tagged(http, &es, "127.0.0.6", "checkout-after", &[]);
    let peak = common::peak_rss_mib(sluice.child.id());
    assert!(peak < 400, "peak RSS {peak} MiB");
}

/// A kubelet whose summary never ends: each scrape is cut off at `api_limits.max_answer_size`
/// and counted as failed, and once the kubelet answers properly the metrics arrive.
#[test]
fn an_endless_kubelet_summary_is_cut_off_and_scraping_goes_on() {
    let kubelet = KubeMock::start(&[]);
    kubelet.control("summary", summary());
    kubelet.control("hostile?mode=huge-summary", Json::Null);
    let es = Mock::start(&[]);
    let sluice = Launch::fixture("kubeletstats_to_es")
        .env("ES_URL", &format!("http://127.0.0.1:{}", es.port))
        .env("KUBELET_URL", &format!("http://127.0.0.1:{}", kubelet.port))
        .start();
    hostile_answers(&kubelet, 2);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !sluice.logs().contains("max_answer_size (33554432 bytes)") {
        assert!(Instant::now() < deadline, "{}", sluice.logs());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(es.docs().is_empty());
    kubelet.control("hostile?mode=none", Json::Null);
    let deadline = Instant::now() + Duration::from_secs(20);
    while es.docs().is_empty() {
        assert!(
            Instant::now() < deadline,
            "no metrics after the kubelet recovered"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let peak = common::peak_rss_mib(sluice.child.id());
    assert!(peak < 400, "peak RSS {peak} MiB");
}

/// A kubelet summary shaped like a real one: a node and one pod with a container and a
/// persistent volume.
fn summary() -> Json {
    json!({
        "node": {"nodeName": "node-1", "startTime": "2026-11-01T00:00:00Z",
                 "cpu": {"usageNanoCores": 250000000, "usageCoreNanoSeconds": 3600000000000u64},
                 "memory": {"availableBytes": 1000, "usageBytes": 2000, "workingSetBytes": 1500,
                            "rssBytes": 1200, "pageFaults": 7, "majorPageFaults": 1},
                 "network": {"name": "eth0", "rxBytes": 10, "rxErrors": 0, "txBytes": 20, "txErrors": 2},
                 "fs": {"availableBytes": 5, "capacityBytes": 9, "usedBytes": 4},
                 "systemContainers": [{"name": "kubelet"}]},
        "pods": [{"podRef": {"name": "checkout-a", "namespace": "shop", "uid": "uid-1"},
                  "startTime": "2026-11-27T10:00:00Z",
                  "containers": [{"name": "app", "startTime": "2026-11-27T10:00:01Z",
                                  "cpu": {"usageNanoCores": 5000000, "usageCoreNanoSeconds": 12000000000u64},
                                  "memory": {"workingSetBytes": 300, "usageBytes": 400}}],
                  "cpu": {"usageNanoCores": 6000000},
                  "memory": {"workingSetBytes": 350},
                  "network": {"name": "eth0", "rxBytes": 100, "txBytes": 200},
                  "volume": [{"name": "data", "availableBytes": 11, "capacityBytes": 22,
                              "inodes": 100, "inodesFree": 60, "inodesUsed": 40,
                              "pvcRef": {"name": "data-0", "namespace": "shop"}}]}]
    })
}

#[test]
fn kubelet_metrics_arrive_in_the_collectors_names_and_data_stream() {
    let kubelet = KubeMock::start(&[]);
    kubelet.control("summary", summary());
    let es = Mock::start(&[]);
    let sluice = Launch::fixture("kubeletstats_to_es")
        .env("ES_URL", &format!("http://127.0.0.1:{}", es.port))
        .env("KUBELET_URL", &format!("http://127.0.0.1:{}", kubelet.port))
        .start();
    // Two scrapes at least: each makes one document per resource and time.
    let deadline = Instant::now() + Duration::from_secs(20);
    let docs = loop {
        let docs = es.docs();
        let times: std::collections::BTreeSet<String> = docs
            .iter()
            .map(|d| d["_source"]["@timestamp"].to_string())
            .collect();
        if times.len() >= 2 {
            break docs;
        }
        assert!(Instant::now() < deadline, "scraped twice: {docs:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        docs.iter()
            .all(|d| d["_index"] == "metrics-kubeletstatsreceiver.otel-default"),
        "routed by the receiver's scope, as Kibana's dashboards expect"
    );
    let first_time = docs[0]["_source"]["@timestamp"].clone();
    let scrape: Vec<&Json> = docs
        .iter()
        .filter(|d| d["_source"]["@timestamp"] == first_time)
        .collect();
    let of = |attr: &str, value: &str| -> Vec<&Json> {
        scrape
            .iter()
            .copied()
            .filter(|d| d["_source"]["resource"]["attributes"][attr] == value)
            .collect()
    };
    let names = |docs: &[&Json]| -> std::collections::BTreeSet<String> {
        docs.iter()
            .flat_map(|d| d["_source"]["metrics"].as_object().unwrap().keys().cloned())
            .collect()
    };
    let node = of("k8s.node.name", "node-1");
    let node_names = names(&node);
    for n in [
        "k8s.node.cpu.usage",
        "k8s.node.cpu.time",
        "k8s.node.memory.working_set",
        "k8s.node.memory.page_faults",
        "k8s.node.filesystem.usage",
        "k8s.node.network.io",
        "k8s.node.network.errors",
    ] {
        assert!(node_names.contains(n), "{n} in {node_names:?}");
    }
    let io: Vec<&&Json> = node
        .iter()
        .filter(|d| d["_source"]["metrics"].get("k8s.node.network.io").is_some())
        .collect();
    assert_eq!(io.len(), 2, "one document per direction");
    let rx = io
        .iter()
        .find(|d| d["_source"]["attributes"]["direction"] == "receive")
        .unwrap();
    assert_eq!(rx["_source"]["metrics"]["k8s.node.network.io"], 10);
    assert_eq!(rx["_source"]["attributes"]["interface"], "eth0");
    assert_eq!(rx["_source"]["unit"], "By");
    let usage = node
        .iter()
        .find(|d| d["_source"]["metrics"].get("k8s.node.cpu.usage").is_some())
        .unwrap();
    assert_eq!(usage["_source"]["metrics"]["k8s.node.cpu.usage"], 0.25);
    let container: Vec<&Json> = of("k8s.container.name", "app");
    assert_eq!(
        container[0]["_source"]["resource"]["attributes"],
        json!({"k8s.pod.uid": "uid-1", "k8s.pod.name": "checkout-a",
               "k8s.namespace.name": "shop", "k8s.container.name": "app"})
    );
    assert!(names(&container).contains("container.cpu.time"));
    let volume = of("k8s.volume.name", "data");
    assert_eq!(
        volume[0]["_source"]["resource"]["attributes"]["k8s.persistentvolumeclaim.name"],
        "data-0"
    );
    assert!(names(&volume).contains("k8s.volume.inodes.free"));
    let accepted = "otelcol_receiver_accepted_metric_points_total{receiver=\"kubeletstats\",transport=\"http\"}";
    // 15 node points (two per network metric), 4 pod, 4 container and 5 volume points a scrape.
    let points = metric(sluice.port("METRICS_PORT"), accepted);
    assert!(points >= 28 && points.is_multiple_of(28), "{points}");
    assert_eq!(
        kubelet.stats()["requests"]["GET /stats/summary"]
            .as_u64()
            .map(|n| n >= 2),
        Some(true)
    );
}

fn k8s_event(name: &str, at: &str) -> Json {
    json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": name, "namespace": "shop"},
        "eventTime": at, "reason": "Scheduled", "type": "Normal", "action": "Binding",
        "note": format!("note of {name}"),
        "regarding": {"kind": "Pod", "name": "checkout-a", "namespace": "shop", "uid": "pod-1"},
        "reportingController": "default-scheduler", "reportingInstance": "scheduler-1"
    })
}

fn now_micros() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Waits until the stored events' notes are exactly `want` (each once), or fails.
fn wait_notes(es: &Mock, want: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut notes: Vec<String> = es
            .docs()
            .iter()
            .map(|d| {
                d["_source"]["body"]["text"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            })
            .collect();
        notes.sort();
        let mut wanted: Vec<String> = want.iter().map(|n| format!("note of {n}")).collect();
        wanted.sort();
        if notes == wanted {
            return;
        }
        assert!(
            Instant::now() < deadline && notes.len() <= wanted.len(),
            "stored {notes:?}, want {wanted:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn each_event_is_reported_once_across_reconnects_a_410_relist_and_a_leader_failover() {
    let kube = KubeMock::start(&[]);
    // Before any reporter started: history, not reported (as the Collector does).
    kube.apply(k8s_event("old", "2026-01-01T00:00:00.000000Z"));
    let es = Mock::start(&[]);
    let start = |name: &str| {
        Launch::fixture("k8s_events_to_es")
            .env("ES_URL", &format!("http://127.0.0.1:{}", es.port))
            .env("KUBECONFIG", kube.kubeconfig().to_str().unwrap())
            .env("POD_NAME", name)
            .start()
    };
    let mut replicas = vec![("a", start("a")), ("b", start("b"))];
    let lease_path =
        "/apis/coordination.k8s.io/v1/namespaces/observability/leases/sluice-k8s-events";
    let lease = || -> Json {
        serde_json::from_slice(&common::get(kube.port, lease_path).unwrap().body).unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while lease()["spec"]["holderIdentity"].as_str().is_none() {
        assert!(Instant::now() < deadline, "nobody leads");
        std::thread::sleep(Duration::from_millis(100));
    }

    let mut names: Vec<String> = Vec::new();
    let mut last_uid = String::new();
    let mut emit = |kube: &KubeMock, name: &str| {
        let stored = kube.apply(k8s_event(name, &now_micros()));
        last_uid = stored[0]["metadata"]["uid"].as_str().unwrap().to_string();
        names.push(name.to_string());
        (names.clone(), last_uid.clone())
    };
    let refs = |v: &[String]| v.iter().map(String::as_str).collect::<Vec<_>>().join(",");
    for n in ["e1", "e2", "e3"] {
        emit(&kube, n);
    }
    wait_notes(&es, &["e1", "e2", "e3"]);
    let docs = es.docs();
    assert!(
        docs.iter()
            .all(|d| d["_index"] == "logs-k8seventsreceiver.otel-default")
    );
    assert_eq!(
        docs[0]["_source"]["attributes"]["k8s.event.reason"],
        "Scheduled"
    );
    assert_eq!(docs[0]["_source"]["severity_text"], "Normal");

    // The watch is cut: it resumes from its resourceVersion.
    kube.control("close-watches", Json::Null);
    let (all, _) = emit(&kube, "e4");
    wait_notes(&es, &refs(&all).split(',').collect::<Vec<_>>());

    // The history is compacted under it: 410, a fresh list of every event, only e5 is new.
    kube.control("compact", Json::Null);
    kube.control("close-watches", Json::Null);
    let (all, e5) = emit(&kube, "e5");
    wait_notes(&es, &refs(&all).split(',').collect::<Vec<_>>());
    assert!(kube.stats()["expired"].as_u64().unwrap() >= 1);

    // The leader is killed once its checkpoint covers e5; events created while no one leads
    // are reported by the other replica when it takes over.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let l = lease();
        let cp = l["metadata"]["annotations"]["sluice.dev/k8s-events-checkpoint"]
            .as_str()
            .map(|c| serde_json::from_str::<Json>(c).unwrap());
        if cp.is_some_and(|c| c["uids"] == json!([e5])) {
            let holder = l["spec"]["holderIdentity"].as_str().unwrap().to_string();
            let i = replicas.iter().position(|(n, _)| *n == holder).unwrap();
            let (_, mut leader) = replicas.remove(i);
            leader.child.kill().unwrap();
            leader.child.wait().unwrap();
            break;
        }
        assert!(Instant::now() < deadline, "no checkpoint in {l}");
        std::thread::sleep(Duration::from_millis(100));
    }
    emit(&kube, "e6");
    let (all, _) = emit(&kube, "e7");
    wait_notes(&es, &refs(&all).split(',').collect::<Vec<_>>());
    let survivor = replicas[0].0;
    assert_eq!(lease()["spec"]["holderIdentity"], survivor);
    assert!(lease()["spec"]["leaseTransitions"].as_i64().unwrap() >= 1);
}

#[test]
fn container_logs_get_their_pods_metadata_by_the_uid_in_their_path() {
    let kube = KubeMock::start(&[]);
    cluster(&kube);
    let mut late = pod("checkout-b", "node-1", "127.0.0.6");
    late["metadata"]["uid"] = json!("7a3c1c1e-0b5e-4b8e-9c61-2f4f1a0e5d11");
    kube.apply(late);
    let es = Mock::start(&[]);
    let logs = std::env::temp_dir().join(format!("sluice-k8s-logs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&logs);
    let dir = logs
        .join("shop_checkout-b_7a3c1c1e-0b5e-4b8e-9c61-2f4f1a0e5d11")
        .join("app");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("0.log"),
        "2026-11-28T01:00:00.000000001Z stdout F payment accepted\n",
    )
    .unwrap();
    let _sluice = Launch::fixture("filelog_k8sattributes_to_es")
        .env("ES_URL", &format!("http://127.0.0.1:{}", es.port))
        .env("KUBECONFIG", kube.kubeconfig().to_str().unwrap())
        .env("K8S_NODE_NAME", "node-1")
        .env("LOG_DIR", logs.to_str().unwrap())
        .start();
    let docs = es.wait_for_docs(1, Duration::from_secs(20));
    let r = &docs[0]["_source"]["resource"]["attributes"];
    assert_eq!(docs[0]["_source"]["body"]["text"], "payment accepted");
    assert_eq!(
        r["k8s.pod.uid"], "7a3c1c1e-0b5e-4b8e-9c61-2f4f1a0e5d11",
        "from the path"
    );
    assert_eq!(r["k8s.container.name"], "app", "from the path");
    assert_eq!(r["k8s.deployment.name"], "checkout", "from the API");
    assert_eq!(r["k8s.node.name"], "node-1");
    assert_eq!(r["container.image.name"], "ghcr.io/acme/checkout");
    assert_eq!(r["container.image.tag"], "1.4.2");
    let _ = std::fs::remove_dir_all(&logs);
}
