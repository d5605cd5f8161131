//! `sluice-es-mock`: a stand-in for Elasticsearch that follows its documented `_bulk`
//! contract, for tests and benchmarks where no Elasticsearch can run. It is not Elasticsearch:
//! it stores documents in memory, checks nothing but what the fault options name, and answers
//! in the shapes of the Elasticsearch reference:
//!
//! - `GET /`: the version document, with the `X-Elastic-Product: Elasticsearch` header every
//!   answer carries (official clients refuse servers without it).
//! - `POST /_bulk`, `POST /<index>/_bulk`: NDJSON action/source pairs (gzip bodies too);
//!   answers `took`, `errors`, `items[].{create|index}.{_index,_id,status,error{type,reason}}`.
//!   A `create` whose `_id` exists gets 409 `version_conflict_engine_exception`.
//! - What Elasticsearch refuses per item, with its error types: an invalid index name (400
//!   `invalid_index_name_exception`: upper case, `\ / * ? " < > | , #`, space, a leading `_ - +`,
//!   over 255 bytes); in `*.otel-*` data streams, a `body.structured` array that is not all
//!   objects (400 `document_parsing_exception`: a `flattened` field takes objects); a document
//!   whose top level holds both `a` (not an object) and `a.b` (400 `document_parsing_exception`:
//!   a field cannot be both a value and an object).
//! - `?require_data_stream=true`: an item whose index is no data stream (the built-in templates'
//!   `logs-*-*`, `metrics-*-*`, `traces-*-*`, `synthetics-*-*`) gets 400
//!   `illegal_argument_exception`.
//! - `metrics-*` indices behave as time series data streams (Elasticsearch's `metrics-*.otel-*`
//!   template is one): an action with an `_id` is refused 400 (`_id must be unset ... is in
//!   time_series mode`); the id is derived from the document's dimensions (`attributes`,
//!   `resource.attributes`, `scope.attributes`, `unit`, `_metric_names_hash`, `data_stream`)
//!   and `@timestamp`, so a second document of the same series and time gets 409
//!   `version_conflict_engine_exception`, as Elasticsearch answers it.
//! - Whole-request answers: 413 over `--max-content-length`, 503 while down, 401 without the
//!   `--require-auth` header, 400 for a malformed body.
//! - Faults: `--reject-share F` answers that share of items 429 `es_rejected_execution_exception`
//!   (for `--reject-seconds` after start, or always); `--long-field NAME` makes documents whose
//!   NAME is not a number fail with 400 `document_parsing_exception`, as a `long` mapping does;
//!   `--down-seconds S` answers 503 to everything for the first S seconds; `--latency-ms`.
//! - `--discard` (benchmarks): documents are counted, not parsed or stored; every item 201.
//! - Inspection: `GET /_mock/docs` (NDJSON of `{_index,_id,_source}`, with the action's
//!   `dynamic_templates` and `pipeline` when it had them; `?field=PATH` gives one field per
//!   line instead, and `--keep-field PATH` stores only that field), `GET /_mock/stats`,
//!   `POST /_mock/down?seconds=N`, `POST /_mock/reject?share=F&seconds=N`.
//! - Broken answers (a faulty proxy or a hostile server; Elasticsearch never sends these):
//!   `POST /_mock/lie?mode=M` stores the documents as usual and then answers `errors: false`
//!   with `short` (one item fewer than sent), `empty` (`items: []`), `cut` (the answer's head
//!   and then garbage) or `huge` (a valid answer padded to 8 MiB); `mode=none` stops it.

use std::collections::HashSet;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{Value, json};

#[derive(Parser, Clone)]
#[command(
    name = "sluice-es-mock",
    about = "An in-memory server following Elasticsearch's _bulk contract"
)]
struct Args {
    /// Address to listen on; port 0 picks a free one. The bound address is printed on standard
    /// output first: `listening on 127.0.0.1:PORT`.
    #[arg(long, default_value = "127.0.0.1:9200")]
    listen: String,
    /// Share of items (0 to 1) answered 429 es_rejected_execution_exception.
    #[arg(long, default_value_t = 0.0)]
    reject_share: f64,
    /// Reject only during this many seconds after start (0 = for as long as it runs).
    #[arg(long, default_value_t = 0)]
    reject_seconds: u64,
    /// A field mapped as `long`: documents where it is not a number fail with 400.
    #[arg(long)]
    long_field: Vec<String>,
    /// Answer 503 to everything for this many seconds after start.
    #[arg(long, default_value_t = 0)]
    down_seconds: u64,
    /// Wait this long before answering a bulk request.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Larger bodies get 413 (Elasticsearch's http.max_content_length, 100mb by default).
    #[arg(long, default_value_t = 100 << 20)]
    max_content_length: usize,
    /// The exact Authorization header every request must carry.
    #[arg(long)]
    require_auth: Option<String>,
    /// For benchmarks: count documents without parsing or storing them, and answer every item
    /// 201, so the mock costs little next to the exporter it measures.
    #[arg(long)]
    discard: bool,
    /// For long drills: keep only this field of each stored document (a dotted path, nested
    /// objects or dotted keys alike), so millions of documents fit in memory. Every check still
    /// sees the whole document first.
    #[arg(long)]
    keep_field: Option<String>,
}

#[derive(Default)]
struct Stats {
    bulk_requests: u64,
    items: u64,
    created: u64,
    rejected: u64,
    lies: u64,
    mapping_errors: u64,
    conflicts: u64,
    gzip_requests: u64,
    last_authorization: Option<String>,
}

struct State {
    args: Args,
    down_until: Option<Instant>,
    reject: (f64, Option<Instant>),
    /// `/_mock/lie`'s mode while one is set.
    lie: Option<String>,
    docs: Vec<Stored>,
    ids: HashSet<(String, String)>,
    next_id: u64,
    seq: u64,
    random: u64,
    stats: Stats,
}

type Shared = Arc<Mutex<State>>;

/// A stored document: index, id, source, and the dynamic templates and ingest pipeline its
/// action named.
struct Stored {
    index: String,
    id: String,
    source: Value,
    templates: Option<Value>,
    pipeline: Option<Value>,
}

/// The value at a dotted `path` in a document, whichever way it is written: as nested objects,
/// dotted keys, or a mix.
fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let obj = v.as_object()?;
    if let Some(found) = obj.get(path) {
        return Some(found);
    }
    path.match_indices('.')
        .find_map(|(i, _)| lookup(obj.get(&path[..i])?, &path[i + 1..]))
}

/// Why Elasticsearch would refuse `index` as an index name, if it would.
fn invalid_index_name(index: &str) -> Option<String> {
    if index.chars().any(char::is_uppercase) {
        return Some(format!("Invalid index name [{index}], must be lowercase"));
    }
    if index.chars().any(|c| {
        matches!(
            c,
            '\\' | '/' | '*' | '?' | '"' | '<' | '>' | '|' | ' ' | ',' | '#'
        )
    }) {
        return Some(format!(
            "Invalid index name [{index}], must not contain the following characters [ , \", *, \\, <, |, ,, >, /, ?]"
        ));
    }
    if index.starts_with(['_', '-', '+']) {
        return Some(format!(
            "Invalid index name [{index}], must not start with '_', '-', or '+'"
        ));
    }
    if index.len() > 255 {
        return Some(format!(
            "Invalid index name [{index}], index name is too long"
        ));
    }
    None
}

/// Why the mappings Elasticsearch would apply refuse `source` in `index`, if they would.
fn mapping_refusal(index: &str, source: &Value) -> Option<String> {
    if index.contains(".otel-")
        && let Some(Value::Array(items)) = source.pointer("/body/structured")
        && !items.iter().all(Value::is_object)
    {
        return Some(
            "[1:1] failed to parse field [body.structured] of type [flattened]: a flattened \
             field takes an object or an array of objects"
                .into(),
        );
    }
    let top = source.as_object()?;
    for key in top.keys() {
        let mut prefix = key.as_str();
        while let Some((head, _)) = prefix.rsplit_once('.') {
            if top.get(head).is_some_and(|v| !v.is_object()) {
                return Some(format!(
                    "can't merge a non object mapping [{head}] with an object mapping [{key}]"
                ));
            }
            prefix = head;
        }
    }
    None
}

/// Whether writing to `index` makes a data stream: Elasticsearch's built-in templates match
/// `logs-*-*`, `metrics-*-*`, `traces-*-*` and `synthetics-*-*`.
fn is_data_stream(index: &str) -> bool {
    let mut parts = index.splitn(3, '-');
    matches!(
        (parts.next(), parts.next(), parts.next()),
        (Some("logs" | "metrics" | "traces" | "synthetics"), Some(d), Some(n)) if !d.is_empty() && !n.is_empty()
    )
}

/// Whether `index` is a time series data stream here: Elasticsearch's built-in `metrics-*-*`
/// templates (the OTel one included) use `index.mode: time_series`.
fn is_time_series(index: &str) -> bool {
    index.starts_with("metrics-")
}

/// The id a time series data stream derives for `source`: a hash of its dimensions and
/// `@timestamp` (Elasticsearch hashes the `_tsid` and the timestamp; any stable function of
/// the same inputs keeps the contract that matters: same series and time, same id).
fn time_series_id(source: &Value) -> String {
    let dims = json!({
        "attributes": source.get("attributes"),
        "resource": source.pointer("/resource/attributes"),
        "scope": source.pointer("/scope/attributes"),
        "unit": source.get("unit"),
        "names": source.get("_metric_names_hash"),
        "data_stream": source.get("data_stream"),
        "@timestamp": source.get("@timestamp"),
    });
    // serde_json's maps are sorted: the text is canonical.
    let text = dims.to_string();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("ts-{h:016x}")
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        // The bound address, for callers that asked for port 0 (tests: no port race).
        let bound = listener
            .local_addr()
            .context("the listener has no address")?;
        println!("listening on {bound}");
        let now = Instant::now();
        let state: Shared = Arc::new(Mutex::new(State {
            down_until: (args.down_seconds > 0)
                .then(|| now + Duration::from_secs(args.down_seconds)),
            reject: (
                args.reject_share,
                (args.reject_seconds > 0).then(|| now + Duration::from_secs(args.reject_seconds)),
            ),
            lie: None,
            args,
            docs: Vec::new(),
            ids: HashSet::new(),
            next_id: 0,
            seq: 0,
            random: 0x9e37_79b9_7f4a_7c15,
            stats: Stats::default(),
        }));
        let (_trigger, shutdown) = sluice::shutdown::channel();
        sluice::server::serve(
            listener,
            shutdown,
            // Benchmarks open many connections; the control listeners' small limit is not
            // meant for a stand-in for Elasticsearch.
            sluice::server::Options {
                max_connections: 4096,
                ..Default::default()
            },
            move || {
                let state = Arc::clone(&state);
                move |req| handle(req, Arc::clone(&state))
            },
        )
        .await;
        Ok(())
    })
}

fn answer(status: u16, body: Value) -> Response<Full<Bytes>> {
    answer_bytes(status, Bytes::from(body.to_string()))
}

fn answer_bytes(status: u16, body: Bytes) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    let h = resp.headers_mut();
    h.insert("content-type", "application/json".parse().expect("static"));
    h.insert(
        "x-elastic-product",
        "Elasticsearch".parse().expect("static"),
    );
    resp
}

/// Elasticsearch's error document: `{"error": {"root_cause": [...], "type", "reason"}, "status"}`.
fn error(status: u16, kind: &str, reason: &str) -> Response<Full<Bytes>> {
    let cause = json!({"type": kind, "reason": reason});
    answer(
        status,
        json!({"error": {"root_cause": [cause], "type": kind, "reason": reason}, "status": status}),
    )
}

fn query(req: &Request<Incoming>, key: &str) -> Option<String> {
    req.uri().query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| v.to_string())
    })
}

async fn handle(req: Request<Incoming>, state: Shared) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    {
        let mut s = state.lock().expect("not poisoned");
        let auth = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        if !path.starts_with("/_mock/") {
            if let Some(want) = &s.args.require_auth
                && auth.as_deref() != Some(want.as_str())
            {
                return error(
                    401,
                    "security_exception",
                    "missing authentication credentials",
                );
            }
            s.stats.last_authorization = auth;
        }
    }
    match (method.as_str(), path.as_str()) {
        ("GET", "/") => answer(
            200,
            json!({
                "name": "sluice-es-mock",
                "cluster_name": "mock",
                "cluster_uuid": "mock",
                "version": {"number": "8.15.0", "build_flavor": "default",
                            "lucene_version": "9.11.1", "minimum_wire_compatibility_version": "7.17.0",
                            "minimum_index_compatibility_version": "7.0.0"},
                "tagline": "You Know, for Search"
            }),
        ),
        ("GET", "/_mock/docs") => {
            let s = state.lock().expect("not poisoned");
            let mut out = String::new();
            // `?field=PATH`: only that field's value, one line per document (strings bare).
            if let Some(path) = query(&req, "field") {
                for d in &s.docs {
                    match lookup(&d.source, &path) {
                        Some(Value::String(text)) => out.push_str(text),
                        Some(other) => out.push_str(&other.to_string()),
                        None => {}
                    }
                    out.push('\n');
                }
                let mut resp = answer(200, Value::Null);
                *resp.body_mut() = Full::new(Bytes::from(out));
                return resp;
            }
            for d in &s.docs {
                let mut line = json!({"_index": d.index, "_id": d.id, "_source": d.source});
                if let Some(t) = &d.templates {
                    line["dynamic_templates"] = t.clone();
                }
                if let Some(p) = &d.pipeline {
                    line["pipeline"] = p.clone();
                }
                out.push_str(&line.to_string());
                out.push('\n');
            }
            let mut resp = answer(200, Value::Null);
            *resp.body_mut() = Full::new(Bytes::from(out));
            resp
        }
        ("GET", "/_mock/stats") => {
            let s = state.lock().expect("not poisoned");
            let st = &s.stats;
            answer(
                200,
                json!({"bulk_requests": st.bulk_requests, "items": st.items, "created": st.created,
                       "rejected": st.rejected, "lies": st.lies, "mapping_errors": st.mapping_errors,
                       "conflicts": st.conflicts, "gzip_requests": st.gzip_requests,
                       "docs": s.docs.len(), "last_authorization": st.last_authorization}),
            )
        }
        ("POST", "/_mock/down") => {
            let secs: u64 = query(&req, "seconds")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            state.lock().expect("not poisoned").down_until =
                Some(Instant::now() + Duration::from_secs(secs));
            answer(200, json!({"acknowledged": true}))
        }
        ("POST", "/_mock/reject") => {
            let share: f64 = query(&req, "share")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0);
            let secs: u64 = query(&req, "seconds")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            state.lock().expect("not poisoned").reject = (
                share,
                (secs > 0).then(|| Instant::now() + Duration::from_secs(secs)),
            );
            answer(200, json!({"acknowledged": true}))
        }
        ("POST", "/_mock/lie") => {
            let mode = query(&req, "mode").filter(|m| m != "none");
            state.lock().expect("not poisoned").lie = mode;
            answer(200, json!({"acknowledged": true}))
        }
        ("POST" | "PUT", p) if p == "/_bulk" || p.ends_with("/_bulk") => {
            let default_index = p
                .strip_suffix("/_bulk")
                .and_then(|i| i.strip_prefix('/'))
                .filter(|i| !i.is_empty())
                .map(str::to_string);
            bulk(req, state, default_index).await
        }
        _ => error(
            404,
            "resource_not_found_exception",
            "no handler for this path",
        ),
    }
}

/// `--discard`: every other line is an action; all are answered `created`.
fn discard(body: &[u8], gzip: bool, state: &Shared, started: Instant) -> Response<Full<Bytes>> {
    let lines = body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .count();
    let items = lines / 2;
    let mut out = Vec::with_capacity(32 + items * 32);
    let took = started.elapsed().as_millis();
    out.extend_from_slice(format!("{{\"took\":{took},\"errors\":false,\"items\":[").as_bytes());
    for i in 0..items {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"create\":{\"status\":201,\"result\":\"created\"}}");
    }
    out.extend_from_slice(b"]}");
    let mut s = state.lock().expect("not poisoned");
    s.stats.bulk_requests += 1;
    s.stats.gzip_requests += u64::from(gzip);
    s.stats.items += items as u64;
    s.stats.created += items as u64;
    drop(s);
    answer_bytes(200, Bytes::from(out))
}

async fn bulk(
    req: Request<Incoming>,
    state: Shared,
    default_index: Option<String>,
) -> Response<Full<Bytes>> {
    let (max, latency, down) = {
        let s = state.lock().expect("not poisoned");
        (
            s.args.max_content_length,
            s.args.latency_ms,
            s.down_until.is_some_and(|t| Instant::now() < t),
        )
    };
    if down {
        return error(503, "unavailable_shards_exception", "the mock is down");
    }
    let require_data_stream = query(&req, "require_data_stream").as_deref() == Some("true");
    let gzip = req
        .headers()
        .get("content-encoding")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    let declared = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > max) {
        return error(
            413,
            "content_too_long_exception",
            "request body is too large",
        );
    }
    let Ok(raw) = req.into_body().collect().await.map(|b| b.to_bytes()) else {
        return error(400, "parse_exception", "could not read the request body");
    };
    let body = if gzip {
        let mut out = Vec::new();
        if flate2::read::MultiGzDecoder::new(&raw[..])
            .take(max as u64 + 1)
            .read_to_end(&mut out)
            .is_err()
        {
            return error(400, "parse_exception", "the body is not valid gzip");
        }
        out
    } else {
        raw.to_vec()
    };
    if body.len() > max {
        return error(
            413,
            "content_too_long_exception",
            "request body is too large",
        );
    }
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let started = Instant::now();
    if state.lock().expect("not poisoned").args.discard {
        return discard(&body, gzip, &state, started);
    }
    let mut lines = body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate();
    let mut items = Vec::new();
    let mut errors = false;
    let mut s = state.lock().expect("not poisoned");
    s.stats.bulk_requests += 1;
    if gzip {
        s.stats.gzip_requests += 1;
    }
    while let Some((n, line)) = lines.next() {
        let Ok(Value::Object(action)) = serde_json::from_slice::<Value>(line) else {
            return error(
                400,
                "illegal_argument_exception",
                &format!(
                    "Malformed action/metadata line [{}], expected START_OBJECT",
                    n + 1
                ),
            );
        };
        let Some((op, meta)) = action.iter().next() else {
            return error(400, "illegal_argument_exception", "an empty action line");
        };
        let op = op.clone();
        if !matches!(op.as_str(), "create" | "index") {
            return error(
                400,
                "illegal_argument_exception",
                &format!("unsupported action [{op}]"),
            );
        }
        let Some((_, source_line)) = lines.next() else {
            return error(
                400,
                "illegal_argument_exception",
                "the bulk request must be terminated by a newline [\\n]",
            );
        };
        let index = meta
            .get("_index")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| default_index.clone());
        let Some(index) = index else {
            return error(
                400,
                "action_request_validation_exception",
                "Validation Failed: 1: index is missing;",
            );
        };
        s.stats.items += 1;
        let time_series = is_time_series(&index);
        let given = meta.get("_id").and_then(Value::as_str).map(str::to_string);
        let id = match &given {
            Some(id) => id.clone(),
            None if time_series => String::new(), // derived from the source, below
            None => {
                s.next_id += 1;
                format!("mock-{}", s.next_id)
            }
        };
        let templates = meta.get("dynamic_templates").cloned();
        let pipeline = meta.get("pipeline").cloned();
        let mut id = id;
        if time_series {
            if let Some(given) = &given {
                s.stats.mapping_errors += 1;
                errors = true;
                let reason = format!(
                    "_id must be unset or set to [{}] but was [{given}] because [{index}] is in \
                     time_series mode",
                    serde_json::from_slice::<Value>(source_line)
                        .map(|v| time_series_id(&v))
                        .unwrap_or_default()
                );
                let item = json!({ op.clone(): {"_index": index, "_id": given, "status": 400,
                    "error": {"type": "illegal_argument_exception", "reason": reason}}});
                items.push(item);
                continue;
            }
            if let Ok(v) = serde_json::from_slice::<Value>(source_line) {
                id = time_series_id(&v);
            }
        }
        let item = |status: u16, extra: Value| {
            let mut o = json!({"_index": index, "_id": id, "status": status});
            if let (Value::Object(o), Value::Object(extra)) = (&mut o, extra) {
                o.extend(extra);
            }
            json!({ op.clone(): o })
        };
        let rejecting = s.reject.0 > 0.0 && s.reject.1.is_none_or(|t| Instant::now() < t);
        s.random ^= s.random << 13;
        s.random ^= s.random >> 7;
        s.random ^= s.random << 17;
        let draw = (s.random >> 11) as f64 / (1u64 << 53) as f64;
        if rejecting && draw < s.reject.0 {
            s.stats.rejected += 1;
            errors = true;
            items.push(item(429, json!({"error": {"type": "es_rejected_execution_exception",
                "reason": "rejected execution of coordinating operation [coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, coordinating_operation_bytes=0, max_coordinating_and_primary_bytes=0]"}})));
            continue;
        }
        let Ok(source) = serde_json::from_slice::<Value>(source_line) else {
            s.stats.mapping_errors += 1;
            errors = true;
            items.push(item(400, json!({"error": {"type": "document_parsing_exception",
                "reason": format!("[1:1] failed to parse: the document of id '{id}' is not JSON")}})));
            continue;
        };
        let bad_field = s
            .args
            .long_field
            .iter()
            .find(|f| {
                source
                    .get(f.as_str())
                    .or_else(|| source.pointer(&format!("/{}", f.replace('.', "/"))))
                    .is_some_and(|v| {
                        !(v.is_number() || v.as_str().is_some_and(|t| t.parse::<i64>().is_ok()))
                    })
            })
            .cloned();
        if require_data_stream && !is_data_stream(&index) {
            s.stats.mapping_errors += 1;
            errors = true;
            let reason = format!(
                "[require_data_stream] request flag is [true] and [{index}] is not a data stream"
            );
            items.push(item(
                400,
                json!({"error": {"type": "illegal_argument_exception", "reason": reason}}),
            ));
            continue;
        }
        if let Some(reason) = invalid_index_name(&index) {
            s.stats.mapping_errors += 1;
            errors = true;
            items.push(item(
                400,
                json!({"error": {"type": "invalid_index_name_exception", "reason": reason}}),
            ));
            continue;
        }
        if let Some(reason) = mapping_refusal(&index, &source) {
            s.stats.mapping_errors += 1;
            errors = true;
            items.push(item(
                400,
                json!({"error": {"type": "document_parsing_exception", "reason": reason}}),
            ));
            continue;
        }
        if let Some(field) = bad_field {
            s.stats.mapping_errors += 1;
            errors = true;
            let reason = format!(
                "[1:2] failed to parse field [{field}] of type [long] in document with id '{id}'."
            );
            items.push(item(
                400,
                json!({"error": {"type": "document_parsing_exception", "reason": reason}}),
            ));
            continue;
        }
        if (op == "create" || time_series) && s.ids.contains(&(index.clone(), id.clone())) {
            s.stats.conflicts += 1;
            errors = true;
            let reason =
                format!("[{id}]: version conflict, document already exists (current version [1])");
            items.push(item(
                409,
                json!({"error": {"type": "version_conflict_engine_exception", "reason": reason}}),
            ));
            continue;
        }
        s.ids.insert((index.clone(), id.clone()));
        let source = match &s.args.keep_field {
            Some(path) => json!({ path.as_str(): lookup(&source, path).cloned() }),
            None => source,
        };
        s.docs.push(Stored {
            index: index.clone(),
            id: id.clone(),
            source,
            templates,
            pipeline,
        });
        s.stats.created += 1;
        s.seq += 1;
        let seq = s.seq;
        items.push(item(201, json!({"_version": 1, "result": "created",
            "_shards": {"total": 2, "successful": 1, "failed": 0}, "_seq_no": seq, "_primary_term": 1})));
    }
    let lie = s.lie.clone();
    if lie.is_some() {
        s.stats.lies += 1;
    }
    drop(s);
    let took = started.elapsed().as_millis() as u64;
    match lie.as_deref() {
        Some("short") => {
            items.pop();
            answer(200, json!({"took": took, "errors": false, "items": items}))
        }
        Some("empty") => answer(200, json!({"took": took, "errors": false, "items": []})),
        Some("cut") => answer_bytes(
            200,
            Bytes::from(format!("{{\"took\":{took},\"errors\":false,\u{0}garbage")),
        ),
        Some("huge") => {
            let mut body = json!({"took": took, "errors": errors, "items": items}).to_string();
            body.insert_str(body.len() - 1, &" ".repeat(8 << 20));
            answer_bytes(200, Bytes::from(body))
        }
        _ => answer(200, json!({"took": took, "errors": errors, "items": items})),
    }
}
