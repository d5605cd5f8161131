//! `k8s_events`: Kubernetes events (`events.k8s.io/v1`) as log records, as the Collector's
//! receiver of that name writes them, for the cluster collector.
//!
//! ```yaml
//! receivers:
//!   k8s_events:
//!     auth_type: serviceAccount        # or kubeConfig
//!     namespaces: []                   # all (the default), or a list
//!     leader_election:                 # several replicas, one reporter
//!       lease_name: sluice-k8s-events
//!       lease_namespace: ${env:POD_NAMESPACE}
//!       identity: ${env:POD_NAME}
//!       lease_duration: 15s
//!       renew_deadline: 10s
//!       retry_period: 2s
//! ```
//!
//! Each event is a record: body the event's note; severity `INFO` for `Normal`, `WARN` for
//! `Warning` (the type as the severity text); time when it last happened (the series' last
//! observation, else the event time, else the deprecated timestamps); attributes
//! `k8s.event.reason`, `.action`, `.start_time`, `.name`, `.uid`, `.count` (when counted),
//! `k8s.namespace.name` and the regarding object's `k8s.<kind>.name` / `.uid`; the resource
//! has `k8s.node.name` where the event says which node reported it. The scope is the Collector
//! receiver's, so Elasticsearch's exporter writes to `logs-k8seventsreceiver.otel-*`.
//!
//! Once, not twice: the watch resumes from its last resourceVersion after a reconnect, and
//! after a 410 (history compacted) it lists again; an event already delivered, at the same or
//! an earlier occurrence, is not emitted again. Events from before the receiver started (or,
//! with leader election, before the previous leader's checkpoint) are history and are not
//! emitted, as in the Collector. With `leader_election`, only the holder of the Lease watches;
//! after each delivery it records how far it got, and writes that into the Lease with its next
//! renewal, so a new leader starts where the last one stopped: nothing is lost at a failover,
//! and what the old leader delivered in its last `retry_period` without getting to record it
//! may be emitted twice (the only duplicates). A batch the pipeline refuses is retried.
//! Without a reachable API (no service account, a kubeconfig that cannot be read) the
//! receiver starts anyway and retries every 5 seconds, warning once a minute.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::events::v1::Event as KubeEvent;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::component::{Built, Context, LOGS, Spec, Yaml};
use crate::config::{ConfigError, check_duration, decode, duration};
use crate::k8s::leader::{self, Election, Leadership};
use crate::k8s::{self, AuthType};
use crate::model::{KeyValue, LogBatch, LogRecord, Origin, Signal, Str, Value};
use crate::pipeline::{Batch, BoxFuture, Consumer, Metadata, Receiver, Running, StartError};
use crate::shutdown::Shutdown;
use crate::telemetry::ReceiverMetrics;

/// The Collector receiver's scope name: Elasticsearch's exporter derives the dataset
/// (`k8seventsreceiver`) from it.
pub const SCOPE: &str =
    "github.com/open-telemetry/opentelemetry-collector-contrib/receiver/k8seventsreceiver";

/// The Lease annotation holding the leader's checkpoint.
pub const CHECKPOINT: &str = "sluice.dev/k8s-events-checkpoint";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub auth_type: AuthType,
    /// Bounds on each answer from the API server (see `k8s::bounded`). A sluice-only setting.
    #[serde(default)]
    pub api_limits: k8s::ApiLimits,
    /// Watch only these namespaces; default all.
    #[serde(default)]
    pub namespaces: Vec<String>,
    pub leader_election: Option<ElectionConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElectionConfig {
    /// Default `sluice-k8s-events`.
    #[serde(default = "default_lease")]
    pub lease_name: String,
    /// Required: the namespace the replicas run in (`POD_NAMESPACE` from the downward API).
    pub lease_namespace: String,
    /// Required and unique per replica (`POD_NAME` from the downward API).
    pub identity: String,
    /// Default `15s`.
    #[serde(default = "fifteen", deserialize_with = "duration")]
    pub lease_duration: Duration,
    /// Default `10s`; shorter than `lease_duration`.
    #[serde(default = "ten", deserialize_with = "duration")]
    pub renew_deadline: Duration,
    /// Default `2s`; shorter than `renew_deadline`.
    #[serde(default = "two", deserialize_with = "duration")]
    pub retry_period: Duration,
}

fn default_lease() -> String {
    "sluice-k8s-events".into()
}
fn fifteen() -> Duration {
    Duration::from_secs(15)
}
fn ten() -> Duration {
    Duration::from_secs(10)
}
fn two() -> Duration {
    Duration::from_secs(2)
}

pub const SPEC: Spec<Box<dyn Receiver>> = Spec::new("k8s_events", LOGS, build, "{}");

pub fn build(ctx: &Context, raw: Yaml) -> Built<Box<dyn Receiver>> {
    let cfg: Config = decode(ctx.path, raw).map_err(|e| vec![e])?;
    let path = ctx.path;
    let mut errors = Vec::new();
    let election = cfg.leader_election.as_ref().map(|le| {
        let at = format!("{path}.leader_election");
        let (min, max) = (Duration::from_millis(100), Duration::from_secs(600));
        check_duration(
            &mut errors,
            format!("{at}.lease_duration"),
            le.lease_duration,
            min,
            max,
        );
        check_duration(
            &mut errors,
            format!("{at}.renew_deadline"),
            le.renew_deadline,
            min,
            max,
        );
        check_duration(
            &mut errors,
            format!("{at}.retry_period"),
            le.retry_period,
            min,
            max,
        );
        if le.renew_deadline >= le.lease_duration {
            errors.push(ConfigError::new(
                format!("{at}.renew_deadline"),
                "must be shorter than lease_duration (a leader must stop before another may start)",
            ));
        }
        if le.retry_period >= le.renew_deadline {
            errors.push(ConfigError::new(
                format!("{at}.retry_period"),
                "must be shorter than renew_deadline",
            ));
        }
        for (field, value) in [
            ("lease_name", &le.lease_name),
            ("lease_namespace", &le.lease_namespace),
            ("identity", &le.identity),
        ] {
            if value.is_empty() {
                errors.push(ConfigError::new(
                    format!("{at}.{field}"),
                    "must not be empty",
                ));
            }
        }
        Election {
            lease_name: le.lease_name.clone(),
            lease_namespace: le.lease_namespace.clone(),
            identity: le.identity.clone(),
            lease_duration: le.lease_duration,
            renew_deadline: le.renew_deadline,
            retry_period: le.retry_period,
            checkpoint_annotation: CHECKPOINT,
        }
    });
    cfg.api_limits
        .check(&format!("{path}.api_limits"), &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    let id = ctx.id.to_string();
    Ok(Box::new(K8sEvents {
        metrics: ReceiverMetrics::new(ctx.telemetry, &id, "kubernetes"),
        id,
        auth: cfg.auth_type,
        limits: cfg.api_limits,
        namespaces: cfg.namespaces,
        election,
    }))
}

pub struct K8sEvents {
    id: String,
    auth: AuthType,
    limits: k8s::ApiLimits,
    namespaces: Vec<String>,
    election: Option<Election>,
    metrics: ReceiverMetrics,
}

impl Receiver for K8sEvents {
    fn start(
        self: Box<Self>,
        consumer: Consumer,
        shutdown: Shutdown,
    ) -> BoxFuture<Result<Running, StartError>> {
        Box::pin(async move {
            let running: Running = Box::pin(async move {
                // The client is built here, retried until it can be: outside a cluster, or
                // before the service account is mounted, the receiver waits and says why.
                let mut throttle = k8s::Throttle::default();
                let client = loop {
                    match k8s::client(self.auth, &self.limits).await {
                        Ok(c) => break c,
                        Err(e) => {
                            if throttle.ready() {
                                tracing::warn!(receiver = %self.id, error = %e, "cannot reach the Kubernetes API; retrying");
                            }
                            if !shutdown.sleep(Duration::from_secs(5)).await {
                                return;
                            }
                        }
                    }
                };
                self.run(client, consumer, shutdown).await;
            });
            Ok(running)
        })
    }
}

/// How far delivery got: the latest occurrence delivered, and the events delivered at
/// exactly that time (the uids), so a new leader emits neither again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Unix nanoseconds.
    pub time: u64,
    pub uids: Vec<String>,
}

impl Checkpoint {
    /// Whether an event of `uid` that happened at `time` is past this point.
    fn is_before(&self, time: u64, uid: &str) -> bool {
        time > self.time || (time == self.time && !self.uids.iter().any(|u| u == uid))
    }

    fn advance(&mut self, time: u64, uid: &str) {
        if time > self.time {
            self.time = time;
            self.uids.clear();
        }
        if time == self.time && !self.uids.iter().any(|u| u == uid) {
            self.uids.push(uid.to_string());
        }
    }
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn ts_nanos(t: &k8s_openapi::jiff::Timestamp) -> u64 {
    t.as_nanosecond().max(0) as u64
}

/// When the event last happened.
pub fn occurred(e: &KubeEvent) -> u64 {
    e.series
        .as_ref()
        .map(|s| ts_nanos(&s.last_observed_time.0))
        .or_else(|| e.event_time.as_ref().map(|t| ts_nanos(&t.0)))
        .or_else(|| e.deprecated_last_timestamp.as_ref().map(|t| ts_nanos(&t.0)))
        .or_else(|| {
            e.deprecated_first_timestamp
                .as_ref()
                .map(|t| ts_nanos(&t.0))
        })
        .or_else(|| {
            e.metadata
                .creation_timestamp
                .as_ref()
                .map(|t| ts_nanos(&t.0))
        })
        .unwrap_or(0)
}

fn text(k: &'static str, v: &str) -> KeyValue {
    (Str::from_static(k), Value::Str(Str::copied(v)))
}

/// The record (and its resource) of one event, as the Collector writes it.
pub fn record_of(e: &KubeEvent, observed: u64) -> (Origin, LogRecord) {
    let mut resource = Vec::new();
    let node = e
        .deprecated_source
        .as_ref()
        .and_then(|s| s.host.as_deref())
        .filter(|h| !h.is_empty());
    if let Some(node) = node {
        resource.push(text("k8s.node.name", node));
    }
    let origin = Origin {
        resource: resource.into(),
        scope_name: Str::from_static(SCOPE),
        scope_version: Str::from_static(env!("CARGO_PKG_VERSION")),
        ..Default::default()
    };
    let m = &e.metadata;
    let mut attributes = vec![
        text("k8s.event.reason", e.reason.as_deref().unwrap_or("")),
        text("k8s.event.action", e.action.as_deref().unwrap_or("")),
        text(
            "k8s.event.start_time",
            &m.creation_timestamp
                .as_ref()
                .map(|t| t.0.to_string())
                .unwrap_or_default(),
        ),
        text("k8s.event.name", m.name.as_deref().unwrap_or("")),
        text("k8s.event.uid", m.uid.as_deref().unwrap_or("")),
    ];
    let regarding = e.regarding.as_ref();
    let namespace = regarding
        .and_then(|r| r.namespace.as_deref())
        .or(m.namespace.as_deref())
        .unwrap_or("");
    attributes.push(text("k8s.namespace.name", namespace));
    let count = e
        .series
        .as_ref()
        .map(|s| s.count)
        .or(e.deprecated_count)
        .unwrap_or(0);
    if count > 0 {
        attributes.push((
            Str::from_static("k8s.event.count"),
            Value::Int(i64::from(count)),
        ));
    }
    if let Some(r) = regarding
        && let Some(kind) = r.kind.as_deref().filter(|k| !k.is_empty())
    {
        let kind = kind.to_lowercase();
        let key = |what: &str| Str::copied(&format!("k8s.{kind}.{what}"));
        attributes.push((
            key("name"),
            Value::Str(Str::copied(r.name.as_deref().unwrap_or(""))),
        ));
        attributes.push((
            key("uid"),
            Value::Str(Str::copied(r.uid.as_deref().unwrap_or(""))),
        ));
    }
    let kind = e.type_.as_deref().unwrap_or("");
    let severity = match kind.to_ascii_lowercase().as_str() {
        "normal" => 9,
        "warning" => 13,
        _ => 0,
    };
    let record = LogRecord {
        time_unix_nano: occurred(e),
        observed_time_unix_nano: observed,
        severity_number: severity,
        severity_text: if severity > 0 {
            Str::copied(kind)
        } else {
            Str::default()
        },
        body: Value::Str(Str::copied(e.note.as_deref().unwrap_or(""))),
        attributes,
        ..Default::default()
    };
    (origin, record)
}

/// What this receiver remembers of what it delivered: per event uid, the occurrence
/// delivered, so a relist or a new term does not emit it again. Deleted events (Kubernetes
/// drops them after an hour) are forgotten.
#[derive(Default)]
struct Delivered {
    by_uid: HashMap<String, u64>,
}

impl Delivered {
    const MAX: usize = 200_000;

    fn has(&self, uid: &str, time: u64) -> bool {
        self.by_uid.get(uid).is_some_and(|t| *t >= time)
    }

    fn note(&mut self, uid: &str, time: u64) {
        if self.by_uid.len() >= Self::MAX {
            // Bounded: the oldest half goes; the checkpoint still guards against them.
            let mut times: Vec<u64> = self.by_uid.values().copied().collect();
            times.sort_unstable();
            let cut = times[times.len() / 2];
            self.by_uid.retain(|_, t| *t > cut);
        }
        self.by_uid.insert(uid.to_string(), time);
    }
}

impl K8sEvents {
    async fn run(self, client: kube::Client, consumer: Consumer, shutdown: Shutdown) {
        let start = now_nanos();
        let (lead_tx, mut lead_rx) = watch::channel(Leadership::default());
        let (checkpoint_tx, checkpoint_rx) = watch::channel(None::<String>);
        // Without an election this receiver always leads; the sender is kept so it stays so.
        let _always = match &self.election {
            Some(e) => {
                let api: Api<Lease> = Api::namespaced(client.clone(), &e.lease_namespace);
                tokio::spawn(leader::run(
                    api,
                    e.clone(),
                    lead_tx,
                    checkpoint_rx,
                    shutdown.clone(),
                ));
                None
            }
            None => {
                lead_tx.send_modify(|s| {
                    s.leading = true;
                    s.term = 1;
                });
                Some(lead_tx)
            }
        };
        let mut worker = consumer.worker();
        let mut delivered = Delivered::default();
        let mut checkpoint = Checkpoint {
            time: start,
            uids: Vec::new(),
        };
        let state = Arc::new(self);
        let mut stop = shutdown.clone();
        loop {
            // Wait to lead.
            let lead = tokio::select! {
                _ = stop.wait() => return,
                r = lead_rx.wait_for(|s| s.leading) => match r {
                    Ok(s) => s.clone(),
                    Err(_) => return,
                },
            };
            // Where the last leader stopped, if it said; else this receiver's start.
            if let Some(found) = lead
                .checkpoint
                .as_deref()
                .and_then(|c| serde_json::from_str::<Checkpoint>(c).ok())
            {
                checkpoint = found;
            }
            tracing::info!(receiver = %state.id, term = lead.term, "watching Kubernetes events");
            let lost = async {
                let _ = lead_rx
                    .wait_for(|s| !s.leading || s.term != lead.term)
                    .await;
            };
            tokio::select! {
                _ = stop.wait() => return,
                _ = lost => {
                    tracing::info!(receiver = %state.id, "no longer leader; stopped watching events");
                }
                _ = state.watch(&client, &mut worker, &mut delivered, &mut checkpoint, &checkpoint_tx, &shutdown) => return,
            }
        }
    }

    /// Watches until the stream ends (it does not, short of shutdown), emitting new events.
    async fn watch(
        &self,
        client: &kube::Client,
        worker: &mut crate::pipeline::Worker,
        delivered: &mut Delivered,
        checkpoint: &mut Checkpoint,
        published: &watch::Sender<Option<String>>,
        shutdown: &Shutdown,
    ) {
        let apis: Vec<Api<KubeEvent>> = if self.namespaces.is_empty() {
            vec![Api::all(client.clone())]
        } else {
            self.namespaces
                .iter()
                .map(|ns| Api::namespaced(client.clone(), ns))
                .collect()
        };
        let streams = apis.into_iter().map(|api| {
            watcher::watcher(api, watcher::Config::default())
                .default_backoff()
                .boxed()
        });
        let mut events = futures::stream::select_all(streams);
        let mut listing: Vec<KubeEvent> = Vec::new();
        let mut throttle = k8s::Throttle::default();
        while let Some(item) = events.next().await {
            let ready: Vec<KubeEvent> = match item {
                Ok(Event::Init) => Vec::new(),
                Ok(Event::InitApply(e)) => {
                    listing.push(e);
                    continue;
                }
                Ok(Event::InitDone) => std::mem::take(&mut listing),
                Ok(Event::Apply(e)) => vec![e],
                Ok(Event::Delete(e)) => {
                    if let Some(uid) = &e.metadata.uid {
                        delivered.by_uid.remove(uid);
                    }
                    continue;
                }
                Err(err) => {
                    if throttle.ready_for(&err.to_string()) {
                        tracing::warn!(receiver = %self.id, error = %err, "Kubernetes event watch failed; retrying");
                    }
                    continue;
                }
            };
            let fresh: Vec<(String, u64, &KubeEvent)> = ready
                .iter()
                .filter_map(|e| {
                    let uid = e.metadata.uid.clone()?;
                    let t = occurred(e);
                    (checkpoint.is_before(t, &uid) && !delivered.has(&uid, t))
                        .then_some((uid, t, e))
                })
                .collect();
            if fresh.is_empty() {
                continue;
            }
            let observed = now_nanos();
            let mut batch = LogBatch::default();
            for (i, (_, _, e)) in fresh.iter().enumerate() {
                let (origin, mut record) = record_of(e, observed);
                record.origin = i as u32;
                batch.origins.push(origin);
                batch.records.push(record);
            }
            let n = batch.len() as u64;
            // Retried until delivered: these events are new and nothing else will send them.
            loop {
                match worker
                    .consume(Batch::Logs(batch.clone()), &Metadata::default())
                    .await
                {
                    Ok(_) => {
                        self.metrics.accepted.of(Signal::Logs).add(n);
                        break;
                    }
                    Err(e) => {
                        self.metrics.refused.of(Signal::Logs).add(n);
                        tracing::debug!(receiver = %self.id, error = %e, "events refused; retrying");
                        if !shutdown.sleep(Duration::from_secs(1)).await {
                            return;
                        }
                    }
                }
            }
            for (uid, t, _) in &fresh {
                delivered.note(uid, *t);
                checkpoint.advance(*t, uid);
            }
            let _ = published.send(serde_json::to_string(&*checkpoint).ok());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(json: serde_json::Value) -> KubeEvent {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn an_event_becomes_the_collectors_record() {
        let e = event(serde_json::json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "checkout-a.17f", "namespace": "shop", "uid": "ev-1",
                         "creationTimestamp": "2026-11-28T01:00:00Z"},
            "eventTime": "2026-11-28T01:00:00.123456Z",
            "series": {"count": 3, "lastObservedTime": "2026-11-28T01:05:00.000001Z"},
            "reason": "BackOff", "action": "Pulling", "type": "Warning",
            "note": "Back-off restarting failed container app",
            "regarding": {"kind": "Pod", "name": "checkout-a", "namespace": "shop", "uid": "pod-1"},
            "deprecatedSource": {"component": "kubelet", "host": "node-1"},
            "reportingController": "kubelet", "reportingInstance": "node-1"
        }));
        let (origin, r) = record_of(&e, 7);
        assert_eq!(origin.scope_name.as_str(), SCOPE);
        assert_eq!(
            origin
                .resource
                .iter()
                .map(|(k, v)| format!("{k}={v:?}"))
                .collect::<Vec<_>>(),
            ["k8s.node.name=Str(\"node-1\")"]
        );
        assert_eq!(
            r.time_unix_nano, 1_795_827_900_000_001_000,
            "the last occurrence"
        );
        assert_eq!(
            (r.severity_number, r.severity_text.as_str()),
            (13, "Warning")
        );
        assert_eq!(
            r.body,
            Value::Str(Str::from_static("Back-off restarting failed container app"))
        );
        let attrs: Vec<String> = r
            .attributes
            .iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect();
        assert_eq!(
            attrs,
            [
                "k8s.event.reason=Str(\"BackOff\")",
                "k8s.event.action=Str(\"Pulling\")",
                "k8s.event.start_time=Str(\"2026-11-28T01:00:00Z\")",
                "k8s.event.name=Str(\"checkout-a.17f\")",
                "k8s.event.uid=Str(\"ev-1\")",
                "k8s.namespace.name=Str(\"shop\")",
                "k8s.event.count=Int(3)",
                "k8s.pod.name=Str(\"checkout-a\")",
                "k8s.pod.uid=Str(\"pod-1\")",
            ]
        );
    }

    #[test]
    fn the_checkpoint_lets_through_only_what_came_after_it() {
        let mut c = Checkpoint::default();
        c.advance(10, "a");
        c.advance(10, "b");
        assert!(!c.is_before(10, "a") && !c.is_before(9, "z"));
        assert!(c.is_before(10, "c") && c.is_before(11, "a"));
        c.advance(12, "c");
        assert_eq!(
            c,
            Checkpoint {
                time: 12,
                uids: vec!["c".into()]
            }
        );
        let text = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<Checkpoint>(&text).unwrap(), c);
    }
}
