//! Encoded log records (`otlp::raw`, as an OTLP receiver hands them on when no processor reads
//! them) to `otel` documents, read straight from the bytes as received: the same documents
//! `mapping` writes from decoded records, without building the records first. Decoding costs
//! an allocation per attribute and value, and dropping them as much again; the gateway's log
//! path (OTLP in, Elasticsearch out) needs neither.

use std::ops::Range;

use bytes::Bytes;

use super::mapping::{BulkEncoder, Head, Items, Steering, tail};
use super::origin::{Rendered, is_routing, route, walk};
use super::routing::{self, DATASET, INDEX, NAMESPACE};
use super::spans::whole_or_refused;
use super::wire_json::{Kv, any_str, push_kv, write_object, write_value};
use crate::model::Signal;
use crate::otlp::wire::{DecodeError, Fields, Wire};

/// What one log record holds, as ranges of the buffer; reused from record to record.
#[derive(Default)]
struct RecordParts {
    time: u64,
    observed: u64,
    severity_number: u8,
    severity_text: Range<usize>,
    /// The body's `AnyValue`.
    body: Option<Range<usize>>,
    kvs: Vec<Kv>,
    dropped: u32,
    trace_id: Range<usize>,
    span_id: Range<usize>,
    event_name: Range<usize>,
}

impl RecordParts {
    /// Reads a `LogRecord` as `otlp::logs` decodes one: the last occurrence of a field wins,
    /// a severity beyond `u8` is none, a dropped count is cut to 32 bits.
    fn read(&mut self, buf: &[u8], s: usize, e: usize) -> Result<(), DecodeError> {
        (self.time, self.observed, self.severity_number, self.dropped) = (0, 0, 0, 0);
        self.severity_text = s..s;
        self.body = None;
        self.kvs.clear();
        self.trace_id = s..s;
        self.span_id = s..s;
        self.event_name = s..s;
        let mut f = Fields::new(buf, s, e);
        while let Some((field, wire)) = f.next_field()? {
            match (field, wire) {
                (1, Wire::Fixed64(t)) => self.time = t,
                (11, Wire::Fixed64(t)) => self.observed = t,
                (2, Wire::Varint(n)) => self.severity_number = u8::try_from(n).unwrap_or(0),
                (3, Wire::Len(a, b)) => self.severity_text = a..b,
                (5, Wire::Len(a, b)) => self.body = Some(a..b),
                (6, Wire::Len(a, b)) => push_kv(buf, a, b, &mut self.kvs)?,
                (7, Wire::Varint(n)) => self.dropped = n as u32,
                (9, Wire::Len(a, b)) => self.trace_id = a..b,
                (10, Wire::Len(a, b)) => self.span_id = a..b,
                (12, Wire::Len(a, b)) => self.event_name = a..b,
                _ => {}
            }
        }
        Ok(())
    }
}

/// Scratch state for encoding log records, kept between batches so nothing is allocated per
/// record.
#[derive(Default)]
pub struct LogScratch {
    resource: Rendered,
    scope: Rendered,
    record: RecordParts,
    /// `,"resource":{..},"scope":{..}` of the scope being encoded.
    shared: Vec<u8>,
}

/// The `AnyValue` oneof member that is set (the last on the wire), with its range.
fn member(buf: &[u8], v: Range<usize>) -> Result<Option<(u32, Wire)>, DecodeError> {
    let mut last = None;
    let mut f = Fields::new(buf, v.start, v.end);
    while let Some((field, wire)) = f.next_field()? {
        if (1..=7).contains(&field) {
            last = Some((field, wire));
        }
    }
    Ok(last)
}

/// Whether every item of the array at `buf[a..b]` holds a map.
fn all_maps(buf: &[u8], a: usize, b: usize) -> Result<bool, DecodeError> {
    let mut items = Fields::new(buf, a, b);
    while let Some((field, wire)) = items.next_field()? {
        if let (1, Wire::Len(s, e)) = (field, wire)
            && !matches!(member(buf, s..e)?, Some((6, _)))
        {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `,"body":{..}` as `mapping` writes it: `text` for a scalar, `structured` for a map or an
/// array of maps, any other array wrapped as `structured.value`; nothing for an unset body.
fn write_body(
    out: &mut Vec<u8>,
    buf: &[u8],
    body: Option<Range<usize>>,
) -> Result<(), DecodeError> {
    let Some(v) = body else {
        return Ok(());
    };
    let (open, close): (&[u8], &[u8]) = match member(buf, v.clone())? {
        None => return Ok(()),
        Some((5, Wire::Len(a, b))) if !all_maps(buf, a, b)? => {
            (b",\"body\":{\"structured\":{\"value\":", b"}}")
        }
        Some((5 | 6, _)) => (b",\"body\":{\"structured\":", b"}"),
        Some(_) => (b",\"body\":{\"text\":", b"}"),
    };
    out.extend_from_slice(open);
    // Depth 0 here is the decoder's depth 1: a body counts as nested as an attribute's value.
    write_value(out, buf, v, false, 0)?;
    out.extend_from_slice(close);
    Ok(())
}

/// One pass over a record's attributes for the values that steer its action.
fn steering<'a>(buf: &'a [u8], kvs: &[Kv]) -> Steering<'a> {
    let mut found = Steering::default();
    for kv in kvs {
        let key = &buf[kv.key.clone()];
        if !Steering::may_steer(key) {
            continue;
        }
        // Keys were checked to be UTF-8 when the request arrived.
        let Ok(key) = std::str::from_utf8(key) else {
            continue;
        };
        let text = any_str(buf, kv.value.clone()).filter(|t| !t.is_empty());
        found.take(key, text);
    }
    found
}

impl BulkEncoder {
    /// Appends a document per log record of `entry` (one encoded `ResourceLogs` holding
    /// `records` records), recording each item in `items`. `otel` mode only: the exporter
    /// takes encoded logs in that mode alone.
    pub fn encode_raw_logs(
        &mut self,
        entry: &Bytes,
        records: usize,
        scratch: &mut LogScratch,
        out: &mut Vec<u8>,
        items: &mut Items,
    ) {
        let what = "log records";
        whole_or_refused((out, items), (Signal::Logs, records), what, |out, items| {
            self.try_encode_raw_logs(entry, scratch, out, items)
        });
    }

    fn try_encode_raw_logs(
        &mut self,
        entry: &Bytes,
        sc: &mut LogScratch,
        out: &mut Vec<u8>,
        items: &mut Items,
    ) -> Result<(), DecodeError> {
        let buf: &[u8] = entry;
        let LogScratch {
            resource,
            scope,
            record: r,
            shared,
        } = sc;
        walk(buf, false, resource, scope, |resource, scope, records| {
            shared.clear();
            shared.push(b',');
            shared.extend_from_slice(&resource.json);
            shared.push(b',');
            shared.extend_from_slice(&scope.json);
            let receiver = std::str::from_utf8(&buf[scope.name.clone()])
                .ok()
                .and_then(routing::receiver_dataset);
            // What the scope's and the resource's attributes route to, found once for all
            // their records.
            let origin = |key| route(buf, &[], scope, resource, key);
            let (dataset, namespace, index) = (origin(DATASET), origin(NAMESPACE), origin(INDEX));
            for range in records {
                r.read(buf, range.start, range.end)?;
                let found = steering(buf, &r.kvs);
                let parts = (
                    receiver.or(found.dataset).or(dataset),
                    found.namespace.or(namespace),
                    found.index.or(index),
                );
                self.log_action(parts, &found, out);
                let stream = self.logs.is_stream().then_some(&self.logs.stream);
                let head = Head {
                    time: r.time,
                    observed: r.observed,
                    severity_text: &buf[r.severity_text.clone()],
                    severity_number: r.severity_number,
                    event_name: &buf[r.event_name.clone()],
                };
                head.write(out, &found, stream);
                write_body(out, buf, r.body.clone())?;
                if !r.kvs.is_empty() {
                    out.extend_from_slice(b",\"attributes\":");
                    write_object(out, buf, &r.kvs, is_routing, false)?;
                }
                let (trace_id, span_id) = (&buf[r.trace_id.clone()], &buf[r.span_id.clone()]);
                tail(out, u64::from(r.dropped), shared, trace_id, span_id);
                out.push(b'\n');
                items.sent(out.len(), Signal::Logs, 1);
            }
            Ok(())
        })
    }
}
