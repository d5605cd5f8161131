//! Log records to `_bulk` NDJSON: one `create` action line and one document line per record,
//! in one of three document shapes (`mapping.mode`):
//!
//! - `otel` (default): the layout of Elasticsearch's `logs-*.otel-*` templates (8.12+), as the
//!   OTel Collector writes it: `@timestamp`, `observed_timestamp`, `severity_text`,
//!   `severity_number`, `body.text` or `body.structured`, `attributes`,
//!   `resource.attributes`, `scope`, `trace_id`, `span_id`, `data_stream`; the dataset gets
//!   the `.otel` suffix.
//! - `ecs`: Elastic Common Schema names, mapped as the Collector maps them (`ecs`).
//! - `raw`: `@timestamp`, the body as `message`, record then resource attributes at the top
//!   level under their own names.
//!
//! Data streams take `create` actions only, so every action is `create`; with `with_ids` each
//! carries an `_id` assigned here. Documents are written
//! straight into the request buffer; the action line is rebuilt only when the index changes.

use crate::codec::{rfc3339, write_json_map, write_json_str, write_json_value};
use crate::model::{KeyValue, LogBatch, LogRecord, Origin, Signal, Value};

use super::dead_letter::Why;
use super::geo;
use super::origin::close_object;
use super::routing::{self, DataStream};
use super::wire_json::{write_count_field, write_id, write_str_field};

/// `mapping.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Otel,
    Ecs,
    Raw,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Otel => "otel",
            Mode::Ecs => "ecs",
            Mode::Raw => "raw",
        }
    }
}

/// Appends bulk items; keeps the last action line per signal, since consecutive records
/// nearly always share an index.
pub struct BulkEncoder {
    pub(super) mode: Mode,
    /// `,"pipeline":"<name>"` for the configured ingest pipeline, or nothing.
    pub(super) pipeline: Vec<u8>,
    pub(super) logs: Actions,
    pub(super) traces: Actions,
    pub(super) metrics: Actions,
    pub(super) ids: Option<Ids>,
    /// `logs_dynamic_id` / `logs_dynamic_pipeline`: a log record's `elasticsearch.document_id`
    /// / `elasticsearch.ingest_pipeline` attribute names its `_id` / pipeline.
    dynamic: Dynamic,
    ecs: super::ecs::Scratch,
    /// The resources and scopes of the batch being encoded (`otel` mode), each rendered once.
    shared_json: Vec<u8>,
}

/// Which per-record attributes may steer a log record's action (the Collector's
/// `logs_dynamic_id` and `logs_dynamic_pipeline`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Dynamic {
    pub id: bool,
    pub pipeline: bool,
}

/// The action lines of one signal: its static index if configured, else the data stream the
/// routing attributes name, cached for the last attribute values seen.
pub(super) struct Actions {
    /// `logs`, `traces` or `metrics`: the data stream type.
    kind: &'static str,
    /// `logs_index` / `traces_index` / `metrics_index`.
    index: Option<String>,
    /// The attribute values (dataset, namespace, index) the cached stream and line are for.
    last_parts: Option<(Option<String>, Option<String>, Option<String>)>,
    /// The cached line names an index from an `elasticsearch.index` attribute.
    named: bool,
    pub(super) stream: DataStream,
    /// The action line up to where `pipeline`, `_id` or `dynamic_templates` go:
    /// `{"create":{"_index":"..."`.
    pub(super) line: Vec<u8>,
}

impl Actions {
    fn new(kind: &'static str, index: Option<String>) -> Self {
        Actions {
            kind,
            index,
            last_parts: None,
            named: false,
            stream: DataStream::from_parts((None, None), ""),
            line: Vec::new(),
        }
    }

    /// Makes the cached line the one for the stream `parts` name.
    pub(super) fn select(&mut self, parts: routing::Parts<'_>, mode: Mode) {
        let same = self.last_parts.as_ref().is_some_and(|(d, n, i)| {
            d.as_deref() == parts.0 && n.as_deref() == parts.1 && i.as_deref() == parts.2
        });
        if same {
            return;
        }
        let suffix = if mode == Mode::Otel { ".otel" } else { "" };
        self.stream = DataStream::from_parts((parts.0, parts.1), suffix);
        let owned = |p: Option<&str>| p.map(str::to_string);
        self.last_parts = Some((owned(parts.0), owned(parts.1), owned(parts.2)));
        self.named = parts.2.is_some();
        self.line.clear();
        self.line.extend_from_slice(b"{\"create\":{\"_index\":");
        match (parts.2, &self.index) {
            (Some(index), _) => write_json_str(&mut self.line, index.as_bytes()),
            (None, Some(index)) => write_json_str(&mut self.line, index.as_bytes()),
            (None, None) => {
                write_json_str(&mut self.line, self.stream.index_of(self.kind).as_bytes())
            }
        }
    }

    /// Whether documents go to a data stream (and so carry `data_stream` fields).
    pub(super) fn is_stream(&self) -> bool {
        self.index.is_none() && !self.named
    }
}

/// Document ids assigned by the exporter: a random per-instance prefix and a counter, 22
/// characters of the URL-safe base64 alphabet (the length of Elasticsearch's own ids). A
/// retried item carries the id of its first attempt, so an attempt whose answer was lost but
/// which did index the document is answered 409 on `create`, and the document is not stored
/// twice.
pub(super) struct Ids {
    /// The prefix's 11 characters, written once.
    prefix: [u8; 11],
    next: u64,
}

const ID_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// 64 bits as 11 base64 digits (66 bits), most significant first.
fn id_digits(mut v: u64) -> [u8; 11] {
    let mut out = [0u8; 11];
    for slot in out.iter_mut().rev() {
        *slot = ID_ALPHABET[(v & 63) as usize];
        v >>= 6;
    }
    out
}

impl Ids {
    pub(super) fn write(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(b",\"_id\":\"");
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(&id_digits(self.next));
        out.push(b'"');
        self.next = self.next.wrapping_add(1);
    }
}

/// What encoding produced, item by item: the items to send (in the request body, each with
/// its number) and those refused before sending, and for every item the signal and how many
/// spans, data points or log records it delivers once settled.
#[derive(Default)]
pub struct Items {
    /// Where each item to send ends in the request body.
    pub ends: Vec<usize>,
    /// Each item to send's number among all items.
    pub numbers: Vec<usize>,
    /// Per item, by number.
    pub units: Vec<(Signal, u32)>,
    pub refused: Vec<Refused>,
}

/// An item that cannot be indexed as encoded (a metric name twice in one document): never
/// sent, it goes to the dead letter like an item Elasticsearch refused.
pub struct Refused {
    pub item: usize,
    /// Its action and document lines, for the dead letter.
    pub bytes: Vec<u8>,
    pub why: Why,
}

impl Items {
    /// All items so far.
    pub fn len(&self) -> usize {
        self.units.len()
    }

    pub fn is_empty(&self) -> bool {
        self.units.is_empty()
    }

    /// An item to send, ending at `end` in the body.
    pub fn sent(&mut self, end: usize, signal: Signal, units: u32) {
        self.ends.push(end);
        self.numbers.push(self.units.len());
        self.units.push((signal, units));
    }

    pub fn refuse(&mut self, bytes: Vec<u8>, why: Why, signal: Signal, units: u32) {
        self.refused.push(Refused {
            item: self.units.len(),
            bytes,
            why,
        });
        self.units.push((signal, units));
    }

    /// Drops the items from number `items` and body position `end` on: what an entry that
    /// turned out malformed had written.
    pub fn truncate(&mut self, items: usize) {
        self.units.truncate(items);
        let keep = self.numbers.iter().take_while(|n| **n < items).count();
        self.numbers.truncate(keep);
        self.ends.truncate(keep);
        self.refused.retain(|r| r.item < items);
    }
}

/// The static indices configured instead of data streams, per signal.
#[derive(Debug, Clone, Default)]
pub struct StaticIndices {
    pub logs: Option<String>,
    pub traces: Option<String>,
    pub metrics: Option<String>,
}

impl BulkEncoder {
    /// An encoder writing logs to `index` (else data streams); see [`BulkEncoder::with_indices`].
    pub fn new(mode: Mode, index: Option<String>, pipeline: Option<String>) -> Self {
        Self::with_indices(
            mode,
            StaticIndices {
                logs: index,
                ..StaticIndices::default()
            },
            pipeline,
        )
    }

    pub fn with_indices(mode: Mode, indices: StaticIndices, pipeline: Option<String>) -> Self {
        let mut field = Vec::new();
        if let Some(p) = pipeline {
            field.extend_from_slice(b",\"pipeline\":");
            write_json_str(&mut field, p.as_bytes());
        }
        BulkEncoder {
            mode,
            pipeline: field,
            logs: Actions::new("logs", indices.logs),
            traces: Actions::new("traces", indices.traces),
            metrics: Actions::new("metrics", indices.metrics),
            ids: None,
            dynamic: Dynamic::default(),
            ecs: super::ecs::Scratch::default(),
            shared_json: Vec::new(),
        }
    }

    /// Lets log records name their own `_id` and ingest pipeline by attribute.
    pub fn with_dynamic(mut self, dynamic: Dynamic) -> Self {
        self.dynamic = dynamic;
        self
    }

    /// Gives every document an `_id`: `prefix` (random, per exporter instance) and a counter.
    /// Metric documents go to time series data streams, where Elasticsearch derives the id
    /// from the dimensions and the timestamp and refuses one from the client: they get none.
    pub fn with_ids(mut self, prefix: u64) -> Self {
        self.ids = Some(Ids {
            prefix: id_digits(prefix),
            next: 0,
        });
        self
    }

    /// Appends every record of `batch`, returning where each item (action and document)
    /// ends in `out`, so that failed items can be re-sent alone.
    pub fn encode_batch(&mut self, batch: &LogBatch, out: &mut Vec<u8>) -> Vec<usize> {
        let default = Origin::default();
        // Per origin (the last slot for a record whose origin is missing): what its scope and
        // resource route to and, in `otel` mode, their JSON, found on first use.
        let mut shared: Vec<Option<Shared<'_>>> = vec![None; batch.origins.len() + 1];
        self.shared_json.clear();
        let mut ends = Vec::with_capacity(batch.records.len());
        for r in &batch.records {
            let slot = (r.origin as usize).min(batch.origins.len());
            let origin = batch.origins.get(slot).unwrap_or(&default);
            let sh = match &shared[slot] {
                Some(sh) => sh.clone(),
                None => {
                    let sh = self.share(origin);
                    shared[slot] = Some(sh.clone());
                    sh
                }
            };
            self.encode(r, origin, &sh, out);
            ends.push(out.len());
        }
        ends
    }

    /// What every record of `origin` shares.
    fn share<'a>(&mut self, origin: &'a Origin) -> Shared<'a> {
        let find = |key: &str| {
            routing::string_attr(&origin.scope_attributes, key)
                .or_else(|| routing::string_attr(&origin.resource, key))
        };
        let start = self.shared_json.len();
        if self.mode == Mode::Otel {
            // Resource and scope as the Collector writes them (and as `spans` and `metrics` do).
            let resource = Member {
                schema_url: &origin.resource_schema_url,
                name: None,
                attributes: &origin.resource,
                dropped: origin.resource_dropped_attributes_count,
            };
            resource.write(&mut self.shared_json, b",\"resource\":");
            let scope = Member {
                schema_url: &origin.scope_schema_url,
                name: Some((&origin.scope_name, &origin.scope_version)),
                attributes: &origin.scope_attributes,
                dropped: origin.scope_dropped_attributes_count,
            };
            scope.write(&mut self.shared_json, b",\"scope\":");
        }
        Shared {
            receiver: routing::receiver_dataset(&origin.scope_name),
            parts: (
                find(routing::DATASET),
                find(routing::NAMESPACE),
                find(routing::INDEX),
            ),
            json: start..self.shared_json.len(),
        }
    }

    /// Appends one item: the action line and the document line.
    fn encode(&mut self, r: &LogRecord, origin: &Origin, sh: &Shared<'_>, out: &mut Vec<u8>) {
        let found = Steering::scan(&r.attributes);
        let parts = (
            sh.receiver.or(found.dataset).or(sh.parts.0),
            found.namespace.or(sh.parts.1),
            found.index.or(sh.parts.2),
        );
        self.log_action(parts, &found, out);
        // A static or named index is not a data stream: no `data_stream` fields, as the
        // Collector writes them only for a data stream.
        let stream = self.logs.is_stream().then_some(&self.logs.stream);
        match self.mode {
            Mode::Otel => otel(r, &found, &self.shared_json[sh.json.clone()], stream, out),
            Mode::Ecs => super::ecs::document(r, origin, stream, &mut self.ecs, out),
            Mode::Raw => raw(r, origin, out),
        }
        out.push(b'\n');
    }

    /// Appends a log record's action line, for the index `parts` name, with the `_id` and
    /// pipeline its attributes give (`found`) where the configuration lets them.
    pub(super) fn log_action(
        &mut self,
        parts: routing::Parts<'_>,
        found: &Steering<'_>,
        out: &mut Vec<u8>,
    ) {
        self.logs.select(parts, self.mode);
        out.extend_from_slice(&self.logs.line);
        match found.pipeline.filter(|_| self.dynamic.pipeline) {
            Some(p) => {
                out.extend_from_slice(b",\"pipeline\":");
                write_json_str(out, p.as_bytes());
            }
            None => out.extend_from_slice(&self.pipeline),
        }
        match (found.document_id.filter(|_| self.dynamic.id), &mut self.ids) {
            (Some(id), _) => {
                out.extend_from_slice(b",\"_id\":");
                write_json_str(out, id.as_bytes());
            }
            (None, Some(ids)) => ids.write(out),
            (None, None) => {}
        }
        out.extend_from_slice(b"}}\n");
    }
}

/// What the records of one origin share: the routing values of its scope and resource, and
/// (in `otel` mode) where its `,"resource":{...},"scope":{...}` JSON is.
#[derive(Clone)]
struct Shared<'a> {
    /// The dataset a receiver's scope name gives, ahead of every attribute.
    receiver: Option<&'a str>,
    parts: routing::Parts<'a>,
    json: std::ops::Range<usize>,
}

/// What one pass over a log record's attributes finds: the values that steer the exporter,
/// the `event.name` attribute, and whether the attributes must be filtered when written.
#[derive(Default)]
pub(super) struct Steering<'a> {
    pub(super) dataset: Option<&'a str>,
    pub(super) namespace: Option<&'a str>,
    pub(super) index: Option<&'a str>,
    document_id: Option<&'a str>,
    pipeline: Option<&'a str>,
    pub(super) event_name: Option<&'a str>,
    /// A routing attribute or a geo coordinate is among them.
    special: bool,
}

impl<'a> Steering<'a> {
    fn scan(attrs: &'a [KeyValue]) -> Self {
        let mut s = Steering::default();
        for (k, v) in attrs {
            let key = k.as_str();
            let coordinate = || matches!(v, Value::Double(_)) && geo::coordinate(key).is_some();
            if !Self::may_steer(key.as_bytes()) {
                s.special |= coordinate();
                continue;
            }
            let text = match v {
                Value::Str(t) if !t.is_empty() => Some(t.as_str()),
                _ => None,
            };
            if !s.take(key, text) {
                s.special |= is_routing(key) || coordinate();
            }
        }
        s
    }

    /// Every name looked for starts with `d` or `e`: most attributes are passed over on their
    /// first byte, before their value is looked at.
    pub(super) fn may_steer(key: &[u8]) -> bool {
        matches!(key.first(), Some(b'd' | b'e'))
    }

    /// Takes the attribute `key` (whose value is `text` when it is a non-empty string) if it
    /// is one that steers; the first non-empty value of each wins. `false` if it is not one.
    pub(super) fn take(&mut self, key: &str, text: Option<&'a str>) -> bool {
        let slot = match key {
            routing::DATASET => &mut self.dataset,
            routing::NAMESPACE => &mut self.namespace,
            routing::INDEX => &mut self.index,
            routing::DOCUMENT_ID => &mut self.document_id,
            routing::PIPELINE => &mut self.pipeline,
            "event.name" => {
                self.event_name = self.event_name.or(text);
                return true;
            }
            _ => return false,
        };
        self.special = true;
        if slot.is_none() {
            *slot = text;
        }
        true
    }
}

fn timestamp(out: &mut Vec<u8>, name: &[u8], nanos: u64) {
    out.extend_from_slice(name);
    out.extend_from_slice(b":\"");
    out.extend_from_slice(&rfc3339(nanos));
    out.push(b'"');
}

/// Data streams require `@timestamp`: the record's time, else when it was observed (as the
/// Collector does; 1970 when neither is set).
fn at_timestamp(out: &mut Vec<u8>, r: &LogRecord) {
    at_time(out, r.time_unix_nano, r.observed_time_unix_nano);
}

fn at_time(out: &mut Vec<u8>, time: u64, observed: u64) {
    let t = if time != 0 { time } else { observed };
    timestamp(out, b"\"@timestamp\"", t);
}

fn data_stream(out: &mut Vec<u8>, s: Option<&DataStream>, dotted: bool) {
    let Some(s) = s else {
        return;
    };
    if dotted {
        out.extend_from_slice(b",\"data_stream.type\":\"logs\",\"data_stream.dataset\":");
        write_json_str(out, s.dataset.as_bytes());
        out.extend_from_slice(b",\"data_stream.namespace\":");
    } else {
        out.extend_from_slice(b",\"data_stream\":{\"type\":\"logs\",\"dataset\":");
        write_json_str(out, s.dataset.as_bytes());
        out.extend_from_slice(b",\"namespace\":");
    }
    write_json_str(out, s.namespace.as_bytes());
    if !dotted {
        out.push(b'}');
    }
}

fn is_routing(key: &str) -> bool {
    super::origin::is_routing(key.as_bytes())
}

/// Whether writing `kvs` must take routing attributes out or merge geo coordinates.
fn has_special<'a>(kvs: impl IntoIterator<Item = &'a KeyValue>) -> bool {
    kvs.into_iter().any(|(k, v)| {
        is_routing(k.as_str())
            || (matches!(v, Value::Double(_)) && geo::coordinate(k.as_str()).is_some())
    })
}

/// Attributes as a JSON object, without the data stream ones (they are top-level fields), geo
/// coordinates merged into points (`geo`). `special`: what [`has_special`] says of `kvs`.
fn attributes<'a, I>(out: &mut Vec<u8>, kvs: I, special: bool)
where
    I: IntoIterator<Item = &'a KeyValue> + Copy,
{
    if !special {
        write_json_map(out, kvs);
        return;
    }
    out.push(b'{');
    let mut first = true;
    let mut points = geo::Points::default();
    for (k, v) in kvs.into_iter().filter(|(k, _)| !is_routing(k.as_str())) {
        let double = match v {
            Value::Double(d) => Some(*d),
            _ => None,
        };
        if points.take(k.as_str(), double) {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        write_json_str(out, k.as_bytes());
        out.push(b':');
        write_json_value(out, v);
    }
    points.write(out, first);
    out.push(b'}');
}

/// `shared`: the record's resource and scope, rendered once for its batch.
fn otel(
    r: &LogRecord,
    found: &Steering<'_>,
    shared: &[u8],
    stream: Option<&DataStream>,
    out: &mut Vec<u8>,
) {
    let head = Head {
        time: r.time_unix_nano,
        observed: r.observed_time_unix_nano,
        severity_text: r.severity_text.as_bytes(),
        severity_number: r.severity_number,
        event_name: r.event_name.as_bytes(),
    };
    head.write(out, found, stream);
    match &r.body {
        Value::Empty => {}
        // `body.structured` is a `flattened` field: it takes an object or an array of objects;
        // any other array is wrapped, as the Collector does.
        Value::Array(items) if !items.iter().all(|i| matches!(i, Value::Map(_))) => {
            out.extend_from_slice(b",\"body\":{\"structured\":{\"value\":");
            write_json_value(out, &r.body);
            out.extend_from_slice(b"}}");
        }
        v @ (Value::Map(_) | Value::Array(_)) => {
            out.extend_from_slice(b",\"body\":{\"structured\":");
            write_json_value(out, v);
            out.push(b'}');
        }
        v => {
            out.extend_from_slice(b",\"body\":{\"text\":");
            write_json_value(out, v);
            out.push(b'}');
        }
    }
    if !r.attributes.is_empty() {
        out.extend_from_slice(b",\"attributes\":");
        attributes(out, &r.attributes, found.special);
    }
    let dropped = u64::from(r.dropped_attributes_count);
    tail(out, dropped, shared, &r.trace_id, &r.span_id);
}

/// What an `otel` log document starts with, from a decoded record or an encoded one.
pub(super) struct Head<'a> {
    pub time: u64,
    pub observed: u64,
    pub severity_text: &'a [u8],
    pub severity_number: u8,
    pub event_name: &'a [u8],
}

impl Head<'_> {
    /// From the opening brace to the event name.
    pub(super) fn write(
        &self,
        out: &mut Vec<u8>,
        found: &Steering<'_>,
        stream: Option<&DataStream>,
    ) {
        out.push(b'{');
        at_time(out, self.time, self.observed);
        if self.observed != 0 {
            out.push(b',');
            timestamp(out, b"\"observed_timestamp\"", self.observed);
        }
        data_stream(out, stream, false);
        if !self.severity_text.is_empty() {
            out.extend_from_slice(b",\"severity_text\":");
            write_json_str(out, self.severity_text);
        }
        if self.severity_number != 0 {
            out.extend_from_slice(b",\"severity_number\":");
            out.extend_from_slice(itoa::Buffer::new().format(self.severity_number).as_bytes());
        }
        // The OTLP field, else the `event.name` attribute (semantic conventions before the
        // field).
        let event_name = if self.event_name.is_empty() {
            found.event_name.unwrap_or_default().as_bytes()
        } else {
            self.event_name
        };
        if !event_name.is_empty() {
            out.extend_from_slice(b",\"event_name\":");
            write_json_str(out, event_name);
        }
    }
}

/// An `otel` log document's end: the dropped count, its resource and scope (`shared`), its
/// ids (left out when empty or zero) and the closing brace.
pub(super) fn tail(
    out: &mut Vec<u8>,
    dropped: u64,
    shared: &[u8],
    trace_id: &[u8],
    span_id: &[u8],
) {
    write_count_field(out, b"\"dropped_attributes_count\"", dropped);
    out.extend_from_slice(shared);
    write_id(out, b"\"trace_id\"", trace_id);
    write_id(out, b"\"span_id\"", span_id);
    out.push(b'}');
}

/// A log record's resource or scope, as an object member.
struct Member<'a> {
    schema_url: &'a crate::model::Str,
    /// The scope's name and version.
    name: Option<(&'a crate::model::Str, &'a crate::model::Str)>,
    attributes: &'a crate::model::Attrs,
    dropped: u32,
}

impl Member<'_> {
    /// `key` is `,"resource":` or `,"scope":`.
    fn write(&self, out: &mut Vec<u8>, key: &[u8]) {
        out.extend_from_slice(key);
        let open = out.len();
        write_str_field(out, b"\"schema_url\"", self.schema_url.as_bytes());
        if let Some((name, version)) = self.name {
            write_str_field(out, b"\"name\"", name.as_bytes());
            write_str_field(out, b"\"version\"", version.as_bytes());
        }
        if !self.attributes.is_empty() {
            out.extend_from_slice(b",\"attributes\":");
            attributes(out, self.attributes, has_special(self.attributes));
        }
        write_count_field(
            out,
            b"\"dropped_attributes_count\"",
            u64::from(self.dropped),
        );
        close_object(out, open);
    }
}

/// Top-level fields of a raw document: each name once, the first writer wins.
struct Fields<'a> {
    out: &'a mut Vec<u8>,
    seen: Vec<&'a str>,
}

impl<'a> Fields<'a> {
    fn put(&mut self, name: &'a str, v: &Value) {
        if is_routing(name) || self.seen.contains(&name) {
            return;
        }
        self.seen.push(name);
        self.out.push(b',');
        write_json_str(self.out, name.as_bytes());
        self.out.push(b':');
        write_json_value(self.out, v);
    }
}

/// `raw`: a text body is the `message`; a map body's fields are top-level fields (a parsed
/// JSON log), since a `message` text field cannot hold an object; then the record's and the
/// resource's attributes under their own names.
fn raw(r: &LogRecord, o: &Origin, out: &mut Vec<u8>) {
    out.push(b'{');
    at_timestamp(out, r);
    let mut f = Fields {
        out,
        seen: Vec::new(),
    };
    match &r.body {
        Value::Empty => {}
        Value::Map(kvs) => {
            for (k, v) in kvs {
                f.put(k.as_str(), v);
            }
        }
        v => f.put("message", v),
    }
    for (k, v) in r.attributes.iter().chain(&o.resource) {
        f.put(k.as_str(), v);
    }
    f.out.push(b'}');
}

#[cfg(test)]
mod tests;
