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
fn json_line_is_valid_json_with_set_fields_only() {
    let batch = LogBatch {
        origins: vec![Origin {
            resource: vec![(Str::from("service.name"), Value::Str("web".into()))].into(),
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

/// Every kind of value, nested, with strings of every length around the copy and word
/// sizes and escapes at their edges, round-trips through serde_json. Debug builds also
/// assert on every write that it stayed inside its reserved bound.
#[test]
fn every_value_kind_round_trips_through_serde_json() {
    let text = |n: usize, esc: u8| -> String {
        let mut s: Vec<u8> = (0..n).map(|i| b'a' + (i % 26) as u8).collect();
        if n > 0 {
            s[n - 1] = esc;
            s[n / 2] = esc;
        }
        String::from_utf8(s).unwrap()
    };
    for n in 0..70 {
        for esc in [b'x', b'"', b'\\', b'\n', 0x01, 0x1f] {
            let s = text(n, esc);
            let nested = Value::Map(vec![(
                Str::from(s.clone()),
                Value::Array(vec![
                    Value::Str(Str::from(s.clone())),
                    Value::Int(i64::MIN),
                    Value::Double(-0.25),
                    Value::Double(f64::NAN),
                    Value::Bool(false),
                    Value::Empty,
                    Value::Bytes(bytes::Bytes::from_static(&[0, 0xff, 0x10])),
                ]),
            )]);
            let record = LogRecord {
                body: nested,
                attributes: vec![(Str::from_static("k"), Value::Str(Str::from(s.clone())))],
                severity_text: Str::from(s.clone()),
                severity_number: 255,
                time_unix_nano: u64::MAX,
                observed_time_unix_nano: 1,
                trace_id: [0xab; 16],
                span_id: [0xcd; 8],
                ..Default::default()
            };
            let resource = vec![(Str::from(s.clone()), Value::Str(Str::from(s.clone())))];
            let mut out = b"prefix".to_vec();
            JsonEncoder::default().encode(&record, &resource.into(), &mut out);
            assert_eq!(&out[..6], b"prefix");
            let v: serde_json::Value = serde_json::from_slice(&out[6..]).unwrap();
            assert_eq!(v["body"][&s][0], s.as_str());
            assert_eq!(v["body"][&s][1], i64::MIN);
            assert_eq!(v["body"][&s][2], -0.25);
            assert!(v["body"][&s][3].is_null());
            assert_eq!(v["body"][&s][6], "00ff10");
            assert_eq!(v["attributes"]["k"], s.as_str());
            assert_eq!(v["resource"][&s], s.as_str());
            // An empty severity text means "not set" and is left out.
            if !s.is_empty() {
                assert_eq!(v["severity_text"], s.as_str());
            }
            assert_eq!(v["severity_number"], 255);
            assert_eq!(v["trace_id"], "ab".repeat(16));
            assert_eq!(v["span_id"], "cd".repeat(8));
        }
    }
}
