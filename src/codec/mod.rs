//! Hand-written encoders for log records: newline-delimited JSON and plain text.
//!
//! These run once per record on the hot path, so they append straight into a reused `Vec<u8>`
//! with no intermediate `String`, `format!` or `serde_json::Value`.
//!
//! A JSON line looks like
//! `{"timestamp":"…","observed_timestamp":"…","severity_text":"…","severity_number":9,
//! "body":"…","attributes":{…},"resource":{…},"trace_id":"…","span_id":"…"}`;
//! fields that are not set are left out, `body` and `attributes` are always present.

mod json;

pub use json::{JsonEncoder, write_json_map, write_json_str, write_json_value};

use crate::model::{LogBatch, Value};

pub fn write_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    // Digits go to the stack and are appended at once: a push per digit checks capacity 32
    // times for a trace id.
    let mut buf = [0u8; 64];
    for chunk in bytes.chunks(32) {
        for (i, b) in chunk.iter().enumerate() {
            buf[2 * i] = HEX[(b >> 4) as usize];
            buf[2 * i + 1] = HEX[(b & 0xf) as usize];
        }
        out.extend_from_slice(&buf[..chunk.len() * 2]);
    }
}

/// Appends a Unix-nanosecond time as RFC 3339 in UTC with nanoseconds:
/// `2026-11-22T23:40:15.123456789Z`.
pub fn write_rfc3339(out: &mut Vec<u8>, unix_nano: u64) {
    out.extend_from_slice(&rfc3339(unix_nano));
}

/// [`write_rfc3339`]'s text as a fixed-size array.
pub fn rfc3339(unix_nano: u64) -> [u8; 30] {
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
    buf
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
    use crate::model::{LogRecord, Origin};

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
