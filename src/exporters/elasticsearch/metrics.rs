//! Metric data points to `_bulk` items in the `otel` layout of Elasticsearch's
//! `metrics-*.otel-*` template, as the OTel Collector's exporter writes them.
//!
//! Those indices are time series data streams (TSDS): Elasticsearch derives a document's `_id`
//! from its dimensions (attributes, resource and scope attributes, `unit`,
//! `_metric_names_hash`) and `@timestamp`, and refuses a second document with the same id
//! (409 `version_conflict_engine_exception`). So data points are grouped: one document per
//! group of points sharing resource, scope, data stream, timestamp, start timestamp, unit and
//! attributes, each metric's value under `metrics.<name>`:
//!
//! `{"@timestamp": <ms>, "start_timestamp": <ms>, "unit", "data_stream", "attributes",
//! "resource", "scope", "metrics": {"<name>": <value>, ..}, "_doc_count", "_metric_names_hash"}`
//!
//! - sums and gauges are numbers (doubles always with a radix point; NaN and infinities 0);
//! - histograms and exponential histograms are `{"counts": [..], "values": [..]}` (bucket
//!   midpoints, empty buckets left out), Elasticsearch's `histogram` field; a document holding
//!   one histogram alone gets `_doc_count`, its count;
//! - summaries are `{"sum": .., "value_count": ..}`, an `aggregate_metric_double`.
//!
//! The action line names each metric's dynamic template (`counter_double`, `gauge_long`,
//! `histogram`, `summary`, ...) so that Elasticsearch maps it as the right time series metric
//! type, and carries no `_id`: a TSDS refuses one from the client, and derives the same id for a
//! retried document, which is what keeps a retry from storing twice (its 409 counts as done).
//!
//! Groups are formed over a whole batch (so points of one group that arrived in two requests
//! and were batched together still make one document), and a batch is never split inside a
//! scope (`otlp::cut`), so a group never straddles two bulk requests. A metric name that
//! appears twice in one group cannot be stored: the document keeps the first value and each
//! repeat is refused, reported and dead-lettered as a document of its own.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::ops::Range;

use bytes::Bytes;

use super::dead_letter::Why;
use super::mapping::{BulkEncoder, Items};
use super::origin::{Rendered, is_routing, route, walk};
use super::routing::{DATASET, INDEX, NAMESPACE};
use super::spans::data_stream;
use super::wire_json::{
    Kv, push_kv, str_attr, write_f64, write_object, write_str_field, write_u64,
};
use crate::codec::write_json_str;
use crate::model::Signal;
use crate::otlp::raw::RawBatch;
use crate::otlp::wire::{DecodeError, Fields, Wire};

/// A metric's kind, by its `Metric` field number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Gauge,
    Sum { monotonic: bool, cumulative: bool },
    Histogram,
    ExpHistogram,
    Summary,
}

/// One data point, found while grouping.
#[derive(Clone)]
struct Point {
    /// The batch entry whose bytes hold it.
    entry: u32,
    group: u32,
    name: Range<usize>,
    kind: Kind,
    point: Range<usize>,
}

/// A group: one document.
struct Group {
    /// The origin (resource and scope JSON) it is under.
    origin: u32,
    /// The entry of its first point, whose unit the document is written with.
    entry: u32,
    /// Its attributes' JSON object in `MetricScratch::attrs_json` (empty: none).
    attributes: Range<usize>,
    time: u64,
    start: u64,
    unit: Range<usize>,
    /// Routing, copied out of the entry (groups span entries).
    dataset: Option<String>,
    namespace: Option<String>,
    index: Option<String>,
}

/// Scratch state for encoding metrics, kept between batches.
#[derive(Default)]
pub struct MetricScratch {
    resource: Rendered,
    scope: Rendered,
    /// `"resource":{..},"scope":{..}` per distinct origin in the batch.
    origins: Vec<Vec<u8>>,
    origin_ids: HashMap<u64, Vec<u32>>,
    groups: Vec<Group>,
    /// Each group's key bytes, in `keys`: compared on a hash match.
    key_ranges: Vec<Range<usize>>,
    keys: Vec<u8>,
    /// The first group with a key hash; `chain` links the others with the same hash.
    group_ids: HashMap<u64, u32, BuildHasherDefault<Prehashed>>,
    chain: Vec<u32>,
    attrs_json: Vec<u8>,
    points: Vec<Point>,
    ordered: Vec<Point>,
    kvs: Vec<Kv>,
    sorted: Vec<(Range<usize>, Range<usize>)>,
    key: Vec<u8>,
    names: Vec<(usize, usize)>,
    doc_templates: Vec<u8>,
    metrics_json: Vec<u8>,
}

impl MetricScratch {
    fn clear(&mut self) {
        self.origins.clear();
        self.origin_ids.clear();
        self.groups.clear();
        self.key_ranges.clear();
        self.keys.clear();
        self.group_ids.clear();
        self.chain.clear();
        self.attrs_json.clear();
        self.points.clear();
        self.ordered.clear();
    }
}

fn hash(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh64::xxh64(bytes, 0)
}

/// Keys that are already hashes (xxh64) are their own hash in the group table.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are hashed here; fold anything else in rather than panic.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

const NONE: u32 = u32::MAX;

/// What grouping and writing need from a point: attributes, timestamps, flags.
struct PointHead {
    time: u64,
    start: u64,
    flags: u64,
}

/// The attributes field number of each point type.
fn attributes_field(kind: Kind) -> u32 {
    match kind {
        Kind::Gauge | Kind::Sum { .. } | Kind::Summary => 7,
        Kind::Histogram => 9,
        Kind::ExpHistogram => 1,
    }
}

fn flags_field(kind: Kind) -> u32 {
    match kind {
        Kind::Gauge | Kind::Sum { .. } | Kind::Summary => 8,
        Kind::Histogram | Kind::ExpHistogram => 10,
    }
}

fn read_head(
    buf: &[u8],
    p: &Range<usize>,
    kind: Kind,
    kvs: &mut Vec<Kv>,
) -> Result<PointHead, DecodeError> {
    kvs.clear();
    let mut head = PointHead {
        time: 0,
        start: 0,
        flags: 0,
    };
    let (attrs, flags) = (attributes_field(kind), flags_field(kind));
    let mut f = Fields::new(buf, p.start, p.end);
    while let Some((field, wire)) = f.next_field()? {
        match (field, wire) {
            (2, Wire::Fixed64(t)) => head.start = t,
            (3, Wire::Fixed64(t)) => head.time = t,
            (n, Wire::Len(a, b)) if n == attrs => push_kv(buf, a, b, kvs)?,
            (n, Wire::Varint(v)) if n == flags => head.flags = v,
            _ => {}
        }
    }
    Ok(head)
}

impl BulkEncoder {
    /// Appends one document per group of data points in `batch` (see the module docs),
    /// recording each item in `items`.
    pub fn encode_metrics(
        &mut self,
        batch: &RawBatch,
        sc: &mut MetricScratch,
        out: &mut Vec<u8>,
        items: &mut Items,
    ) {
        sc.clear();
        for (n, (entry, points)) in batch.resources.iter().enumerate() {
            if let Err(e) = group_entry(n as u32, entry, sc) {
                // Checked on arrival, so not expected: this resource's points are refused
                // whole, and the groups it started are dropped from its points on.
                let why = Why {
                    status: 0,
                    kind: "malformed_otlp".into(),
                    reason: format!("the data points could not be read: {e}"),
                };
                items.refuse(b"{}\n{}\n".to_vec(), why, Signal::Metrics, *points as u32);
                sc.points.retain(|p| p.entry != n as u32);
            }
        }
        // Points in group order, each group's in arrival order (a counting sort).
        let mut starts = vec![0usize; sc.groups.len() + 1];
        for p in &sc.points {
            starts[p.group as usize + 1] += 1;
        }
        for g in 0..sc.groups.len() {
            starts[g + 1] += starts[g];
        }
        let mut next = starts.clone();
        sc.ordered.clear();
        sc.ordered.resize(
            sc.points.len(),
            Point {
                entry: 0,
                group: 0,
                name: 0..0,
                kind: Kind::Gauge,
                point: 0..0,
            },
        );
        for p in &sc.points {
            let at = &mut next[p.group as usize];
            sc.ordered[*at] = p.clone();
            *at += 1;
        }
        for g in 0..sc.groups.len() {
            let run = starts[g]..starts[g + 1];
            if run.is_empty() {
                continue;
            }
            self.group_document(batch, g, run, sc, out, items);
        }
    }

    fn group_document(
        &mut self,
        batch: &RawBatch,
        g: usize,
        run: Range<usize>,
        sc: &mut MetricScratch,
        out: &mut Vec<u8>,
        items: &mut Items,
    ) {
        let bufs = |entry: u32| -> &[u8] { &batch.resources[entry as usize].0 };
        // Names in order, to find repeats and hash the set.
        sc.names.clear();
        sc.names.extend(run.clone().map(|i| (i, i)));
        {
            let ordered = &sc.ordered;
            sc.names.sort_by(|a, b| {
                let (pa, pb) = (&ordered[a.0], &ordered[b.0]);
                bufs(pa.entry)[pa.name.clone()]
                    .cmp(&bufs(pb.entry)[pb.name.clone()])
                    .then(a.0.cmp(&b.0))
            });
        }
        let mut hasher = xxhash_rust::xxh64::Xxh64::new(0);
        let mut repeats: Vec<usize> = Vec::new();
        let mut last: Option<&[u8]> = None;
        for &(i, _) in &sc.names {
            let p = &sc.ordered[i];
            let name = &bufs(p.entry)[p.name.clone()];
            if last == Some(name) {
                repeats.push(i);
                continue;
            }
            hasher.update(name);
            last = Some(name);
        }
        let names_hash = hasher.digest();

        let group = &sc.groups[g];
        self.metrics.select(
            (
                group.dataset.as_deref(),
                group.namespace.as_deref(),
                group.index.as_deref(),
            ),
            self.mode,
        );
        // The metrics object and the dynamic templates, point by point.
        sc.metrics_json.clear();
        sc.doc_templates.clear();
        let mut stored = 0u32;
        let mut only_histogram_count = None;
        for i in run.clone() {
            if repeats.contains(&i) {
                continue;
            }
            let p = &sc.ordered[i];
            let buf = bufs(p.entry);
            let name = &buf[p.name.clone()];
            let mark = (sc.metrics_json.len(), sc.doc_templates.len());
            if !sc.metrics_json.is_empty() {
                sc.metrics_json.push(b',');
                sc.doc_templates.push(b',');
            }
            write_json_str(&mut sc.metrics_json, name);
            sc.metrics_json.push(b':');
            match write_point_value(&mut sc.metrics_json, buf, p) {
                Ok(Some((template, count))) => {
                    sc.key.clear();
                    sc.key.extend_from_slice(b"metrics.");
                    sc.key.extend_from_slice(name);
                    write_json_str(&mut sc.doc_templates, &sc.key);
                    sc.doc_templates.extend_from_slice(b":\"");
                    sc.doc_templates.extend_from_slice(template);
                    sc.doc_templates.push(b'"');
                    stored += 1;
                    only_histogram_count = if stored == 1 { count } else { None };
                }
                Ok(None) => {
                    // No recorded value (flag set): nothing to store.
                    sc.metrics_json.truncate(mark.0);
                    sc.doc_templates.truncate(mark.1);
                }
                Err(reason) => {
                    sc.metrics_json.truncate(mark.0);
                    sc.doc_templates.truncate(mark.1);
                    let bytes = self.lone_document(batch, g, p, sc);
                    let why = Why {
                        status: 0,
                        kind: "invalid_data_point".into(),
                        reason,
                    };
                    items.refuse(bytes, why, Signal::Metrics, 1);
                }
            }
        }
        if stored > 0 {
            self.write_group(batch, g, sc, names_hash, only_histogram_count, out);
            items.sent(out.len(), Signal::Metrics, stored);
        }
        for i in repeats {
            let p = sc.ordered[i].clone();
            let name = String::from_utf8_lossy(&bufs(p.entry)[p.name.clone()]).into_owned();
            let group = &sc.groups[g];
            let bytes = self.lone_document(batch, g, &p, sc);
            let why = Why {
                status: 0,
                kind: "duplicate_metric_name".into(),
                reason: format!(
                    "metric {name:?} appears twice among the data points of one time series \
                     document (same resource, scope, attributes, unit and timestamp {}); \
                     Elasticsearch stores one value per metric there, the first was kept",
                    group.time
                ),
            };
            items.refuse(bytes, why, Signal::Metrics, 1);
        }
    }

    /// The action line and document for the group `g`, from the metrics and templates in
    /// `sc`.
    fn write_group(
        &mut self,
        batch: &RawBatch,
        g: usize,
        sc: &MetricScratch,
        names_hash: u64,
        doc_count: Option<u64>,
        out: &mut Vec<u8>,
    ) {
        out.extend_from_slice(&self.metrics.line);
        out.extend_from_slice(&self.pipeline);
        out.extend_from_slice(b",\"dynamic_templates\":{");
        out.extend_from_slice(&sc.doc_templates);
        out.extend_from_slice(b"}}}\n");
        let group = &sc.groups[g];
        let buf: &[u8] = &batch.resources[group.entry as usize].0;
        self.document_head(buf, group, sc, out);
        out.extend_from_slice(b",\"metrics\":{");
        out.extend_from_slice(&sc.metrics_json);
        out.push(b'}');
        if let Some(n) = doc_count {
            out.extend_from_slice(b",\"_doc_count\":");
            write_u64(out, n);
        }
        out.extend_from_slice(b",\"_metric_names_hash\":\"");
        let mut digits = [0u8; 16];
        let mut n = names_hash;
        let mut at = digits.len();
        loop {
            at -= 1;
            digits[at] = b"0123456789abcdef"[(n & 15) as usize];
            n >>= 4;
            if n == 0 {
                break;
            }
        }
        out.extend_from_slice(&digits[at..]);
        out.extend_from_slice(b"\"}\n");
    }

    /// `{"@timestamp":..,"start_timestamp":..,"unit":..,"data_stream":..,"attributes":..,
    /// "resource":..,"scope":..` (open: the caller adds the metrics).
    fn document_head(&self, buf: &[u8], group: &Group, sc: &MetricScratch, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"@timestamp\":");
        write_u64(out, group.time / 1_000_000);
        if group.start != 0 {
            out.extend_from_slice(b",\"start_timestamp\":");
            write_u64(out, group.start / 1_000_000);
        }
        write_str_field(out, b"\"unit\"", &buf[group.unit.clone()]);
        if self.metrics.is_stream() {
            let s = &self.metrics.stream;
            data_stream(out, b"metrics", &s.dataset, &s.namespace);
        }
        // Every point in the group has the same attributes: written once, when it formed.
        if !group.attributes.is_empty() {
            out.extend_from_slice(b",\"attributes\":");
            out.extend_from_slice(&sc.attrs_json[group.attributes.clone()]);
        }
        out.push(b',');
        out.extend_from_slice(&sc.origins[group.origin as usize]);
    }

    /// A document holding `p` alone, for the dead letter: what would have been stored.
    fn lone_document(
        &mut self,
        batch: &RawBatch,
        g: usize,
        p: &Point,
        sc: &MetricScratch,
    ) -> Vec<u8> {
        let buf: &[u8] = &batch.resources[p.entry as usize].0;
        let mut out = self.metrics.line.clone();
        out.extend_from_slice(&self.pipeline);
        out.extend_from_slice(b"}}\n");
        let group = &sc.groups[g];
        let head_buf: &[u8] = &batch.resources[group.entry as usize].0;
        self.document_head(head_buf, group, sc, &mut out);
        out.extend_from_slice(b",\"metrics\":{");
        write_json_str(&mut out, &buf[p.name.clone()]);
        out.push(b':');
        let mark = out.len();
        if !matches!(write_point_value(&mut out, buf, p), Ok(Some(_))) {
            out.truncate(mark);
            out.extend_from_slice(b"null");
        }
        out.extend_from_slice(b"}}\n");
        out
    }
}

/// Finds the groups of every data point in one `ResourceMetrics` entry.
fn group_entry(n: u32, entry: &Bytes, sc: &mut MetricScratch) -> Result<(), DecodeError> {
    let buf: &[u8] = entry;
    let (mut resource, mut scope) = (
        std::mem::take(&mut sc.resource),
        std::mem::take(&mut sc.scope),
    );
    let walked = walk(
        buf,
        true,
        &mut resource,
        &mut scope,
        |resource, scope, metrics| {
            let origin = origin_id(sc, resource, scope);
            // Routing the points' own attributes do not name falls back to these.
            let receiver = std::str::from_utf8(&buf[scope.name.clone()])
                .ok()
                .and_then(super::routing::receiver_dataset);
            let fallback = (
                receiver.or_else(|| route(buf, &[], scope, resource, DATASET)),
                route(buf, &[], scope, resource, NAMESPACE),
                route(buf, &[], scope, resource, INDEX),
            );
            for metric in metrics {
                group_metric(
                    n,
                    buf,
                    metric.clone(),
                    origin,
                    fallback,
                    receiver.is_some(),
                    sc,
                )?;
            }
            Ok(())
        },
    );
    (sc.resource, sc.scope) = (resource, scope);
    walked
}

/// The id of `resource` and `scope` among the batch's distinct origins.
fn origin_id(sc: &mut MetricScratch, resource: &Rendered, scope: &Rendered) -> u32 {
    let mut json = Vec::with_capacity(resource.json.len() + scope.json.len() + 1);
    json.extend_from_slice(&resource.json);
    json.push(b',');
    json.extend_from_slice(&scope.json);
    let h = hash(&json);
    let ids = sc.origin_ids.entry(h).or_default();
    if let Some(&id) = ids.iter().find(|&&id| sc.origins[id as usize] == json) {
        return id;
    }
    let id = sc.origins.len() as u32;
    ids.push(id);
    sc.origins.push(json);
    id
}

fn group_metric(
    n: u32,
    buf: &[u8],
    metric: Range<usize>,
    origin: u32,
    fallback: (Option<&str>, Option<&str>, Option<&str>),
    // The dataset is a receiver's (from the scope name): no attribute overrides it.
    fixed_dataset: bool,
    sc: &mut MetricScratch,
) -> Result<(), DecodeError> {
    let (mut name, mut unit, mut data) = (0..0, 0..0, None);
    let mut f = Fields::new(buf, metric.start, metric.end);
    while let Some((field, wire)) = f.next_field()? {
        match (field, wire) {
            (1, Wire::Len(a, b)) => name = a..b,
            (3, Wire::Len(a, b)) => unit = a..b,
            (5 | 7 | 9 | 10 | 11, Wire::Len(a, b)) => data = Some((field, a..b)),
            _ => {}
        }
    }
    let Some((field, data)) = data else {
        return Ok(()); // a metric without data carries no points
    };
    let mut points = Vec::new();
    let (mut monotonic, mut temporality) = (false, 0);
    let mut d = Fields::new(buf, data.start, data.end);
    while let Some((f, wire)) = d.next_field()? {
        match (f, wire) {
            (1, Wire::Len(a, b)) => points.push(a..b),
            (2, Wire::Varint(t)) if field == 7 || field == 9 || field == 10 => temporality = t,
            (3, Wire::Varint(m)) if field == 7 => monotonic = m != 0,
            _ => {}
        }
    }
    let kind = match field {
        5 => Kind::Gauge,
        7 => Kind::Sum {
            monotonic,
            cumulative: temporality == 2,
        },
        9 => Kind::Histogram,
        10 => Kind::ExpHistogram,
        _ => Kind::Summary,
    };
    for point in points {
        let head = read_head(buf, &point, kind, &mut sc.kvs)?;
        if head.flags & 1 != 0 {
            continue; // no recorded value
        }
        let dataset = if fixed_dataset {
            fallback.0
        } else {
            str_attr(buf, &sc.kvs, DATASET).or(fallback.0)
        };
        let namespace = str_attr(buf, &sc.kvs, NAMESPACE).or(fallback.1);
        let index = str_attr(buf, &sc.kvs, INDEX).or(fallback.2);
        // The key: origin, routing, timestamps, unit, attributes sorted by key.
        let key = &mut sc.key;
        key.clear();
        key.extend_from_slice(&origin.to_le_bytes());
        for part in [dataset, namespace, index] {
            let p = part.unwrap_or("\u{0}").as_bytes();
            key.extend_from_slice(&(p.len() as u32).to_le_bytes());
            key.extend_from_slice(p);
        }
        key.extend_from_slice(&head.time.to_le_bytes());
        key.extend_from_slice(&head.start.to_le_bytes());
        key.extend_from_slice(&(unit.len() as u32).to_le_bytes());
        key.extend_from_slice(&buf[unit.clone()]);
        sc.sorted.clear();
        sc.sorted.extend(
            sc.kvs
                .iter()
                .filter(|kv| !is_routing(&buf[kv.key.clone()]))
                .map(|kv| (kv.key.clone(), kv.value.clone())),
        );
        sc.sorted
            .sort_by(|a, b| buf[a.0.clone()].cmp(&buf[b.0.clone()]));
        for (k, v) in &sc.sorted {
            key.extend_from_slice(&(k.len() as u32).to_le_bytes());
            key.extend_from_slice(&buf[k.clone()]);
            key.extend_from_slice(&(v.len() as u32).to_le_bytes());
            key.extend_from_slice(&buf[v.clone()]);
        }
        let h = hash(key);
        let mut found = sc.group_ids.get(&h).copied().unwrap_or(NONE);
        while found != NONE && sc.keys[sc.key_ranges[found as usize].clone()] != key[..] {
            found = sc.chain[found as usize];
        }
        let group = if found != NONE {
            found
        } else {
            let id = sc.groups.len() as u32;
            sc.chain.push(sc.group_ids.insert(h, id).unwrap_or(NONE));
            let start = sc.keys.len();
            sc.keys.extend_from_slice(key);
            sc.key_ranges.push(start..sc.keys.len());
            let attributes = if sc.kvs.is_empty() {
                0..0
            } else {
                let at = sc.attrs_json.len();
                write_object(&mut sc.attrs_json, buf, &sc.kvs, is_routing, true)?;
                at..sc.attrs_json.len()
            };
            sc.groups.push(Group {
                origin,
                entry: n,
                attributes,
                time: head.time,
                start: head.start,
                unit: unit.clone(),
                dataset: dataset.map(str::to_string),
                namespace: namespace.map(str::to_string),
                index: index.map(str::to_string),
            });
            id
        };
        sc.points.push(Point {
            entry: n,
            group,
            name: name.clone(),
            kind,
            point,
        });
    }
    Ok(())
}

/// A value written: its dynamic template and, for a histogram, its count.
type Written = (&'static [u8], Option<u64>);

/// Writes the point's value; returns its dynamic template and, for a histogram, its count.
/// `Ok(None)`: nothing to store. `Err`: why the point cannot be stored.
fn write_point_value(out: &mut Vec<u8>, buf: &[u8], p: &Point) -> Result<Option<Written>, String> {
    let bad = |e: DecodeError| format!("the data point could not be read: {e}");
    let name = || String::from_utf8_lossy(&buf[p.name.clone()]).into_owned();
    let mut f = Fields::new(buf, p.point.start, p.point.end);
    match p.kind {
        Kind::Gauge | Kind::Sum { .. } => {
            let mut value = None;
            while let Some((field, wire)) = f.next_field().map_err(bad)? {
                match (field, wire) {
                    (4, Wire::Fixed64(bits)) => value = Some(Err(f64::from_bits(bits))),
                    (6, Wire::Fixed64(bits)) => value = Some(Ok(bits as i64)),
                    _ => {}
                }
            }
            let counter = matches!(
                p.kind,
                Kind::Sum {
                    monotonic: true,
                    cumulative: true
                }
            );
            match value {
                None => Err(format!("number data point {:?} has no value", name())),
                Some(Ok(i)) => {
                    out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
                    Ok(Some((
                        if counter {
                            b"counter_long"
                        } else {
                            b"gauge_long"
                        },
                        None,
                    )))
                }
                Some(Err(d)) => {
                    write_f64(out, if d.is_finite() { d } else { 0.0 });
                    Ok(Some((
                        if counter {
                            b"counter_double"
                        } else {
                            b"gauge_double"
                        },
                        None,
                    )))
                }
            }
        }
        Kind::Summary => {
            let (mut count, mut sum) = (0u64, 0f64);
            while let Some((field, wire)) = f.next_field().map_err(bad)? {
                match (field, wire) {
                    (4, Wire::Fixed64(n)) => count = n,
                    (5, Wire::Fixed64(bits)) => sum = f64::from_bits(bits),
                    _ => {}
                }
            }
            out.extend_from_slice(b"{\"sum\":");
            write_f64(out, if sum.is_finite() { sum } else { 0.0 });
            out.extend_from_slice(b",\"value_count\":");
            write_u64(out, count.min(i64::MAX as u64));
            out.push(b'}');
            Ok(Some((b"summary", None)))
        }
        Kind::Histogram => {
            let (mut count, mut sum) = (0u64, 0f64);
            let (mut counts, mut bounds) = (Vec::new(), Vec::new());
            while let Some((field, wire)) = f.next_field().map_err(bad)? {
                match (field, wire) {
                    (4, Wire::Fixed64(n)) => count = n,
                    (5, Wire::Fixed64(bits)) => sum = f64::from_bits(bits),
                    (6, Wire::Fixed64(n)) => counts.push(n),
                    (6, Wire::Len(a, b)) => counts.extend(fixed64s(&buf[a..b])),
                    (7, Wire::Fixed64(bits)) => bounds.push(f64::from_bits(bits)),
                    (7, Wire::Len(a, b)) => bounds.extend(fixed64s(&buf[a..b]).map(f64::from_bits)),
                    _ => {}
                }
            }
            if !counts.is_empty() && counts.len() != bounds.len() + 1 {
                return Err(format!(
                    "histogram data point {:?} has {} bucket counts for {} bounds (want one more \
                     count than bounds)",
                    name(),
                    counts.len(),
                    bounds.len()
                ));
            }
            let mut pairs = Vec::with_capacity(counts.len().max(1));
            if bounds.is_empty() {
                // No buckets: one centroid at the mean, as the Collector writes it.
                if count > 0 {
                    pairs.push((count, sum / count as f64));
                }
            } else {
                for (i, &c) in counts.iter().enumerate() {
                    if c == 0 {
                        continue;
                    }
                    let v = if i == 0 {
                        if bounds[0] > 0.0 {
                            bounds[0] / 2.0
                        } else {
                            bounds[0]
                        }
                    } else if i >= bounds.len() {
                        bounds[i - 1]
                    } else {
                        bounds[i - 1] + (bounds[i] - bounds[i - 1]) / 2.0
                    };
                    pairs.push((c, v));
                }
            }
            write_centroids(out, &pairs);
            Ok(Some((b"histogram", Some(count))))
        }
        Kind::ExpHistogram => {
            let (mut count, mut scale, mut zero) = (0u64, 0i32, 0u64);
            let (mut positive, mut negative) = ((0i32, Vec::new()), (0i32, Vec::new()));
            while let Some((field, wire)) = f.next_field().map_err(bad)? {
                match (field, wire) {
                    (4, Wire::Fixed64(n)) => count = n,
                    (6, Wire::Varint(z)) => scale = zigzag(z),
                    (7, Wire::Fixed64(n)) => zero = n,
                    (8, Wire::Len(a, b)) => positive = buckets(buf, a, b).map_err(bad)?,
                    (9, Wire::Len(a, b)) => negative = buckets(buf, a, b).map_err(bad)?,
                    _ => {}
                }
            }
            let mut pairs = Vec::new();
            let (offset, counts) = &negative;
            for (i, &c) in counts.iter().enumerate().rev() {
                if c == 0 {
                    continue;
                }
                let index = i64::from(*offset) + i as i64;
                let lb = -lower_boundary(index + 1, scale);
                let ub = -lower_boundary(index, scale);
                pairs.push((c, lb + (ub - lb) / 2.0));
            }
            if zero != 0 {
                pairs.push((zero, 0.0));
            }
            let (offset, counts) = &positive;
            for (i, &c) in counts.iter().enumerate() {
                if c == 0 {
                    continue;
                }
                let index = i64::from(*offset) + i as i64;
                let lb = lower_boundary(index, scale);
                let ub = lower_boundary(index + 1, scale);
                pairs.push((c, lb + (ub - lb) / 2.0));
            }
            write_centroids(out, &pairs);
            Ok(Some((b"histogram", Some(count))))
        }
    }
}

/// `{"counts":[..],"values":[..]}`: Elasticsearch's `histogram` field.
fn write_centroids(out: &mut Vec<u8>, pairs: &[(u64, f64)]) {
    out.extend_from_slice(b"{\"counts\":[");
    for (i, (c, _)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_u64(out, (*c).min(i64::MAX as u64));
    }
    out.extend_from_slice(b"],\"values\":[");
    for (i, (_, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_f64(out, if v.is_finite() { *v } else { 0.0 });
    }
    out.extend_from_slice(b"]}");
}

fn fixed64s(bytes: &[u8]) -> impl Iterator<Item = u64> + '_ {
    bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()))
}

fn zigzag(z: u64) -> i32 {
    ((z >> 1) as i64 ^ -((z & 1) as i64)) as i32
}

/// An exponential histogram's `Buckets`: offset and counts.
fn buckets(buf: &[u8], s: usize, e: usize) -> Result<(i32, Vec<u64>), DecodeError> {
    let (mut offset, mut counts) = (0, Vec::new());
    let mut f = Fields::new(buf, s, e);
    while let Some((field, wire)) = f.next_field()? {
        match (field, wire) {
            (1, Wire::Varint(z)) => offset = zigzag(z),
            (2, Wire::Varint(n)) => counts.push(n),
            (2, Wire::Len(a, b)) => {
                let mut packed = Fields::new(buf, a, b);
                while packed.pos() < b {
                    counts.push(packed.next_varint()?);
                }
            }
            _ => {}
        }
    }
    Ok((offset, counts))
}

/// The lower boundary of bucket `index` at `scale`, as the OTel data model defines it.
fn lower_boundary(index: i64, scale: i32) -> f64 {
    if scale <= 0 {
        let exp = index.checked_shl((-scale) as u32).unwrap_or(i64::MAX);
        return 2f64.powi(exp.clamp(-2000, 2000) as i32);
    }
    // exp() rather than powf: the form the data model gives, exact at bucket edges that a
    // power computation could round past.
    let inverse_factor = std::f64::consts::LN_2 * 2f64.powi(-scale);
    2.0 * ((index - (1i64 << scale.min(62))) as f64 * inverse_factor).exp()
}

#[cfg(test)]
mod tests;
