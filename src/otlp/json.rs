//! OTLP/JSON logs (`application/json` on `/v1/logs`) to [`LogBatch`].
//!
//! Follows the OTLP/JSON rules: lowerCamelCase names (the proto names are accepted too, as
//! protobuf's JSON mapping allows), trace and span ids as hex, 64-bit integers as strings or
//! numbers, enums as integers (or their names), bytes values as base64, unknown fields ignored.
//! JSON is the slow path by nature, so this maps a parsed `serde_json::Value` and copies strings.

use base64::Engine;
use serde_json::{Map, Value as Json};

use crate::model::{KeyValue, LogBatch, LogRecord, Origin, Severity, Str, Value};

use super::logs::MAX_DEPTH;

/// The most memory decoding an OTLP/JSON request may take: the parsed document, then what is
/// made of it while the document is still held. An object costs up to a kilobyte parsed (its
/// map's first node) and decoded (a record), a further element or entry (after a `,`) up to
/// 128 bytes, and text a few bytes per byte; counting the body's `{` and `,` (strings included,
/// so it errs high) bounds what a body of any shape costs, where a bound per byte would have to
/// assume every body is all empty objects. `tests/request_cost.rs` measures the costliest
/// shapes against it.
pub fn cost(body: &[u8]) -> u64 {
    let objects = memchr::memchr_iter(b'{', body).count() as u64;
    let elements = memchr::memchr_iter(b',', body).count() as u64;
    4 * body.len() as u64 + 1024 * objects + 128 * elements
}

/// What was wrong and where, as a path into the document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct JsonError {
    pub path: String,
    pub message: String,
}

fn err<T>(path: &str, message: impl Into<String>) -> Result<T, JsonError> {
    Err(JsonError {
        path: if path.is_empty() {
            "$".into()
        } else {
            path.into()
        },
        message: message.into(),
    })
}

/// How deep an OTLP/JSON document may nest: the envelope (a dozen levels down to a data point's
/// attributes) plus four per `AnyValue` level (`{"kvlistValue":{"values":[{"key":..,"value":`).
/// A value [`MAX_DEPTH`] deep is read as its protobuf form is; serde_json's own limit (128
/// levels) refused it.
pub const MAX_JSON_NESTING: usize = 16 + 4 * MAX_DEPTH;

/// One pass over an OTLP/JSON body before it is parsed: refuses nesting deeper than
/// [`MAX_JSON_NESTING`] before any parser recurses into it, and returns where an empty
/// `arrayValue` / `kvlistValue` object (`{}`, as protobuf's JSON mapping writes an empty list)
/// ends, for readers that need its `values` spelled out.
pub fn scan(body: &[u8]) -> Result<Vec<usize>, JsonError> {
    const LISTS: [&[u8]; 4] = [
        b"arrayValue",
        b"kvlistValue",
        b"array_value",
        b"kvlist_value",
    ];
    let mut empty_lists = Vec::new();
    let mut depth = 0usize;
    let mut last = 0..0; // the last string: the key, when a ':' follows it
    let mut keyed = false;
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'"' => {
                let start = i + 1;
                i = start;
                while i < body.len() && body[i] != b'"' {
                    i += if body[i] == b'\\' { 2 } else { 1 };
                }
                last = start..i.min(body.len());
                keyed = false;
            }
            b':' => keyed = true,
            open @ (b'{' | b'[') => {
                depth += 1;
                if depth > MAX_JSON_NESTING {
                    return err(
                        "",
                        format!("JSON nested deeper than {MAX_JSON_NESTING} levels"),
                    );
                }
                if open == b'{' && keyed && LISTS.contains(&&body[last.clone()]) {
                    let rest = &body[i + 1..];
                    let close = rest.iter().position(|b| !b.is_ascii_whitespace());
                    if close.is_some_and(|c| rest[c] == b'}') {
                        empty_lists.push(i + 1);
                    }
                }
                keyed = false;
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b',' => keyed = false,
            _ => {}
        }
        i += 1;
    }
    Ok(empty_lists)
}

/// A parser for a body [`scan`] has passed: its nesting is bounded, so serde_json's own fixed
/// limit (128 levels, which refused values protobuf accepts) is lifted.
pub fn parser(body: &[u8]) -> serde_json::Deserializer<serde_json::de::SliceRead<'_>> {
    let mut de = serde_json::Deserializer::from_slice(body);
    de.disable_recursion_limit();
    de
}

/// Decodes an `ExportLogsServiceRequest` in OTLP/JSON.
pub fn decode_logs(body: &[u8]) -> Result<LogBatch, JsonError> {
    use serde::Deserialize;
    scan(body)?;
    let mut de = parser(body);
    let doc = Json::deserialize(&mut de)
        .and_then(|doc| de.end().map(|()| doc))
        .or_else(|e| err("", format!("invalid JSON: {e}")))?;
    let root = object(&doc, "")?;
    let mut batch = LogBatch::default();
    let mut items = 0;
    for (i, rl) in array(root, &["resourceLogs", "resource_logs"], "")?
        .iter()
        .enumerate()
    {
        let path = format!("resourceLogs[{i}]");
        let rl = object(rl, &path)?;
        let mut resource = Origin::default();
        if let Some(r) = field(rl, &["resource"]) {
            let rpath = format!("{path}.resource");
            let r = object(r, &rpath)?;
            // Shared by every scope below it.
            resource.resource = attributes(r, &rpath, 0)?.into();
            resource.resource_dropped_attributes_count = uint32(r, &rpath)?;
        }
        resource.resource_schema_url = string(rl, &["schemaUrl", "schema_url"], &path)?;
        for (j, sl) in array(rl, &["scopeLogs", "scope_logs"], &path)?
            .iter()
            .enumerate()
        {
            let spath = format!("{path}.scopeLogs[{j}]");
            let sl = object(sl, &spath)?;
            let mut origin = Origin {
                resource: resource.resource.clone(),
                resource_schema_url: resource.resource_schema_url.clone(),
                resource_dropped_attributes_count: resource.resource_dropped_attributes_count,
                scope_schema_url: string(sl, &["schemaUrl", "schema_url"], &spath)?,
                ..Default::default()
            };
            if let Some(scope) = field(sl, &["scope"]) {
                let path = format!("{spath}.scope");
                let scope = object(scope, &path)?;
                origin.scope_name = string(scope, &["name"], &path)?;
                origin.scope_version = string(scope, &["version"], &path)?;
                origin.scope_attributes = attributes(scope, &path, 0)?.into();
                origin.scope_dropped_attributes_count = uint32(scope, &path)?;
            }
            let records = array(sl, &["logRecords", "log_records"], &spath)?;
            // As the protobuf decoder counts them, before the records are made.
            items += 1 + records.len();
            if let Err(e) = super::logs::check_density(items, body.len()) {
                return err(&spath, e.to_string());
            }
            if records.is_empty() {
                continue;
            }
            let index = batch.origins.len() as u32;
            batch.origins.push(origin);
            for (k, r) in records.iter().enumerate() {
                let path = format!("{spath}.logRecords[{k}]");
                batch.records.push(record(object(r, &path)?, &path, index)?);
            }
        }
    }
    Ok(batch)
}

fn record(r: &Map<String, Json>, path: &str, origin: u32) -> Result<LogRecord, JsonError> {
    Ok(LogRecord {
        origin,
        time_unix_nano: uint64(r, &["timeUnixNano", "time_unix_nano"], path)?,
        observed_time_unix_nano: uint64(
            r,
            &["observedTimeUnixNano", "observed_time_unix_nano"],
            path,
        )?,
        severity_number: severity_number(r, path)?,
        severity_text: string(r, &["severityText", "severity_text"], path)?,
        body: match field(r, &["body"]) {
            Some(b) => any_value(b, &format!("{path}.body"), 1)?,
            None => Value::Empty,
        },
        attributes: attributes(r, path, 0)?,
        dropped_attributes_count: uint32(r, path)?,
        flags: u32::try_from(uint64(r, &["flags"], path)?)
            .or_else(|_| err(path, "flags does not fit in 32 bits"))?,
        trace_id: hex_id(r, &["traceId", "trace_id"], path)?,
        span_id: hex_id(r, &["spanId", "span_id"], path)?,
        event_name: string(r, &["eventName", "event_name"], path)?,
    })
}

fn field<'a>(obj: &'a Map<String, Json>, names: &[&str]) -> Option<&'a Json> {
    names
        .iter()
        .find_map(|n| obj.get(*n))
        .filter(|v| !v.is_null())
}

fn object<'a>(v: &'a Json, path: &str) -> Result<&'a Map<String, Json>, JsonError> {
    v.as_object()
        .map_or_else(|| err(path, "expected an object"), Ok)
}

fn array<'a>(
    obj: &'a Map<String, Json>,
    names: &[&str],
    path: &str,
) -> Result<&'a [Json], JsonError> {
    match field(obj, names) {
        None => Ok(&[]),
        Some(Json::Array(items)) => Ok(items),
        Some(_) => err(&join(path, names[0]), "expected an array"),
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn string(obj: &Map<String, Json>, names: &[&str], path: &str) -> Result<Str, JsonError> {
    match field(obj, names) {
        None => Ok(Str::default()),
        Some(Json::String(s)) => Ok(Str::from(s.clone())),
        Some(_) => err(&join(path, names[0]), "expected a string"),
    }
}

/// A 64-bit integer, which protobuf's JSON mapping writes as a string (numbers are accepted).
fn int64(v: &Json, path: &str) -> Result<i64, JsonError> {
    match v {
        Json::String(s) => s
            .parse::<i64>()
            .or_else(|_| err(path, format!("{s:?} is not a 64-bit integer"))),
        Json::Number(n) => n
            .as_i64()
            .map_or_else(|| err(path, format!("{n} is not a 64-bit integer")), Ok),
        _ => err(path, "expected an integer"),
    }
}

fn uint64(obj: &Map<String, Json>, names: &[&str], path: &str) -> Result<u64, JsonError> {
    let path = join(path, names[0]);
    match field(obj, names) {
        None => Ok(0),
        Some(Json::String(s)) => s
            .parse::<u64>()
            .or_else(|_| err(&path, format!("{s:?} is not an unsigned 64-bit integer"))),
        Some(Json::Number(n)) => n.as_u64().map_or_else(
            || err(&path, format!("{n} is not an unsigned 64-bit integer")),
            Ok,
        ),
        Some(_) => err(&path, "expected an integer"),
    }
}

fn uint32(obj: &Map<String, Json>, path: &str) -> Result<u32, JsonError> {
    let names = ["droppedAttributesCount", "dropped_attributes_count"];
    u32::try_from(uint64(obj, &names, path)?)
        .or_else(|_| err(&join(path, names[0]), "does not fit in 32 bits"))
}

fn severity_number(obj: &Map<String, Json>, path: &str) -> Result<u8, JsonError> {
    let names = ["severityNumber", "severity_number"];
    let path = join(path, names[0]);
    match field(obj, &names) {
        None => Ok(0),
        Some(Json::Number(n)) => n
            .as_u64()
            .and_then(|n| u8::try_from(n).ok())
            .filter(|&n| n <= 24)
            .map_or_else(
                || err(&path, format!("{n} is not a severity number (0-24)")),
                Ok,
            ),
        // Protobuf's JSON mapping also allows the enum's name.
        Some(Json::String(s)) => {
            let name = s.strip_prefix("SEVERITY_NUMBER_").unwrap_or(s);
            let base = name.trim_end_matches(|c: char| c.is_ascii_digit());
            let step = name[base.len()..].parse::<u8>().unwrap_or(1);
            match (Severity::parse(base), name) {
                (_, "UNSPECIFIED") => Ok(0),
                (Some(sev), _) if (1..=4).contains(&step) => Ok(sev as u8 + step - 1),
                _ => err(&path, format!("{s:?} is not a severity number")),
            }
        }
        Some(_) => err(&path, "expected an integer"),
    }
}

fn hex_id<const N: usize>(
    obj: &Map<String, Json>,
    names: &[&str],
    path: &str,
) -> Result<[u8; N], JsonError> {
    let path = join(path, names[0]);
    let s = match field(obj, names) {
        None => return Ok([0; N]),
        Some(Json::String(s)) => s,
        Some(_) => return err(&path, "expected a hex string"),
    };
    if s.is_empty() {
        return Ok([0; N]);
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    if b.len() != 2 * N {
        return err(
            &path,
            format!("must be {} hex digits, not {}", 2 * N, b.len()),
        );
    }
    let mut id = [0u8; N];
    for (i, out) in id.iter_mut().enumerate() {
        match (digit(b[2 * i]), digit(b[2 * i + 1])) {
            (Some(hi), Some(lo)) => *out = hi << 4 | lo,
            _ => return err(&path, format!("{s:?} is not hex")),
        }
    }
    Ok(id)
}

fn attributes(
    obj: &Map<String, Json>,
    path: &str,
    depth: usize,
) -> Result<Vec<KeyValue>, JsonError> {
    let path = join(path, "attributes");
    let items = array(obj, &["attributes"], "")?;
    key_values(items, &path, depth)
}

fn key_values(items: &[Json], path: &str, depth: usize) -> Result<Vec<KeyValue>, JsonError> {
    items
        .iter()
        .enumerate()
        .map(|(i, kv)| {
            let path = format!("{path}[{i}]");
            let kv = object(kv, &path)?;
            let key = string(kv, &["key"], &path)?;
            let value = match field(kv, &["value"]) {
                Some(v) => any_value(v, &format!("{path}.value"), depth + 1)?,
                None => Value::Empty,
            };
            Ok((key, value))
        })
        .collect()
}

fn any_value(v: &Json, path: &str, depth: usize) -> Result<Value, JsonError> {
    if depth > MAX_DEPTH {
        return err(
            path,
            format!("values nested deeper than {MAX_DEPTH} levels"),
        );
    }
    let obj = object(v, path)?;
    let Some((name, inner)) = obj.iter().find(|(_, v)| !v.is_null()) else {
        return Ok(Value::Empty);
    };
    let inner_path = format!("{path}.{name}");
    Ok(match name.as_str() {
        "stringValue" | "string_value" => match inner {
            Json::String(s) => Value::Str(Str::from(s.clone())),
            _ => return err(&inner_path, "expected a string"),
        },
        "boolValue" | "bool_value" => match inner {
            Json::Bool(b) => Value::Bool(*b),
            _ => return err(&inner_path, "expected true or false"),
        },
        "intValue" | "int_value" => Value::Int(int64(inner, &inner_path)?),
        "doubleValue" | "double_value" => match inner {
            Json::Number(n) => Value::Double(n.as_f64().unwrap_or(f64::NAN)),
            Json::String(s) => match s.as_str() {
                "NaN" => Value::Double(f64::NAN),
                "Infinity" => Value::Double(f64::INFINITY),
                "-Infinity" => Value::Double(f64::NEG_INFINITY),
                _ => s
                    .parse::<f64>()
                    .map(Value::Double)
                    .or_else(|_| err(&inner_path, format!("{s:?} is not a number")))?,
            },
            _ => return err(&inner_path, "expected a number"),
        },
        "bytesValue" | "bytes_value" => match inner {
            Json::String(s) => base64::engine::general_purpose::STANDARD
                .decode(s)
                .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(s))
                .map(|b| Value::Bytes(b.into()))
                .or_else(|_| err(&inner_path, "is not base64"))?,
            _ => return err(&inner_path, "expected a base64 string"),
        },
        "arrayValue" | "array_value" => {
            let items = array(object(inner, &inner_path)?, &["values"], &inner_path)?;
            Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| any_value(v, &format!("{inner_path}.values[{i}]"), depth + 1))
                    .collect::<Result<_, _>>()?,
            )
        }
        "kvlistValue" | "kvlist_value" => {
            let items = array(object(inner, &inner_path)?, &["values"], &inner_path)?;
            Value::Map(key_values(items, &format!("{inner_path}.values"), depth)?)
        }
        other => return err(path, format!("unknown AnyValue member {other:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::get_attr;

    /// `examples/logs.json` of the opentelemetry-proto repository.
    const SPEC_EXAMPLE: &str = include_str!("../../tests/fixtures/otlp/logs.json");

    #[test]
    fn decodes_the_specification_example() {
        let b = decode_logs(SPEC_EXAMPLE.as_bytes()).unwrap();
        assert_eq!(b.records.len(), 1);
        let o = &b.origins[0];
        assert_eq!(
            get_attr(&o.resource, "service.name")
                .and_then(Value::as_str)
                .map(|s| s.as_str()),
            Some("my.service")
        );
        assert_eq!(o.scope_name.as_str(), "my.library");
        assert_eq!(o.scope_version.as_str(), "1.0.0");
        assert_eq!(o.scope_attributes.len(), 1);
        let r = &b.records[0];
        assert_eq!(r.time_unix_nano, 1_544_712_660_300_000_000);
        assert_eq!(r.severity_number, 10);
        assert_eq!(r.severity_text.as_str(), "Information");
        assert_eq!(r.trace_id[..4], [0x5b, 0x8e, 0xff, 0xf7]);
        assert_eq!(r.span_id[..2], [0xee, 0xe1]);
        assert_eq!(
            r.body.as_str().map(|s| s.as_str()),
            Some("Example log record")
        );
        assert_eq!(
            get_attr(&r.attributes, "int.attribute"),
            Some(&Value::Int(10))
        );
        assert_eq!(
            get_attr(&r.attributes, "boolean.attribute"),
            Some(&Value::Bool(true))
        );
        assert_eq!(
            get_attr(&r.attributes, "double.attribute"),
            Some(&Value::Double(637.704))
        );
        assert!(
            matches!(get_attr(&r.attributes, "array.attribute"), Some(Value::Array(a)) if a.len() == 2)
        );
        assert!(
            matches!(get_attr(&r.attributes, "map.attribute"), Some(Value::Map(m)) if m.len() == 1)
        );
    }

    #[test]
    fn proto_names_enum_names_and_bytes_are_accepted() {
        let doc = r#"{"resource_logs":[{"scope_logs":[{"log_records":[{
            "time_unix_nano": 5, "severity_number": "SEVERITY_NUMBER_WARN2",
            "body": {"bytesValue": "AAEC"}, "flags": 1}]}]}]}"#;
        let b = decode_logs(doc.as_bytes()).unwrap();
        let r = &b.records[0];
        assert_eq!(r.time_unix_nano, 5);
        assert_eq!(r.severity_number, 14);
        assert_eq!(r.body, Value::Bytes(bytes::Bytes::from_static(&[0, 1, 2])));
        assert_eq!(r.flags, 1);
    }

    #[test]
    fn errors_name_the_path_of_the_bad_value() {
        let cases = [
            (
                r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"xyz"}]}]}]}"#,
                "resourceLogs[0].scopeLogs[0].logRecords[0].traceId: must be 32 hex digits, not 3",
            ),
            (
                r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"intValue":"ten"}}]}]}]}"#,
                "resourceLogs[0].scopeLogs[0].logRecords[0].body.intValue: \"ten\" is not a 64-bit integer",
            ),
            (r#"{"resourceLogs":{}}"#, "resourceLogs: expected an array"),
            (
                r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"severityNumber":99}]}]}]}"#,
                "resourceLogs[0].scopeLogs[0].logRecords[0].severityNumber: 99 is not a severity number (0-24)",
            ),
        ];
        for (doc, want) in cases {
            assert_eq!(decode_logs(doc.as_bytes()).unwrap_err().to_string(), want);
        }
        assert!(
            decode_logs(b"{not json")
                .unwrap_err()
                .to_string()
                .starts_with("$: invalid JSON")
        );
    }
}
