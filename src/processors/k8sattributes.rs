//! `k8sattributes`: tags telemetry with the Kubernetes pod it came from (namespace, pod, owner
//! workloads, node, container, chosen labels and annotations), as the Collector's processor of
//! that name does, so Kibana can filter by them. The pods are watched through the API server
//! (`k8s::pods`, kube-rs); each record's resource is matched to a pod by `pod_association`.
//!
//! ```yaml
//! processors:
//!   k8sattributes:
//!     auth_type: serviceAccount          # or kubeConfig (KUBECONFIG, ~/.kube/config)
//!     passthrough: false                 # true (agents): only add k8s.pod.ip from the
//!                                        # connection, so a gateway can look the pod up
//!     filter:
//!       node_from_env_var: K8S_NODE_NAME # only this node's pods (a DaemonSet agent)
//!       # node: worker-1
//!       # namespace: shop
//!     extract:
//!       metadata: [k8s.namespace.name, k8s.pod.name, k8s.pod.uid, k8s.pod.start_time,
//!                  k8s.deployment.name, k8s.node.name, container.image.name,
//!                  container.image.tag]                       # the default
//!       labels: [{tag_name: app, key: app.kubernetes.io/name, from: pod}]
//!       annotations: [{key_regex: "team/.*", from: namespace}]
//!     pod_association:                   # the first rule that finds a pod wins
//!       - sources: [{from: resource_attribute, name: k8s.pod.ip}]
//!       - sources: [{from: resource_attribute, name: k8s.pod.uid}]
//!       - sources: [{from: connection}]  # the sender's IP address
//!     wait_for_metadata: false           # true: hold the pipeline's start until synced
//!     wait_for_metadata_timeout: 10s
//! ```
//!
//! Attributes the resource already has are left as they are. A pod deleted less than two
//! minutes ago is still found (its last records arrive after it ends). Container attributes
//! (`k8s.container.name`, `container.image.*`, `container.id`) need the container: found by a
//! `container.id` association or named by a `k8s.container.name` resource attribute (as
//! `filelog` sets it from the log path). Logs, traces and metrics: spans and data points stay
//! encoded, and only their resource is rewritten (`otlp::resource`).

use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::Deserialize;

use crate::component::{ALL_SIGNALS, Built, Context, Spec, Yaml};
use crate::config::{ConfigError, check_duration, decode, duration};
use crate::k8s::pods::{self, Index, KeyMatch, OwnerKind, Pod, Rule, Settings};
use crate::k8s::{self, AuthType};
use crate::model::{Attrs, KeyValue, LogBatch, Str, Value};
use crate::otlp::raw::RawBatch;
use crate::otlp::resource;
use crate::pipeline::{BoxFuture, Processor, Stage};
use crate::shutdown::Shutdown;
use crate::telemetry::Counter;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Default `serviceAccount`.
    #[serde(default)]
    pub auth_type: AuthType,
    /// Bounds on each answer from the API server (see `k8s::bounded`): `max_answer_size`
    /// (32MiB), `max_event_size` (4MiB), `answer_timeout` (60s). A sluice-only setting.
    #[serde(default)]
    pub api_limits: k8s::ApiLimits,
    /// Only add `k8s.pod.ip` (the connection's address); no API access. Default `false`.
    #[serde(default)]
    pub passthrough: bool,
    #[serde(default)]
    pub filter: FilterConfig,
    #[serde(default)]
    pub extract: Extract,
    /// Default: `k8s.pod.ip`, then `k8s.pod.uid` resource attributes, then the connection.
    #[serde(default)]
    pub pod_association: Vec<Association>,
    /// Hold the start of the pipelines until the first list of every watched kind. Default
    /// `false`.
    #[serde(default)]
    pub wait_for_metadata: bool,
    /// How long to hold it before failing the start. Default `10s`, 1s to 10m.
    #[serde(default = "default_wait", deserialize_with = "duration")]
    pub wait_for_metadata_timeout: Duration,
}

fn default_wait() -> Duration {
    Duration::from_secs(10)
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FilterConfig {
    pub node: Option<String>,
    /// The environment variable holding the node's name (set from the downward API's
    /// `spec.nodeName`); it must be set.
    pub node_from_env_var: Option<String>,
    pub namespace: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Extract {
    #[serde(default = "default_metadata")]
    pub metadata: Vec<String>,
    #[serde(default)]
    pub labels: Vec<FieldRule>,
    #[serde(default)]
    pub annotations: Vec<FieldRule>,
}

impl Default for Extract {
    fn default() -> Self {
        Extract {
            metadata: default_metadata(),
            labels: Vec::new(),
            annotations: Vec::new(),
        }
    }
}

fn default_metadata() -> Vec<String> {
    [
        NAMESPACE_NAME,
        POD_NAME,
        POD_UID,
        POD_START_TIME,
        DEPLOYMENT_NAME,
        NODE_NAME,
        IMAGE_NAME,
        IMAGE_TAG,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// A label or annotation to copy: by `key`, or every key `key_regex` matches whole.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldRule {
    /// The attribute's name; default `k8s.<pod|namespace>.<labels|annotations>.<key>`.
    pub tag_name: Option<String>,
    pub key: Option<String>,
    pub key_regex: Option<String>,
    /// `pod` (default) or `namespace`.
    #[serde(default)]
    pub from: FieldSource,
}

#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FieldSource {
    #[default]
    Pod,
    Namespace,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Association {
    pub sources: Vec<Source>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub from: SourceKind,
    /// For `resource_attribute`: `k8s.pod.ip`, `k8s.pod.uid`, `k8s.pod.name`,
    /// `k8s.namespace.name`, `container.id` or `host.name` (an IP address there).
    pub name: Option<String>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    ResourceAttribute,
    Connection,
}

const NAMESPACE_NAME: &str = "k8s.namespace.name";
const POD_NAME: &str = "k8s.pod.name";
const POD_UID: &str = "k8s.pod.uid";
const POD_IP: &str = "k8s.pod.ip";
const POD_START_TIME: &str = "k8s.pod.start_time";
const DEPLOYMENT_NAME: &str = "k8s.deployment.name";
const REPLICASET_NAME: &str = "k8s.replicaset.name";
const DAEMONSET_NAME: &str = "k8s.daemonset.name";
const STATEFULSET_NAME: &str = "k8s.statefulset.name";
const JOB_NAME: &str = "k8s.job.name";
const NODE_NAME: &str = "k8s.node.name";
const CONTAINER_NAME: &str = "k8s.container.name";
const IMAGE_NAME: &str = "container.image.name";
const IMAGE_TAG: &str = "container.image.tag";
const CONTAINER_ID: &str = "container.id";
const HOST_NAME: &str = "host.name";

/// Every `extract.metadata` name, in the order attributes are added.
const METADATA: &[&str] = &[
    NAMESPACE_NAME,
    POD_NAME,
    POD_UID,
    POD_IP,
    POD_START_TIME,
    DEPLOYMENT_NAME,
    REPLICASET_NAME,
    DAEMONSET_NAME,
    STATEFULSET_NAME,
    JOB_NAME,
    NODE_NAME,
    CONTAINER_NAME,
    IMAGE_NAME,
    IMAGE_TAG,
    CONTAINER_ID,
];

const ASSOCIABLE: &[&str] = &[
    POD_IP,
    POD_UID,
    POD_NAME,
    NAMESPACE_NAME,
    CONTAINER_ID,
    HOST_NAME,
];

/// One association rule: where each of its values comes from.
#[derive(Debug, Clone)]
struct AssociationRule {
    sources: Vec<(SourceKind, &'static str)>,
}

pub const SPEC: Spec<Stage> = Spec::new("k8sattributes", ALL_SIGNALS, build, "{passthrough: true}");

pub fn build(ctx: &Context, raw: Yaml) -> Built<Stage> {
    configure(ctx, raw).map(|p| Stage::Inline(Box::new(p)))
}

fn configure(ctx: &Context, raw: Yaml) -> Result<K8sAttributes, Vec<ConfigError>> {
    let cfg: Config = decode(ctx.path, raw).map_err(|e| vec![e])?;
    let path = ctx.path;
    let mut errors = Vec::new();
    check_duration(
        &mut errors,
        format!("{path}.wait_for_metadata_timeout"),
        cfg.wait_for_metadata_timeout,
        Duration::from_secs(1),
        Duration::from_secs(600),
    );
    let mut wanted = [false; METADATA.len()];
    for (i, name) in cfg.extract.metadata.iter().enumerate() {
        match METADATA.iter().position(|m| m == name) {
            Some(j) => wanted[j] = true,
            None => errors.push(ConfigError::new(
                format!("{path}.extract.metadata[{i}]"),
                format!("unknown field {name:?}; known: {}", METADATA.join(", ")),
            )),
        }
    }
    let mut settings = Settings {
        grace: Duration::from_secs(120),
        deployments: wanted[5],
        namespace: cfg.filter.namespace.clone(),
        ..Settings::default()
    };
    settings.node = match (&cfg.filter.node, &cfg.filter.node_from_env_var) {
        (Some(_), Some(_)) => {
            errors.push(ConfigError::new(
                format!("{path}.filter"),
                "set node or node_from_env_var, not both",
            ));
            None
        }
        (Some(n), None) => Some(n.clone()),
        (None, Some(var)) => match std::env::var(var) {
            Ok(v) if !v.is_empty() => Some(v),
            _ => {
                errors.push(ConfigError::new(
                    format!("{path}.filter.node_from_env_var"),
                    format!(
                        "environment variable {var} is not set (in a pod, set it from the \
                         downward API's spec.nodeName)"
                    ),
                ));
                None
            }
        },
        (None, None) => None,
    };
    for (list, what) in [
        (&cfg.extract.labels, "labels"),
        (&cfg.extract.annotations, "annotations"),
    ] {
        for (i, r) in list.iter().enumerate() {
            let at = format!("{path}.extract.{what}[{i}]");
            let key = match (&r.key, &r.key_regex) {
                (Some(k), None) => KeyMatch::Exact(k.clone()),
                (None, Some(re)) => match regex_automata::meta::Regex::new(re) {
                    Ok(re) => KeyMatch::Pattern(re),
                    Err(e) => {
                        errors.push(ConfigError::new(format!("{at}.key_regex"), e.to_string()));
                        continue;
                    }
                },
                _ => {
                    errors.push(ConfigError::new(at, "set one of key or key_regex"));
                    continue;
                }
            };
            let rule = Rule {
                tag: r.tag_name.clone(),
                key,
            };
            match (r.from, what) {
                (FieldSource::Pod, "labels") => settings.pod_labels.push(rule),
                (FieldSource::Pod, _) => settings.pod_annotations.push(rule),
                (FieldSource::Namespace, "labels") => settings.namespace_labels.push(rule),
                (FieldSource::Namespace, _) => settings.namespace_annotations.push(rule),
            }
        }
    }
    let mut rules = Vec::new();
    for (i, a) in cfg.pod_association.iter().enumerate() {
        let mut sources = Vec::new();
        if a.sources.is_empty() {
            errors.push(ConfigError::new(
                format!("{path}.pod_association[{i}].sources"),
                "needs at least one source",
            ));
        }
        for (j, s) in a.sources.iter().enumerate() {
            let at = format!("{path}.pod_association[{i}].sources[{j}]");
            match (s.from, &s.name) {
                (SourceKind::Connection, _) => sources.push((SourceKind::Connection, "")),
                (SourceKind::ResourceAttribute, Some(name)) => {
                    match ASSOCIABLE.iter().find(|n| *n == name) {
                        Some(n) => sources.push((SourceKind::ResourceAttribute, *n)),
                        None => errors.push(ConfigError::new(
                            format!("{at}.name"),
                            format!(
                                "cannot find a pod by {name:?}; use one of {}",
                                ASSOCIABLE.join(", ")
                            ),
                        )),
                    }
                }
                (SourceKind::ResourceAttribute, None) => errors.push(ConfigError::new(
                    format!("{at}.name"),
                    "resource_attribute needs the attribute's name",
                )),
            }
        }
        rules.push(AssociationRule { sources });
    }
    if rules.is_empty() {
        rules = vec![
            AssociationRule {
                sources: vec![(SourceKind::ResourceAttribute, POD_IP)],
            },
            AssociationRule {
                sources: vec![(SourceKind::ResourceAttribute, POD_UID)],
            },
            AssociationRule {
                sources: vec![(SourceKind::Connection, "")],
            },
        ];
    }
    cfg.api_limits
        .check(&format!("{}.api_limits", ctx.path), &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    let id = ctx.id.to_string();
    let labels = [("processor", id.as_str()), ("pipeline", ctx.pipeline)];
    let inner = Inner {
        auth: cfg.auth_type,
        limits: cfg.api_limits.clone(),
        passthrough: cfg.passthrough,
        wait: cfg
            .wait_for_metadata
            .then_some(cfg.wait_for_metadata_timeout),
        wanted,
        rules,
        settings: Arc::new(settings),
        index: Arc::new(RwLock::new(Index::default())),
        associated: ctx.telemetry.counter(
            "sluice_k8sattributes_associated_total",
            "Resources (per request and scope) matched to a pod and tagged.",
            &labels,
        ),
        unassociated: ctx.telemetry.counter(
            "sluice_k8sattributes_unassociated_total",
            "Resources no association rule matched to a known pod.",
            &labels,
        ),
        started: tokio::sync::OnceCell::new(),
    };
    Ok(K8sAttributes::new(Arc::new(inner)))
}

/// What every worker's instance shares: the settings and the pod index.
struct Inner {
    auth: AuthType,
    limits: k8s::ApiLimits,
    passthrough: bool,
    wait: Option<Duration>,
    /// Per [`METADATA`] entry, whether it is extracted.
    wanted: [bool; METADATA.len()],
    rules: Vec<AssociationRule>,
    settings: Arc<Settings>,
    index: pods::Shared,
    associated: Counter,
    unassociated: Counter,
    /// Set by the first start: the watches run once, however many pipelines list this id.
    started: tokio::sync::OnceCell<Result<(), String>>,
}

pub struct K8sAttributes {
    inner: Arc<Inner>,
    /// Scratch: lookup keys and the attributes being added.
    key: String,
    added: Vec<KeyValue>,
}

impl K8sAttributes {
    fn new(inner: Arc<Inner>) -> Self {
        K8sAttributes {
            inner,
            key: String::new(),
            added: Vec::new(),
        }
    }
}

/// What association and tagging read of a resource: decoded (logs) or encoded (traces and
/// metrics, read in place).
trait ResourceView {
    /// A non-empty string attribute.
    fn text(&self, key: &str) -> Option<&str>;
    fn has(&self, key: &str) -> bool;
}

impl ResourceView for Attrs {
    fn text(&self, key: &str) -> Option<&str> {
        match self.get(key) {
            Some(Value::Str(s)) if !s.is_empty() => Some(s.as_str()),
            _ => None,
        }
    }

    fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }
}

/// An encoded resource's attributes.
struct Encoded<'a>(Vec<(&'a str, Option<&'a str>)>);

impl ResourceView for Encoded<'_> {
    fn text(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, v)| *v)
            .filter(|v| !v.is_empty())
    }

    fn has(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| *k == key)
    }
}

fn text<'a>(resource: &'a dyn ResourceView, key: &str) -> Option<&'a str> {
    resource.text(key)
}

/// The pod (and container, when the rule finds one) a rule finds for `resource`.
fn find<'a>(
    ix: &'a Index,
    rule: &AssociationRule,
    resource: &dyn ResourceView,
    peer: Option<IpAddr>,
    key: &mut String,
) -> Option<(&'a Pod, Option<&'a pods::Container>)> {
    let (mut uid, mut ip, mut name, mut namespace, mut container) = (None, None, None, None, None);
    for (kind, attr) in &rule.sources {
        match (kind, *attr) {
            (SourceKind::Connection, _) => ip = Some(peer?),
            (_, POD_UID) => uid = Some(text(resource, POD_UID)?),
            (_, POD_IP) | (_, HOST_NAME) => ip = Some(text(resource, attr)?.parse().ok()?),
            (_, POD_NAME) => name = Some(text(resource, POD_NAME)?),
            (_, NAMESPACE_NAME) => namespace = Some(text(resource, NAMESPACE_NAME)?),
            (_, CONTAINER_ID) => container = Some(text(resource, CONTAINER_ID)?),
            _ => return None,
        }
    }
    // The most specific key finds the pod; every other one of the rule must agree with it.
    let (pod, c) = if let Some(id) = container {
        let (p, c) = ix.by_container_id(id)?;
        (p, Some(c))
    } else if let Some(uid) = uid {
        (ix.by_uid(uid)?, None)
    } else if let (Some(ns), Some(n)) = (namespace, name) {
        (ix.by_name(ns, n, key)?, None)
    } else if let Some(ip) = ip {
        (ix.by_ip(ip)?, None)
    } else {
        return None;
    };
    let agrees = uid.is_none_or(|u| *pod.uid == *u)
        && name.is_none_or(|n| *pod.name == *n)
        && namespace.is_none_or(|n| *pod.namespace == *n)
        && ip.is_none_or(|i| pod.ip == Some(i));
    agrees.then_some((pod, c))
}

impl Inner {
    /// The attributes `pod` (and `container`) give `resource`, into `out`; the resource's own
    /// are never replaced.
    fn tag(
        &self,
        ix: &Index,
        pod: &Pod,
        container: Option<&pods::Container>,
        resource: &dyn ResourceView,
        key: &mut String,
        out: &mut Vec<KeyValue>,
    ) {
        let container = container.or_else(|| {
            let name = text(resource, CONTAINER_NAME)?;
            pod.containers.iter().find(|c| *c.name == *name)
        });
        let owner = |kind: OwnerKind| match &pod.owner {
            Some((k, name)) if *k == kind => Some(&**name),
            _ => None,
        };
        let ip = pod.ip.map(|ip| ip.to_string());
        for (i, name) in METADATA.iter().enumerate() {
            if !self.wanted[i] || resource.has(name) {
                continue;
            }
            let value: Option<&str> = match *name {
                NAMESPACE_NAME => Some(&*pod.namespace),
                POD_NAME => Some(&*pod.name),
                POD_UID => Some(&*pod.uid),
                POD_IP => ip.as_deref(),
                POD_START_TIME => pod.start_time.as_deref(),
                DEPLOYMENT_NAME => owner(OwnerKind::ReplicaSet)
                    .and_then(|rs| ix.deployment(&pod.namespace, rs, key)),
                REPLICASET_NAME => owner(OwnerKind::ReplicaSet),
                DAEMONSET_NAME => owner(OwnerKind::DaemonSet),
                STATEFULSET_NAME => owner(OwnerKind::StatefulSet),
                JOB_NAME => owner(OwnerKind::Job),
                NODE_NAME => Some(&*pod.node).filter(|n| !n.is_empty()),
                CONTAINER_NAME => container.map(|c| &*c.name),
                IMAGE_NAME => container.map(|c| &*c.image_name).filter(|n| !n.is_empty()),
                IMAGE_TAG => container.map(|c| &*c.image_tag).filter(|n| !n.is_empty()),
                CONTAINER_ID => container.and_then(|c| c.ids.first()).map(|id| &**id),
                _ => None,
            };
            if let Some(v) = value {
                out.push((Str::from_static(name), Value::Str(Str::copied(v))));
            }
        }
        let tags = pod.tags.iter().chain(ix.namespace_tags(&pod.namespace));
        for (k, v) in tags {
            if !resource.has(k) {
                out.push((Str::copied(k), Value::Str(Str::copied(v))));
            }
        }
    }
}

impl Processor for K8sAttributes {
    fn process(&mut self, batch: &mut LogBatch) {
        self.process_from(batch, None);
    }

    fn process_from(&mut self, batch: &mut LogBatch, peer: Option<IpAddr>) {
        let inner = &*self.inner;
        if inner.passthrough {
            let Some(peer) = peer else {
                return;
            };
            for o in &mut batch.origins {
                if o.resource.get(POD_IP).is_none() {
                    let ip = Value::Str(Str::copied(&peer.to_string()));
                    o.resource = o.resource.with_added([(Str::from_static(POD_IP), ip)]);
                }
            }
            return;
        }
        let ix = inner.index.read().unwrap_or_else(|p| p.into_inner());
        let (mut hits, mut misses) = (0, 0);
        for o in &mut batch.origins {
            let found = inner
                .rules
                .iter()
                .find_map(|rule| find(&ix, rule, &o.resource, peer, &mut self.key));
            let Some((pod, container)) = found else {
                misses += 1;
                continue;
            };
            hits += 1;
            self.added.clear();
            inner.tag(
                &ix,
                pod,
                container,
                &o.resource,
                &mut self.key,
                &mut self.added,
            );
            if !self.added.is_empty() {
                o.resource = o.resource.with_added(self.added.drain(..));
            }
        }
        drop(ix);
        inner.associated.add(hits);
        inner.unassociated.add(misses);
    }

    fn process_encoded(&mut self, batch: &mut RawBatch, peer: Option<IpAddr>) {
        let inner = &*self.inner;
        let ix =
            (!inner.passthrough).then(|| inner.index.read().unwrap_or_else(|p| p.into_inner()));
        let (mut hits, mut misses) = (0, 0);
        for (entry, _) in &mut batch.resources {
            // Validated upstream; an entry that cannot be read is left as it is.
            let Ok(attrs) = resource::attributes(entry) else {
                misses += 1;
                continue;
            };
            let view = Encoded(attrs);
            self.added.clear();
            match &ix {
                None => {
                    if let Some(peer) = peer
                        && !view.has(POD_IP)
                    {
                        let ip = Value::Str(Str::copied(&peer.to_string()));
                        self.added.push((Str::from_static(POD_IP), ip));
                    }
                }
                Some(ix) => {
                    let found = inner
                        .rules
                        .iter()
                        .find_map(|rule| find(ix, rule, &view, peer, &mut self.key));
                    let Some((pod, container)) = found else {
                        misses += 1;
                        continue;
                    };
                    hits += 1;
                    inner.tag(ix, pod, container, &view, &mut self.key, &mut self.added);
                }
            }
            if self.added.is_empty() {
                continue;
            }
            let pairs: Vec<(&str, &str)> = self
                .added
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str().map_or("", |s| s.as_str())))
                .collect();
            if let Ok(tagged) = resource::with_attributes(entry, &pairs) {
                *entry = tagged;
            }
        }
        drop(ix);
        if !inner.passthrough {
            inner.associated.add(hits);
            inner.unassociated.add(misses);
        }
    }

    fn fork(&self) -> Box<dyn Processor> {
        Box::new(K8sAttributes::new(Arc::clone(&self.inner)))
    }

    fn shared_across_pipelines(&self) -> bool {
        true
    }

    fn start(&self, shutdown: Shutdown) -> BoxFuture<Result<(), String>> {
        let inner = Arc::clone(&self.inner);
        Box::pin(async move {
            let once = inner
                .started
                .get_or_init(|| start(Arc::clone(&inner), shutdown));
            once.await.clone()
        })
    }
}

/// Connects and starts the watches (once per processor id).
async fn start(inner: Arc<Inner>, shutdown: Shutdown) -> Result<(), String> {
    if inner.passthrough {
        return Ok(());
    }
    let client = k8s::client(inner.auth, &inner.limits)
        .await
        .map_err(|e| e.to_string())?;
    let progress = pods::spawn(
        client,
        Arc::clone(&inner.settings),
        Arc::clone(&inner.index),
        shutdown,
    );
    match inner.wait {
        None => Ok(()),
        Some(limit) => tokio::time::timeout(limit, progress.synced())
            .await
            .map_err(|_| {
                format!(
                    "k8sattributes: the pod metadata did not sync within {limit:?} \
                     (wait_for_metadata)"
                )
            }),
    }
}

#[cfg(test)]
mod tests;
