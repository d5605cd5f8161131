//! Spans to `_bulk` items in the `otel` layout of Elasticsearch's `traces-*.otel-*` template, as
//! the OTel Collector's exporter writes them: one document per span in
//! `traces-<dataset>.otel-<namespace>`, and one per span event in the logs data stream
//! `logs-<dataset>.otel-<namespace>` (Kibana reads span events, exceptions included, as logs).
//!
//! Span document: `@timestamp` (start), `data_stream`, `trace_id`, `span_id`, `trace_state`,
//! `parent_span_id`, `name`, `kind` (`Server`, `Client`, ...), `duration` (nanoseconds),
//! `attributes`, `dropped_attributes_count`, `dropped_events_count`, `links` (each with
//! `trace_id`, `span_id`, `trace_state`, `attributes`, `dropped_attributes_count`),
//! `dropped_links_count`, `status` (`message`, `code`: `Unset`, `Ok`, `Error`), `resource`
//! (`schema_url`, `attributes`, `dropped_attributes_count`) and `scope` (`schema_url`, `name`,
//! `version`, `attributes`, `dropped_attributes_count`). Zero counts and empty strings are left
//! out.
//!
//! Span event document: `@timestamp` (the event's), `data_stream`, the span's `trace_id` and
//! `span_id`, `dropped_attributes_count`, `event_name`, `attributes` (with `event.name` added,
//! as the Collector does), `resource` and `scope`.
//!
//! Everything is read from the spans as received (`otlp::raw`), never decoded into a model.

use std::ops::Range;

use bytes::Bytes;

use super::dead_letter::Why;
use super::mapping::{BulkEncoder, Items};
use super::origin::{Rendered, close_object, is_routing, route, route_dataset, walk};
use super::routing::{INDEX, NAMESPACE};
use super::wire_json::{
    Kv, push_kv, write_count_field, write_id, write_object, write_str_field, write_u64,
};
use crate::codec::rfc3339;
use crate::model::Signal;
use crate::otlp::wire::{DecodeError, Fields, Wire};

/// What one span holds, as ranges of the buffer; reused from span to span.
#[derive(Default)]
pub(super) struct SpanParts {
    trace_id: Range<usize>,
    span_id: Range<usize>,
    trace_state: Range<usize>,
    parent: Range<usize>,
    name: Range<usize>,
    kind: u64,
    start: u64,
    end: u64,
    kvs: Vec<Kv>,
    dropped_attributes: u64,
    events: Vec<Range<usize>>,
    dropped_events: u64,
    links: Vec<Range<usize>>,
    dropped_links: u64,
    status: Option<Range<usize>>,
}

/// Scratch state for encoding spans, kept between batches so nothing is allocated per span.
#[derive(Default)]
pub struct SpanScratch {
    resource: Rendered,
    scope: Rendered,
    span: SpanParts,
    event_kvs: Vec<Kv>,
    link_kvs: Vec<Kv>,
}

impl SpanParts {
    fn read(&mut self, buf: &[u8], s: usize, e: usize) -> Result<(), DecodeError> {
        self.trace_id = s..s;
        self.span_id = s..s;
        self.trace_state = s..s;
        self.parent = s..s;
        self.name = s..s;
        (self.kind, self.start, self.end) = (0, 0, 0);
        self.kvs.clear();
        self.events.clear();
        self.links.clear();
        (
            self.dropped_attributes,
            self.dropped_events,
            self.dropped_links,
        ) = (0, 0, 0);
        self.status = None;
        let mut f = Fields::new(buf, s, e);
        while let Some((field, wire)) = f.next_field()? {
            match (field, wire) {
                (1, Wire::Len(a, b)) => self.trace_id = a..b,
                (2, Wire::Len(a, b)) => self.span_id = a..b,
                (3, Wire::Len(a, b)) => self.trace_state = a..b,
                (4, Wire::Len(a, b)) => self.parent = a..b,
                (5, Wire::Len(a, b)) => self.name = a..b,
                (6, Wire::Varint(n)) => self.kind = n,
                (7, Wire::Fixed64(t)) => self.start = t,
                (8, Wire::Fixed64(t)) => self.end = t,
                (9, Wire::Len(a, b)) => push_kv(buf, a, b, &mut self.kvs)?,
                (10, Wire::Varint(n)) => self.dropped_attributes = n,
                (11, Wire::Len(a, b)) => self.events.push(a..b),
                (12, Wire::Varint(n)) => self.dropped_events = n,
                (13, Wire::Len(a, b)) => self.links.push(a..b),
                (14, Wire::Varint(n)) => self.dropped_links = n,
                (15, Wire::Len(a, b)) => self.status = Some(a..b),
                _ => {}
            }
        }
        Ok(())
    }
}

/// The span kind as pdata names it (`SpanKind.String()`).
fn kind_name(kind: u64) -> &'static [u8] {
    match kind {
        1 => b"Internal",
        2 => b"Server",
        3 => b"Client",
        4 => b"Producer",
        5 => b"Consumer",
        _ => b"Unspecified",
    }
}

fn status_code_name(code: u64) -> &'static [u8] {
    match code {
        1 => b"Ok",
        2 => b"Error",
        _ => b"Unset",
    }
}

pub(super) fn timestamp(out: &mut Vec<u8>, name: &[u8], nanos: u64) {
    out.extend_from_slice(name);
    out.extend_from_slice(b":\"");
    out.extend_from_slice(&rfc3339(nanos));
    out.push(b'"');
}

/// `,"data_stream":{"type":..,"dataset":..,"namespace":..}`.
pub(super) fn data_stream(out: &mut Vec<u8>, kind: &[u8], dataset: &str, namespace: &str) {
    out.extend_from_slice(b",\"data_stream\":{\"type\":\"");
    out.extend_from_slice(kind);
    out.extend_from_slice(b"\",\"dataset\":");
    crate::codec::write_json_str(out, dataset.as_bytes());
    out.extend_from_slice(b",\"namespace\":");
    crate::codec::write_json_str(out, namespace.as_bytes());
    out.push(b'}');
}

impl BulkEncoder {
    /// Appends a document per span and per span event of `entry` (one encoded
    /// `ResourceSpans` holding `spans` spans), recording each item in `items`.
    pub fn encode_spans(
        &mut self,
        entry: &Bytes,
        spans: usize,
        scratch: &mut SpanScratch,
        out: &mut Vec<u8>,
        items: &mut Items,
    ) {
        whole_or_refused(
            (out, items),
            (Signal::Traces, spans),
            "spans",
            |out, items| self.try_encode_spans(entry, scratch, out, items),
        );
    }

    fn try_encode_spans(
        &mut self,
        entry: &Bytes,
        sc: &mut SpanScratch,
        out: &mut Vec<u8>,
        items: &mut Items,
    ) -> Result<(), DecodeError> {
        let buf: &[u8] = entry;
        let SpanScratch {
            resource,
            scope,
            span,
            event_kvs,
            link_kvs,
        } = sc;
        walk(buf, false, resource, scope, |resource, scope, spans| {
            for range in spans {
                span.read(buf, range.start, range.end)?;
                let origin = (resource, scope);
                self.span_document(buf, span, origin, link_kvs, out)?;
                items.sent(out.len(), Signal::Traces, 1);
                for event in &span.events {
                    self.event_document(buf, event.clone(), span, origin, event_kvs, out)?;
                    items.sent(out.len(), Signal::Traces, 0);
                }
            }
            Ok(())
        })
    }

    fn span_document(
        &mut self,
        buf: &[u8],
        span: &SpanParts,
        (resource, scope): (&Rendered, &Rendered),
        link_kvs: &mut Vec<Kv>,
        out: &mut Vec<u8>,
    ) -> Result<(), DecodeError> {
        let parts = (
            route_dataset(buf, &span.kvs, scope, resource),
            route(buf, &span.kvs, scope, resource, NAMESPACE),
            route(buf, &span.kvs, scope, resource, INDEX),
        );
        self.traces.select(parts, self.mode);
        out.extend_from_slice(&self.traces.line);
        out.extend_from_slice(&self.pipeline);
        if let Some(ids) = &mut self.ids {
            ids.write(out);
        }
        out.extend_from_slice(b"}}\n{");
        timestamp(out, b"\"@timestamp\"", span.start);
        if self.traces.is_stream() {
            let s = &self.traces.stream;
            data_stream(out, b"traces", &s.dataset, &s.namespace);
        }
        write_id(out, b"\"trace_id\"", &buf[span.trace_id.clone()]);
        write_id(out, b"\"span_id\"", &buf[span.span_id.clone()]);
        write_str_field(out, b"\"trace_state\"", &buf[span.trace_state.clone()]);
        write_id(out, b"\"parent_span_id\"", &buf[span.parent.clone()]);
        write_str_field(out, b"\"name\"", &buf[span.name.clone()]);
        write_str_field(out, b"\"kind\"", kind_name(span.kind));
        out.extend_from_slice(b",\"duration\":");
        write_u64(out, span.end.saturating_sub(span.start));
        if !span.kvs.is_empty() {
            out.extend_from_slice(b",\"attributes\":");
            write_object(out, buf, &span.kvs, is_routing, false)?;
        }
        write_count_field(
            out,
            b"\"dropped_attributes_count\"",
            span.dropped_attributes,
        );
        write_count_field(out, b"\"dropped_events_count\"", span.dropped_events);
        out.extend_from_slice(b",\"links\":[");
        for (i, link) in span.links.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_link(out, buf, link.clone(), link_kvs)?;
        }
        out.push(b']');
        write_count_field(out, b"\"dropped_links_count\"", span.dropped_links);
        write_status(out, buf, span.status.clone())?;
        close(out, resource, scope);
        Ok(())
    }

    fn event_document(
        &mut self,
        buf: &[u8],
        event: Range<usize>,
        span: &SpanParts,
        (resource, scope): (&Rendered, &Rendered),
        kvs: &mut Vec<Kv>,
        out: &mut Vec<u8>,
    ) -> Result<(), DecodeError> {
        let (mut time, mut name, mut dropped) = (0, 0..0, 0);
        kvs.clear();
        let mut f = Fields::new(buf, event.start, event.end);
        while let Some((field, wire)) = f.next_field()? {
            match (field, wire) {
                (1, Wire::Fixed64(t)) => time = t,
                (2, Wire::Len(a, b)) => name = a..b,
                (3, Wire::Len(a, b)) => push_kv(buf, a, b, kvs)?,
                (4, Wire::Varint(n)) => dropped = n,
                _ => {}
            }
        }
        let kvs = &*kvs;
        let parts = (
            route_dataset(buf, kvs, scope, resource),
            route(buf, kvs, scope, resource, NAMESPACE),
            route(buf, kvs, scope, resource, INDEX),
        );
        self.logs.select(parts, self.mode);
        out.extend_from_slice(&self.logs.line);
        out.extend_from_slice(&self.pipeline);
        if let Some(ids) = &mut self.ids {
            ids.write(out);
        }
        out.extend_from_slice(b"}}\n{");
        timestamp(out, b"\"@timestamp\"", time);
        if self.logs.is_stream() {
            let s = &self.logs.stream;
            data_stream(out, b"logs", &s.dataset, &s.namespace);
        }
        write_id(out, b"\"trace_id\"", &buf[span.trace_id.clone()]);
        write_id(out, b"\"span_id\"", &buf[span.span_id.clone()]);
        write_count_field(out, b"\"dropped_attributes_count\"", dropped);
        let name = &buf[name];
        write_str_field(out, b"\"event_name\"", name);
        if !kvs.is_empty() || !name.is_empty() {
            out.extend_from_slice(b",\"attributes\":");
            if name.is_empty() {
                write_object(out, buf, kvs, is_routing, false)?;
            } else {
                // `event.name` set to the event's name, replacing an attribute of that name.
                write_object(
                    out,
                    buf,
                    kvs,
                    |k| is_routing(k) || k == b"event.name",
                    false,
                )?;
                out.pop();
                if out.last() != Some(&b'{') {
                    out.push(b',');
                }
                out.extend_from_slice(b"\"event.name\":");
                crate::codec::write_json_str(out, name);
                out.push(b'}');
            }
        }
        close(out, resource, scope);
        Ok(())
    }
}

/// Runs `encode`, which appends the items of one encoded entry (`units` spans or log records
/// of `signal`). Should its bytes not be readable after all, what it wrote is taken back and
/// the entry refused as a whole rather than half written; they were checked when they
/// arrived, so this is not expected.
pub(super) fn whole_or_refused(
    (out, items): (&mut Vec<u8>, &mut Items),
    (signal, units): (Signal, usize),
    what: &str,
    encode: impl FnOnce(&mut Vec<u8>, &mut Items) -> Result<(), DecodeError>,
) {
    let (mark, first) = (out.len(), items.len());
    if let Err(e) = encode(out, items) {
        out.truncate(mark);
        items.truncate(first);
        let why = Why {
            status: 0,
            kind: "malformed_otlp".into(),
            reason: format!("the {what} could not be read: {e}"),
        };
        items.refuse(b"{}\n{}\n".to_vec(), why, signal, units as u32);
    }
}

/// `,"resource":{..},"scope":{..}}` and the line's end.
fn close(out: &mut Vec<u8>, resource: &Rendered, scope: &Rendered) {
    out.push(b',');
    out.extend_from_slice(&resource.json);
    out.push(b',');
    out.extend_from_slice(&scope.json);
    out.extend_from_slice(b"}\n");
}

fn write_link(
    out: &mut Vec<u8>,
    buf: &[u8],
    link: Range<usize>,
    kvs: &mut Vec<Kv>,
) -> Result<(), DecodeError> {
    let (mut trace, mut span, mut state, mut dropped) = (0..0, 0..0, 0..0, 0);
    kvs.clear();
    let mut f = Fields::new(buf, link.start, link.end);
    while let Some((field, wire)) = f.next_field()? {
        match (field, wire) {
            (1, Wire::Len(a, b)) => trace = a..b,
            (2, Wire::Len(a, b)) => span = a..b,
            (3, Wire::Len(a, b)) => state = a..b,
            (4, Wire::Len(a, b)) => push_kv(buf, a, b, kvs)?,
            (5, Wire::Varint(n)) => dropped = n,
            _ => {}
        }
    }
    let open = out.len();
    write_id(out, b"\"trace_id\"", &buf[trace]);
    write_id(out, b"\"span_id\"", &buf[span]);
    write_str_field(out, b"\"trace_state\"", &buf[state]);
    if !kvs.is_empty() {
        out.extend_from_slice(b",\"attributes\":");
        write_object(out, buf, kvs, |_| false, false)?;
    }
    write_count_field(out, b"\"dropped_attributes_count\"", dropped);
    close_object(out, open);
    Ok(())
}

/// `,"status":{"message":..,"code":"Unset"|"Ok"|"Error"}`: always written, as the Collector
/// does, so that `status.code` can be filtered on for every span.
fn write_status(
    out: &mut Vec<u8>,
    buf: &[u8],
    status: Option<Range<usize>>,
) -> Result<(), DecodeError> {
    let (mut message, mut code) = (0..0, 0);
    if let Some(s) = status {
        let mut f = Fields::new(buf, s.start, s.end);
        while let Some((field, wire)) = f.next_field()? {
            match (field, wire) {
                (2, Wire::Len(a, b)) => message = a..b,
                (3, Wire::Varint(n)) => code = n,
                _ => {}
            }
        }
    }
    out.extend_from_slice(b",\"status\":{");
    if !message.is_empty() {
        out.extend_from_slice(b"\"message\":");
        crate::codec::write_json_str(out, &buf[message]);
        out.push(b',');
    }
    out.extend_from_slice(b"\"code\":\"");
    out.extend_from_slice(status_code_name(code));
    out.extend_from_slice(b"\"}");
    Ok(())
}

#[cfg(test)]
mod tests;
