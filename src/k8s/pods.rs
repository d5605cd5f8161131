//! The pod metadata `k8sattributes` tags telemetry with: a watch on pods (limited to one node
//! where configured), replicasets (for the deployment that owns a pod's replicaset) and
//! namespaces (only when an extract rule reads namespace labels or annotations), kept in an
//! [`Index`] that holds only the fields that are used, never whole objects. The Collector's
//! informers kept whole objects and grew with the cluster (contrib #23067); here a pod costs
//! its names, IP, owner, containers and the label values asked for.
//!
//! Each kind is watched with kube-rs's `watcher`: list, then watch from the list's
//! resourceVersion, bookmarks on, and on a 410 (history compacted) or a broken stream a fresh
//! list whose result replaces what was known. A pod deleted (or missing from a relist) stays
//! known for `grace` (2 minutes), so records a pod wrote just before it ended are still tagged.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Namespace, Pod as ApiPod};
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio::sync::watch;

use crate::shutdown::Shutdown;

/// Which labels or annotations to keep, and under which attribute name.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The attribute name; `None`: `k8s.<pod|namespace>.<labels|annotations>.<key>`.
    pub tag: Option<String>,
    pub key: KeyMatch,
}

#[derive(Debug, Clone)]
pub enum KeyMatch {
    Exact(String),
    /// Every key the pattern matches whole.
    Pattern(regex_automata::meta::Regex),
}

impl KeyMatch {
    fn matches(&self, key: &str) -> bool {
        match self {
            KeyMatch::Exact(k) => k == key,
            KeyMatch::Pattern(re) => re
                .find(key)
                .is_some_and(|m| m.start() == 0 && m.end() == key.len()),
        }
    }
}

/// What to watch and what to keep of it.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Only pods on this node (`spec.nodeName`).
    pub node: Option<String>,
    /// Only pods in this namespace.
    pub namespace: Option<String>,
    pub pod_labels: Vec<Rule>,
    pub pod_annotations: Vec<Rule>,
    pub namespace_labels: Vec<Rule>,
    pub namespace_annotations: Vec<Rule>,
    /// Whether deployment names are wanted (replicasets are watched only then).
    pub deployments: bool,
    /// How long a deleted pod stays known.
    pub grace: Duration,
}

/// Labels and annotations kept, as `(attribute, value)`.
pub type Tags = Vec<(Box<str>, Box<str>)>;

/// A pod's controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerKind {
    ReplicaSet,
    DaemonSet,
    StatefulSet,
    Job,
}

/// What is kept of one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    pub name: Box<str>,
    pub image_name: Box<str>,
    pub image_tag: Box<str>,
    /// The runtime's ids of its current and last instance, without the `containerd://` scheme.
    pub ids: Vec<Box<str>>,
}

/// What is kept of one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pod {
    pub uid: Box<str>,
    pub name: Box<str>,
    pub namespace: Box<str>,
    pub node: Box<str>,
    /// Unset for host-network pods: their IP is the node's, shared by every such pod.
    pub ip: Option<IpAddr>,
    pub start_time: Option<Box<str>>,
    pub owner: Option<(OwnerKind, Box<str>)>,
    pub containers: Vec<Container>,
    /// The labels and annotations the rules asked for, as `(attribute, value)`.
    pub tags: Tags,
}

/// An image reference's name and tag: `registry:5000/team/app:1.2@sha256:...` is
/// `registry:5000/team/app` and `1.2`; no tag is `latest`, as the Collector reports it.
pub fn split_image(image: &str) -> (&str, &str) {
    let image = image.split_once('@').map_or(image, |(name, _)| name);
    let last_slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[last_slash..].rfind(':') {
        Some(i) => (&image[..last_slash + i], &image[last_slash + i + 1..]),
        None => (image, "latest"),
    }
}

fn strip_scheme(id: &str) -> &str {
    id.split_once("://").map_or(id, |(_, bare)| bare)
}

fn tags_of(
    out: &mut Tags,
    map: Option<&std::collections::BTreeMap<String, String>>,
    rules: &[Rule],
    default_prefix: &str,
) {
    let Some(map) = map else {
        return;
    };
    for rule in rules {
        for (k, v) in map.iter().filter(|(k, _)| rule.key.matches(k)) {
            let tag = match &rule.tag {
                Some(t) => t.clone(),
                None => format!("{default_prefix}{k}"),
            };
            out.push((tag.into(), v.as_str().into()));
        }
    }
}

impl Pod {
    /// Keeps what is used of `p`; `None` for a pod without a uid or name (never served).
    pub fn from_api(p: &ApiPod, settings: &Settings) -> Option<Pod> {
        let meta = &p.metadata;
        let spec = p.spec.as_ref();
        let status = p.status.as_ref();
        let host_network = spec.and_then(|s| s.host_network).unwrap_or(false);
        let ip = status
            .and_then(|s| s.pod_ip.as_deref())
            .filter(|_| !host_network)
            .and_then(|ip| ip.parse().ok());
        let owner = meta.owner_references.iter().flatten().find_map(|o| {
            if o.controller != Some(true) {
                return None;
            }
            let kind = match o.kind.as_str() {
                "ReplicaSet" => OwnerKind::ReplicaSet,
                "DaemonSet" => OwnerKind::DaemonSet,
                "StatefulSet" => OwnerKind::StatefulSet,
                "Job" => OwnerKind::Job,
                _ => return None,
            };
            Some((kind, o.name.as_str().into()))
        });
        let statuses = status
            .and_then(|s| s.container_statuses.as_ref())
            .into_iter()
            .flatten()
            .chain(
                status
                    .and_then(|s| s.init_container_statuses.as_ref())
                    .into_iter()
                    .flatten(),
            );
        let mut containers: Vec<Container> = spec
            .into_iter()
            .flat_map(|s| {
                s.containers
                    .iter()
                    .chain(s.init_containers.iter().flatten())
            })
            .map(|c| {
                let (name, tag) = split_image(c.image.as_deref().unwrap_or(""));
                Container {
                    name: c.name.as_str().into(),
                    image_name: name.into(),
                    image_tag: tag.into(),
                    ids: Vec::new(),
                }
            })
            .collect();
        for s in statuses {
            if let Some(c) = containers.iter_mut().find(|c| *c.name == *s.name) {
                let last = s
                    .last_state
                    .as_ref()
                    .and_then(|l| l.terminated.as_ref())
                    .and_then(|t| t.container_id.as_deref());
                for id in s.container_id.as_deref().into_iter().chain(last) {
                    c.ids.push(strip_scheme(id).into());
                }
            }
        }
        let mut tags = Vec::new();
        tags_of(
            &mut tags,
            meta.labels.as_ref(),
            &settings.pod_labels,
            "k8s.pod.labels.",
        );
        tags_of(
            &mut tags,
            meta.annotations.as_ref(),
            &settings.pod_annotations,
            "k8s.pod.annotations.",
        );
        Some(Pod {
            uid: meta.uid.as_deref()?.into(),
            name: meta.name.as_deref()?.into(),
            namespace: meta.namespace.as_deref().unwrap_or("default").into(),
            node: spec
                .and_then(|s| s.node_name.as_deref())
                .unwrap_or("")
                .into(),
            ip,
            start_time: status
                .and_then(|s| s.start_time.as_ref())
                .map(|t| t.0.to_string().into()),
            owner,
            containers,
            tags,
        })
    }
}

/// A pod and, once it is deleted, when.
struct Entry {
    pod: Pod,
    deleted: Option<Instant>,
}

/// The metadata known, and ways to find a pod.
#[derive(Default)]
pub struct Index {
    pods: HashMap<Box<str>, Entry>,
    by_ip: HashMap<IpAddr, Box<str>>,
    /// `namespace/name`.
    by_name: HashMap<Box<str>, Box<str>>,
    by_container: HashMap<Box<str>, Box<str>>,
    /// `namespace/replicaset` -> the deployment that controls it.
    deployments: HashMap<Box<str>, Box<str>>,
    /// Namespace -> its labels and annotations the rules asked for.
    namespaces: HashMap<Box<str>, Tags>,
}

fn name_key(namespace: &str, name: &str) -> Box<str> {
    format!("{namespace}/{name}").into()
}

impl Index {
    /// Pods known, deleted ones in their grace period included.
    pub fn len(&self) -> usize {
        self.pods.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pods.is_empty()
    }

    pub fn by_uid(&self, uid: &str) -> Option<&Pod> {
        self.pods.get(uid).map(|e| &e.pod)
    }

    pub fn by_ip(&self, ip: IpAddr) -> Option<&Pod> {
        self.by_uid(self.by_ip.get(&ip)?)
    }

    /// `key`: a buffer to build the lookup key in.
    pub fn by_name(&self, namespace: &str, name: &str, key: &mut String) -> Option<&Pod> {
        key.clear();
        key.push_str(namespace);
        key.push('/');
        key.push_str(name);
        self.by_uid(self.by_name.get(key.as_str())?)
    }

    /// The pod and the container of the runtime's container id `id`.
    pub fn by_container_id(&self, id: &str) -> Option<(&Pod, &Container)> {
        let pod = self.by_uid(self.by_container.get(id)?)?;
        let c = pod
            .containers
            .iter()
            .find(|c| c.ids.iter().any(|i| **i == *id))?;
        Some((pod, c))
    }

    /// The deployment of a replicaset in `namespace`.
    pub fn deployment(&self, namespace: &str, replicaset: &str, key: &mut String) -> Option<&str> {
        key.clear();
        key.push_str(namespace);
        key.push('/');
        key.push_str(replicaset);
        self.deployments.get(key.as_str()).map(|d| &**d)
    }

    pub fn namespace_tags(&self, namespace: &str) -> &[(Box<str>, Box<str>)] {
        self.namespaces.get(namespace).map_or(&[], Vec::as_slice)
    }

    /// Adds or replaces a pod; a newer pod takes over an IP or name an older one had.
    pub fn apply(&mut self, pod: Pod) {
        let uid = pod.uid.clone();
        if let Some(old) = self.pods.get(&uid) {
            // Ids of instances that are gone no longer lead here.
            let stale: Vec<Box<str>> = old
                .pod
                .containers
                .iter()
                .flat_map(|c| c.ids.iter().cloned())
                .collect();
            for id in stale {
                if self.by_container.get(&id) == Some(&uid) {
                    self.by_container.remove(&id);
                }
            }
        }
        if let Some(ip) = pod.ip {
            self.by_ip.insert(ip, uid.clone());
        }
        self.by_name
            .insert(name_key(&pod.namespace, &pod.name), uid.clone());
        for c in &pod.containers {
            for id in &c.ids {
                self.by_container.insert(id.clone(), uid.clone());
            }
        }
        self.pods.insert(uid, Entry { pod, deleted: None });
    }

    /// Marks a pod deleted at `now`; it is still found until [`Index::sweep`] drops it.
    pub fn delete(&mut self, uid: &str, now: Instant) {
        if let Some(e) = self.pods.get_mut(uid) {
            e.deleted.get_or_insert(now);
        }
    }

    /// Replaces the live pods with `pods` (a fresh list): pods no longer there are deleted
    /// at `now`, keeping their grace period.
    pub fn relist(&mut self, pods: Vec<Pod>, now: Instant) {
        let listed: std::collections::HashSet<Box<str>> =
            pods.iter().map(|p| p.uid.clone()).collect();
        for (uid, e) in self.pods.iter_mut() {
            if !listed.contains(uid) {
                e.deleted.get_or_insert(now);
            }
        }
        for p in pods {
            self.apply(p);
        }
    }

    /// Forgets pods deleted more than `grace` before `now`, and the ways to them.
    pub fn sweep(&mut self, now: Instant, grace: Duration) {
        let gone: Vec<Box<str>> = self
            .pods
            .iter()
            .filter(|(_, e)| e.deleted.is_some_and(|d| now.duration_since(d) >= grace))
            .map(|(uid, _)| uid.clone())
            .collect();
        for uid in gone {
            let Some(e) = self.pods.remove(&uid) else {
                continue;
            };
            let p = e.pod;
            if let Some(ip) = p.ip
                && self.by_ip.get(&ip) == Some(&uid)
            {
                self.by_ip.remove(&ip);
            }
            let key = name_key(&p.namespace, &p.name);
            if self.by_name.get(&key) == Some(&uid) {
                self.by_name.remove(&key);
            }
            for id in p.containers.iter().flat_map(|c| c.ids.iter()) {
                if self.by_container.get(id) == Some(&uid) {
                    self.by_container.remove(id);
                }
            }
        }
    }

    fn set_replicaset(&mut self, rs: &ReplicaSet) {
        let (Some(ns), Some(name)) = (&rs.metadata.namespace, &rs.metadata.name) else {
            return;
        };
        let deployment = rs
            .metadata
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.controller == Some(true) && o.kind == "Deployment");
        self.set_deployment(ns, name, deployment.map(|d| d.name.as_str()));
    }

    /// Records which deployment (if any) controls replicaset `name` in `namespace`.
    pub fn set_deployment(&mut self, namespace: &str, name: &str, deployment: Option<&str>) {
        let key = name_key(namespace, name);
        match deployment {
            Some(d) => {
                self.deployments.insert(key, d.into());
            }
            None => {
                self.deployments.remove(&key);
            }
        }
    }

    fn remove_replicaset(&mut self, rs: &ReplicaSet) {
        if let (Some(ns), Some(name)) = (&rs.metadata.namespace, &rs.metadata.name) {
            self.deployments.remove(&name_key(ns, name));
        }
    }

    fn set_namespace(&mut self, ns: &Namespace, settings: &Settings) {
        let Some(name) = &ns.metadata.name else {
            return;
        };
        let mut tags = Vec::new();
        tags_of(
            &mut tags,
            ns.metadata.labels.as_ref(),
            &settings.namespace_labels,
            "k8s.namespace.labels.",
        );
        tags_of(
            &mut tags,
            ns.metadata.annotations.as_ref(),
            &settings.namespace_annotations,
            "k8s.namespace.annotations.",
        );
        self.namespaces.insert(name.as_str().into(), tags);
    }
}

/// The index, shared by the watch tasks (writers) and the pipeline workers (readers, one read
/// lock per batch).
pub type Shared = Arc<RwLock<Index>>;

/// How the watches are doing: each kind's first sync, and errors seen.
#[derive(Clone)]
pub struct Progress {
    synced: watch::Receiver<usize>,
    kinds: usize,
}

impl Progress {
    /// Resolves once every watched kind has been listed once.
    pub async fn synced(mut self) {
        let kinds = self.kinds;
        let _ = self.synced.wait_for(|n| *n >= kinds).await;
    }
}

/// Starts the watches that fill `index`; they run until `shutdown`.
pub fn spawn(
    client: kube::Client,
    settings: Arc<Settings>,
    index: Shared,
    shutdown: Shutdown,
) -> Progress {
    let (tx, rx) = watch::channel(0usize);
    let tx = Arc::new(tx);
    let mut kinds = 1;
    let mut fields = Vec::new();
    if let Some(node) = &settings.node {
        fields.push(format!("spec.nodeName={node}"));
    }
    let pods: Api<ApiPod> = match &settings.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let config = watcher::Config::default().fields(&fields.join(","));
    tokio::spawn(watch_pods(
        pods,
        config,
        Arc::clone(&settings),
        Arc::clone(&index),
        Arc::clone(&tx),
        shutdown.clone(),
    ));
    if settings.deployments {
        kinds += 1;
        let api: Api<ReplicaSet> = match &settings.namespace {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        };
        let index = Arc::clone(&index);
        tokio::spawn(watch_kind(
            api,
            Arc::clone(&tx),
            shutdown.clone(),
            move |e: Event<ReplicaSet>| {
                let mut ix = index.write().unwrap_or_else(|p| p.into_inner());
                match e {
                    Event::Apply(rs) | Event::InitApply(rs) => ix.set_replicaset(&rs),
                    Event::Delete(rs) => ix.remove_replicaset(&rs),
                    Event::Init | Event::InitDone => {}
                }
            },
        ));
    }
    let wants_namespaces =
        !settings.namespace_labels.is_empty() || !settings.namespace_annotations.is_empty();
    if wants_namespaces {
        kinds += 1;
        let api: Api<Namespace> = Api::all(client);
        let (index, settings) = (Arc::clone(&index), Arc::clone(&settings));
        tokio::spawn(watch_kind(api, tx, shutdown, move |e: Event<Namespace>| {
            let mut ix = index.write().unwrap_or_else(|p| p.into_inner());
            match e {
                Event::Apply(ns) | Event::InitApply(ns) => ix.set_namespace(&ns, &settings),
                Event::Delete(ns) => {
                    if let Some(n) = &ns.metadata.name {
                        ix.namespaces.remove(n.as_str());
                    }
                }
                Event::Init | Event::InitDone => {}
            }
        }));
    }
    Progress { synced: rx, kinds }
}

/// Logs a watch error at most once a minute per kind and cause; the watcher retries with
/// backoff.
fn complain(throttle: &mut super::Throttle, kind: &str, e: &watcher::Error) {
    if throttle.ready_for(&e.to_string()) {
        tracing::warn!(kind, error = %e, "Kubernetes watch failed; retrying");
    }
}

async fn watch_pods(
    api: Api<ApiPod>,
    config: watcher::Config,
    settings: Arc<Settings>,
    index: Shared,
    synced: Arc<watch::Sender<usize>>,
    mut shutdown: Shutdown,
) {
    let stream = watcher::watcher(api, config).default_backoff();
    let mut stream = std::pin::pin!(stream);
    let mut listing: Option<Vec<Pod>> = None;
    let mut first = true;
    let mut throttle = super::Throttle::default();
    let mut sweep = tokio::time::interval(
        settings
            .grace
            .min(Duration::from_secs(10))
            .max(Duration::from_millis(100)),
    );
    loop {
        let event = tokio::select! {
            _ = shutdown.wait() => return,
            _ = sweep.tick() => {
                let mut ix = index.write().unwrap_or_else(|p| p.into_inner());
                ix.sweep(Instant::now(), settings.grace);
                continue;
            }
            e = stream.next() => e,
        };
        match event {
            None => return,
            Some(Err(e)) => complain(&mut throttle, "Pod", &e),
            Some(Ok(Event::Init)) => listing = Some(Vec::new()),
            Some(Ok(Event::InitApply(p))) => {
                if let (Some(list), Some(pod)) = (&mut listing, Pod::from_api(&p, &settings)) {
                    list.push(pod);
                }
            }
            Some(Ok(Event::InitDone)) => {
                let pods = listing.take().unwrap_or_default();
                index
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .relist(pods, Instant::now());
                if std::mem::take(&mut first) {
                    synced.send_modify(|n| *n += 1);
                }
            }
            Some(Ok(Event::Apply(p))) => {
                if let Some(pod) = Pod::from_api(&p, &settings) {
                    index.write().unwrap_or_else(|p| p.into_inner()).apply(pod);
                }
            }
            Some(Ok(Event::Delete(p))) => {
                if let Some(uid) = &p.metadata.uid {
                    index
                        .write()
                        .unwrap_or_else(|p| p.into_inner())
                        .delete(uid, Instant::now());
                }
            }
        }
    }
}

async fn watch_kind<K, F>(
    api: Api<K>,
    synced: Arc<watch::Sender<usize>>,
    mut shutdown: Shutdown,
    mut apply: F,
) where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
    K::DynamicType: Default,
    F: FnMut(Event<K>),
{
    let kind = K::kind(&K::DynamicType::default()).to_string();
    let stream = watcher::watcher(api, watcher::Config::default()).default_backoff();
    let mut stream = std::pin::pin!(stream);
    let mut first = true;
    let mut throttle = super::Throttle::default();
    loop {
        let event = tokio::select! {
            _ = shutdown.wait() => return,
            e = stream.next() => e,
        };
        match event {
            None => return,
            Some(Err(e)) => complain(&mut throttle, &kind, &e),
            Some(Ok(e)) => {
                let done = matches!(e, Event::InitDone);
                apply(e);
                if done && std::mem::take(&mut first) {
                    synced.send_modify(|n| *n += 1);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references_split_into_name_and_tag_as_the_collector_reports_them() {
        assert_eq!(split_image("nginx"), ("nginx", "latest"));
        assert_eq!(split_image("nginx:1.25"), ("nginx", "1.25"));
        assert_eq!(
            split_image("registry:5000/team/app"),
            ("registry:5000/team/app", "latest")
        );
        assert_eq!(
            split_image("registry:5000/team/app:2.1@sha256:abc"),
            ("registry:5000/team/app", "2.1")
        );
        assert_eq!(split_image("app@sha256:abc"), ("app", "latest"));
    }

    fn pod(uid: &str, name: &str, ip: &str) -> Pod {
        Pod {
            uid: uid.into(),
            name: name.into(),
            namespace: "shop".into(),
            node: "node-1".into(),
            ip: ip.parse().ok(),
            start_time: None,
            owner: None,
            containers: vec![Container {
                name: "app".into(),
                image_name: "app".into(),
                image_tag: "1".into(),
                ids: vec![format!("c-{uid}").into()],
            }],
            tags: Vec::new(),
        }
    }

    #[test]
    fn a_deleted_pod_is_found_until_its_grace_ends_and_a_new_pod_takes_its_ip() {
        let mut ix = Index::default();
        let t0 = Instant::now();
        ix.apply(pod("u1", "a", "10.0.0.1"));
        ix.delete("u1", t0);
        let mut key = String::new();
        assert_eq!(
            ix.by_ip("10.0.0.1".parse().unwrap()).unwrap().uid.as_ref(),
            "u1"
        );
        // A new pod gets the IP while the old one is in its grace period.
        ix.apply(pod("u2", "b", "10.0.0.1"));
        assert_eq!(
            ix.by_ip("10.0.0.1".parse().unwrap()).unwrap().uid.as_ref(),
            "u2"
        );
        assert!(
            ix.by_name("shop", "a", &mut key).is_some(),
            "still known by name"
        );
        ix.sweep(t0 + Duration::from_secs(119), Duration::from_secs(120));
        assert!(ix.by_uid("u1").is_some());
        ix.sweep(t0 + Duration::from_secs(120), Duration::from_secs(120));
        assert!(ix.by_uid("u1").is_none());
        assert!(ix.by_name("shop", "a", &mut key).is_none());
        assert!(ix.by_container_id("c-u1").is_none());
        assert_eq!(
            ix.by_ip("10.0.0.1".parse().unwrap()).unwrap().uid.as_ref(),
            "u2",
            "kept"
        );
    }

    #[test]
    fn a_relist_deletes_the_pods_it_no_longer_has_with_their_grace() {
        let mut ix = Index::default();
        let t0 = Instant::now();
        ix.apply(pod("u1", "a", "10.0.0.1"));
        ix.apply(pod("u2", "b", "10.0.0.2"));
        ix.relist(
            vec![pod("u2", "b", "10.0.0.2"), pod("u3", "c", "10.0.0.3")],
            t0,
        );
        assert_eq!(ix.len(), 3, "u1 is in its grace period");
        ix.sweep(t0 + Duration::from_secs(120), Duration::from_secs(120));
        assert_eq!(ix.len(), 2);
        assert!(ix.by_uid("u1").is_none() && ix.by_uid("u3").is_some());
        assert_eq!(ix.by_container_id("c-u3").unwrap().1.name.as_ref(), "app");
    }
}
