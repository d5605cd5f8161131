//! Hand-written encoders for log records: newline-delimited JSON and plain text.
//!
//! These run once per record on the hot path, so they append straight into a reused `Vec<u8>`
//! with no intermediate `String`, `format!` or `serde_json::Value`.
//!
//! A JSON line looks like
//! `{"timestamp":"…","observed_timestamp":"…","severity_text":"…","severity_number":9,
//! "body":"…","attributes":{…},"resource":{…},"trace_id":"…","span_id":"…"}`;
//! fields that are not set are left out, `body` and `attributes` are always present.

use crate::model::{KeyValue, LogBatch, LogRecord, Value};

/// Bytes that need escaping inside a JSON string: controls, `"` and `\`.
static ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Marks (0x80 in a byte's slot) the bytes of `v` that need escaping. Borrows can flag bytes
/// *after* a real hit, never before it, so the lowest mark is always exact.
#[inline(always)]
fn escape_marks(v: u64) -> u64 {
    let has_zero = |x: u64| x.wrapping_sub(LO) & !x & HI;
    let control = v.wrapping_sub(LO * 0x20) & !v & HI;
    control | has_zero(v ^ (LO * b'"' as u64)) | has_zero(v ^ (LO * b'\\' as u64))
}

#[inline(always)]
fn load(s: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&s[i..i + 8]);
    u64::from_le_bytes(w)
}

/// Whether any byte of `s` needs escaping, eight bytes at a time (SWAR).
#[cfg(test)]
fn needs_escape(s: &[u8]) -> bool {
    let mut i = 0;
    while i + 8 <= s.len() {
        if escape_marks(load(s, i)) != 0 {
            return true;
        }
        i += 8;
    }
    s[i..].iter().any(|&b| ESCAPE[b as usize])
}

fn write_escape(out: &mut Vec<u8>, b: u8) {
    match b {
        b'"' => out.extend_from_slice(b"\\\""),
        b'\\' => out.extend_from_slice(b"\\\\"),
        b'\n' => out.extend_from_slice(b"\\n"),
        b'\r' => out.extend_from_slice(b"\\r"),
        b'\t' => out.extend_from_slice(b"\\t"),
        _ => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 0xf) as usize]);
        }
    }
}

/// Appends `s` as a JSON string literal. Runs without escapes are found eight bytes at a time
/// and copied whole: log lines carry quotes, so the escaping path is the common one.
pub fn write_json_str(out: &mut Vec<u8>, s: &[u8]) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    let mut start = 0;
    let mut i = 0;
    while i + 8 <= s.len() {
        let marks = escape_marks(load(s, i));
        if marks == 0 {
            i += 8;
            continue;
        }
        let at = i + (marks.trailing_zeros() / 8) as usize;
        out.extend_from_slice(&s[start..at]);
        write_escape(out, s[at]);
        start = at + 1;
        i = at + 1;
    }
    let tail = &s[i..];
    // The last few bytes (most attribute values are shorter than a word) are padded with a
    // harmless byte and checked as one word; only a tail that needs escaping is walked.
    let mut word = [b'a'; 8];
    word[..tail.len()].copy_from_slice(tail);
    if escape_marks(u64::from_le_bytes(word)) == 0 {
        out.extend_from_slice(&s[start..]);
        out.push(b'"');
        return;
    }
    for (k, &b) in tail.iter().enumerate() {
        if ESCAPE[b as usize] {
            let at = i + k;
            out.extend_from_slice(&s[start..at]);
            write_escape(out, b);
            start = at + 1;
        }
    }
    out.extend_from_slice(&s[start..]);
    out.push(b'"');
}

/// Appends an `AnyValue` as JSON. Byte values become lowercase hex strings.
pub fn write_json_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Empty => out.extend_from_slice(b"null"),
        Value::Str(s) => write_json_str(out, s.as_bytes()),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Int(i) => out.extend_from_slice(itoa::Buffer::new().format(*i).as_bytes()),
        Value::Double(d) if d.is_finite() => {
            out.extend_from_slice(ryu::Buffer::new().format_finite(*d).as_bytes())
        }
        // JSON has no NaN or infinity; null is what serde_json writes too.
        Value::Double(_) => out.extend_from_slice(b"null"),
        Value::Bytes(b) => {
            out.push(b'"');
            write_hex(out, b);
            out.push(b'"');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json_value(out, item);
            }
            out.push(b']');
        }
        Value::Map(kvs) => write_json_map(out, kvs),
    }
}

pub fn write_json_map(out: &mut Vec<u8>, kvs: &[KeyValue]) {
    out.push(b'{');
    for (i, (k, v)) in kvs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match k.static_json_safe() {
            Some(key) => {
                out.push(b'"');
                out.extend_from_slice(key.as_bytes());
                out.extend_from_slice(b"\":");
            }
            None => {
                write_json_str(out, k.as_bytes());
                out.push(b':');
            }
        }
        write_json_value(out, v);
    }
    out.push(b'}');
}

pub fn write_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(HEX[(b >> 4) as usize]);
        out.push(HEX[(b & 0xf) as usize]);
    }
}

/// Appends a Unix-nanosecond time as RFC 3339 in UTC with nanoseconds:
/// `2026-11-22T23:40:15.123456789Z`.
pub fn write_rfc3339(out: &mut Vec<u8>, unix_nano: u64) {
    let secs = unix_nano / 1_000_000_000;
    let nanos = (unix_nano % 1_000_000_000) as u32;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    let mut buf = *b"0000-00-00T00:00:00.000000000Z";
    put_digits(&mut buf[0..4], y as u64);
    put_digits(&mut buf[5..7], m as u64);
    put_digits(&mut buf[8..10], d as u64);
    put_digits(&mut buf[11..13], rem / 3600);
    put_digits(&mut buf[14..16], (rem / 60) % 60);
    put_digits(&mut buf[17..19], rem % 60);
    put_digits(&mut buf[20..29], nanos as u64);
    out.extend_from_slice(&buf);
}

fn put_digits(dst: &mut [u8], mut v: u64) {
    for slot in dst.iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// Howard Hinnant's days-since-epoch to proleptic Gregorian date.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Encodes records as newline-delimited JSON objects. Keeps the last timestamp it formatted,
/// because a batch from one request shares one observed time.
#[derive(Default)]
pub struct JsonEncoder {
    cached_nanos: u64,
    cached_text: Vec<u8>,
}

impl JsonEncoder {
    pub fn encode_batch(&mut self, batch: &LogBatch, out: &mut Vec<u8>) {
        for record in &batch.records {
            let resource = batch
                .origins
                .get(record.origin as usize)
                .map(|o| o.resource.as_slice())
                .unwrap_or(&[]);
            self.encode(record, resource, out);
        }
    }

    pub fn encode(&mut self, r: &LogRecord, resource: &[KeyValue], out: &mut Vec<u8>) {
        out.push(b'{');
        if r.time_unix_nano != 0 {
            out.extend_from_slice(b"\"timestamp\":");
            self.write_time(out, r.time_unix_nano);
            out.push(b',');
        }
        if r.observed_time_unix_nano != 0 {
            out.extend_from_slice(b"\"observed_timestamp\":");
            self.write_time(out, r.observed_time_unix_nano);
            out.push(b',');
        }
        if !r.severity_text.is_empty() {
            out.extend_from_slice(b"\"severity_text\":");
            write_json_str(out, r.severity_text.as_bytes());
            out.push(b',');
        }
        if r.severity_number != 0 {
            out.extend_from_slice(b"\"severity_number\":");
            out.extend_from_slice(itoa::Buffer::new().format(r.severity_number).as_bytes());
            out.push(b',');
        }
        out.extend_from_slice(b"\"body\":");
        write_json_value(out, &r.body);
        out.extend_from_slice(b",\"attributes\":");
        write_json_map(out, &r.attributes);
        if !resource.is_empty() {
            out.extend_from_slice(b",\"resource\":");
            write_json_map(out, resource);
        }
        if r.trace_id != [0; 16] {
            out.extend_from_slice(b",\"trace_id\":\"");
            write_hex(out, &r.trace_id);
            out.push(b'"');
        }
        if r.span_id != [0; 8] {
            out.extend_from_slice(b",\"span_id\":\"");
            write_hex(out, &r.span_id);
            out.push(b'"');
        }
        out.extend_from_slice(b"}\n");
    }

    fn write_time(&mut self, out: &mut Vec<u8>, nanos: u64) {
        if nanos != self.cached_nanos || self.cached_text.is_empty() {
            self.cached_text.clear();
            self.cached_text.push(b'"');
            write_rfc3339(&mut self.cached_text, nanos);
            self.cached_text.push(b'"');
            self.cached_nanos = nanos;
        }
        out.extend_from_slice(&self.cached_text);
    }
}

/// Encodes each record's body as one line of text. A string body is written as is (newlines in
/// it escaped as `\n` so one record stays one line); any other body as JSON.
pub fn encode_text_batch(batch: &LogBatch, out: &mut Vec<u8>) {
    for r in &batch.records {
        match &r.body {
            Value::Str(s) => {
                let bytes = s.as_bytes();
                if memchr::memchr(b'\n', bytes).is_none() {
                    out.extend_from_slice(bytes);
                } else {
                    for part in bytes.split(|&b| b == b'\n').enumerate() {
                        if part.0 > 0 {
                            out.extend_from_slice(b"\\n");
                        }
                        out.extend_from_slice(part.1);
                    }
                }
            }
            other => write_json_value(out, other),
        }
        out.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Origin, Str};

    #[test]
    fn escapes_quotes_backslashes_and_controls() {
        let mut out = Vec::new();
        write_json_str(&mut out, b"a\"b\\c\nd\x01");
        assert_eq!(out, br#""a\"b\\c\nd\u0001""#);
    }

    #[test]
    fn swar_escape_check_agrees_with_the_table() {
        for len in 0..24 {
            for pos in 0..len {
                for b in 0u8..=255 {
                    let mut s = vec![b'a'; len];
                    s[pos] = b;
                    assert_eq!(
                        needs_escape(&s),
                        ESCAPE[b as usize],
                        "byte {b:#x} at {pos} of {len}"
                    );
                }
            }
        }
    }

    #[test]
    fn escaping_matches_serde_json_for_every_byte_at_every_offset() {
        for len in 1..20 {
            for pos in 0..len {
                for b in 0u8..=127 {
                    let mut s = vec![b'a'; len];
                    s[pos] = b;
                    s[len - 1 - pos] = b'"';
                    let mut out = Vec::new();
                    write_json_str(&mut out, &s);
                    let back: String = serde_json::from_slice(&out).unwrap();
                    assert_eq!(back.as_bytes(), &s[..]);
                }
            }
        }
    }

    #[test]
    fn formats_rfc3339_with_nanoseconds() {
        let mut out = Vec::new();
        write_rfc3339(&mut out, 1_675_589_996_000_000_123);
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "2023-02-05T09:39:56.000000123Z"
        );
        out.clear();
        write_rfc3339(&mut out, 951_782_400_000_000_000); // a leap day
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "2000-02-29T00:00:00.000000000Z"
        );
    }

    #[test]
    fn json_line_is_valid_json_with_set_fields_only() {
        let batch = LogBatch {
            origins: vec![Origin {
                resource: vec![(Str::from("service.name"), Value::Str("web".into()))],
                ..Default::default()
            }],
            records: vec![LogRecord {
                body: Value::Str("he said \"hi\"".into()),
                attributes: vec![
                    ("status".into(), Value::Int(200)),
                    ("ok".into(), Value::Bool(true)),
                ],
                severity_number: 9,
                severity_text: "INFO".into(),
                time_unix_nano: 1_000_000_000,
                ..Default::default()
            }],
        };
        let mut out = Vec::new();
        JsonEncoder::default().encode_batch(&batch, &mut out);
        assert_eq!(out.last(), Some(&b'\n'));
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["body"], "he said \"hi\"");
        assert_eq!(v["attributes"]["status"], 200);
        assert_eq!(v["resource"]["service.name"], "web");
        assert_eq!(v["timestamp"], "1970-01-01T00:00:01.000000000Z");
        assert_eq!(v["severity_number"], 9);
        assert!(v.get("observed_timestamp").is_none());
        assert!(v.get("trace_id").is_none());
    }

    #[test]
    fn text_keeps_one_record_per_line() {
        let batch = LogBatch {
            origins: vec![Origin::default()],
            records: vec![
                LogRecord {
                    body: Value::Str("one\ntwo".into()),
                    ..Default::default()
                },
                LogRecord {
                    body: Value::Int(3),
                    ..Default::default()
                },
            ],
        };
        let mut out = Vec::new();
        encode_text_batch(&batch, &mut out);
        assert_eq!(out, b"one\\ntwo\n3\n");
    }
}
