//! The property each fuzz target checks, one function per target. libFuzzer calls them from
//! `fuzz_targets/`; `tests/fuzz_corpus.rs` replays the seeds and every input that once failed
//! (`fuzz/regressions/<target>/`) through the same functions in `cargo test`.

use bytes::Bytes;
use sluice::otlp::{json, logs, raw, transcode};

/// OTLP logs protobuf: the full decoder and the validator that lets encoded logs through
/// undecoded, differentially. The validator never accepts what the decoder refuses, and both
/// count the same records. Elasticsearch `otel` documents written from the encoded records
/// are byte for byte those written from the decoded ones.
pub fn otlp_logs(data: &[u8]) {
    let buf = Bytes::copy_from_slice(data);
    let decoded = logs::decode(&buf);
    if let Ok(v) = raw::decode_logs(&buf) {
        let d = decoded
            .as_ref()
            .expect("the validator accepted what the decoder refuses");
        assert_eq!(v.len(), d.len(), "both count the same records");
        let (from_records, from_bytes) = es_otel_both_ways(d, &v);
        assert!(
            from_records == from_bytes,
            "documents differ:\n{}\n{}",
            String::from_utf8_lossy(&from_records),
            String::from_utf8_lossy(&from_bytes)
        );
    }
}

/// `_bulk` items in `otel` mode from decoded records and from the same records encoded, with
/// `_id`s and the per-record `_id` and pipeline attributes honoured.
pub fn es_otel_both_ways(
    decoded: &sluice::model::LogBatch,
    encoded: &raw::RawBatch,
) -> (Vec<u8>, Vec<u8>) {
    use sluice::exporters::elasticsearch::log_docs::LogScratch;
    use sluice::exporters::elasticsearch::mapping::{BulkEncoder, Dynamic, Items, Mode};
    let encoder = || {
        BulkEncoder::new(Mode::Otel, None, Some("p".into()))
            .with_ids(7)
            .with_dynamic(Dynamic {
                id: true,
                pipeline: true,
            })
    };
    let mut from_records = Vec::new();
    encoder().encode_batch(decoded, &mut from_records);
    let (mut enc, mut from_bytes) = (encoder(), Vec::new());
    let (mut scratch, mut items) = (LogScratch::default(), Items::default());
    for (entry, n) in &encoded.resources {
        enc.encode_raw_logs(entry, *n, &mut scratch, &mut from_bytes, &mut items);
    }
    assert!(items.refused.is_empty(), "valid records are never refused");
    assert_eq!(items.len(), decoded.len(), "a document per record");
    (from_records, from_bytes)
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
    simd_chunks(rest);
}

/// `simd::Chunk` (the one unaligned vector load, and the lane operations the JSON escaper and
/// the log-format matcher build on) against each operation's byte-by-byte definition, on every
/// 16-byte window of the input, with probe bytes taken from the input too.
fn simd_chunks(data: &[u8]) {
    use sluice::simd::Chunk;
    let bits =
        |w: &[u8], f: &dyn Fn(u8) -> bool| (0..16).fold(0u32, |m, i| m | u32::from(f(w[i])) << i);
    for at in 0..data.len().saturating_sub(15) {
        let w = &data[at..at + 16];
        let c = Chunk::at(data, at);
        assert_eq!(c.to_bytes(), w);
        let (lo, hi) = (w[0], w[15]);
        assert_eq!(c.eq(lo).bits(), bits(w, &|b| b == lo));
        assert_eq!(c.at_most(hi).bits(), bits(w, &|b| b <= hi));
        let (a, z) = (lo.min(hi), lo.max(hi));
        assert_eq!(
            c.in_span(Chunk::splat(a), Chunk::splat(z - a)).bits(),
            bits(w, &|b| (a..=z).contains(&b))
        );
        assert_eq!(
            c.eq(lo).or(c.at_most(hi)).bits(),
            bits(w, &|b| b == lo || b <= hi)
        );
    }
}

/// OTLP/gRPC messages through the very tonic server the receiver uses (`otlp::codec::server`):
/// 5-byte framing and `grpc-encoding` decompression. The message handed on never passes the
/// limit, whatever the frame claims or the compressed bytes expand to, and a plain frame
/// arrives byte for byte.
pub fn grpc_unary(data: &[u8]) {
    use std::sync::{Arc, Mutex};
    const LIMIT: usize = 64 << 10;
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let encoding = [
        None,
        Some("gzip"),
        Some("zstd"),
        Some("identity"),
        Some("deflate"),
    ][usize::from(selector) % 5];
    let mut req = http::Request::builder()
        .method("POST")
        .uri(sluice::otlp::grpc::LOGS_EXPORT)
        .header("content-type", "application/grpc");
    if let Some(e) = encoding {
        req = req.header("grpc-encoding", e);
    }
    let req = req
        .body(http_body_util::Full::new(Bytes::copy_from_slice(body)))
        .expect("a valid request");

    #[derive(Clone, Default)]
    struct Keep(Arc<Mutex<Option<Bytes>>>);
    impl tonic::server::UnaryService<Bytes> for Keep {
        type Response = Bytes;
        type Future = std::future::Ready<Result<tonic::Response<Bytes>, tonic::Status>>;
        fn call(&mut self, req: tonic::Request<Bytes>) -> Self::Future {
            *self.0.lock().unwrap() = Some(req.into_inner());
            std::future::ready(Ok(tonic::Response::new(Bytes::new())))
        }
    }
    let keep = Keep::default();
    let mut grpc = sluice::otlp::codec::server(LIMIT);
    runtime().block_on(grpc.unary(keep.clone(), req));
    let Some(message) = keep.0.lock().unwrap().take() else {
        return;
    };
    assert!(
        message.len() <= LIMIT,
        "{} bytes past the limit",
        message.len()
    );
    if let [0, a, b, c, d, payload @ ..] = body {
        let plain = encoding.is_none() || encoding == Some("identity");
        if plain && u32::from_be_bytes([*a, *b, *c, *d]) as usize == payload.len() {
            assert_eq!(
                &message[..],
                payload,
                "a plain frame arrives as it was sent"
            );
        }
    }
}

/// One current-thread runtime per fuzzing thread, made once.
fn runtime() -> &'static tokio::runtime::Runtime {
    thread_local! {
        static RT: &'static tokio::runtime::Runtime = Box::leak(Box::new(
            tokio::runtime::Builder::new_current_thread().build().expect("a runtime"),
        ));
    }
    RT.with(|rt| *rt)
}

/// `http_logs` bodies, compressed or not, split into records: against a plain model (lines cut
/// at `\n`, a trailing `\r` dropped, empty lines skipped, invalid UTF-8 replaced), and never
/// more records reserved than the body's size allows.
pub fn http_logs(data: &[u8]) {
    use sluice::receivers::http_logs::{Framing, frame};
    const LIMIT: usize = 64 << 10;
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let encoding = ["identity", "gzip", "deflate", "zstd"][usize::from(selector & 3)];
    let framing = if selector & 4 == 0 {
        Framing::NewlineDelimited
    } else {
        Framing::Bytes
    };
    let Ok(body) =
        sluice::receivers::body::decompress(encoding, Bytes::copy_from_slice(rest), LIMIT)
    else {
        return;
    };
    let text = String::from_utf8_lossy(&body).into_owned();
    let want: Vec<&str> = match framing {
        Framing::Bytes if text.is_empty() => vec![],
        Framing::Bytes => vec![text.as_str()],
        Framing::NewlineDelimited => text
            .split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .filter(|l| !l.is_empty())
            .collect(),
    };
    let budget =
        sluice::otlp::logs::FREE_ITEMS.max(body.len() / sluice::otlp::logs::MIN_BYTES_PER_ITEM);
    let Some(batch) = frame(body, framing, 7) else {
        assert!(
            want.len() > budget,
            "refused {} lines, within the budget",
            want.len()
        );
        return;
    };
    let got: Vec<&str> = batch
        .records
        .iter()
        .map(|r| r.body.as_str().expect("a string body").as_str())
        .collect();
    assert_eq!(got, want);
    assert!(
        batch.records.capacity() <= budget.max(4),
        "reserved past the budget"
    );
}

/// The single-pass log-format matcher (`processors::segments`), differentially against
/// `regex-automata` on generated patterns of the shape log regexes have and lines drawn from
/// them: whenever the matcher takes a pattern, it finds the same match and the same captures
/// on every ASCII line.
pub fn log_format(data: &[u8]) {
    use regex_automata::{Input, meta::Regex};
    use sluice::processors::segments::{Segments, Spans};
    let mut bytes = data.iter().copied();
    let mut next = move || bytes.next();
    let (pattern, lines) = generate(&mut next);
    let Some(fast) = Segments::compile(&pattern) else {
        return;
    };
    let re = Regex::new(&pattern).expect("the matcher took a pattern the engine refuses");
    let mut caps = re.create_captures();
    let mut spans = Spans::new();
    for line in lines.iter().filter(|l| l.is_ascii()) {
        re.captures(Input::new(line), &mut caps);
        let want: Option<Spans> = caps.is_match().then(|| {
            (0..caps.group_len())
                .map(|g| caps.get_group(g).map(|s| (s.start, s.end)))
                .collect()
        });
        let got = fast.captures(line, &mut spans).then(|| spans.clone());
        assert_eq!(
            got,
            want,
            "pattern {pattern}\nline {:?}",
            String::from_utf8_lossy(line)
        );
    }
}

/// A pattern of literals and class runs (some captured, some quantified, an optional `$`), and
/// lines made from it: each item rendered as it matches, with the bytes deciding counts,
/// choices and stray mutations.
fn generate(next: &mut impl FnMut() -> Option<u8>) -> (String, Vec<Vec<u8>>) {
    // (regex text, bytes that match it)
    const CLASSES: &[(&str, &[u8])] = &[
        (r"\w", b"aZ9_"),
        (r"\d", b"0179"),
        (r"\S", b"a-[\"/"),
        (r"\s", b" \t"),
        (r"[^\]]", b"a ]-[x"),
        (r#"[^"]"#, b"a \"-"),
        (r".", b"a .-\"]"),
        (r"[a-z]", b"az"),
        (r"[A-Z]", b"AZ"),
        (r"[\w\-]", b"a-_"),
        (r"[\d\-]", b"1-"),
        (r"[\w\.]", b"a.1"),
        (r"[^ ]", b"ab-"),
        (r"x", b"x"),
    ];
    const LITERALS: &[&str] = &[" ", " - ", "[", "] ", "\"", "=", ":", "/", "x", "ab", "\t"];
    const QUANTIFIERS: &[&str] = &["", "*", "+", "?", "{3}", "{1,4}", "{2,}", "+?", "*?"];
    let mut pattern = String::from("^");
    // (a class's members, its quantifier), or (None, a literal)
    let mut parts: Vec<(Option<&[u8]>, &str)> = Vec::new();
    let items = next().unwrap_or(0) % 8 + 1;
    let mut group = 0;
    for _ in 0..items {
        let b = next().unwrap_or(0);
        let captured = b & 1 == 1;
        if captured {
            group += 1;
            pattern.push_str(&format!("(?P<g{group}>"));
        }
        if b & 2 == 0 {
            let lit = LITERALS[usize::from(b >> 2) % LITERALS.len()];
            pattern.push_str(&regex_syntax::escape(lit));
            parts.push((None, lit));
        } else {
            let (class, members) = CLASSES[usize::from(b >> 2) % CLASSES.len()];
            let q = QUANTIFIERS[usize::from(next().unwrap_or(0)) % QUANTIFIERS.len()];
            pattern.push_str(class);
            pattern.push_str(q);
            parts.push((Some(members), q));
        }
        if captured {
            pattern.push(')');
        }
    }
    if next().unwrap_or(0) & 1 == 1 {
        pattern.push('$');
    }
    let mut lines = Vec::new();
    for _ in 0..4 {
        let mut line = Vec::new();
        for (class, q) in &parts {
            match class {
                None => line.extend_from_slice(q.as_bytes()),
                Some(members) => {
                    let n = usize::from(next().unwrap_or(1)) % 6;
                    for _ in 0..n {
                        let m = usize::from(next().unwrap_or(0));
                        line.push(members[m % members.len()]);
                    }
                }
            }
        }
        // A stray byte or two, anywhere.
        let m = next().unwrap_or(0);
        if m & 1 == 1 && !line.is_empty() {
            let at = usize::from(next().unwrap_or(0)) % line.len();
            line[at] = next().unwrap_or(b'?') & 0x7f;
        }
        if m & 2 == 2 {
            line.push(next().unwrap_or(b' ') & 0x7f);
        }
        lines.push(line);
    }
    (pattern, lines)
}

/// The counting allocator wrapper (`alloc::Counting`) over the system allocator, under a
/// random sequence of allocations, zeroed allocations, reallocations and frees of any size and
/// alignment: every block is aligned, a zeroed one is zero, a reallocated one keeps its bytes,
/// and once all are freed the live count is back where it was (within the per-thread
/// threshold), so no path miscounts.
pub fn alloc_ops(data: &[u8]) {
    use sluice::alloc::{Counting, FLUSH_BYTES, live_bytes, mark_installed};
    use std::alloc::{GlobalAlloc, Layout, System};
    static BASELINE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    mark_installed();
    let a = Counting::new(System);
    let baseline = *BASELINE.get_or_init(|| live_bytes().unwrap_or(0));
    let mut blocks: Vec<(*mut u8, Layout, u8)> = Vec::new();
    for op in data.chunks(3) {
        let [kind, x, y] = [op[0], *op.get(1).unwrap_or(&0), *op.get(2).unwrap_or(&0)];
        let size = (usize::from(x) << (y % 12)) + 1;
        let align = 1usize << (y >> 5);
        match kind % 4 {
            0 | 1 => {
                let layout = Layout::from_size_align(size, align).expect("a valid layout");
                // SAFETY: the layout has a non-zero size.
                let p = unsafe {
                    if kind % 4 == 0 {
                        a.alloc(layout)
                    } else {
                        a.alloc_zeroed(layout)
                    }
                };
                assert!(!p.is_null());
                assert_eq!(p as usize % align, 0, "aligned to {align}");
                // SAFETY: `p` holds `size` bytes.
                let block = unsafe { std::slice::from_raw_parts_mut(p, size) };
                if kind % 4 == 1 {
                    assert!(block.iter().all(|&b| b == 0), "zeroed");
                }
                block.fill(x);
                blocks.push((p, layout, x));
            }
            2 if !blocks.is_empty() => {
                let i = usize::from(x) % blocks.len();
                let (p, layout, fill) = blocks[i];
                // SAFETY: `p` came from `a` with `layout`, and `size` is non-zero.
                let q = unsafe { a.realloc(p, layout, size) };
                assert!(!q.is_null());
                assert_eq!(q as usize % layout.align(), 0, "still aligned");
                let kept = size.min(layout.size());
                // SAFETY: `q` holds `size` bytes, the first `kept` copied from `p`.
                let block = unsafe { std::slice::from_raw_parts_mut(q, size) };
                assert!(block[..kept].iter().all(|&b| b == fill), "kept its bytes");
                block.fill(fill);
                blocks[i] = (
                    q,
                    Layout::from_size_align(size, layout.align()).unwrap(),
                    fill,
                );
            }
            3 if !blocks.is_empty() => {
                let (p, layout, _) = blocks.swap_remove(usize::from(x) % blocks.len());
                // SAFETY: `p` came from `a` with `layout`.
                unsafe { a.dealloc(p, layout) };
            }
            _ => {}
        }
    }
    for (p, layout, _) in blocks {
        // SAFETY: `p` came from `a` with `layout`.
        unsafe { a.dealloc(p, layout) };
    }
    let now = live_bytes().unwrap_or(0);
    assert!(
        now.abs_diff(baseline) < 2 * FLUSH_BYTES as u64,
        "live count drifted from {baseline} to {now}"
    );
}

/// `AnyValue` nesting, counted alike by every decoder: a value nested `n` levels deep (arrays
/// and maps as the bytes say) in a log body, a log attribute, a span attribute, as protobuf and
/// as OTLP/JSON, is accepted by all of them exactly when `n <= MAX_DEPTH`.
pub fn otlp_nesting(data: &[u8]) {
    use sluice::otlp::logs::MAX_DEPTH;
    let Some((&place, path)) = data.split_first() else {
        return;
    };
    let path = &path[..path.len().min(2 * MAX_DEPTH)];
    // The leaf: a string at one level below the containers, or the innermost container empty.
    let leaf_string = place & 1 == 1;
    let depth = path.len() + usize::from(leaf_string);
    if depth == 0 {
        return;
    }
    let mut pb: Vec<u8> = if leaf_string {
        pb_field(1, b"x")
    } else {
        Vec::new()
    };
    let mut js = if leaf_string {
        r#"{"stringValue":"x"}"#.to_string()
    } else {
        "{}".to_string()
    };
    let mut first = !leaf_string;
    for &step in path.iter().rev() {
        let inner = if first { None } else { Some(pb.as_slice()) };
        let inner_js = if first { None } else { Some(js.as_str()) };
        (pb, js) = if step & 1 == 0 {
            let values = inner.map(|v| pb_field(1, v)).unwrap_or_default();
            let values_js = inner_js.map(|v| format!(r#"{{"values":[{v}]}}"#));
            (
                pb_field(5, &values),
                format!(r#"{{"arrayValue":{}}}"#, values_js.unwrap_or("{}".into())),
            )
        } else {
            let kv = inner.map(|v| [pb_field(1, b"k"), pb_field(2, v)].concat());
            let values = kv.map(|kv| pb_field(1, &kv)).unwrap_or_default();
            let values_js =
                inner_js.map(|v| format!(r#"{{"values":[{{"key":"k","value":{v}}}]}}"#));
            (
                pb_field(6, &values),
                format!(r#"{{"kvlistValue":{}}}"#, values_js.unwrap_or("{}".into())),
            )
        };
        first = false;
    }
    let ok = depth <= MAX_DEPTH;
    let attribute = [pb_field(1, b"a"), pb_field(2, &pb)].concat();
    let attribute_js = format!(r#"{{"key":"a","value":{js}}}"#);
    let (record, record_js) = if place & 2 == 0 {
        (pb_field(5, &pb), format!(r#"{{"body":{js}}}"#))
    } else {
        (
            pb_field(6, &attribute),
            format!(r#"{{"attributes":[{attribute_js}]}}"#),
        )
    };
    let logs = Bytes::from(pb_field(1, &pb_field(2, &pb_field(2, &record))));
    let span = pb_field(9, &attribute);
    let traces = Bytes::from(pb_field(1, &pb_field(2, &pb_field(2, &span))));
    let logs_js =
        format!(r#"{{"resourceLogs":[{{"scopeLogs":[{{"logRecords":[{record_js}]}}]}}]}}"#);
    let traces_js = format!(
        r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"name":"s","attributes":[{attribute_js}]}}]}}]}}]}}"#
    );
    let results = [
        ("logs decoder", logs::decode(&logs).is_ok()),
        ("logs validator", raw::decode_logs(&logs).is_ok()),
        ("traces validator", raw::decode_traces(&traces).is_ok()),
        (
            "OTLP/JSON logs",
            json::decode_logs(logs_js.as_bytes()).is_ok(),
        ),
        (
            "OTLP/JSON traces",
            transcode::decode_traces(traces_js.as_bytes()).is_ok(),
        ),
    ];
    for (reader, accepted) in results {
        assert_eq!(accepted, ok, "{reader}: depth {depth}, accepted {accepted}");
    }
}

/// A length-delimited protobuf field.
fn pb_field(number: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![number << 3 | 2];
    let mut n = payload.len();
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            break;
        }
        out.push(b | 0x80);
    }
    out.extend_from_slice(payload);
    out
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
    ("grpc_unary", grpc_unary),
    ("http_logs", http_logs),
    ("log_format", log_format),
    ("alloc_ops", alloc_ops),
    ("otlp_nesting", otlp_nesting),
];
