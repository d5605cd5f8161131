//! OTLP protobuf straight to JSON, for span and metric documents: attributes and values are
//! read from the bytes as received (checked against the schema by `otlp::raw` when they
//! arrived) and written into the bulk body, with no model in between.
//!
//! Traces and metrics stay encoded through the pipeline; decoding them into owned values only
//! to write them out again would cost an allocation per attribute.

use std::ops::Range;

use crate::codec::{write_hex, write_json_str};
use crate::otlp::wire::{DecodeError, Fields, Wire};

/// One attribute: the ranges of its key and of its `AnyValue` message in the buffer.
#[derive(Debug, Clone)]
pub struct Kv {
    pub key: Range<usize>,
    /// Empty when the attribute has no value.
    pub value: Range<usize>,
}

/// Reads the `KeyValue` at `buf[s..e]` and appends it to `out`.
pub fn push_kv(buf: &[u8], s: usize, e: usize, out: &mut Vec<Kv>) -> Result<(), DecodeError> {
    let mut kv = Kv {
        key: s..s,
        value: s..s,
    };
    let mut f = Fields::new(buf, s, e);
    while let Some((field, wire)) = f.next_field()? {
        match (field, wire) {
            (1, Wire::Len(a, b)) => kv.key = a..b,
            (2, Wire::Len(a, b)) => kv.value = a..b,
            _ => {}
        }
    }
    out.push(kv);
    Ok(())
}

/// A string attribute's value, when it is a non-empty string.
pub fn str_attr<'a>(buf: &'a [u8], kvs: &[Kv], key: &str) -> Option<&'a str> {
    kvs.iter()
        .filter(|kv| &buf[kv.key.clone()] == key.as_bytes())
        .find_map(|kv| match any_str(buf, kv.value.clone()) {
            Some(s) if !s.is_empty() => Some(s),
            _ => None,
        })
}

/// The string in an `AnyValue`, if it holds one.
pub fn any_str(buf: &[u8], v: Range<usize>) -> Option<&str> {
    let mut f = Fields::new(buf, v.start, v.end);
    let mut found = None;
    while let Ok(Some((field, wire))) = f.next_field() {
        found = match (field, wire) {
            (1, Wire::Len(a, b)) => std::str::from_utf8(&buf[a..b]).ok(),
            (1..=7, _) => None,
            _ => found,
        };
    }
    found
}

/// Writes `kvs` as one JSON object, leaving out the keys `skip` names; geo coordinates are
/// merged into points (`geo`).
pub fn write_object(
    out: &mut Vec<u8>,
    buf: &[u8],
    kvs: &[Kv],
    skip: impl Fn(&[u8]) -> bool,
    stringify_maps: bool,
) -> Result<(), DecodeError> {
    out.push(b'{');
    let mut first = true;
    let mut points = super::geo::Points::default();
    for kv in kvs {
        let key = &buf[kv.key.clone()];
        if skip(key) {
            continue;
        }
        if key.ends_with(b"geo.location.lat") || key.ends_with(b"geo.location.lon") {
            let text = std::str::from_utf8(key).unwrap_or_default();
            if points.take(text, double(buf, kv.value.clone())) {
                continue;
            }
        }
        if !first {
            out.push(b',');
        }
        first = false;
        write_json_str(out, key);
        out.push(b':');
        write_value(out, buf, kv.value.clone(), stringify_maps, 0)?;
    }
    points.write(out, first);
    out.push(b'}');
    Ok(())
}

/// The double in an `AnyValue`, if it holds one.
fn double(buf: &[u8], v: Range<usize>) -> Option<f64> {
    let mut f = Fields::new(buf, v.start, v.end);
    let mut found = None;
    while let Ok(Some((field, wire))) = f.next_field() {
        found = match (field, wire) {
            (4, Wire::Fixed64(bits)) => Some(f64::from_bits(bits)),
            (1..=7, _) => None,
            _ => found,
        };
    }
    found
}

/// Writes an `AnyValue` as JSON: strings, booleans, integers and doubles (with a radix point,
/// so that Elasticsearch maps a new field as a double), arrays, maps as objects (or, with
/// `stringify_maps`, as their JSON text: metric attributes are time series dimensions, which
/// must be flat), bytes as hex. An unset value is `null`; a NaN or an infinity too, since JSON
/// has neither.
pub fn write_value(
    out: &mut Vec<u8>,
    buf: &[u8],
    v: Range<usize>,
    stringify_maps: bool,
    depth: usize,
) -> Result<(), DecodeError> {
    if depth > crate::otlp::logs::MAX_DEPTH {
        return Err(DecodeError::TooDeep(crate::otlp::logs::MAX_DEPTH));
    }
    // A oneof: the last member on the wire wins.
    let mut last = None;
    let mut f = Fields::new(buf, v.start, v.end);
    while let Some((field, wire)) = f.next_field()? {
        if (1..=7).contains(&field) {
            last = Some((field, wire));
        }
    }
    match last {
        None => out.extend_from_slice(b"null"),
        Some((1, Wire::Len(a, b))) => write_json_str(out, &buf[a..b]),
        Some((2, Wire::Varint(n))) => {
            out.extend_from_slice(if n != 0 { b"true" } else { b"false" })
        }
        Some((3, Wire::Varint(n))) => {
            out.extend_from_slice(itoa::Buffer::new().format(n as i64).as_bytes())
        }
        Some((4, Wire::Fixed64(bits))) => write_f64(out, f64::from_bits(bits)),
        Some((5, Wire::Len(a, b))) => {
            out.push(b'[');
            let mut items = Fields::new(buf, a, b);
            let mut first = true;
            while let Some((field, wire)) = items.next_field()? {
                if let (1, Wire::Len(s, e)) = (field, wire) {
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    write_value(out, buf, s..e, stringify_maps, depth + 1)?;
                }
            }
            out.push(b']');
        }
        Some((6, Wire::Len(a, b))) => {
            let mut kvs = Vec::new();
            let mut m = Fields::new(buf, a, b);
            while let Some((field, wire)) = m.next_field()? {
                if let (1, Wire::Len(s, e)) = (field, wire) {
                    push_kv(buf, s, e, &mut kvs)?;
                }
            }
            if stringify_maps {
                let mut text = Vec::new();
                write_nested(&mut text, buf, &kvs, depth)?;
                write_json_str(out, &text);
            } else {
                write_nested(out, buf, &kvs, depth)?;
            }
        }
        Some((7, Wire::Len(a, b))) => {
            out.push(b'"');
            write_hex(out, &buf[a..b]);
            out.push(b'"');
        }
        Some((field, wire)) => return Err(crate::otlp::wire::wrong(field, wire, v.start)),
    }
    Ok(())
}

/// A map inside a value: every key kept, nested maps as objects.
fn write_nested(
    out: &mut Vec<u8>,
    buf: &[u8],
    kvs: &[Kv],
    depth: usize,
) -> Result<(), DecodeError> {
    out.push(b'{');
    for (i, kv) in kvs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json_str(out, &buf[kv.key.clone()]);
        out.push(b':');
        write_value(out, buf, kv.value.clone(), false, depth + 1)?;
    }
    out.push(b'}');
    Ok(())
}

/// A double with a radix point (`1.0`, not `1`); `null` for NaN and infinities.
pub fn write_f64(out: &mut Vec<u8>, d: f64) {
    if d.is_finite() {
        out.extend_from_slice(ryu::Buffer::new().format_finite(d).as_bytes());
    } else {
        out.extend_from_slice(b"null");
    }
}

pub fn write_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// `,"name":"<hex>"` for an id that is set (not empty, not all zeros).
pub fn write_id(out: &mut Vec<u8>, name: &[u8], id: &[u8]) {
    if id.is_empty() || id.iter().all(|b| *b == 0) {
        return;
    }
    out.push(b',');
    out.extend_from_slice(name);
    out.extend_from_slice(b":\"");
    write_hex(out, id);
    out.push(b'"');
}

/// `,"name":"<text>"` for non-empty text.
pub fn write_str_field(out: &mut Vec<u8>, name: &[u8], text: &[u8]) {
    if text.is_empty() {
        return;
    }
    out.push(b',');
    out.extend_from_slice(name);
    out.push(b':');
    write_json_str(out, text);
}

/// `,"name":n` for a non-zero count.
pub fn write_count_field(out: &mut Vec<u8>, name: &[u8], n: u64) {
    if n == 0 {
        return;
    }
    out.push(b',');
    out.extend_from_slice(name);
    out.push(b':');
    write_u64(out, n);
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{
        AnyValue, ArrayValue, KeyValue, KeyValueList, any_value,
    };
    use prost::Message;

    fn kv(key: &str, v: any_value::Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(v) }),
            ..Default::default()
        }
    }

    fn object(kvs: &[KeyValue], stringify: bool) -> String {
        // Encoded as the attributes of a scope (field 3), then read back.
        let scope = opentelemetry_proto::tonic::common::v1::InstrumentationScope {
            attributes: kvs.to_vec(),
            ..Default::default()
        };
        let buf = scope.encode_to_vec();
        let mut found = Vec::new();
        let mut f = Fields::new(&buf, 0, buf.len());
        while let Some((field, wire)) = f.next_field().unwrap() {
            if let (3, Wire::Len(s, e)) = (field, wire) {
                push_kv(&buf, s, e, &mut found).unwrap();
            }
        }
        let mut out = Vec::new();
        write_object(&mut out, &buf, &found, |k| k == b"skip.me", stringify).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_value_kind_is_written_as_the_collector_writes_it() {
        use any_value::Value as V;
        let nested = KeyValueList {
            values: vec![kv("k", V::IntValue(1))],
        };
        let kvs = [
            kv("s", V::StringValue("a\"b".into())),
            kv("b", V::BoolValue(true)),
            kv("i", V::IntValue(-3)),
            kv("d", V::DoubleValue(2.0)),
            kv("nan", V::DoubleValue(f64::NAN)),
            kv(
                "a",
                V::ArrayValue(ArrayValue {
                    values: vec![AnyValue {
                        value: Some(V::StringValue("x".into())),
                    }],
                }),
            ),
            kv("m", V::KvlistValue(nested)),
            kv("bytes", V::BytesValue(vec![0xab, 0x01])),
            kv("skip.me", V::IntValue(9)),
            KeyValue {
                key: "unset".into(),
                value: None,
                ..Default::default()
            },
        ];
        assert_eq!(
            object(&kvs, false),
            r#"{"s":"a\"b","b":true,"i":-3,"d":2.0,"nan":null,"a":["x"],"m":{"k":1},"bytes":"ab01","unset":null}"#
        );
        assert!(
            object(&kvs, true).contains(r#""m":"{\"k\":1}""#),
            "metric dimensions are flat: a map is its JSON text"
        );
    }

    #[test]
    fn a_string_attribute_is_found_by_key() {
        use any_value::Value as V;
        let attr = kv("data_stream.dataset", V::StringValue("nginx".into()));
        let buf = attr.encode_to_vec();
        let mut kvs = Vec::new();
        push_kv(&buf, 0, buf.len(), &mut kvs).unwrap();
        assert_eq!(str_attr(&buf, &kvs, "data_stream.dataset"), Some("nginx"));
        assert_eq!(str_attr(&buf, &kvs, "data_stream.namespace"), None);
    }
}
