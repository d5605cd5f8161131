use super::*;
use crate::otlp::damage::damaged;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue as PKeyValue, KeyValueList,
    any_value::Value as PValue,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord as PLogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

fn any(v: PValue) -> Option<AnyValue> {
    Some(AnyValue { value: Some(v) })
}

fn kv(k: &str, v: PValue) -> PKeyValue {
    PKeyValue {
        key: k.into(),
        value: any(v),
        ..Default::default()
    }
}

fn s(v: &str) -> PValue {
    PValue::StringValue(v.into())
}

fn sample() -> ExportLogsServiceRequest {
    let long = "a long string value that will not fit inline, so it is shared".to_string();
    let nested = PValue::KvlistValue(KeyValueList {
        values: vec![
            kv(
                "inner",
                PValue::ArrayValue(ArrayValue {
                    values: vec![
                        AnyValue {
                            value: Some(PValue::IntValue(-7)),
                        },
                        AnyValue {
                            value: Some(PValue::DoubleValue(0.5)),
                        },
                        AnyValue {
                            value: Some(PValue::BoolValue(false)),
                        },
                        AnyValue {
                            value: Some(PValue::BytesValue(vec![0, 1, 2])),
                        },
                        AnyValue { value: Some(s("")) },
                        AnyValue { value: None },
                    ],
                }),
            ),
            kv("long", s(&long)),
        ],
    });
    let record = |i: u64| PLogRecord {
        time_unix_nano: 1_700_000_000_000_000_000 + i,
        observed_time_unix_nano: 1_700_000_000_000_000_500 + i,
        severity_number: 17,
        severity_text: "ERROR".into(),
        body: any(s(&format!("record {i} says \"hi\" ünïcödé"))),
        attributes: vec![
            kv("http.status", PValue::IntValue(500)),
            kv("nested", nested.clone()),
        ],
        dropped_attributes_count: 3,
        flags: 1,
        trace_id: (0..16).collect(),
        span_id: (20..28).collect(),
        event_name: if i == 0 {
            "app.start".into()
        } else {
            String::new()
        },
    };
    ExportLogsServiceRequest {
        resource_logs: vec![
            ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", s("checkout")), kv("long", s(&long))],
                    dropped_attributes_count: 1,
                    ..Default::default()
                }),
                scope_logs: vec![
                    ScopeLogs {
                        scope: Some(InstrumentationScope {
                            name: "io.opentelemetry.app".into(),
                            version: "1.2.3".into(),
                            attributes: vec![kv("scope.attr", PValue::BoolValue(true))],
                            dropped_attributes_count: 2,
                        }),
                        log_records: vec![record(0), record(1)],
                        schema_url: "https://opentelemetry.io/schemas/1.30.0".into(),
                    },
                    ScopeLogs {
                        scope: Some(InstrumentationScope {
                            name: "other".into(),
                            ..Default::default()
                        }),
                        log_records: vec![PLogRecord {
                            body: any(s("minimal")),
                            ..Default::default()
                        }],
                        schema_url: String::new(),
                    },
                ],
                schema_url: "https://opentelemetry.io/schemas/1.29.0".into(),
            },
            ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", s("cart"))],
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    scope: Some(InstrumentationScope {
                        name: "cart".into(),
                        ..Default::default()
                    }),
                    log_records: vec![record(2)],
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            },
        ],
    }
}

#[test]
fn round_trips_every_field_through_the_prost_types() {
    let original = sample();
    let wire = Bytes::from(original.encode_to_vec());
    let batch = decode(&wire).unwrap();
    assert_eq!(batch.records.len(), 4);
    assert_eq!(batch.origins.len(), 3);
    assert_eq!(batch.records[0].severity_text.as_str(), "ERROR");
    assert_eq!(
        batch.records[0].trace_id,
        *b"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"
    );
    let mut out = Vec::new();
    encode(&batch, &mut out);
    let back = ExportLogsServiceRequest::decode(&out[..]).unwrap();
    assert_eq!(back, original);
}

#[test]
fn long_strings_share_the_request_buffer() {
    let wire = Bytes::from(sample().encode_to_vec());
    let batch = decode(&wire).unwrap();
    let long = crate::model::get_attr(&batch.origins[0].resource, "long")
        .and_then(Value::as_str)
        .unwrap();
    assert!(long.is_shared());
    let range = wire.as_ptr_range();
    assert!(range.contains(&long.as_bytes().as_ptr()));
}

#[test]
fn records_of_one_origin_are_regrouped_when_interleaved() {
    let wire = Bytes::from(sample().encode_to_vec());
    let mut batch = decode(&wire).unwrap();
    batch.records.swap(0, 3); // origin 2 first, origin 0 last
    let mut out = Vec::new();
    encode(&batch, &mut out);
    let back = ExportLogsServiceRequest::decode(&out[..]).unwrap();
    let per_scope: Vec<Vec<usize>> = back
        .resource_logs
        .iter()
        .map(|r| r.scope_logs.iter().map(|s| s.log_records.len()).collect())
        .collect();
    assert_eq!(per_scope, [vec![2, 1], vec![1]]);
}

#[test]
fn malformed_input_is_an_error_never_a_panic() {
    let wire = sample().encode_to_vec();
    for n in 0..wire.len() {
        let _ = decode(&Bytes::copy_from_slice(&wire[..n]));
    }
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    for _ in 0..20_000 {
        let mut junk = wire.clone();
        for _ in 0..4 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let at = (seed % junk.len() as u64) as usize;
            junk[at] = (seed >> 32) as u8;
        }
        let _ = decode(&Bytes::from(junk));
    }
    assert!(decode(&Bytes::from_static(b"\x0a\x05ab")).is_err());
    assert!(
        decode(&Bytes::from_static(b"\x0b")).is_err(),
        "group wire type"
    );
}

#[test]
fn nesting_deeper_than_the_limit_is_refused() {
    let mut v = AnyValue {
        value: Some(PValue::IntValue(1)),
    };
    for _ in 0..(MAX_DEPTH + 2) {
        v = AnyValue {
            value: Some(PValue::ArrayValue(ArrayValue { values: vec![v] })),
        };
    }
    let mut req = sample();
    req.resource_logs[0].scope_logs[0].log_records[0].body = Some(v);
    let err = decode(&Bytes::from(req.encode_to_vec())).unwrap_err();
    assert_eq!(err, DecodeError::TooDeep(MAX_DEPTH));
}

#[test]
fn invalid_utf8_and_bad_id_lengths_say_what_was_wrong() {
    let mut req = sample();
    req.resource_logs[0].scope_logs[0].log_records[0].trace_id = vec![1, 2, 3];
    let err = decode(&Bytes::from(req.encode_to_vec())).unwrap_err();
    assert_eq!(err.to_string(), "trace_id must be 16 bytes, not 3");

    let mut req = sample();
    req.resource_logs[0].scope_logs[0].log_records[0].severity_text = "XXXX".into();
    let mut wire = req.encode_to_vec();
    let at = wire.windows(4).position(|w| w == b"XXXX").unwrap();
    wire[at + 1] = 0xff;
    let err = decode(&Bytes::from(wire)).unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::Utf8 {
                what: "severity_text",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn attributes_get_one_allocation_with_room_for_one_more() {
    let record = |attributes: Vec<PKeyValue>| PLogRecord {
        attributes,
        body: any(s("body")),
        ..Default::default()
    };
    let four: Vec<_> = (0..4).map(|i| kv(&format!("k{i}"), s("v"))).collect();
    let req = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![record(four), record(vec![])],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let b = decode(&Bytes::from(req.encode_to_vec())).unwrap();
    let r = &b.records;
    assert_eq!((r[0].attributes.len(), r[0].attributes.capacity()), (4, 5));
    assert_eq!(
        r[1].attributes.capacity(),
        0,
        "no attributes, no allocation"
    );

    // Maps and arrays in values: exactly their size.
    let map = PValue::KvlistValue(KeyValueList {
        values: (0..5).map(|i| kv(&format!("m{i}"), s("v"))).collect(),
    });
    let array = PValue::ArrayValue(ArrayValue {
        values: (0..3)
            .map(|_| AnyValue {
                value: Some(s("e")),
            })
            .collect(),
    });
    let req = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![record(vec![kv("map", map), kv("array", array)])],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let b = decode(&Bytes::from(req.encode_to_vec())).unwrap();
    let a = &b.records[0].attributes;
    let (Value::Map(m), Value::Array(e)) = (&a[0].1, &a[1].1) else {
        panic!("{a:?}")
    };
    assert_eq!((m.len(), m.capacity(), e.len(), e.capacity()), (5, 5, 3, 3));
}

#[test]
fn attributes_written_apart_are_all_kept_in_order() {
    use crate::otlp::wire::put_bytes_field;
    // A record whose body sits between its first attribute and the other two.
    let attr = |k: &str| kv(k, s("v")).encode_to_vec();
    let mut rec = Vec::new();
    put_bytes_field(&mut rec, 6, &attr("a"));
    put_bytes_field(&mut rec, 5, &any(s("body")).unwrap().encode_to_vec());
    put_bytes_field(&mut rec, 6, &attr("b"));
    put_bytes_field(&mut rec, 6, &attr("c"));
    let (mut scope, mut resource, mut req) = (Vec::new(), Vec::new(), Vec::new());
    put_bytes_field(&mut scope, 2, &rec);
    put_bytes_field(&mut resource, 2, &scope);
    put_bytes_field(&mut req, 1, &resource);
    let b = decode(&Bytes::from(req)).unwrap();
    let keys: Vec<&str> = b.records[0]
        .attributes
        .iter()
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(keys, ["a", "b", "c"]);
    assert_eq!(b.records[0].body, Value::Str(Str::from("body")));
}

#[test]
fn attributes_read_by_position_match_the_field_loop_on_any_bytes() {
    // Every scalar kind, lengths either side of the one-byte limit, then random damage: where
    // the positional reader answers, its answer (value or error) is the field loop's.
    let long = "k".repeat(130);
    let mut cases: Vec<Vec<u8>> = Vec::new();
    for value in [
        s("v"),
        s(""),
        s(&"x".repeat(125)),
        s(&"x".repeat(126)),
        s("caf\u{e9}"),
        PValue::IntValue(-1),
        PValue::IntValue(300),
        PValue::BoolValue(true),
        PValue::DoubleValue(2.5),
        PValue::BytesValue(vec![1, 2]),
    ] {
        for key in ["http.method", "", long.as_str()] {
            cases.push(kv(key, value.clone()).encode_to_vec());
        }
    }
    let (mut compared, mut positional) = (0, 0);
    for b in damaged(&cases, 400) {
        let buf = Bytes::from(b);
        let d = Decoder::new(&buf);
        let loop_read = d.key_value_fields(0, buf.len(), 0);
        let mut slot = std::mem::MaybeUninit::uninit();
        if let Some(fast) = d.plain_key_value(0, buf.len(), &mut slot) {
            // SAFETY: `Some(Ok(()))` says the slot was written.
            let fast = fast.map(|()| unsafe { slot.assume_init() });
            assert_eq!(fast, loop_read, "{:?}", &buf[..]);
            positional += 1;
        }
        compared += 1;
    }
    // Most damage breaks the shape; what keeps it (a changed byte inside a key or string,
    // invalid UTF-8 among them) is read by position.
    assert!(
        positional >= 300 && positional < compared,
        "{positional} of {compared} read by position"
    );
}

#[test]
fn bodies_read_as_one_string_match_the_general_reader_on_any_bytes() {
    // Strings either side of the inline limit and of the one- and two-byte length limits,
    // non-ASCII and not UTF-8, other kinds; then damaged. Stored over an empty body and over
    // one already set, the fast reader's result (value or error) is `any_value`'s.
    let mut cases: Vec<Vec<u8>> = Vec::new();
    for n in [0, 1, 32, 33, 64, 65, 127, 128, 300, 16383, 16384] {
        cases.push(any(s(&"b".repeat(n))).unwrap().encode_to_vec());
    }
    cases.push(any(s("caf\u{e9} au lait")).unwrap().encode_to_vec());
    cases.push(vec![0x0a, 0x02, 0xc3, 0x28]);
    cases.push(vec![0x0a, 0x81, 0x00, b'x']);
    cases.push(any(PValue::IntValue(7)).unwrap().encode_to_vec());
    let mut two = any(s("first")).unwrap().encode_to_vec();
    two.extend(any(s("second")).unwrap().encode_to_vec());
    cases.push(two);
    let mut strings = 0;
    for b in damaged(&cases, 200) {
        let buf = Bytes::from(b);
        let d = Decoder::new(&buf);
        let general = d.any_value(0, buf.len(), 1);
        for before in [Value::Empty, Value::Int(1), Value::Str(Str::from("old"))] {
            let mut body = before.clone();
            let fast = d.set_body(0, buf.len(), &mut body).map(|()| body);
            match (&fast, &general) {
                (Ok(v), Ok(g)) => assert_eq!(v, g, "{:?}", &buf[..]),
                (Err(f), Err(g)) => assert_eq!(f, g, "{:?}", &buf[..]),
                _ => panic!("{fast:?} against {general:?} for {:?}", &buf[..]),
            }
        }
        strings += usize::from(plain_string(&buf, 0, buf.len()).is_some());
    }
    // Most damage breaks the shape (a cut string, a changed length); what keeps it (a changed
    // byte inside the text, invalid UTF-8 among them) takes the fast path.
    assert!(strings >= 300, "{strings} read as one string");
}

#[test]
fn records_read_by_key_byte_match_the_general_reader_on_any_bytes() {
    // Records with every field, with long and two-byte lengths, with large severities and
    // multi-byte keys (field 16 and up), and repeated fields; then damaged. The key-byte
    // dispatch's result, value or error, is that of reading every field the general way.
    let full = |i: u64| PLogRecord {
        time_unix_nano: 1_700_000_000_000_000_000 + i,
        observed_time_unix_nano: 1_700_000_000_000_000_500 + i,
        severity_number: [9, 17, 200, 0][i as usize % 4],
        severity_text: "WARN".into(),
        body: any(s(&"x".repeat([5, 40, 200][i as usize % 3]))),
        attributes: vec![
            kv("http.status", PValue::IntValue(500)),
            kv("k", s("v")),
            kv("long", s(&"y".repeat(150))),
        ],
        dropped_attributes_count: i as u32,
        flags: 1,
        trace_id: (0..16).collect(),
        span_id: (20..28).collect(),
        event_name: "ev".into(),
    };
    let mut cases: Vec<Vec<u8>> = (0..6).map(|i| full(i).encode_to_vec()).collect();
    cases.push(PLogRecord::default().encode_to_vec());
    // Fields in another order, one repeated, and an unknown field 16 (a two-byte key).
    let mut odd = full(1).encode_to_vec();
    odd.extend(full(2).encode_to_vec());
    odd.extend([0x80, 0x01, 0x05]);
    cases.push(odd);
    let general = |d: &Decoder, s: usize, e: usize| {
        let mut r = LogRecord::default();
        let mut f = d.fields(s, e);
        while let Some((field, wire)) = f.next_field()? {
            d.field(field, wire, s, &f, &mut r)?;
        }
        Ok::<_, DecodeError>(r)
    };
    for b in damaged(&cases, 400) {
        let buf = Bytes::from(b);
        let d = Decoder::new(&buf);
        let mut r = LogRecord::default();
        let fast = d.record(0, buf.len(), &mut r).map(|()| r);
        let slow = general(&d, 0, buf.len());
        match (&fast, &slow) {
            (Ok(f), Ok(g)) => assert_eq!(f, g, "{:?}", &buf[..]),
            (Err(f), Err(g)) => assert_eq!(f, g, "{:?}", &buf[..]),
            _ => panic!("{fast:?} against {slow:?} for {:?}", &buf[..]),
        }
    }
}
