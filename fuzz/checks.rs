//! The property each fuzz target checks, one function per target. libFuzzer calls them from
//! `fuzz_targets/`; `tests/fuzz_corpus.rs` replays the seeds and every input that once failed
//! (`fuzz/regressions/<target>/`) through the same functions in `cargo test`.

use bytes::Bytes;
use sluice::otlp::{json, logs, raw, transcode};

/// OTLP logs protobuf: the full decoder and the validator that lets encoded logs through
/// undecoded, differentially. The validator never accepts what the decoder refuses, and both
/// count the same records.
pub fn otlp_logs(data: &[u8]) {
    let buf = Bytes::copy_from_slice(data);
    let decoded = logs::decode(&buf);
    if let Ok(v) = raw::decode_logs(&buf) {
        let d = decoded
            .as_ref()
            .expect("the validator accepted what the decoder refuses");
        assert_eq!(v.len(), d.len(), "both count the same records");
    }
}

/// OTLP traces and metrics: validation, and cutting a valid batch anywhere. A cut never
/// produces an invalid request and never loses or invents an item.
pub fn otlp_traces_metrics(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let buf = Bytes::copy_from_slice(rest);
    let metrics = selector & 1 == 1;
    let decode = |b: &Bytes| {
        if metrics {
            raw::decode_metrics(b)
        } else {
            raw::decode_traces(b)
        }
    };
    let Ok(mut batch) = decode(&buf) else {
        return;
    };
    let total = batch.len();
    let want = usize::from(selector >> 1) % (total + 2);
    let head = batch.split_to(want);
    assert_eq!(head.len() + batch.len(), total, "a cut keeps every item");
    for part in [&head, &batch] {
        if part.is_empty() {
            continue;
        }
        let mut out = Vec::new();
        part.encode(&mut out);
        let again = decode(&Bytes::from(out)).expect("a cut part is a valid request");
        assert_eq!(again.len(), part.len());
    }
}

/// OTLP/JSON logs, traces and metrics: an error, never a panic.
pub fn otlp_json(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    match selector % 3 {
        0 => drop(json::decode_logs(body)),
        1 => drop(transcode::decode_traces(body)),
        _ => drop(transcode::decode_metrics(body)),
    }
}

/// Request bodies in gzip, deflate and zstd: decompression stays under the size limit,
/// whatever the input claims.
pub fn http_body(data: &[u8]) {
    const LIMIT: usize = 64 << 10;
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let encoding = ["gzip", "deflate", "zstd", "identity", "br"][usize::from(selector) % 5];
    let raw = Bytes::copy_from_slice(rest);
    if let Ok(out) = sluice::receivers::body::decompress(encoding, raw, LIMIT) {
        assert!(
            out.len() <= LIMIT,
            "{encoding}: {} bytes past the limit",
            out.len()
        );
    }
}

/// Elasticsearch `_bulk` answers: one outcome per item sent, or an error; never a panic.
pub fn bulk_response(data: &[u8]) {
    let Some((&sent, body)) = data.split_first() else {
        return;
    };
    let items = sluice::exporters::elasticsearch::response::items(body, usize::from(sent), &[429]);
    if let Ok(items) = items {
        assert_eq!(items.len(), usize::from(sent));
    }
}

/// Config loading with `${env:}` substitution: every error has a path and a message.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(errors) = sluice::service::load(text) {
        assert!(!errors.0.is_empty());
        for e in &errors.0 {
            assert!(
                !e.message.is_empty(),
                "an error without a message at {}",
                e.path
            );
        }
    }
}

/// CRI and docker json-file lines, and pod log paths: parsed or refused, never a panic.
pub fn container_line(data: &[u8]) {
    use sluice::receivers::filelog::container;
    let _ = container::parse(data);
    let _ = container::rfc3339(data);
    if let Ok(path) = std::str::from_utf8(data) {
        let _ = container::PodFile::parse(path);
    }
}

/// `Str` (inline copies read with unaligned word loads) and the JSON string writer: any slice
/// of any buffer reads back as the same text, and what the writer escapes parses as JSON to
/// that text.
pub fn str_json(data: &[u8]) {
    use sluice::codec::write_json_str;
    use sluice::model::Str;
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let buf = Bytes::copy_from_slice(rest);
    let start = usize::from(cut) % (buf.len() + 1);
    let ends = [
        start,
        (start + 7).min(buf.len()),
        (start + 32).min(buf.len()),
        buf.len(),
    ];
    for end in ends {
        let Ok(s) = Str::from_utf8_slice(&buf, start..end) else {
            continue;
        };
        let text = std::str::from_utf8(&buf[start..end]).expect("checked by Str");
        assert_eq!(s.as_str(), text);
        assert_eq!(Str::copied(text).as_str(), text);
        let mut out = Vec::new();
        write_json_str(&mut out, s.as_bytes());
        let back: String = serde_json::from_slice(&out).expect("valid JSON");
        assert_eq!(back, text);
    }
}

/// A target's check.
pub type Check = fn(&[u8]);

/// Every target, by name, for replaying files.
pub const TARGETS: &[(&str, Check)] = &[
    ("otlp_logs", otlp_logs),
    ("otlp_traces_metrics", otlp_traces_metrics),
    ("otlp_json", otlp_json),
    ("http_body", http_body),
    ("bulk_response", bulk_response),
    ("config", config),
    ("container_line", container_line),
    ("str_json", str_json),
];
