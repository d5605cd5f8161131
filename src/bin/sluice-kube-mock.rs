//! `sluice-kube-mock`: a stand-in for the Kubernetes API server, for tests and benches where no
//! cluster can run. It keeps the documented list/watch contract that clients (kube-rs's
//! `watcher`, client-go's informers) rely on, for any resource it is given:
//!
//! - **Lists** (`GET /api/v1/pods`, `/api/v1/namespaces/{ns}/pods`, `/apis/apps/v1/replicasets`,
//!   ...): `{kind: <Kind>List, metadata: {resourceVersion}, items}`, paged by `limit` and
//!   `continue`; `fieldSelector` (`spec.nodeName=`, `metadata.name=`, `metadata.namespace=`,
//!   `involvedObject.*`/`regarding.*` paths, `=` and `!=`) and `labelSelector` (`k=v`, `k!=v`,
//!   `k`) filter them.
//! - **Watches** (`?watch=true&resourceVersion=N`): every change after `N`, then changes as they
//!   happen, one JSON event per line (`ADDED`, `MODIFIED`, `DELETED`); `BOOKMARK`s with the
//!   current resourceVersion when `allowWatchBookmarks=true` (every `--bookmark-ms`); the stream
//!   ends after `timeoutSeconds` (capped by `--max-watch-seconds`). A resourceVersion older
//!   than the kept history gets an `ERROR` event with a 410 `Expired` Status, as from etcd
//!   compaction, and the client must list again.
//! - **Objects**: `GET`, `POST` (create: 409 `AlreadyExists`), `PUT` (replace: 409 `Conflict`
//!   when `metadata.resourceVersion` is not the current one, the optimistic concurrency leader
//!   election relies on), `DELETE`.
//! - **Kubelet**: `GET /stats/summary` serves the document set with `POST /_mock/summary`.
//!
//! Test control, under `/_mock/`: `POST objects` (apply: create or replace, no version check),
//! `DELETE objects?apiVersion=&kind=&namespace=&name=`, `POST compact` (forget the history:
//! every resourceVersion handed out so far gets 410), `POST close-watches` (end every open watch, as a dropped
//! connection does), `GET stats` (lists, watches, expired, requests by path).
//!
//! A broken or hostile server, for the bounds clients must keep (`POST hostile?mode=M`, `none`
//! to stop): `endless-line` (a watch answers one line that never ends), `huge-list` (a list
//! ignores `limit` and sends pods without end), `huge-summary` (the kubelet's summary never
//! ends), `stall-list` (a list is never answered). Endless answers are made as they are read,
//! so they cost the mock nothing.
//!
//! What it does not do: authentication (any bearer token is taken and remembered in stats),
//! admission, defaulting, server-side apply, protobuf, and most selectors.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use clap::Parser;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming};
use hyper::{Request, Response};
use serde_json::{Value, json};
use tokio::sync::mpsc;

#[derive(Parser, Debug)]
#[command(about = "A stand-in for the Kubernetes API server (list/watch, objects, leases)")]
struct Args {
    /// Address to listen on; port 0 picks one, printed as `listening on <addr>`.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// How often open watches that asked for bookmarks get one.
    #[arg(long, default_value_t = 1000)]
    bookmark_ms: u64,
    /// The longest a watch stays open, whatever `timeoutSeconds` asks.
    #[arg(long, default_value_t = 300)]
    max_watch_seconds: u64,
}

/// One change, as the history keeps it.
#[derive(Clone)]
struct Change {
    rv: u64,
    kind: &'static str,
    collection: String,
    object: Value,
}

struct Watch {
    id: u64,
    collection: String,
    namespace: Option<String>,
    filter: Filter,
    bookmarks: bool,
    tx: mpsc::Sender<Bytes>,
}

#[derive(Default)]
struct State {
    rv: u64,
    /// Per collection (`/api/v1/pods`), objects by `namespace/name`.
    objects: HashMap<String, BTreeMap<String, Value>>,
    history: Vec<Change>,
    /// Changes at or below this resourceVersion are forgotten.
    compacted: u64,
    watches: Vec<Watch>,
    summary: Value,
    /// `/_mock/hostile`'s mode while one is set.
    hostile: Option<String>,
    stats: Stats,
    next_uid: u64,
    next_watch: u64,
}

#[derive(Default)]
struct Stats {
    lists: u64,
    watches: u64,
    expired: u64,
    conflicts: u64,
    hostile_answers: u64,
    requests: BTreeMap<String, u64>,
    tokens: BTreeMap<String, u64>,
}

type Shared = Arc<Mutex<State>>;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let bound = listener.local_addr().context("no local address")?;
        println!("listening on {bound}");
        let state: Shared = Arc::default();
        let args = Arc::new(args);
        tokio::spawn(bookmarks(Arc::clone(&state), args.bookmark_ms));
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(s) => s,
                Err(_) => continue,
            };
            let (state, args) = (Arc::clone(&state), Arc::clone(&args));
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let (state, args) = (Arc::clone(&state), Arc::clone(&args));
                    async move { Ok::<_, Infallible>(handle(req, state, &args).await) }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    })
}

/// A response body: a whole document, a watch's events as they come, or (hostile) a head
/// and then one chunk again and again, without end.
enum Out {
    Whole(Option<Bytes>),
    Stream(mpsc::Receiver<Bytes>),
    Endless(Option<Bytes>, Bytes),
}

impl Body for Out {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Out::Whole(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Out::Stream(rx) => rx.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b)))),
            Out::Endless(head, chunk) => Poll::Ready(Some(Ok(Frame::data(
                head.take().unwrap_or_else(|| chunk.clone()),
            )))),
        }
    }

    /// Exact for a whole document, so it goes out with a `Content-Length`; a watch is chunked.
    fn size_hint(&self) -> hyper::body::SizeHint {
        match self {
            Out::Whole(b) => {
                hyper::body::SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64))
            }
            Out::Stream(_) | Out::Endless(..) => hyper::body::SizeHint::default(),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Out::Whole(None))
    }
}

/// A 200 answer of `head` and then `fill` bytes without end (no newline, no closing).
fn endless(head: &'static [u8], fill: u8) -> Response<Out> {
    let mut r = Response::new(Out::Endless(
        Some(Bytes::from_static(head)),
        Bytes::from(vec![fill; 64 << 10]),
    ));
    r.headers_mut()
        .insert("content-type", "application/json".parse().expect("static"));
    r
}

fn reply(status: u16, body: &Value) -> Response<Out> {
    let mut r = Response::new(Out::Whole(Some(Bytes::from(body.to_string()))));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    r.headers_mut()
        .insert("content-type", "application/json".parse().expect("static"));
    r
}

/// The API's `Status` object for an error.
fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

fn fail(code: u16, reason: &str, message: &str) -> Response<Out> {
    reply(code, &status(code, reason, message))
}

fn query(req: &Request<Incoming>) -> HashMap<String, String> {
    req.uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let v = percent_encoding::percent_decode_str(v).decode_utf8().ok()?;
            Some((k.to_string(), v.replace('+', " ")))
        })
        .collect()
}

/// A parsed API path: the collection (`/api/v1/pods`), the namespace if the path names one, and
/// the object's name if it names one.
struct Target {
    collection: String,
    namespace: Option<String>,
    name: Option<String>,
}

fn target(path: &str) -> Option<Target> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    // `api/v1/...` or `apis/<group>/<version>/...`.
    let (prefix, rest) = match *parts.first()? {
        "api" if parts.len() >= 3 => (parts[..2].join("/"), &parts[2..]),
        "apis" if parts.len() >= 4 => (parts[..3].join("/"), &parts[3..]),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        // `namespaces/{ns}/<plural>[/name]`; `namespaces[/name]` itself is a collection.
        ["namespaces", ns, plural, tail @ ..] => (Some(ns.to_string()), {
            let mut v = vec![*plural];
            v.extend_from_slice(tail);
            v
        }),
        other => (None, other.to_vec()),
    };
    let plural = rest.first()?;
    Some(Target {
        collection: format!("/{prefix}/{plural}"),
        namespace,
        name: rest.get(1).map(|s| s.to_string()),
    })
}

/// The collection an object of `apiVersion` and `kind` lives in.
fn collection_of(api_version: &str, kind: &str) -> String {
    let prefix = if api_version.contains('/') {
        format!("/apis/{api_version}")
    } else {
        format!("/api/{api_version}")
    };
    format!("{prefix}/{}s", kind.to_lowercase())
}

fn key(namespace: Option<&str>, name: &str) -> String {
    format!("{}/{name}", namespace.unwrap_or(""))
}

fn meta<'a>(o: &'a Value, field: &str) -> Option<&'a str> {
    o.get("metadata")?.get(field)?.as_str()
}

/// `fieldSelector` and `labelSelector` terms, all of which must hold.
#[derive(Default, Clone)]
struct Filter {
    fields: Vec<(String, bool, String)>,
    labels: Vec<(String, Option<(bool, String)>)>,
}

impl Filter {
    fn parse(q: &HashMap<String, String>) -> Filter {
        let terms = |s: Option<&String>| -> Vec<String> {
            s.map(|s| {
                s.split(',')
                    .filter(|t| !t.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
        };
        let split = |t: &str| -> Option<(String, bool, String)> {
            if let Some((k, v)) = t.split_once("!=") {
                return Some((k.to_string(), false, v.to_string()));
            }
            let (k, v) = t.split_once("==").or_else(|| t.split_once('='))?;
            Some((k.to_string(), true, v.to_string()))
        };
        Filter {
            fields: terms(q.get("fieldSelector"))
                .iter()
                .filter_map(|t| split(t))
                .collect(),
            labels: terms(q.get("labelSelector"))
                .iter()
                .map(|t| match split(t) {
                    Some((k, eq, v)) => (k, Some((eq, v))),
                    None => (t.clone(), None),
                })
                .collect(),
        }
    }

    fn matches(&self, o: &Value) -> bool {
        self.fields.iter().all(|(path, eq, want)| {
            let got = path
                .split('.')
                .try_fold(o, |v, p| v.get(p))
                .and_then(Value::as_str)
                .unwrap_or("");
            (got == want) == *eq
        }) && self.labels.iter().all(|(k, cond)| {
            let got = o.pointer("/metadata/labels").and_then(|l| l.get(k));
            match cond {
                None => got.is_some(),
                Some((eq, want)) => (got.and_then(Value::as_str) == Some(want)) == *eq,
            }
        })
    }
}

fn in_scope(o: &Value, namespace: Option<&str>) -> bool {
    namespace.is_none_or(|ns| meta(o, "namespace") == Some(ns))
}

/// The kind of a collection's items (`/api/v1/pods` -> `Pod`), from an object stored there.
fn list_kind(objects: Option<&BTreeMap<String, Value>>, collection: &str) -> String {
    if let Some(kind) = objects
        .and_then(|m| m.values().next())
        .and_then(|o| o.get("kind"))
        .and_then(Value::as_str)
    {
        return format!("{kind}List");
    }
    let plural = collection.rsplit('/').next().unwrap_or("");
    let singular = plural.strip_suffix('s').unwrap_or(plural);
    let mut c = singular.chars();
    let kind: String = c
        .next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default();
    format!("{kind}List")
}

impl State {
    /// Records a change, stamps the object's resourceVersion and tells the watches.
    fn change(&mut self, kind: &'static str, collection: &str, mut object: Value) -> Value {
        self.rv += 1;
        let rv = self.rv;
        if let Some(m) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            m.insert("resourceVersion".into(), json!(rv.to_string()));
        }
        let k = key(
            meta(&object, "namespace"),
            meta(&object, "name").unwrap_or(""),
        );
        let objects = self.objects.entry(collection.to_string()).or_default();
        if kind == "DELETED" {
            objects.remove(&k);
        } else {
            objects.insert(k, object.clone());
        }
        let change = Change {
            rv,
            kind,
            collection: collection.to_string(),
            object: object.clone(),
        };
        let line = event_line(&change);
        self.watches.retain(|w| {
            if w.collection != change.collection
                || !in_scope(&change.object, w.namespace.as_deref())
                || !w.filter.matches(&change.object)
            {
                return !w.tx.is_closed();
            }
            w.tx.try_send(line.clone()).is_ok()
        });
        self.history.push(change);
        object
    }

    fn new_uid(&mut self) -> String {
        self.next_uid += 1;
        format!("00000000-0000-4000-8000-{:012x}", self.next_uid)
    }

    /// Creates or replaces `object` (test control: no version check).
    fn apply(&mut self, mut object: Value) -> Result<Value, String> {
        let api_version = object
            .get("apiVersion")
            .and_then(Value::as_str)
            .ok_or("no apiVersion")?
            .to_string();
        let kind = object
            .get("kind")
            .and_then(Value::as_str)
            .ok_or("no kind")?
            .to_string();
        let name = meta(&object, "name").ok_or("no metadata.name")?.to_string();
        let collection = collection_of(&api_version, &kind);
        let k = key(meta(&object, "namespace"), &name);
        let existing = self
            .objects
            .get(&collection)
            .and_then(|m| m.get(&k))
            .cloned();
        let uid = match existing.as_ref().and_then(|e| meta(e, "uid")) {
            Some(uid) => uid.to_string(),
            None => match meta(&object, "uid") {
                Some(uid) => uid.to_string(),
                None => self.new_uid(),
            },
        };
        if let Some(m) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            m.insert("uid".into(), json!(uid));
            m.entry("creationTimestamp")
                .or_insert(json!("2026-11-28T00:00:00Z"));
        }
        let kind = if existing.is_some() {
            "MODIFIED"
        } else {
            "ADDED"
        };
        Ok(self.change(kind, &collection, object))
    }
}

fn event_line(c: &Change) -> Bytes {
    let mut s = json!({"type": c.kind, "object": c.object}).to_string();
    s.push('\n');
    Bytes::from(s)
}

async fn bookmarks(state: Shared, every_ms: u64) {
    let mut tick = tokio::time::interval(Duration::from_millis(every_ms.max(10)));
    loop {
        tick.tick().await;
        let mut s = state.lock().expect("not poisoned");
        let rv = s.rv.to_string();
        s.watches.retain(|w| {
            if !w.bookmarks {
                return !w.tx.is_closed();
            }
            let (api_version, kind) = bookmark_kind(&w.collection);
            let line = format!(
                "{}\n",
                json!({"type": "BOOKMARK", "object": {"kind": kind, "apiVersion": api_version,
                       "metadata": {"resourceVersion": rv}}})
            );
            !matches!(
                w.tx.try_send(Bytes::from(line)),
                Err(mpsc::error::TrySendError::Closed(_))
            )
        });
    }
}

/// The apiVersion and kind a bookmark on `collection` names.
fn bookmark_kind(collection: &str) -> (String, String) {
    let parts: Vec<&str> = collection.trim_matches('/').split('/').collect();
    let api_version = match parts.first() {
        Some(&"api") => parts.get(1).copied().unwrap_or("v1").to_string(),
        _ => parts[1..parts.len().saturating_sub(1)].join("/"),
    };
    let kind = list_kind(None, collection);
    (api_version, kind.trim_end_matches("List").to_string())
}

async fn body_json(req: Request<Incoming>) -> Result<Value, String> {
    let bytes = req
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    serde_json::from_slice(&bytes).map_err(|e| format!("not JSON: {e}"))
}

async fn handle(req: Request<Incoming>, state: Shared, args: &Args) -> Response<Out> {
    let path = req.uri().path().to_string();
    let method = req.method().as_str().to_string();
    let q = query(&req);
    {
        let mut s = state.lock().expect("not poisoned");
        *s.stats
            .requests
            .entry(format!("{method} {path}"))
            .or_default() += 1;
        if let Some(token) = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        {
            *s.stats.tokens.entry(token.to_string()).or_default() += 1;
        }
    }
    if let Some(control) = path.strip_prefix("/_mock/") {
        return control_request(control, &method, &q, req, &state).await;
    }
    let hostile = {
        let mut s = state.lock().expect("not poisoned");
        let mode = s.hostile.clone();
        if mode.is_some() {
            s.stats.hostile_answers += 1;
        }
        mode
    };
    let watching = q.get("watch").is_some_and(|w| w == "true" || w == "1");
    match (hostile.as_deref(), method.as_str()) {
        (Some("endless-line"), "GET") if watching => {
            return endless(b"{\"type\":\"ADDED\",\"object\":{\"kind\":\"", b'x');
        }
        (Some("huge-summary"), "GET") if path == "/stats/summary" => {
            return endless(b"{\"node\":{\"nodeName\":\"", b'x');
        }
        (Some("huge-list"), "GET") if !watching && path != "/stats/summary" => {
            let head = br#"{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"1"},"items":["#;
            let pod = br#"{"metadata":{"name":"p","namespace":"default","uid":"u"},"spec":{"nodeName":"node-1"}},"#;
            let chunk: Vec<u8> = pod.iter().copied().cycle().take(pod.len() * 512).collect();
            let mut r = Response::new(Out::Endless(
                Some(Bytes::from_static(head)),
                Bytes::from(chunk),
            ));
            r.headers_mut()
                .insert("content-type", "application/json".parse().expect("static"));
            return r;
        }
        (Some("stall-list"), "GET") if !watching => {
            // Never answered; the client must give up and try again.
            std::future::pending::<()>().await;
        }
        _ => {}
    }
    if path == "/stats/summary" && method == "GET" {
        let s = state.lock().expect("not poisoned");
        return reply(200, &s.summary);
    }
    if path == "/version" {
        return reply(
            200,
            &json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0-sluice-mock"}),
        );
    }
    let Some(t) = target(&path) else {
        return fail(
            404,
            "NotFound",
            &format!("the server could not find {path}"),
        );
    };
    match (method.as_str(), &t.name) {
        ("GET", None) if q.get("watch").is_some_and(|w| w == "true" || w == "1") => {
            watch(&t, &q, &state, args)
        }
        ("GET", None) => list(&t, &q, &state),
        ("GET", Some(name)) => {
            let s = state.lock().expect("not poisoned");
            let k = key(t.namespace.as_deref(), name);
            match s.objects.get(&t.collection).and_then(|m| m.get(&k)) {
                Some(o) => reply(200, o),
                None => fail(404, "NotFound", &format!("\"{name}\" not found")),
            }
        }
        ("POST", None) => {
            let object = match body_json(req).await {
                Ok(o) => o,
                Err(e) => return fail(400, "BadRequest", &e),
            };
            let Some(name) = meta(&object, "name").map(str::to_string) else {
                return fail(422, "Invalid", "metadata.name: Required value");
            };
            let mut s = state.lock().expect("not poisoned");
            let k = key(t.namespace.as_deref(), &name);
            if s.objects
                .get(&t.collection)
                .is_some_and(|m| m.contains_key(&k))
            {
                s.stats.conflicts += 1;
                return fail(409, "AlreadyExists", &format!("\"{name}\" already exists"));
            }
            let mut object = object;
            let uid = s.new_uid();
            if let Some(m) = object.get_mut("metadata").and_then(Value::as_object_mut) {
                m.insert("uid".into(), json!(uid));
                if let Some(ns) = &t.namespace {
                    m.insert("namespace".into(), json!(ns));
                }
            }
            let stored = s.change("ADDED", &t.collection, object);
            reply(201, &stored)
        }
        ("PUT", Some(name)) => {
            let object = match body_json(req).await {
                Ok(o) => o,
                Err(e) => return fail(400, "BadRequest", &e),
            };
            let mut s = state.lock().expect("not poisoned");
            let k = key(t.namespace.as_deref(), name);
            let Some(current) = s
                .objects
                .get(&t.collection)
                .and_then(|m| m.get(&k))
                .cloned()
            else {
                return fail(404, "NotFound", &format!("\"{name}\" not found"));
            };
            let given = meta(&object, "resourceVersion");
            if given.is_some_and(|rv| Some(rv) != meta(&current, "resourceVersion")) {
                s.stats.conflicts += 1;
                return fail(
                    409,
                    "Conflict",
                    &format!(
                        "Operation cannot be fulfilled on \"{name}\": the object has been \
                         modified; please apply your changes to the latest version and try again"
                    ),
                );
            }
            let mut object = object;
            if let Some(m) = object.get_mut("metadata").and_then(Value::as_object_mut) {
                m.insert("uid".into(), json!(meta(&current, "uid")));
            }
            let stored = s.change("MODIFIED", &t.collection, object);
            reply(200, &stored)
        }
        ("DELETE", Some(name)) => {
            let mut s = state.lock().expect("not poisoned");
            let k = key(t.namespace.as_deref(), name);
            match s
                .objects
                .get(&t.collection)
                .and_then(|m| m.get(&k))
                .cloned()
            {
                Some(o) => reply(200, &s.change("DELETED", &t.collection, o)),
                None => fail(404, "NotFound", &format!("\"{name}\" not found")),
            }
        }
        _ => fail(405, "MethodNotAllowed", &format!("{method} {path}")),
    }
}

fn list(t: &Target, q: &HashMap<String, String>, state: &Shared) -> Response<Out> {
    let mut s = state.lock().expect("not poisoned");
    s.stats.lists += 1;
    let filter = Filter::parse(q);
    let objects = s.objects.get(&t.collection);
    let all: Vec<&Value> = objects
        .map(|m| {
            m.values()
                .filter(|o| in_scope(o, t.namespace.as_deref()) && filter.matches(o))
                .collect()
        })
        .unwrap_or_default();
    // `continue` is `<resourceVersion>:<offset>`; pages are cut from the current objects.
    let (rv, from) = match q.get("continue").and_then(|c| c.split_once(':')) {
        Some((rv, off)) => (
            rv.parse().unwrap_or(s.rv),
            off.parse::<usize>().unwrap_or(0),
        ),
        None => (s.rv, 0),
    };
    let limit = q
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    let end = from.saturating_add(limit).min(all.len());
    let items: Vec<&Value> = all.get(from..end).unwrap_or(&[]).to_vec();
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if end < all.len() {
        metadata["continue"] = json!(format!("{rv}:{end}"));
        metadata["remainingItemCount"] = json!(all.len() - end);
    }
    let kind = list_kind(objects, &t.collection);
    let (api_version, _) = bookmark_kind(&t.collection);
    reply(
        200,
        &json!({"kind": kind, "apiVersion": api_version, "metadata": metadata, "items": items}),
    )
}

fn watch(t: &Target, q: &HashMap<String, String>, state: &Shared, args: &Args) -> Response<Out> {
    let mut s = state.lock().expect("not poisoned");
    s.stats.watches += 1;
    let (tx, rx) = mpsc::channel(4096);
    let filter = Filter::parse(q);
    let from: u64 = q
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let ok = |c: &Change| {
        c.collection == t.collection
            && in_scope(&c.object, t.namespace.as_deref())
            && filter.matches(&c.object)
    };
    if from == 0 {
        // "Any": the current objects as ADDED, then what follows.
        for o in s
            .objects
            .get(&t.collection)
            .into_iter()
            .flat_map(|m| m.values())
        {
            let c = Change {
                rv: 0,
                kind: "ADDED",
                collection: t.collection.clone(),
                object: o.clone(),
            };
            if ok(&c) {
                let _ = tx.try_send(event_line(&c));
            }
        }
    } else if from < s.compacted {
        s.stats.expired += 1;
        let line = format!(
            "{}\n",
            json!({"type": "ERROR", "object": status(410, "Expired",
                &format!("too old resource version: {from} ({})", s.compacted))})
        );
        let _ = tx.try_send(Bytes::from(line));
        drop(tx);
        let mut r = Response::new(Out::Stream(rx));
        r.headers_mut()
            .insert("content-type", "application/json".parse().expect("static"));
        return r;
    } else {
        for c in s.history.iter().filter(|c| c.rv > from && ok(c)) {
            let _ = tx.try_send(event_line(c));
        }
    }
    let seconds = q
        .get("timeoutSeconds")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(args.max_watch_seconds)
        .min(args.max_watch_seconds);
    s.next_watch += 1;
    let id = s.next_watch;
    s.watches.push(Watch {
        id,
        collection: t.collection.clone(),
        namespace: t.namespace.clone(),
        filter,
        bookmarks: q.get("allowWatchBookmarks").is_some_and(|v| v == "true"),
        tx,
    });
    drop(s);
    // The stream ends when its only sender, the one in the list, is dropped: at the timeout,
    // or earlier by `close-watches`.
    let state = Arc::clone(state);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        let mut s = state.lock().expect("not poisoned");
        s.watches.retain(|w| w.id != id);
    });
    let mut r = Response::new(Out::Stream(rx));
    r.headers_mut()
        .insert("content-type", "application/json".parse().expect("static"));
    r
}

async fn control_request(
    control: &str,
    method: &str,
    q: &HashMap<String, String>,
    req: Request<Incoming>,
    state: &Shared,
) -> Response<Out> {
    match (method, control) {
        ("POST", "objects") => {
            let object = match body_json(req).await {
                Ok(o) => o,
                Err(e) => return fail(400, "BadRequest", &e),
            };
            let mut s = state.lock().expect("not poisoned");
            // An array applies several objects in order.
            let objects = match object {
                Value::Array(v) => v,
                o => vec![o],
            };
            let mut stored = Vec::new();
            for o in objects {
                match s.apply(o) {
                    Ok(o) => stored.push(o),
                    Err(e) => return fail(400, "BadRequest", &e),
                }
            }
            reply(200, &json!(stored))
        }
        ("DELETE", "objects") => {
            let (Some(api_version), Some(kind), Some(name)) =
                (q.get("apiVersion"), q.get("kind"), q.get("name"))
            else {
                return fail(400, "BadRequest", "apiVersion, kind and name are required");
            };
            let collection = collection_of(api_version, kind);
            let mut s = state.lock().expect("not poisoned");
            let k = key(q.get("namespace").map(String::as_str), name);
            match s.objects.get(&collection).and_then(|m| m.get(&k)).cloned() {
                Some(o) => reply(200, &s.change("DELETED", &collection, o)),
                None => fail(404, "NotFound", &format!("\"{name}\" not found")),
            }
        }
        ("POST", "compact") => {
            let mut s = state.lock().expect("not poisoned");
            // Past everything a client has seen (a revision of its own marks the point): a
            // watch from any earlier resourceVersion gets 410, a fresh list starts here.
            s.rv += 1;
            s.compacted = s.rv;
            s.history.clear();
            reply(200, &json!({"compacted": s.compacted}))
        }
        ("POST", "close-watches") => {
            let mut s = state.lock().expect("not poisoned");
            let n = s.watches.len();
            s.watches.clear();
            reply(200, &json!({"closed": n}))
        }
        ("POST", "summary") => match body_json(req).await {
            Ok(v) => {
                state.lock().expect("not poisoned").summary = v;
                reply(200, &json!({}))
            }
            Err(e) => fail(400, "BadRequest", &e),
        },
        ("POST", "hostile") => {
            let mode = q.get("mode").filter(|m| *m != "none").cloned();
            state.lock().expect("not poisoned").hostile = mode;
            reply(200, &json!({}))
        }
        ("GET", "stats") => {
            let s = state.lock().expect("not poisoned");
            let st = &s.stats;
            reply(
                200,
                &json!({"lists": st.lists, "watches": st.watches, "expired": st.expired,
                        "conflicts": st.conflicts, "resourceVersion": s.rv,
                        "hostile_answers": st.hostile_answers,
                        "open_watches": s.watches.len(),
                        "requests": st.requests, "tokens": st.tokens}),
            )
        }
        _ => fail(404, "NotFound", control),
    }
}
