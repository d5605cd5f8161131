use super::*;
use bytes::Bytes;

const GUIDE: &str = r#"^(?P<host>[\w\.]+) - (?P<user>[\w\-]+) \[(?P<timestamp>[^\]]*)\] "(?P<method>[\w]+) (?P<path>[^"]*)" (?P<status>[\d]+) (?P<bytes_out>[\d]+)$"#;
const LINE: &str =
    r#"175.148.109.34 - lavon [05/Feb/2023:09:39:56 +0000] "GET /fortunate HTTP/1.0" 404 4410"#;

fn batch(lines: &[&str]) -> LogBatch {
    LogBatch {
        origins: vec![Default::default()],
        records: lines
            .iter()
            .map(|l| LogRecord {
                body: Value::Str(Str::from_utf8(Bytes::copy_from_slice(l.as_bytes())).unwrap()),
                ..Default::default()
            })
            .collect(),
    }
}

fn cfg(yaml: &str) -> Config {
    decode("p", serde_yaml_ng::from_str(yaml).unwrap()).unwrap()
}

fn attr<'a>(r: &'a LogRecord, k: &str) -> &'a str {
    get_attr(&r.attributes, k)
        .and_then(Value::as_str)
        .map(|s| s.as_str())
        .unwrap_or("<missing>")
}

#[test]
fn optional_groups_that_did_not_match_leave_no_attribute() {
    let mut p = standalone(&Config {
        regex: Some(r"^(?P<a>\w+)(?: (?P<b>\d+))?(?: (?P<c>[a-z]+))?$".into()),
        ..cfg("{}")
    })
    .unwrap();
    let mut b = batch(&["x y", "x 1", "x"]);
    p.process(&mut b);
    let keys = |r: &LogRecord| -> Vec<String> {
        r.attributes.iter().map(|(k, _)| k.to_string()).collect()
    };
    assert_eq!(keys(&b.records[0]), ["a", "c"]);
    assert_eq!(attr(&b.records[0], "c"), "y");
    assert_eq!(keys(&b.records[1]), ["a", "b"]);
    assert_eq!(keys(&b.records[2]), ["a"]);
}

#[test]
fn guide_regex_captures_the_seven_fields_as_attributes() {
    let mut p = standalone(&Config {
        regex: Some(GUIDE.into()),
        ..cfg("{}")
    })
    .unwrap();
    let mut b = batch(&[LINE]);
    p.process(&mut b);
    let r = &b.records[0];
    assert_eq!(r.attributes.len(), 7);
    assert_eq!(attr(r, "host"), "175.148.109.34");
    assert_eq!(attr(r, "user"), "lavon");
    assert_eq!(attr(r, "timestamp"), "05/Feb/2023:09:39:56 +0000");
    assert_eq!(attr(r, "method"), "GET");
    assert_eq!(attr(r, "path"), "/fortunate HTTP/1.0");
    assert_eq!(attr(r, "status"), "404");
    assert_eq!(attr(r, "bytes_out"), "4410");
    assert_eq!(r.body.as_str().unwrap().as_str(), LINE, "body is kept");
}

#[test]
fn long_captures_share_the_input_buffer() {
    let mut p = standalone(&Config {
        preset: Some(Preset::ApacheCommon),
        ..cfg("{}")
    })
    .unwrap();
    let line = LINE.replace(
        "/fortunate",
        "/a/rather/long/path/that/is/shared/not/copied",
    );
    let mut b = batch(&[&line]);
    let base = b.records[0].body.as_str().unwrap().as_bytes().as_ptr() as usize;
    p.process(&mut b);
    let path = get_attr(&b.records[0].attributes, "path")
        .and_then(Value::as_str)
        .unwrap();
    assert!(path.is_shared());
    assert_eq!(
        path.as_bytes().as_ptr() as usize,
        base + line.find("/a/rather").unwrap()
    );
}

#[test]
fn target_body_replaces_body_with_capture_map() {
    let mut p = standalone(&cfg("{preset: apache_common, target: body}")).unwrap();
    let mut b = batch(&[LINE]);
    p.process(&mut b);
    let Value::Map(m) = &b.records[0].body else {
        panic!("body is not a map")
    };
    assert_eq!(m.len(), 9);
    assert_eq!(m[5].0.as_str(), "path");
    assert_eq!(m[6].1.as_str().unwrap().as_str(), "HTTP/1.0");
    assert!(b.records[0].attributes.is_empty());
}

#[test]
fn non_matching_lines_are_kept_or_dropped_and_counted() {
    let lines = [LINE, "garbage", LINE];
    let mut keep = standalone(&cfg("{preset: apache_common}")).unwrap();
    let mut b = batch(&lines);
    keep.process(&mut b);
    assert_eq!(b.len(), 3);
    assert!(b.records[1].attributes.is_empty());

    let mut drop = standalone(&cfg("{preset: apache_common, on_error: drop}")).unwrap();
    let mut b = batch(&lines);
    drop.process(&mut b);
    assert_eq!(b.len(), 2);
    assert!(b.records.iter().all(|r| r.attributes.len() == 9));
}

#[test]
fn timestamp_and_severity_are_derived_from_captures() {
    let mut p = standalone(&cfg(
        "{preset: apache_common, timestamp: {parse_from: attributes.timestamp}, severity: {parse_from: status, mapping: {error: 5xx, warn: [4xx], info: [2xx, 3xx]}}}",
    ))
    .unwrap();
    let mut b = batch(&[LINE]);
    p.process(&mut b);
    let r = &b.records[0];
    assert_eq!(r.time_unix_nano, 1_675_589_996_000_000_000);
    assert_eq!(r.severity_number, Severity::Warn as u8);
    assert_eq!(r.severity_text.as_str(), "WARN");
}

#[test]
fn parses_from_an_attribute_and_overwrites_existing_keys() {
    let mut p = standalone(&cfg(
        r#"{regex: '^(?P<k>\w+)=(?P<v>\w+)$', parse_from: attributes.raw}"#,
    ))
    .unwrap();
    let mut b = batch(&["body"]);
    b.records[0].attributes = vec![
        ("raw".into(), Value::Str("a=b".into())),
        ("k".into(), Value::Int(1)),
    ];
    p.process(&mut b);
    assert_eq!(attr(&b.records[0], "k"), "a");
    assert_eq!(attr(&b.records[0], "v"), "b");
    assert_eq!(b.records[0].attributes.len(), 3);
}

#[test]
fn bad_configs_name_the_failing_key() {
    let err = |y: &str| compile("processors.regex_parser", &cfg(y)).err().unwrap()[0].to_string();
    assert!(
        err("{regex: '(unclosed'}").starts_with("processors.regex_parser.regex: invalid regex")
    );
    assert!(err("{regex: '\\d+'}").contains("no named capture groups"));
    assert!(err("{}").contains("exactly one of `regex` and `preset`"));
    assert!(
        err("{preset: apache_common, timestamp: {parse_from: when}}")
            .starts_with("processors.regex_parser.timestamp.parse_from")
    );
    assert!(
        err("{preset: apache_common, parse_from: attrs.x}")
            .starts_with("processors.regex_parser.parse_from")
    );
    assert!(
        err("{preset: apache_common, severity: {parse_from: status, mapping: {loud: 5xx}}}")
            .contains("severity.mapping.loud")
    );
}

#[test]
fn only_a_presets_captures_are_known_as_preset_captures() {
    let line = r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /a.gif HTTP/1.0" 200 2326"#;
    let mut preset = standalone(&cfg("{preset: apache_common}")).unwrap();
    let mut b = batch(&[line]);
    preset.process(&mut b);
    let keys: Vec<_> = b.records[0]
        .attributes
        .iter()
        .filter_map(|(k, _)| preset_capture(k))
        .collect();
    assert_eq!(
        keys,
        [
            "host",
            "ident",
            "user",
            "timestamp",
            "method",
            "path",
            "protocol",
            "status",
            "bytes_out"
        ]
    );

    // The guide's own regex captures `host`, `status`...: same names, not the preset's.
    let mut custom = standalone(&Config {
        regex: Some(GUIDE.into()),
        ..cfg("{}")
    })
    .unwrap();
    let mut b = batch(&[LINE]);
    custom.process(&mut b);
    assert_eq!(attr(&b.records[0], "status"), "404");
    assert!(
        b.records[0]
            .attributes
            .iter()
            .all(|(k, _)| preset_capture(k).is_none())
    );
}
