//! OTLP/JSON traces and metrics (`application/json` on `/v1/traces`, `/v1/metrics`) to the
//! protobuf bytes the rest of sluice forwards.
//!
//! Traces and metrics are kept encoded end to end (see [`super::raw`]), so JSON is turned into
//! protobuf once, at the edge, and then checked and cut per resource like any protobuf request.
//! The mapping is the OpenTelemetry project's own (`opentelemetry-proto` with `with-serde`):
//! lowerCamelCase names, hex trace and span ids, 64-bit integers as strings or numbers,
//! integer enums, unknown fields ignored. JSON is the slow path by nature; this trades speed
//! for following the reference mapping exactly.

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use serde::de::DeserializeOwned;

use super::json::JsonError;
use super::raw::{self, RawBatch};

/// Decodes an `ExportTraceServiceRequest` in OTLP/JSON.
pub fn decode_traces(body: &[u8]) -> Result<RawBatch, JsonError> {
    let bytes = to_protobuf::<ExportTraceServiceRequest>(body)?;
    raw::decode_traces(&bytes).map_err(checked)
}

/// Decodes an `ExportMetricsServiceRequest` in OTLP/JSON.
pub fn decode_metrics(body: &[u8]) -> Result<RawBatch, JsonError> {
    let bytes = to_protobuf::<ExportMetricsServiceRequest>(body)?;
    raw::decode_metrics(&bytes).map_err(checked)
}

fn to_protobuf<T: DeserializeOwned + Message>(body: &[u8]) -> Result<Bytes, JsonError> {
    let empty_lists = super::json::scan(body)?;
    let body = with_empty_values(body, &empty_lists);
    let mut de = super::json::parser(&body);
    let request: T = serde_path_to_error::deserialize(&mut de).map_err(|e| JsonError {
        path: json_path(&e.path().to_string()),
        message: e.into_inner().to_string(),
    })?;
    de.end().map_err(|e| JsonError {
        path: "$".into(),
        message: e.to_string(),
    })?;
    Ok(Bytes::from(request.encode_to_vec()))
}

/// `body` with `"values":[]` written into each empty list value: `opentelemetry-proto`'s
/// mapping requires the field, where protobuf's JSON mapping omits an empty list (the
/// Collector's OTLP/JSON exporter writes `{"arrayValue":{}}`).
fn with_empty_values<'a>(body: &'a [u8], at: &[usize]) -> std::borrow::Cow<'a, [u8]> {
    if at.is_empty() {
        return body.into();
    }
    const VALUES: &[u8] = b"\"values\":[]";
    let mut out = Vec::with_capacity(body.len() + at.len() * VALUES.len());
    let mut from = 0;
    for &i in at {
        out.extend_from_slice(&body[from..i]);
        out.extend_from_slice(VALUES);
        from = i;
    }
    out.extend_from_slice(&body[from..]);
    out.into()
}

/// `serde_path_to_error` writes `a.b[0]`, and `.` for the root.
fn json_path(path: &str) -> String {
    if path.is_empty() || path == "." {
        "$".into()
    } else {
        path.into()
    }
}

/// What the schema check finds after the mapping (an id of the wrong length, too deep).
fn checked(e: super::wire::DecodeError) -> JsonError {
    JsonError {
        path: "$".into(),
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_specification_examples_decode() {
        let traces = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/otlp/trace.json"
        ))
        .unwrap();
        let batch = decode_traces(&traces).unwrap();
        assert_eq!(batch.len(), 1, "one span");
        let mut out = Vec::new();
        batch.encode(&mut out);
        let req = ExportTraceServiceRequest::decode(&out[..]).unwrap();
        let span = &req.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(
            span.trace_id,
            [
                0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f,
                0xc6, 0x0c
            ],
            "upper-case hex, as the example writes it"
        );
        assert_eq!(span.start_time_unix_nano, 1_544_712_660_000_000_000);
        assert_eq!(span.kind, 2);

        let metrics = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/otlp/metrics.json"
        ))
        .unwrap();
        let batch = decode_metrics(&metrics).unwrap();
        assert_eq!(batch.len(), 4, "a sum, a gauge and two histogram points");
    }

    #[test]
    fn errors_name_the_field_and_what_was_wrong() {
        let bad_hex = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}"#;
        let e = decode_traces(bad_hex).unwrap_err();
        assert_eq!(e.path, "resourceSpans[0].scopeSpans[0].spans[0].traceId");

        let short = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"abcd"}]}]}]}"#;
        let e = decode_traces(short).unwrap_err();
        assert!(e.message.contains("16 bytes"), "{e}");

        let e = decode_metrics(b"{\"resourceMetrics\": 3}").unwrap_err();
        assert_eq!(e.path, "resourceMetrics");
        assert!(decode_metrics(b"{} trailing").is_err());
        assert!(decode_metrics(b"not json").is_err());
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let json = br#"{"resourceSpans":[{"futureField":1,"scopeSpans":[{"spans":[
            {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
             "name":"s","newThing":{"a":1}}]}]}]}"#;
        assert_eq!(decode_traces(json).unwrap().len(), 1);
    }

    /// Found by the `otlp_nesting` fuzz target: an empty list written as protobuf's JSON
    /// mapping writes it (no `values`) was refused, and so was any value nested more than about
    /// 30 levels (serde_json's own 128-level limit), though protobuf takes 32.
    #[test]
    fn empty_lists_and_values_nested_to_the_limit_read_as_their_protobuf_does() {
        let span = |value: &str| {
            format!(
                r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"name":"s",
                "attributes":[{{"key":"a","value":{value}}}]}}]}}]}}]}}"#
            )
        };
        for empty in [r#"{"arrayValue":{}}"#, r#"{"kvlistValue": { } }"#] {
            let batch = decode_traces(span(empty).as_bytes()).unwrap();
            let mut out = Vec::new();
            batch.encode(&mut out);
            let req = ExportTraceServiceRequest::decode(&out[..]).unwrap();
            let value = &req.resource_spans[0].scope_spans[0].spans[0].attributes[0].value;
            assert!(
                value.as_ref().unwrap().value.is_some(),
                "{empty}: an empty list"
            );
        }
        let nested = |depth: usize| {
            (1..depth).fold(r#"{"stringValue":"x"}"#.to_string(), |inner, _| {
                format!(r#"{{"kvlistValue":{{"values":[{{"key":"k","value":{inner}}}]}}}}"#)
            })
        };
        let max = crate::otlp::logs::MAX_DEPTH;
        assert!(decode_traces(span(&nested(max)).as_bytes()).is_ok());
        assert!(decode_traces(span(&nested(max + 1)).as_bytes()).is_err());
        let e = decode_traces(&[b'['; 10_000]).unwrap_err();
        assert!(e.message.contains("nested deeper"), "{e}");
        // A quote or bracket inside a string is text, not structure.
        let text = span(r#"{"stringValue":"\"[[[{{{\\"}"#);
        assert!(decode_traces(text.as_bytes()).is_ok());
    }
}
