//! Traces and metrics as they were received: checked against the OTLP schema, counted, and cut
//! into one slice per resource, but never decoded into a model.
//!
//! The gateway only forwards spans and metrics (memory limiter, batch, OTLP exporters), so it
//! keeps their encoded bytes: a concatenation of encoded `ResourceSpans` fields is itself a
//! valid `ExportTraceServiceRequest`, which makes batching a matter of appending slices.
//! Validation is as strict as the Collector's (wire types, UTF-8 strings, id lengths, nesting)
//! so a malformed request is refused with a 400 here, not by the next hop after it was acked.

use bytes::Bytes;

use super::cut;
use super::wire::{DecodeError, Fields, Wire, wrong};
pub use crate::model::Signal;

/// What a field holds, as far as validation cares.
#[derive(Clone, Copy)]
enum Kind {
    Message(&'static Schema),
    Str(&'static str),
    Bytes,
    /// Trace or span id: empty or exactly this many bytes.
    Id(&'static str, usize),
    Varint,
    I64,
    I32,
    /// A repeated scalar: packed (one length-delimited field) or one field per value.
    PackedVarint,
    PackedI64,
}

/// The known fields of one message type; others are skipped, as protobuf requires. Indexed
/// by field number: finding a field in a list took a quarter of the check's time.
struct Schema {
    by_number: [Option<Kind>; BY_NUMBER],
    /// What a one-byte key (fields 1-15) with the wire type its field is written in asks
    /// for, so that most fields take one dispatch: the general reader took two (the wire
    /// type, then the field's kind and wire together), and those indirect jumps mispredicted.
    /// `None` for anything else (unknown fields, other wire types, the packed encodings,
    /// keys of more than one byte): read by the general reader.
    by_key: [Option<Kind>; 128],
}

/// OTLP's field numbers stay below this (checked as each schema is built, at compile time).
const BY_NUMBER: usize = 20;

impl Schema {
    const fn new(fields: &[(u32, Kind)]) -> Schema {
        let mut by_number = [None; BY_NUMBER];
        let mut by_key = [None; 128];
        let mut i = 0;
        while i < fields.len() {
            let (n, kind) = fields[i];
            assert!((n as usize) < BY_NUMBER, "a field number past BY_NUMBER");
            by_number[n as usize] = Some(kind);
            // A packed field's single-value form is the fast one; its packed form (wire
            // type 2) goes to the general reader.
            let wire = match kind {
                Message(_) | Str(_) | Bytes | Id(..) => 2,
                Varint | PackedVarint => 0,
                I64 | PackedI64 => 1,
                I32 => 5,
            };
            if n < 16 {
                by_key[(n << 3 | wire) as usize] = Some(kind);
            }
            i += 1;
        }
        Schema { by_number, by_key }
    }

    #[inline(always)]
    fn kind(&self, field: u32) -> Option<Kind> {
        self.by_number.get(field as usize).copied().flatten()
    }
}

use Kind::*;

static ANY_VALUE: Schema = Schema::new(&[
    (1, Str("a string value")),
    (2, Varint),
    (3, Varint),
    (4, I64),
    (5, Message(&ARRAY_VALUE)),
    (6, Message(&KEY_VALUE_LIST)),
    (7, Bytes),
]);
static ARRAY_VALUE: Schema = Schema::new(&[(1, Message(&ANY_VALUE))]);
static KEY_VALUE_LIST: Schema = Schema::new(&[(1, Message(&KEY_VALUE))]);
static KEY_VALUE: Schema = Schema::new(&[(1, Str("an attribute key")), (2, Message(&ANY_VALUE))]);
static ENTITY_REF: Schema = Schema::new(&[
    (1, Str("an entity schema_url")),
    (2, Str("an entity type")),
    (3, Str("an entity id key")),
    (4, Str("an entity description key")),
]);
static RESOURCE: Schema = Schema::new(&[
    (1, Message(&KEY_VALUE)),
    (2, Varint),
    (3, Message(&ENTITY_REF)),
]);
static SCOPE: Schema = Schema::new(&[
    (1, Str("a scope name")),
    (2, Str("a scope version")),
    (3, Message(&KEY_VALUE)),
    (4, Varint),
]);

static TRACES_REQUEST: Schema = Schema::new(&[(1, Message(&RESOURCE_SPANS))]);
static RESOURCE_SPANS: Schema = Schema::new(&[
    (1, Message(&RESOURCE)),
    (2, Message(&SCOPE_SPANS)),
    (3, Str("a schema_url")),
]);
static SCOPE_SPANS: Schema = Schema::new(&[
    (1, Message(&SCOPE)),
    (2, Message(&SPAN)),
    (3, Str("a schema_url")),
]);
static SPAN: Schema = Schema::new(&[
    (1, Id("trace_id", 16)),
    (2, Id("span_id", 8)),
    (3, Str("a trace_state")),
    (4, Id("parent_span_id", 8)),
    (16, I32),
    (5, Str("a span name")),
    (6, Varint),
    (7, I64),
    (8, I64),
    (9, Message(&KEY_VALUE)),
    (10, Varint),
    (11, Message(&SPAN_EVENT)),
    (12, Varint),
    (13, Message(&SPAN_LINK)),
    (14, Varint),
    (15, Message(&SPAN_STATUS)),
]);
static SPAN_EVENT: Schema = Schema::new(&[
    (1, I64),
    (2, Str("an event name")),
    (3, Message(&KEY_VALUE)),
    (4, Varint),
]);
static SPAN_LINK: Schema = Schema::new(&[
    (1, Id("link trace_id", 16)),
    (2, Id("link span_id", 8)),
    (3, Str("a link trace_state")),
    (4, Message(&KEY_VALUE)),
    (5, Varint),
    (6, I32),
]);
static SPAN_STATUS: Schema = Schema::new(&[(2, Str("a status message")), (3, Varint)]);

static LOGS_REQUEST: Schema = Schema::new(&[(1, Message(&RESOURCE_LOGS))]);
static RESOURCE_LOGS: Schema = Schema::new(&[
    (1, Message(&RESOURCE)),
    (2, Message(&SCOPE_LOGS)),
    (3, Str("a schema_url")),
]);
static SCOPE_LOGS: Schema = Schema::new(&[
    (1, Message(&SCOPE)),
    (2, Message(&LOG_RECORD)),
    (3, Str("a schema_url")),
]);
static LOG_RECORD: Schema = Schema::new(&[
    (6, Message(&KEY_VALUE)),
    (5, Message(&ANY_VALUE)),
    (1, I64),
    (11, I64),
    (2, Varint),
    (3, Str("severity_text")),
    (9, Id("trace_id", 16)),
    (10, Id("span_id", 8)),
    (8, I32),
    (7, Varint),
    (12, Str("event_name")),
]);

static METRICS_REQUEST: Schema = Schema::new(&[(1, Message(&RESOURCE_METRICS))]);
static RESOURCE_METRICS: Schema = Schema::new(&[
    (1, Message(&RESOURCE)),
    (2, Message(&SCOPE_METRICS)),
    (3, Str("a schema_url")),
]);
static SCOPE_METRICS: Schema = Schema::new(&[
    (1, Message(&SCOPE)),
    (2, Message(&METRIC)),
    (3, Str("a schema_url")),
]);
static METRIC: Schema = Schema::new(&[
    (1, Str("a metric name")),
    (2, Str("a metric description")),
    (3, Str("a metric unit")),
    (5, Message(&GAUGE)),
    (7, Message(&SUM)),
    (9, Message(&HISTOGRAM)),
    (10, Message(&EXP_HISTOGRAM)),
    (11, Message(&SUMMARY)),
    (12, Message(&KEY_VALUE)),
]);
static GAUGE: Schema = Schema::new(&[(1, Message(&NUMBER_POINT))]);
static SUM: Schema = Schema::new(&[(1, Message(&NUMBER_POINT)), (2, Varint), (3, Varint)]);
static HISTOGRAM: Schema = Schema::new(&[(1, Message(&HISTOGRAM_POINT)), (2, Varint)]);
static EXP_HISTOGRAM: Schema = Schema::new(&[(1, Message(&EXP_HISTOGRAM_POINT)), (2, Varint)]);
static SUMMARY: Schema = Schema::new(&[(1, Message(&SUMMARY_POINT))]);
static NUMBER_POINT: Schema = Schema::new(&[
    (7, Message(&KEY_VALUE)),
    (2, I64),
    (3, I64),
    (4, I64),
    (6, I64),
    (5, Message(&EXEMPLAR)),
    (8, Varint),
]);
static HISTOGRAM_POINT: Schema = Schema::new(&[
    (9, Message(&KEY_VALUE)),
    (2, I64),
    (3, I64),
    (4, I64),
    (5, I64),
    (6, PackedI64),
    (7, PackedI64),
    (8, Message(&EXEMPLAR)),
    (10, Varint),
    (11, I64),
    (12, I64),
]);
static EXP_HISTOGRAM_POINT: Schema = Schema::new(&[
    (1, Message(&KEY_VALUE)),
    (2, I64),
    (3, I64),
    (4, I64),
    (5, I64),
    (6, Varint),
    (7, I64),
    (8, Message(&BUCKETS)),
    (9, Message(&BUCKETS)),
    (10, Varint),
    (11, Message(&EXEMPLAR)),
    (12, I64),
    (13, I64),
    (14, I64),
]);
static BUCKETS: Schema = Schema::new(&[(1, Varint), (2, PackedVarint)]);
static SUMMARY_POINT: Schema = Schema::new(&[
    (7, Message(&KEY_VALUE)),
    (2, I64),
    (3, I64),
    (4, I64),
    (5, I64),
    (6, Message(&QUANTILE)),
    (8, Varint),
]);
static QUANTILE: Schema = Schema::new(&[(1, I64), (2, I64)]);
static EXEMPLAR: Schema = Schema::new(&[
    (7, Message(&KEY_VALUE)),
    (2, I64),
    (3, I64),
    (6, I64),
    (4, Id("exemplar span_id", 8)),
    (5, Id("exemplar trace_id", 16)),
]);

/// Validated traces or metrics: one encoded top-level field (`ResourceSpans` or
/// `ResourceMetrics`, tag included) per entry, with the spans or data points it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct RawBatch {
    pub signal: Signal,
    pub resources: Vec<(Bytes, usize)>,
}

impl RawBatch {
    pub fn new(signal: Signal) -> Self {
        RawBatch {
            signal,
            resources: Vec::new(),
        }
    }

    /// Decoded logs, encoded: one entry for the lot (it is split between resources only).
    pub fn from_logs(logs: &crate::model::LogBatch) -> RawBatch {
        let mut out = Vec::new();
        super::logs::encode(logs, &mut out);
        let mut raw = RawBatch::new(Signal::Logs);
        if !logs.is_empty() {
            raw.resources.push((Bytes::from(out), logs.len()));
        }
        raw
    }

    /// Spans, log records or data points.
    pub fn len(&self) -> usize {
        self.resources.iter().map(|(_, n)| n).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.resources.iter().all(|(_, n)| *n == 0)
    }

    pub fn append(&mut self, mut other: RawBatch) {
        self.resources.append(&mut other.resources);
    }

    /// Splits off the first `n` items (at least one unit). A resource that straddles the cut
    /// is cut in two (`otlp::cut`), each half keeping the resource and scope; metrics are cut
    /// between whole scopes, so a metrics part can fall short of `n`, or pass it when a single
    /// scope holds more.
    pub fn split_to(&mut self, n: usize) -> RawBatch {
        let mut taken = 0;
        let mut count = 0;
        for (_, items) in &self.resources {
            if count + items > n {
                break; // this one straddles the cut
            }
            count += items;
            taken += 1;
        }
        if count < n
            && let Some((entry, items)) = self.resources.get(taken)
            && let Some((head, tail)) =
                cut::cut(entry, n - count, self.signal == Signal::Metrics, |unit| {
                    self.unit_items(unit)
                })
        {
            debug_assert_eq!(head.1 + tail.1, *items);
            self.resources[taken] = tail;
            self.resources.insert(taken, head);
            taken += 1;
        }
        // Nothing could be cut: take one whole resource, over the size.
        if taken == 0 && !self.resources.is_empty() {
            taken = 1;
        }
        let rest = self.resources.split_off(taken);
        RawBatch {
            signal: self.signal,
            resources: std::mem::replace(&mut self.resources, rest),
        }
    }

    /// Items in one unit a cut can move: a log record or span is one; a metric, its points.
    fn unit_items(&self, unit: &[u8]) -> usize {
        if self.signal != Signal::Metrics {
            return 1;
        }
        let mut items = 0;
        match check_fields::<true>(unit, 0, unit.len(), &METRIC, &NUMBER_POINT, &mut items, 0) {
            Ok(()) => items,
            Err(_) => 0,
        }
    }

    /// The request body: the entries one after another.
    pub fn encode(&self, out: &mut Vec<u8>) {
        for (bytes, _) in &self.resources {
            out.extend_from_slice(bytes);
        }
    }
}

/// Checks an `ExportTraceServiceRequest` and cuts it per resource. Resources with no spans
/// are dropped, as they carry nothing.
/// The most memory checking and cutting a request may take per byte of it, the request itself
/// included, as [`super::logs::COST_PER_BYTE`] says for decoding: the request, its resources'
/// slices and the counts. `tests/request_cost.rs` measures it.
pub const COST_PER_BYTE: u64 = 4;

pub fn decode_traces(buf: &Bytes) -> Result<RawBatch, DecodeError> {
    decode(Signal::Traces, &TRACES_REQUEST, &SPAN, buf)
}

/// [`decode_traces`] for an `ExportLogsServiceRequest`, counting log records: for pipelines
/// whose every component forwards logs without looking into them (memory_limiter, batch,
/// otlp, otlphttp, debug at basic verbosity), so nothing is decoded into the model.
pub fn decode_logs(buf: &Bytes) -> Result<RawBatch, DecodeError> {
    decode(Signal::Logs, &LOGS_REQUEST, &LOG_RECORD, buf)
}

/// [`decode_traces`] for an `ExportMetricsServiceRequest`, counting data points.
pub fn decode_metrics(buf: &Bytes) -> Result<RawBatch, DecodeError> {
    decode(Signal::Metrics, &METRICS_REQUEST, &NUMBER_POINT, buf)
}

fn decode(
    signal: Signal,
    request: &'static Schema,
    counted: &'static Schema,
    buf: &Bytes,
) -> Result<RawBatch, DecodeError> {
    let mut batch = RawBatch::new(signal);
    let mut fields = Fields::new(buf, 0, buf.len());
    let mut start = 0;
    // Log records and their ScopeLogs, which a decoding pipeline would materialize: counted
    // here too so that forwarding and decoding refuse the same requests.
    let mut density = 0;
    while let Some((field, wire)) = fields.next_field()? {
        let end = fields.pos();
        match (request.kind(field), wire) {
            (Some(Message(schema)), Wire::Len(s, e)) => {
                let mut items = 0;
                check_fields::<true>(buf, s, e, schema, counted, &mut items, 0)?;
                if signal == Signal::Logs {
                    density += items + scope_logs(buf, s, e)?;
                }
                if items > 0 {
                    batch.resources.push((buf.slice(start..end), items));
                }
            }
            (Some(_), wire) => return Err(wrong(field, wire, start)),
            // An unknown top-level field: skipped, as a newer sender may add one.
            (None, _) => {}
        }
        start = end;
    }
    super::logs::check_density(density, buf.len())?;
    Ok(batch)
}

/// The ScopeLogs in the ResourceLogs at `buf[s..e]`.
fn scope_logs(buf: &[u8], s: usize, e: usize) -> Result<usize, DecodeError> {
    let mut n = 0;
    let mut fields = Fields::new(buf, s, e);
    while let Some((field, _)) = fields.next_field()? {
        n += usize::from(field == 2);
    }
    Ok(n)
}

/// The schemas whose messages are counted: spans, log records, and every kind of metric data
/// point.
fn is_counted(schema: &'static Schema, counted: &'static Schema) -> bool {
    if std::ptr::eq(counted, &SPAN) || std::ptr::eq(counted, &LOG_RECORD) {
        return std::ptr::eq(schema, counted);
    }
    [
        &NUMBER_POINT,
        &HISTOGRAM_POINT,
        &EXP_HISTOGRAM_POINT,
        &SUMMARY_POINT,
    ]
    .iter()
    .any(|s| std::ptr::eq(schema, *s))
}

/// Checks the message at `buf[start..end]` against `schema`, adding the `counted` messages in
/// it to `items`. `FAST` (as every caller but the tests) reads through the one-dispatch
/// readers of [`Schema::by_key`]; without, every field goes through the general reader,
/// which the tests hold the fast path to.
fn check_fields<const FAST: bool>(
    buf: &[u8],
    start: usize,
    end: usize,
    schema: &'static Schema,
    counted: &'static Schema,
    items: &mut usize,
    values: usize,
) -> Result<(), DecodeError> {
    // Nesting is counted in AnyValues, as the decoders count it; the other messages between
    // them nest a bounded number of levels.
    let values = values + usize::from(std::ptr::eq(schema, &ANY_VALUE));
    if values > super::logs::MAX_DEPTH {
        return Err(DecodeError::TooDeep(super::logs::MAX_DEPTH));
    }
    if is_counted(schema, counted) {
        *items += 1;
    }
    let mut fields = Fields::new(buf, start, end);
    loop {
        let step = match fields.peek() {
            None => return Ok(()),
            Some(key) if FAST => schema.by_key.get(usize::from(key)).copied().flatten(),
            Some(_) => None,
        };
        // Each arm reads nothing when its reader refuses the payload, which the general
        // reader below then reads again, reporting what is wrong exactly as before.
        match step {
            None => {}
            Some(Message(inner)) => {
                if let Some((s, e)) = fields.len_after_key() {
                    // Attributes as SDKs write them are most of what is checked: each took
                    // two calls (the KeyValue, its AnyValue) and five dispatches.
                    if std::ptr::eq(inner, &KEY_VALUE)
                        && values < super::logs::MAX_DEPTH
                        && plain_attribute(&buf[s..e])
                    {
                        continue;
                    }
                    check_fields::<FAST>(buf, s, e, inner, counted, items, values)?;
                    continue;
                }
            }
            Some(Str(what)) => {
                if let Some((s, e)) = fields.len_after_key() {
                    check_str(buf, what, s, e)?;
                    continue;
                }
            }
            Some(Bytes) if fields.len_after_key().is_some() => continue,
            Some(Id(what, want)) => {
                if let Some((s, e)) = fields.len_after_key() {
                    check_id(what, want, s, e)?;
                    continue;
                }
            }
            Some(Varint | PackedVarint) if fields.small_varint_after_key().is_some() => continue,
            Some(I64 | PackedI64) if fields.fixed64_after_key().is_some() => continue,
            Some(I32) if fields.fixed32_after_key().is_some() => continue,
            // Refused by its reader, with nothing read.
            Some(_) => {}
        }
        let at = fields.pos();
        let Some((field, wire)) = fields.next_field()? else {
            return Ok(());
        };
        let Some(kind) = schema.kind(field) else {
            continue;
        };
        match (kind, wire) {
            (Message(inner), Wire::Len(s, e)) => {
                check_fields::<FAST>(buf, s, e, inner, counted, items, values)?;
            }
            (Str(what), Wire::Len(s, e)) => check_str(buf, what, s, e)?,
            (Bytes, Wire::Len(..)) => {}
            (Id(what, want), Wire::Len(s, e)) => check_id(what, want, s, e)?,
            (Varint, Wire::Varint(_)) | (I64, Wire::Fixed64(_)) | (I32, Wire::Fixed32(_)) => {}
            (PackedVarint, Wire::Varint(_)) | (PackedI64, Wire::Fixed64(_)) => {}
            (PackedI64, Wire::Len(s, e)) => {
                if (e - s) % 8 != 0 {
                    return Err(DecodeError::Length {
                        what: "a packed 64-bit field",
                        want: (e - s).next_multiple_of(8),
                        got: e - s,
                    });
                }
            }
            (PackedVarint, Wire::Len(s, e)) => {
                let mut pos = s;
                while pos < e {
                    let bytes = buf[pos..e].iter().position(|b| b & 0x80 == 0);
                    match bytes {
                        Some(n) if n < 10 => pos += n + 1,
                        _ => return Err(DecodeError::Varint(pos)),
                    }
                }
            }
            (_, wire) => return Err(wrong(field, wire, at)),
        }
    }
}

/// A string field: UTF-8, or an error naming `what`. Shared by the one-dispatch and the
/// general reader, so both report alike.
#[inline(always)]
fn check_str(buf: &[u8], what: &'static str, s: usize, e: usize) -> Result<(), DecodeError> {
    if super::wire::is_utf8(&buf[s..e]) {
        Ok(())
    } else {
        Err(DecodeError::Utf8 { what, at: s })
    }
}

/// A trace or span id: empty ("not set") or exactly `want` bytes.
#[inline(always)]
fn check_id(what: &'static str, want: usize, s: usize, e: usize) -> Result<(), DecodeError> {
    if e - s != 0 && e - s != want {
        return Err(DecodeError::Length {
            what,
            want,
            got: e - s,
        });
    }
    Ok(())
}

/// Whether `kv` is an attribute as SDKs write it, and valid: a key, then an `AnyValue` of one
/// scalar (a string, a bool, an int or a double), each with a one-byte length and nothing
/// else, the texts UTF-8. `false` for anything else, valid or not, which the general reader
/// then checks, so what is accepted and every error stay the same.
#[inline(always)]
fn plain_attribute(kv: &[u8]) -> bool {
    let [0x0a, klen, rest @ ..] = kv else {
        return false;
    };
    let klen = usize::from(*klen);
    if klen >= 0x80 || rest.len() < klen + 2 {
        return false;
    }
    let (key, rest) = rest.split_at(klen);
    let [0x12, vlen, v @ ..] = rest else {
        return false;
    };
    if usize::from(*vlen) != v.len() || *vlen >= 0x80 || !super::wire::is_utf8(key) {
        return false;
    }
    match v {
        [0x0a, slen, text @ ..] => {
            usize::from(*slen) == text.len() && *slen < 0x80 && super::wire::is_utf8(text)
        }
        [0x10 | 0x18, n @ ..] => {
            n.len() <= 10
                && n.last().is_some_and(|b| b & 0x80 == 0)
                && n[..n.len() - 1].iter().all(|b| b & 0x80 != 0)
        }
        [0x21, bits @ ..] => bits.len() == 8,
        _ => false,
    }
}

#[cfg(test)]
mod tests;
