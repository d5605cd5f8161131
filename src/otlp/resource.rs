//! The resource of an encoded `ResourceSpans` / `ResourceMetrics` / `ResourceLogs` entry (as
//! [`super::raw::RawBatch`] holds them: the top-level field, tag included): its string
//! attributes read in place, and a copy of the entry with attributes added to it, for
//! processors that tag telemetry which otherwise stays encoded (`k8sattributes`).

use bytes::Bytes;

use super::wire::{DecodeError, Fields, Wire, put_varint};

/// The resource's attributes as `(key, string value)` (other value types as `None`), read
/// from `entry` without copying.
pub fn attributes(entry: &[u8]) -> Result<Vec<(&str, Option<&str>)>, DecodeError> {
    let mut out = Vec::new();
    let Some((body_start, body_end)) = body(entry)? else {
        return Ok(out);
    };
    let mut f = Fields::new(entry, body_start, body_end);
    while let Some((field, wire)) = f.next_field()? {
        let (1, Wire::Len(rs, re)) = (field, wire) else {
            continue;
        };
        let mut r = Fields::new(entry, rs, re);
        while let Some((field, wire)) = r.next_field()? {
            if let (1, Wire::Len(ks, ke)) = (field, wire) {
                out.push(key_value(entry, ks, ke)?);
            }
        }
    }
    Ok(out)
}

/// The top-level field's content.
fn body(entry: &[u8]) -> Result<Option<(usize, usize)>, DecodeError> {
    let mut top = Fields::new(entry, 0, entry.len());
    match top.next_field()? {
        Some((1, Wire::Len(s, e))) => Ok(Some((s, e))),
        _ => Ok(None),
    }
}

fn key_value(buf: &[u8], s: usize, e: usize) -> Result<(&str, Option<&str>), DecodeError> {
    let (mut key, mut value) = ("", None);
    let mut f = Fields::new(buf, s, e);
    while let Some((field, wire)) = f.next_field()? {
        match (field, wire) {
            (1, Wire::Len(a, b)) => key = std::str::from_utf8(&buf[a..b]).unwrap_or(""),
            (2, Wire::Len(a, b)) => {
                let mut v = Fields::new(buf, a, b);
                while let Some((field, wire)) = v.next_field()? {
                    if let (1, Wire::Len(x, y)) = (field, wire) {
                        value = std::str::from_utf8(&buf[x..y]).ok();
                    }
                }
            }
            _ => {}
        }
    }
    Ok((key, value))
}

fn put_len_field(out: &mut Vec<u8>, field: u32, content: &[u8]) {
    put_varint(out, u64::from(field << 3 | 2));
    put_varint(out, content.len() as u64);
    out.extend_from_slice(content);
}

/// A copy of `entry` whose resource also has `added` (string attributes). Every other field
/// is carried over as it was; the resource becomes the first field.
pub fn with_attributes(entry: &[u8], added: &[(&str, &str)]) -> Result<Bytes, DecodeError> {
    let Some((body_start, body_end)) = body(entry)? else {
        return Ok(Bytes::copy_from_slice(entry));
    };
    let mut resource = Vec::new();
    let mut rest = Vec::with_capacity(body_end - body_start);
    let mut f = Fields::new(entry, body_start, body_end);
    while let Some((field, wire)) = f.next_field()? {
        match (field, wire) {
            // Several resource fields merge, as protobuf's rules say; one is written.
            (1, Wire::Len(a, b)) => resource.extend_from_slice(&entry[a..b]),
            (n, Wire::Len(a, b)) => put_len_field(&mut rest, n, &entry[a..b]),
            (n, Wire::Varint(v)) => {
                put_varint(&mut rest, u64::from(n << 3));
                put_varint(&mut rest, v);
            }
            (n, Wire::Fixed64(v)) => {
                put_varint(&mut rest, u64::from(n << 3 | 1));
                rest.extend_from_slice(&v.to_le_bytes());
            }
            (n, Wire::Fixed32(v)) => {
                put_varint(&mut rest, u64::from(n << 3 | 5));
                rest.extend_from_slice(&v.to_le_bytes());
            }
        }
    }
    let (mut any, mut kv) = (Vec::new(), Vec::new());
    for (k, v) in added {
        any.clear();
        put_len_field(&mut any, 1, v.as_bytes());
        kv.clear();
        put_len_field(&mut kv, 1, k.as_bytes());
        put_len_field(&mut kv, 2, &any);
        put_len_field(&mut resource, 1, &kv);
    }
    let mut new_body = Vec::with_capacity(resource.len() + rest.len() + 8);
    put_len_field(&mut new_body, 1, &resource);
    new_body.extend_from_slice(&rest);
    let mut out = Vec::with_capacity(new_body.len() + 6);
    put_len_field(&mut out, 1, &new_body);
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use prost::Message;

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(v.into())),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn attributes_are_added_to_the_resource_and_everything_else_is_kept() {
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", "checkout")],
                    dropped_attributes_count: 2,
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span {
                        name: "GET /".into(),
                        trace_id: vec![1; 16],
                        span_id: vec![2; 8],
                        start_time_unix_nano: 5,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
            }],
        };
        let bytes = Bytes::from(request.encode_to_vec());
        let batch = crate::otlp::raw::decode_traces(&bytes).unwrap();
        let entry = &batch.resources[0].0;
        assert_eq!(
            attributes(entry).unwrap(),
            vec![("service.name", Some("checkout"))]
        );
        let tagged = with_attributes(entry, &[("k8s.pod.name", "checkout-a")]).unwrap();
        let got = ExportTraceServiceRequest::decode(&tagged[..]).unwrap();
        let mut want = request.clone();
        let r = want.resource_spans[0].resource.as_mut().unwrap();
        r.attributes.push(kv("k8s.pod.name", "checkout-a"));
        assert_eq!(got, want);
        // Still a valid request, holding the same span.
        let again = crate::otlp::raw::decode_traces(&tagged).unwrap();
        assert_eq!(again.len(), 1);
    }

    #[test]
    fn an_entry_without_a_resource_gets_one() {
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span {
                        trace_id: vec![1; 16],
                        span_id: vec![2; 8],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let bytes = Bytes::from(request.encode_to_vec());
        let entry = &crate::otlp::raw::decode_traces(&bytes).unwrap().resources[0].0;
        assert!(attributes(entry).unwrap().is_empty());
        let tagged = with_attributes(entry, &[("k8s.pod.uid", "u")]).unwrap();
        let got = ExportTraceServiceRequest::decode(&tagged[..]).unwrap();
        assert_eq!(
            got.resource_spans[0].resource.as_ref().unwrap().attributes,
            vec![kv("k8s.pod.uid", "u")]
        );
        assert_eq!(
            got.resource_spans[0].scope_spans,
            request.resource_spans[0].scope_spans
        );
    }
}
