use super::*;

const T: &str = "2024-05-01T10:00:00.123456789Z";
const T_NANOS: u64 = 1_714_557_600_123_456_789;

fn text<'a>(line: &'a [u8], t: &'a Text) -> &'a [u8] {
    match t {
        Text::Range(r) => &line[r.clone()],
        Text::Owned(v) => v,
    }
}

/// Every message `lines` make, as (text, stream, part).
fn join(lines: &[&str], max: usize) -> Vec<(String, Stream, Option<u32>)> {
    let mut joiner = Joiner::default();
    let mut out = Vec::new();
    for l in lines {
        let line = parse(l.as_bytes()).unwrap();
        joiner.push(l.as_bytes(), line, max, |m| {
            let t = String::from_utf8(text(l.as_bytes(), &m.text).to_vec()).unwrap();
            out.push((t, m.stream, m.part));
        });
    }
    joiner.flush(|m| {
        let Text::Owned(v) = m.text else {
            panic!("held text is owned")
        };
        out.push((String::from_utf8(v).unwrap(), m.stream, m.part));
    });
    out
}

#[test]
fn a_cri_line_is_parsed_and_its_message_is_a_range_of_the_line() {
    let l = format!("{T} stdout F hello world");
    let line = parse(l.as_bytes()).unwrap();
    assert_eq!(line.time_unix_nano, T_NANOS);
    assert_eq!(line.stream, Stream::Stdout);
    assert!(!line.partial);
    assert!(matches!(line.message, Text::Range(_)));
    assert_eq!(text(l.as_bytes(), &line.message), b"hello world");
    // Spaces inside the message are kept; an empty message is allowed.
    let l = format!("{T} stderr P  two  spaces ");
    let line = parse(l.as_bytes()).unwrap();
    assert!(line.partial);
    assert_eq!(text(l.as_bytes(), &line.message), b" two  spaces ");
    for l in [format!("{T} stdout F"), format!("{T} stdout F ")] {
        let line = parse(l.as_bytes()).unwrap();
        assert_eq!(text(l.as_bytes(), &line.message), b"");
    }
}

#[test]
fn a_docker_line_without_escapes_is_a_range_and_with_escapes_is_unescaped() {
    let l = format!(r#"{{"log":"plain text\n","stream":"stderr","time":"{T}"}}"#);
    let line = parse(l.as_bytes()).unwrap();
    assert_eq!(line.stream, Stream::Stderr);
    assert_eq!(line.time_unix_nano, T_NANOS);
    assert!(!line.partial);
    assert!(matches!(line.message, Text::Range(_)));
    assert_eq!(text(l.as_bytes(), &line.message), b"plain text");

    let l = format!(
        r#"{{"log":"{{\"level\":\"info\",\"msg\":\"a\\tb\"}}\n","stream":"stdout","time":"{T}"}}"#
    );
    let line = parse(l.as_bytes()).unwrap();
    assert!(!line.partial);
    assert_eq!(
        text(l.as_bytes(), &line.message),
        br#"{"level":"info","msg":"a\tb"}"#
    );
    // An escaped backslash before an `n` is not a newline: the message goes on.
    let l = format!(r#"{{"log":"ends in \\n","stream":"stdout","time":"{T}"}}"#);
    let line = parse(l.as_bytes()).unwrap();
    assert!(line.partial);
    assert_eq!(text(l.as_bytes(), &line.message), br"ends in \n");
}

#[test]
fn lines_of_neither_format_are_refused_with_the_reason() {
    assert_eq!(parse(b"just some text"), Err(Unparsed::Format));
    assert_eq!(parse(b""), Err(Unparsed::Format));
    assert_eq!(
        parse(format!("{T} stdout X msg").as_bytes()),
        Err(Unparsed::Format)
    );
    assert_eq!(parse(b"yesterday stdout F msg"), Err(Unparsed::Time));
    assert_eq!(parse(br#"{"log":"x\n"}"#), Err(Unparsed::Format));
    assert_eq!(
        parse(format!(r#"{{"log":1,"stream":"stdout","time":"{T}"}}"#).as_bytes()),
        Err(Unparsed::Format)
    );
    assert_eq!(parse(b"{not json"), Err(Unparsed::Format));
}

#[test]
fn cri_fragments_are_joined_per_stream_with_the_first_fragments_time() {
    let later = "2024-05-01T10:00:01Z";
    let got = join(
        &[
            &format!("{T} stdout P one "),
            &format!("{later} stderr F an error"),
            &format!("{later} stdout P two "),
            &format!("{later} stdout F three"),
            &format!("{later} stdout F whole"),
        ],
        1 << 20,
    );
    assert_eq!(
        got,
        [
            ("an error".into(), Stream::Stderr, None),
            ("one two three".into(), Stream::Stdout, None),
            ("whole".into(), Stream::Stdout, None),
        ]
    );
    let mut joiner = Joiner::default();
    let l = format!("{T} stdout P a");
    let mut times = Vec::new();
    joiner.push(l.as_bytes(), parse(l.as_bytes()).unwrap(), 100, |_| {});
    let l = format!("{later} stdout F b");
    joiner.push(l.as_bytes(), parse(l.as_bytes()).unwrap(), 100, |m| {
        times.push(m.time_unix_nano)
    });
    assert_eq!(times, [T_NANOS]);
}

#[test]
fn docker_fragments_are_joined_until_the_one_ending_in_a_newline() {
    let frag = |t: &str| format!(r#"{{"log":"{t}","stream":"stdout","time":"{T}"}}"#);
    let got = join(
        &[
            &frag("16k of "),
            &frag("text \\\"quoted\\\""),
            &frag(" end\\n"),
        ],
        1 << 20,
    );
    assert_eq!(
        got,
        [("16k of text \"quoted\" end".into(), Stream::Stdout, None)]
    );
}

#[test]
fn messages_over_max_log_size_are_split_into_numbered_parts() {
    // Fragments: 4 + 4 + 4 bytes with a limit of 5.
    let got = join(
        &[
            &format!("{T} stdout P aaaa"),
            &format!("{T} stdout P bbbb"),
            &format!("{T} stdout F cccc"),
        ],
        5,
    );
    assert_eq!(
        got,
        [
            ("aaaab".into(), Stream::Stdout, Some(1)),
            ("bbbcc".into(), Stream::Stdout, Some(2)),
            ("cc".into(), Stream::Stdout, Some(3)),
        ]
    );
    // A whole line over the limit: its parts are ranges of the line.
    let l = format!("{T} stdout F 0123456789");
    let mut parts = Vec::new();
    Joiner::default().push(l.as_bytes(), parse(l.as_bytes()).unwrap(), 4, |m| {
        assert!(matches!(m.text, Text::Range(_)));
        parts.push((text(l.as_bytes(), &m.text).to_vec(), m.part));
    });
    assert_eq!(
        parts,
        [
            (b"0123".to_vec(), Some(1)),
            (b"4567".to_vec(), Some(2)),
            (b"89".to_vec(), Some(3)),
        ]
    );
}

#[test]
fn a_fragment_left_when_the_file_ends_is_flushed_as_it_is() {
    let got = join(&[&format!("{T} stderr P cut short")], 1 << 20);
    assert_eq!(got, [("cut short".into(), Stream::Stderr, None)]);
}

#[test]
fn kubelet_paths_name_the_pod_and_container() {
    let p = PodFile::parse(
        "/var/log/pods/observability_sluice-agent-x7k2p_0f1e2d3c-aaaa-bbbb-cccc-1234567890ab/agent/3.log",
    )
    .unwrap();
    assert_eq!(
        p,
        PodFile {
            namespace: "observability",
            pod: "sluice-agent-x7k2p",
            uid: "0f1e2d3c-aaaa-bbbb-cccc-1234567890ab",
            container: "agent",
            restart_count: 3,
        }
    );
    assert_eq!(PodFile::parse("/var/log/syslog"), None);
    assert_eq!(PodFile::parse("/var/log/pods/nounderscores/c/0.log"), None);
    assert_eq!(PodFile::parse("/var/log/pods/a_b_c/c/0.log.20240501"), None);
}

#[test]
fn the_fast_time_parser_agrees_with_chrono() {
    for t in [
        "2024-05-01T10:00:00.123456789Z",
        "2024-05-01T10:00:00Z",
        "2024-02-29T23:59:59.5Z",
        "2000-01-01T00:00:00.000001Z",
        "1970-01-01T00:00:00Z",
        "2099-12-31T23:59:60.999999999Z",
    ] {
        let want = chrono::DateTime::parse_from_rfc3339(t)
            .unwrap()
            .timestamp_nanos_opt()
            .unwrap() as u64;
        assert_eq!(utc_fast(t.as_bytes()), Some(want), "{t}");
        assert_eq!(rfc3339(t.as_bytes()), Ok(want));
    }
    // Other shapes are left to chrono, which takes offsets and refuses nonsense.
    for t in [
        "2024-05-01T10:00:00+02:00",
        "2024-05-01T10:00:00.1234567891Z",
        "2023-02-29T10:00:00Z",
        "2024-13-01T10:00:00Z",
        "2024-05-01t10:00:00Z",
    ] {
        assert_eq!(utc_fast(t.as_bytes()), None, "{t}");
    }
    assert_eq!(
        rfc3339(b"2024-05-01T12:00:00+02:00"),
        rfc3339(b"2024-05-01T10:00:00Z")
    );
    assert_eq!(rfc3339(b"2023-02-29T10:00:00Z"), Err(Unparsed::Time));
}
