//! `kubeletstats`: node, pod, container and volume metrics from the node's kubelet
//! (`GET /stats/summary`), every `collection_interval`, under the OTel Collector's metric names,
//! units and resource attributes, so the same dashboards read them.
//!
//! ```yaml
//! receivers:
//!   kubeletstats:
//!     endpoint: https://${env:K8S_NODE_IP}:10250   # the node's kubelet
//!     auth_type: serviceAccount          # the pod's token and CA; or none
//!     insecure_skip_verify: true         # kubelet serving certificates are often self-signed
//!     collection_interval: 10s           # 1s to 1h
//!     initial_delay: 1s
//!     timeout: 10s                       # one scrape's limit
//!     metric_groups: [node, pod, container]   # the default; volume too if wanted
//! ```
//!
//! Metrics (each where the kubelet reports the value): `<p>.cpu.usage` ({cpu}, gauge) and
//! `<p>.cpu.time` (s, cumulative sum); `<p>.memory.available` / `.usage` / `.rss` /
//! `.working_set` (By) and `.page_faults` / `.major_page_faults` (1); `<p>.filesystem.available`
//! / `.capacity` / `.usage` (By); for nodes and pods `<p>.network.io` (By) and
//! `<p>.network.errors` (1), cumulative, with `interface` and `direction`
//! (`receive`/`transmit`). `<p>` is `k8s.node`, `k8s.pod` or `container`. Volumes:
//! `k8s.volume.available` / `.capacity` (By), `.inodes` / `.inodes.free` / `.inodes.used` (1).
//! Resources: `k8s.node.name`; `k8s.pod.uid`, `k8s.pod.name`, `k8s.namespace.name` (and
//! `k8s.container.name`, or `k8s.volume.name` and `k8s.persistentvolumeclaim.name`). The
//! scope is the Collector receiver's, so Elasticsearch's exporter routes the points to
//! `metrics-kubeletstatsreceiver.otel-*` as Kibana's Kubernetes dashboards expect.
//!
//! A scrape that fails is logged (at most once a minute) and counted; the next one is tried on
//! schedule. A batch the pipeline refuses (a full queue) is dropped and counted, as the
//! Collector's scrapers do: the next scrape carries the same gauges and cumulative sums.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, InstrumentationScope, KeyValue as ProtoKv, any_value,
};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use serde::Deserialize;

use crate::component::{Built, Context, Spec, Yaml};
use crate::config::{ConfigError, check_duration, decode, duration};
use crate::k8s::summary::{Cpu, Fs, Memory, Network, Summary};
use crate::model::Signal;
use crate::pipeline::{Batch, BoxFuture, Consumer, Metadata, Receiver, Running, StartError};
use crate::shutdown::Shutdown;
use crate::telemetry::{Counter, ReceiverMetrics};

/// The Collector receiver's scope name: Elasticsearch's exporter derives the dataset
/// (`kubeletstatsreceiver`) from it.
pub const SCOPE: &str =
    "github.com/open-telemetry/opentelemetry-collector-contrib/receiver/kubeletstatsreceiver";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The kubelet, `https://host:10250` (required).
    pub endpoint: String,
    /// `serviceAccount` (default) or `none`.
    #[serde(default)]
    pub auth_type: KubeletAuth,
    /// Bounds on the kubelet's answer (see `k8s::bounded`): `max_answer_size` (32MiB; a full
    /// node's summary is about 1 MB). The whole answer must come within `timeout`. A
    /// sluice-only setting.
    #[serde(default)]
    pub api_limits: crate::k8s::ApiLimits,
    /// Accept any certificate from the kubelet. Default `false`.
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// Default `10s`.
    #[serde(default = "ten_seconds", deserialize_with = "duration")]
    pub collection_interval: Duration,
    /// Default `1s`.
    #[serde(default = "one_second", deserialize_with = "duration")]
    pub initial_delay: Duration,
    /// Default `10s`.
    #[serde(default = "ten_seconds", deserialize_with = "duration")]
    pub timeout: Duration,
    /// Default `[node, pod, container]`.
    #[serde(default = "default_groups")]
    pub metric_groups: Vec<Group>,
}

fn ten_seconds() -> Duration {
    Duration::from_secs(10)
}

fn one_second() -> Duration {
    Duration::from_secs(1)
}

fn default_groups() -> Vec<Group> {
    vec![Group::Node, Group::Pod, Group::Container]
}

#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
pub enum KubeletAuth {
    /// The pod's service account token (re-read as it rotates) and cluster CA.
    #[default]
    #[serde(rename = "serviceAccount")]
    ServiceAccount,
    #[serde(rename = "none")]
    None,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    Node,
    Pod,
    Container,
    Volume,
}

pub const SPEC: Spec<Box<dyn Receiver>> = Spec::new(
    "kubeletstats",
    &[Signal::Metrics],
    build,
    "{endpoint: 'https://127.0.0.1:10250', auth_type: none}",
);

pub fn build(ctx: &Context, raw: Yaml) -> Built<Box<dyn Receiver>> {
    let cfg: Config = decode(ctx.path, raw).map_err(|e| vec![e])?;
    let path = ctx.path;
    let mut errors = Vec::new();
    let (min, max) = (Duration::from_secs(1), Duration::from_secs(3600));
    check_duration(
        &mut errors,
        format!("{path}.collection_interval"),
        cfg.collection_interval,
        min,
        max,
    );
    check_duration(
        &mut errors,
        format!("{path}.timeout"),
        cfg.timeout,
        min,
        max,
    );
    check_duration(
        &mut errors,
        format!("{path}.initial_delay"),
        cfg.initial_delay,
        Duration::ZERO,
        max,
    );
    cfg.api_limits
        .check(&format!("{path}.api_limits"), &mut errors);
    match cfg.endpoint.parse::<hyper::Uri>() {
        Ok(u) if matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some() => {}
        _ => errors.push(ConfigError::new(
            format!("{path}.endpoint"),
            format!("{:?} is not an http(s)://host:port URL", cfg.endpoint),
        )),
    }
    if cfg.metric_groups.is_empty() {
        errors.push(ConfigError::new(
            format!("{path}.metric_groups"),
            "lists no group",
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let id = ctx.id.to_string();
    Ok(Box::new(KubeletStats {
        metrics: ReceiverMetrics::new(ctx.telemetry, &id, "http"),
        failed_scrapes: ctx.telemetry.counter(
            "sluice_kubeletstats_failed_scrapes_total",
            "Scrapes of the kubelet's summary that failed (unreachable, refused, unreadable).",
            &[("receiver", id.as_str())],
        ),
        id,
        cfg,
    }))
}

pub struct KubeletStats {
    id: String,
    cfg: Config,
    metrics: ReceiverMetrics,
    failed_scrapes: Counter,
}

/// A client for the kubelet: kube-rs's, pointed at the kubelet's endpoint, with the service
/// account's credentials where asked.
fn client(cfg: &Config) -> Result<kube::Client, String> {
    let url: hyper::Uri = cfg.endpoint.parse().map_err(|e| format!("endpoint: {e}"))?;
    let mut config = match cfg.auth_type {
        KubeletAuth::ServiceAccount => {
            let mut c = kube::Config::incluster()
                .map_err(|e| format!("no in-cluster service account: {e}"))?;
            c.cluster_url = url;
            c
        }
        KubeletAuth::None => kube::Config::new(url),
    };
    config.accept_invalid_certs = cfg.insecure_skip_verify;
    config.read_timeout = Some(cfg.timeout);
    config.connect_timeout = Some(cfg.timeout);
    let limits = crate::k8s::ApiLimits {
        answer_timeout: cfg.timeout,
        ..cfg.api_limits.clone()
    };
    crate::k8s::bounded::client(config, &limits)
        .map_err(|e| format!("cannot build the kubelet client: {e}"))
}

impl Receiver for KubeletStats {
    fn start(
        self: Box<Self>,
        consumer: Consumer,
        shutdown: Shutdown,
    ) -> BoxFuture<Result<Running, StartError>> {
        Box::pin(async move {
            let client = client(&self.cfg).map_err(|message| StartError {
                component: format!("receiver {}", self.id),
                message,
            })?;
            let running: Running = Box::pin(self.run(client, consumer, shutdown));
            Ok(running)
        })
    }
}

impl KubeletStats {
    async fn run(self, client: kube::Client, consumer: Consumer, shutdown: Shutdown) {
        let mut worker = consumer.worker();
        if !shutdown.sleep(self.cfg.initial_delay).await {
            return;
        }
        let mut tick = tokio::time::interval(self.cfg.collection_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut throttle = crate::k8s::Throttle::default();
        let mut complain = |what: &str, e: &dyn std::fmt::Display| {
            if throttle.ready_for(&e.to_string()) {
                tracing::warn!(receiver = %self.id, error = %e, "{what}");
            }
        };
        loop {
            if shutdown.unless(tick.tick()).await.is_none() {
                return;
            }
            let summary = match shutdown.unless(self.scrape(&client)).await {
                None => return,
                Some(Ok(s)) => s,
                Some(Err(e)) => {
                    self.failed_scrapes.add(1);
                    complain("kubelet scrape failed", &e);
                    continue;
                }
            };
            let request = metrics_of(&summary, &self.cfg.metric_groups, now_nanos());
            let bytes = bytes::Bytes::from(request.encode_to_vec());
            let batch = match crate::otlp::raw::decode_metrics(&bytes) {
                Ok(b) => b,
                Err(e) => {
                    complain("kubelet summary made an invalid request", &e);
                    continue;
                }
            };
            let n = batch.len() as u64;
            if n == 0 {
                continue;
            }
            match worker
                .consume(Batch::Raw(batch), &Metadata::default())
                .await
            {
                Ok(_) => {
                    self.metrics.accepted.of(Signal::Metrics).add(n);
                    self.metrics.accepted_bytes.add(bytes.len() as u64);
                }
                Err(e) => {
                    self.metrics.refused.of(Signal::Metrics).add(n);
                    complain("kubelet metrics dropped", &e);
                }
            }
        }
    }

    async fn scrape(&self, client: &kube::Client) -> Result<Summary, String> {
        let req = hyper::Request::get("/stats/summary")
            .body(Vec::new())
            .map_err(|e| e.to_string())?;
        let text = tokio::time::timeout(self.cfg.timeout, client.request_text(req))
            .await
            .map_err(|_| format!("no answer within {:?}", self.cfg.timeout))?
            .map_err(|e| e.to_string())?;
        serde_json::from_str(&text).map_err(|e| format!("the summary is not readable: {e}"))
    }
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// RFC 3339 to Unix nanoseconds; 0 (unknown) when absent or unreadable.
fn nanos(time: Option<&str>) -> u64 {
    time.and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .and_then(|t| t.timestamp_nanos_opt())
        .map_or(0, |n| n.max(0) as u64)
}

fn kv(key: &str, value: &str) -> ProtoKv {
    ProtoKv {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_string())),
        }),
        ..Default::default()
    }
}

/// The metrics of one resource, as they are added.
struct Points {
    now: u64,
    metrics: Vec<Metric>,
}

enum Number {
    Int(u64),
    Double(f64),
}

impl Points {
    fn point(&self, start: u64, value: Number, attributes: Vec<ProtoKv>) -> NumberDataPoint {
        NumberDataPoint {
            attributes,
            start_time_unix_nano: start,
            time_unix_nano: self.now,
            value: Some(match value {
                Number::Int(v) => number_data_point::Value::AsInt(v.min(i64::MAX as u64) as i64),
                Number::Double(v) => number_data_point::Value::AsDouble(v),
            }),
            ..Default::default()
        }
    }

    fn gauge(&mut self, name: String, unit: &str, value: Option<Number>) {
        let Some(value) = value else {
            return;
        };
        let point = self.point(0, value, Vec::new());
        self.metrics.push(Metric {
            name,
            unit: unit.to_string(),
            data: Some(metric::Data::Gauge(Gauge {
                data_points: vec![point],
            })),
            ..Default::default()
        });
    }

    /// A cumulative, monotonic sum: one point per `(attributes, value)`.
    fn sum(&mut self, name: String, unit: &str, start: u64, points: Vec<(Vec<ProtoKv>, Number)>) {
        if points.is_empty() {
            return;
        }
        let data_points = points
            .into_iter()
            .map(|(attrs, v)| self.point(start, v, attrs))
            .collect();
        self.metrics.push(Metric {
            name,
            unit: unit.to_string(),
            data: Some(metric::Data::Sum(Sum {
                data_points,
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: true,
            })),
            ..Default::default()
        });
    }

    fn cpu(&mut self, p: &str, start: u64, cpu: Option<&Cpu>) {
        let Some(c) = cpu else {
            return;
        };
        let cores = |n: Option<u64>| n.map(|n| Number::Double(n as f64 / 1e9));
        self.gauge(format!("{p}.cpu.usage"), "{cpu}", cores(c.usage_nano_cores));
        if let Some(t) = cores(c.usage_core_nano_seconds) {
            self.sum(format!("{p}.cpu.time"), "s", start, vec![(Vec::new(), t)]);
        }
    }

    fn memory(&mut self, p: &str, memory: Option<&Memory>) {
        let Some(m) = memory else {
            return;
        };
        let int = |v: Option<u64>| v.map(Number::Int);
        self.gauge(
            format!("{p}.memory.available"),
            "By",
            int(m.available_bytes),
        );
        self.gauge(format!("{p}.memory.usage"), "By", int(m.usage_bytes));
        self.gauge(format!("{p}.memory.rss"), "By", int(m.rss_bytes));
        self.gauge(
            format!("{p}.memory.working_set"),
            "By",
            int(m.working_set_bytes),
        );
        self.gauge(format!("{p}.memory.page_faults"), "1", int(m.page_faults));
        self.gauge(
            format!("{p}.memory.major_page_faults"),
            "1",
            int(m.major_page_faults),
        );
    }

    fn filesystem(&mut self, p: &str, fs: Option<&Fs>) {
        let Some(f) = fs else {
            return;
        };
        let int = |v: Option<u64>| v.map(Number::Int);
        self.gauge(
            format!("{p}.filesystem.available"),
            "By",
            int(f.available_bytes),
        );
        self.gauge(
            format!("{p}.filesystem.capacity"),
            "By",
            int(f.capacity_bytes),
        );
        self.gauge(format!("{p}.filesystem.usage"), "By", int(f.used_bytes));
    }

    fn network(&mut self, p: &str, start: u64, network: Option<&Network>) {
        let Some(n) = network else {
            return;
        };
        let pair = |rx: Option<u64>, tx: Option<u64>| -> Vec<(Vec<ProtoKv>, Number)> {
            [("receive", rx), ("transmit", tx)]
                .into_iter()
                .filter_map(|(direction, v)| {
                    let attrs = vec![kv("interface", &n.name), kv("direction", direction)];
                    v.map(|v| (attrs, Number::Int(v)))
                })
                .collect()
        };
        self.sum(
            format!("{p}.network.io"),
            "By",
            start,
            pair(n.rx_bytes, n.tx_bytes),
        );
        self.sum(
            format!("{p}.network.errors"),
            "1",
            start,
            pair(n.rx_errors, n.tx_errors),
        );
    }
}

/// The request one summary makes: a resource per node, pod, container and volume.
pub fn metrics_of(s: &Summary, groups: &[Group], now: u64) -> ExportMetricsServiceRequest {
    let mut resources = Vec::new();
    let mut emit = |attributes: Vec<ProtoKv>, fill: &mut dyn FnMut(&mut Points)| {
        let mut points = Points {
            now,
            metrics: Vec::new(),
        };
        fill(&mut points);
        if points.metrics.is_empty() {
            return;
        }
        resources.push(ResourceMetrics {
            resource: Some(Resource {
                attributes,
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: SCOPE.to_string(),
                    version: env!("CARGO_PKG_VERSION").to_string(),
                    ..Default::default()
                }),
                metrics: points.metrics,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        });
    };
    let node = &s.node;
    if groups.contains(&Group::Node) {
        let start = nanos(node.start_time.as_deref());
        emit(vec![kv("k8s.node.name", &node.node_name)], &mut |p| {
            p.cpu("k8s.node", start, node.cpu.as_ref());
            p.memory("k8s.node", node.memory.as_ref());
            p.filesystem("k8s.node", node.fs.as_ref());
            p.network("k8s.node", start, node.network.as_ref());
        });
    }
    for pod in &s.pods {
        let r = &pod.pod_ref;
        let base = || {
            vec![
                kv("k8s.pod.uid", &r.uid),
                kv("k8s.pod.name", &r.name),
                kv("k8s.namespace.name", &r.namespace),
            ]
        };
        let start = nanos(pod.start_time.as_deref());
        if groups.contains(&Group::Pod) {
            emit(base(), &mut |p| {
                p.cpu("k8s.pod", start, pod.cpu.as_ref());
                p.memory("k8s.pod", pod.memory.as_ref());
                p.filesystem("k8s.pod", pod.ephemeral_storage.as_ref());
                p.network("k8s.pod", start, pod.network.as_ref());
            });
        }
        if groups.contains(&Group::Container) {
            for c in &pod.containers {
                let mut attrs = base();
                attrs.push(kv("k8s.container.name", &c.name));
                let start = nanos(c.start_time.as_deref());
                emit(attrs, &mut |p| {
                    p.cpu("container", start, c.cpu.as_ref());
                    p.memory("container", c.memory.as_ref());
                    p.filesystem("container", c.rootfs.as_ref());
                });
            }
        }
        if groups.contains(&Group::Volume) {
            for v in &pod.volume {
                let mut attrs = base();
                attrs.push(kv("k8s.volume.name", &v.name));
                if let Some(pvc) = &v.pvc_ref {
                    attrs.push(kv("k8s.persistentvolumeclaim.name", &pvc.name));
                }
                emit(attrs, &mut |p| {
                    let int = |v: Option<u64>| v.map(Number::Int);
                    let f = &v.fs;
                    p.gauge("k8s.volume.available".into(), "By", int(f.available_bytes));
                    p.gauge("k8s.volume.capacity".into(), "By", int(f.capacity_bytes));
                    p.gauge("k8s.volume.inodes".into(), "1", int(f.inodes));
                    p.gauge("k8s.volume.inodes.free".into(), "1", int(f.inodes_free));
                    p.gauge("k8s.volume.inodes.used".into(), "1", int(f.inodes_used));
                });
            }
        }
    }
    ExportMetricsServiceRequest {
        resource_metrics: resources,
    }
}

#[cfg(test)]
mod tests;
