//! The resource and the instrumentation scope of encoded spans and metrics: read once per
//! `ResourceSpans` / `ScopeSpans` (or the metrics equivalents) and rendered once as JSON, which
//! every document under them copies.

use std::ops::Range;

use super::wire_json::{Kv, push_kv, write_count_field, write_object, write_str_field};
use crate::otlp::wire::{DecodeError, Fields, Wire};

/// Attributes that steer the exporter rather than describe the telemetry: the data stream
/// ones (written as the document's `data_stream` instead) and the Elasticsearch-specific ones
/// the Collector reserves (`elasticsearch.index`, `elasticsearch.document_id`,
/// `elasticsearch.ingest_pipeline`, `elasticsearch.mapping.hints`, `elastic.mapping.mode`).
/// Never written into an `otel` document's attributes, as the Collector leaves them out.
pub fn is_routing(key: &[u8]) -> bool {
    matches!(
        key,
        b"data_stream.dataset"
            | b"data_stream.namespace"
            | b"data_stream.type"
            | b"elasticsearch.index"
            | b"elasticsearch.document_id"
            | b"elasticsearch.ingest_pipeline"
            | b"elasticsearch.mapping.hints"
            | b"elastic.mapping.mode"
    )
}

/// A resource or scope: its attributes (for routing) and its JSON, `"resource":{...}` or
/// `"scope":{...}`.
#[derive(Default)]
pub struct Rendered {
    pub kvs: Vec<Kv>,
    pub json: Vec<u8>,
    /// A scope's name, in the buffer it was rendered from.
    pub name: Range<usize>,
}

/// The top-level fields of a `ResourceSpans`/`ResourceMetrics` or of a `ScopeSpans` /
/// `ScopeMetrics`: the resource or scope (field 1), the repeated children (field 2) and the
/// schema URL (field 3).
pub struct Parts {
    /// Every occurrence of the resource or scope field: protobuf merges them into one message
    /// (as the log decoder does), so all are read, in order.
    pub head: Vec<Range<usize>>,
    pub children: Vec<Range<usize>>,
    pub schema_url: Range<usize>,
}

impl Parts {
    pub fn read(buf: &[u8], s: usize, e: usize) -> Result<Parts, DecodeError> {
        let mut parts = Parts {
            head: Vec::new(),
            children: Vec::new(),
            schema_url: s..s,
        };
        let mut f = Fields::new(buf, s, e);
        while let Some((field, wire)) = f.next_field()? {
            match (field, wire) {
                (1, Wire::Len(a, b)) => parts.head.push(a..b),
                (2, Wire::Len(a, b)) => parts.children.push(a..b),
                (3, Wire::Len(a, b)) => parts.schema_url = a..b,
                _ => {}
            }
        }
        Ok(parts)
    }
}

/// Which message a [`Rendered`] is made from. A `Resource` has attributes (1) and a dropped
/// count (2); an `InstrumentationScope` a name (1), a version (2), attributes (3) and a dropped
/// count (4).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Of {
    Resource,
    Scope,
}

impl Rendered {
    /// `"resource":{"schema_url":..,"attributes":{..},"dropped_attributes_count":n}` or
    /// `"scope":{"schema_url":..,"name":..,"version":..,"attributes":{..},
    /// "dropped_attributes_count":n}`, as the Collector writes them.
    pub fn render(
        &mut self,
        of: Of,
        buf: &[u8],
        msgs: &[Range<usize>],
        schema_url: Range<usize>,
        stringify: bool,
    ) -> Result<(), DecodeError> {
        self.kvs.clear();
        self.json.clear();
        let (attrs, dropped_field) = if of == Of::Resource { (1, 2) } else { (3, 4) };
        let (mut name, mut version, mut dropped) = (0..0, 0..0, 0);
        for msg in msgs {
            let mut f = Fields::new(buf, msg.start, msg.end);
            while let Some((field, wire)) = f.next_field()? {
                match (field, wire) {
                    (n, Wire::Len(a, b)) if n == attrs => push_kv(buf, a, b, &mut self.kvs)?,
                    // Cut to 32 bits, as the log decoder reads it.
                    (n, Wire::Varint(v)) if n == dropped_field => dropped = v as u32,
                    (1, Wire::Len(a, b)) if of == Of::Scope => name = a..b,
                    (2, Wire::Len(a, b)) if of == Of::Scope => version = a..b,
                    _ => {}
                }
            }
        }
        self.name = name.clone();
        let out = &mut self.json;
        let key: &[u8] = if of == Of::Resource {
            b"\"resource\":"
        } else {
            b"\"scope\":"
        };
        out.extend_from_slice(key);
        let open = out.len();
        write_str_field(out, b"\"schema_url\"", &buf[schema_url]);
        write_str_field(out, b"\"name\"", &buf[name]);
        write_str_field(out, b"\"version\"", &buf[version]);
        if !self.kvs.is_empty() {
            out.extend_from_slice(b",\"attributes\":");
            write_object(out, buf, &self.kvs, is_routing, stringify)?;
        }
        write_count_field(out, b"\"dropped_attributes_count\"", u64::from(dropped));
        close_object(out, open);
        Ok(())
    }
}

/// Walks the `ResourceSpans` / `ResourceMetrics` of one batch entry: renders each resource and
/// scope into `resource` and `scope`, then hands `each` the scope's children (spans or
/// metrics).
pub fn walk(
    buf: &[u8],
    stringify: bool,
    resource: &mut Rendered,
    scope: &mut Rendered,
    mut each: impl FnMut(&Rendered, &Rendered, &[Range<usize>]) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    let mut top = Fields::new(buf, 0, buf.len());
    while let Some((field, wire)) = top.next_field()? {
        let (1, Wire::Len(rs, re)) = (field, wire) else {
            continue;
        };
        let r = Parts::read(buf, rs, re)?;
        resource.render(Of::Resource, buf, &r.head, r.schema_url, stringify)?;
        for child in &r.children {
            let s = Parts::read(buf, child.start, child.end)?;
            scope.render(Of::Scope, buf, &s.head, s.schema_url, stringify)?;
            each(resource, scope, &s.children)?;
        }
    }
    Ok(())
}

/// Closes an object whose members were written from `open` on, each after a comma (as the
/// field writers write them, so none needs to know whether it is first): the first comma
/// becomes the opening brace, or, with no member, the brace is added. Nothing is moved.
pub fn close_object(out: &mut Vec<u8>, open: usize) {
    if out.len() == open {
        out.push(b'{');
    } else {
        debug_assert_eq!(out[open], b',');
        out[open] = b'{';
    }
    out.push(b'}');
}

/// The dataset of an item under `scope`: the one a receiver's scope name gives, else the
/// `data_stream.dataset` attribute of the item, its scope or its resource.
pub fn route_dataset<'a>(
    buf: &'a [u8],
    own: &[Kv],
    scope: &Rendered,
    resource: &Rendered,
) -> Option<&'a str> {
    std::str::from_utf8(&buf[scope.name.clone()])
        .ok()
        .and_then(super::routing::receiver_dataset)
        .or_else(|| route(buf, own, scope, resource, super::routing::DATASET))
}

/// Finds a routing attribute's value: the item's own attributes first, then the scope's,
/// then the resource's.
pub fn route<'a>(
    buf: &'a [u8],
    own: &[Kv],
    scope: &Rendered,
    resource: &Rendered,
    key: &str,
) -> Option<&'a str> {
    use super::wire_json::str_attr;
    str_attr(buf, own, key)
        .or_else(|| str_attr(buf, &scope.kvs, key))
        .or_else(|| str_attr(buf, &resource.kvs, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_comma_becomes_the_opening_brace() {
        let mut a = b"\"scope\":".to_vec();
        let open = a.len();
        a.extend_from_slice(b",\"name\":\"x\",\"version\":\"1\"");
        close_object(&mut a, open);
        assert_eq!(a, b"\"scope\":{\"name\":\"x\",\"version\":\"1\"}");
        let mut b = b"\"scope\":".to_vec();
        let open = b.len();
        close_object(&mut b, open);
        assert_eq!(b, b"\"scope\":{}");
    }
}
