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
    // Digits go to the stack and are appended at once: a push per digit checks capacity 32
    // times for a trace id. One two-digit lookup per byte, rather than one per nibble.
    let mut buf = [0u8; 64];
    for chunk in bytes.chunks(32) {
        for (pair, b) in buf.chunks_exact_mut(2).zip(chunk) {
            pair.copy_from_slice(&HEX_PAIRS[usize::from(*b)]);
        }
        out.extend_from_slice(&buf[..chunk.len() * 2]);
    }
}

/// "00" to "ff".
static HEX_PAIRS: [[u8; 2]; 256] = {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut t = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = [HEX[i >> 4], HEX[i & 0xf]];
        i += 1;
    }
    t
};

/// Appends a Unix-nanosecond time as RFC 3339 in UTC with nanoseconds:
/// `2026-11-22T23:40:15.123456789Z`.
pub fn write_rfc3339(out: &mut Vec<u8>, unix_nano: u64) {
    out.extend_from_slice(&rfc3339(unix_nano));
}

/// [`write_rfc3339`]'s text as a fixed-size array.
pub fn rfc3339(unix_nano: u64) -> [u8; 30] {
    let secs = unix_nano / 1_000_000_000;
    let nanos = unix_nano % 1_000_000_000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    // Years stay below 10000: u64 nanoseconds end in 2554.
    let y = y as u64;
    let mut buf = *b"0000-00-00T00:00:00.000000000Z";
    // Two digits per table lookup: a division by 10 per digit made this a tenth of the work
    // of a whole `otel` document.
    put2(&mut buf, 0, y / 100);
    put2(&mut buf, 2, y % 100);
    put2(&mut buf, 5, u64::from(m));
    put2(&mut buf, 8, u64::from(d));
    put2(&mut buf, 11, rem / 3600);
    put2(&mut buf, 14, (rem / 60) % 60);
    put2(&mut buf, 17, rem % 60);
    buf[20] = b'0' + (nanos / 100_000_000) as u8;
    let rest = nanos % 100_000_000;
    put2(&mut buf, 21, rest / 1_000_000);
    put2(&mut buf, 23, rest / 10_000 % 100);
    put2(&mut buf, 25, rest / 100 % 100);
    put2(&mut buf, 27, rest % 100);
    buf
}

/// "00" to "99".
static PAIRS: [[u8; 2]; 100] = {
    let mut t = [[0u8; 2]; 100];
    let mut i = 0;
    while i < 100 {
        t[i] = [b'0' + (i / 10) as u8, b'0' + (i % 10) as u8];
        i += 1;
    }
    t
};

/// Writes `v` (below 100) as two digits at `at`.
#[inline(always)]
fn put2(buf: &mut [u8; 30], at: usize, v: u64) {
    let [a, b] = PAIRS[v as usize % 100];
    buf[at] = a;
    buf[at + 1] = b;
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
    fn hex_is_two_lower_case_digits_per_byte_at_any_length() {
        let bytes: Vec<u8> = (0..=255u8).chain(0..=40).collect();
        for n in [0, 1, 8, 16, 31, 32, 33, 64, bytes.len()] {
            let mut out = b"x".to_vec();
            write_hex(&mut out, &bytes[..n]);
            let want: String = bytes[..n].iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(std::str::from_utf8(&out[1..]).unwrap(), want);
        }
    }

    #[test]
    fn rfc3339_agrees_with_chrono_across_the_whole_range() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let check = |nanos: u64| {
            let want = chrono::DateTime::from_timestamp_nanos(nanos as i64)
                .format("%Y-%m-%dT%H:%M:%S%.9fZ")
                .to_string();
            assert_eq!(
                std::str::from_utf8(&rfc3339(nanos)).unwrap(),
                want,
                "{nanos}"
            );
        };
        for edge in [0, 1, 999_999_999, 1_000_000_000, i64::MAX as u64] {
            check(edge);
        }
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            check(x % i64::MAX as u64);
        }
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
