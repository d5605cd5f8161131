//! The fuzz targets' properties (`fuzz/checks.rs`) over the seed corpus and over every input
//! that once failed (`fuzz/regressions/<target>/<name>`), so that a crash found by
//! `fuzz/run.sh` stays fixed once its input is added there. The fuzzing itself needs nightly
//! and runs outside `cargo test` (`fuzz/run.sh`).

#[path = "../fuzz/checks.rs"]
mod checks;

use std::path::Path;

/// Replays every file under `fuzz/<dir>/<target>/`; returns how many each target had.
fn replay(dir: &str) -> Vec<(&'static str, usize)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join(dir);
    let mut counts = Vec::new();
    for (target, check) in checks::TARGETS {
        let mut n = 0;
        if let Ok(files) = std::fs::read_dir(root.join(target)) {
            for f in files {
                let path = f.unwrap().path();
                let data = std::fs::read(&path).unwrap();
                let run = std::panic::catch_unwind(|| check(&data));
                assert!(run.is_ok(), "{target}: {} fails", path.display());
                n += 1;
            }
        }
        counts.push((*target, n));
    }
    counts
}

#[test]
fn every_seed_and_every_input_that_once_failed_passes_its_targets_check() {
    for (target, n) in replay("seeds") {
        assert!(n > 0, "{target} has no seeds in fuzz/seeds/{target}/");
    }
    replay("regressions");
}

/// The seed that pins down Elasticsearch `otel` documents written from encoded log records
/// (`log_docs`) is a valid request, and it reaches the branches it is there for: were the
/// validator to refuse it, the differential check above would compare nothing.
#[test]
fn the_es_steering_seed_is_valid_and_reaches_every_document_shape() {
    use bytes::Bytes;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/otlp_logs/es_steering");
    let buf = Bytes::from(std::fs::read(path).unwrap());
    let encoded = sluice::otlp::raw::decode_logs(&buf).expect("a valid request");
    let decoded = sluice::otlp::logs::decode(&buf).unwrap();
    let (from_records, from_bytes) = checks::es_otel_both_ways(&decoded, &encoded);
    let text = String::from_utf8(from_bytes).unwrap();
    assert_eq!(from_records, text.as_bytes());
    for shown in [
        // steering: dataset from the receiver's scope name, namespace from the resource, a
        // static index, the `_id` and pipeline attributes
        "\"_index\":\"logs-hostmetricsreceiver.otel-prod\"",
        "\"_index\":\"static-logs\"",
        "\"_id\":\"doc-1\"",
        "\"pipeline\":\"pipe\"",
        // geo points merged, on the record and on the resource
        "\"a.geo.location\":[2.5,1.5]",
        "\"host.geo.location\":[13.4,52.5]",
        // bodies
        "\"body\":{\"structured\":{\"k\":\"v\"",
        "\"body\":{\"structured\":[{",
        "\"body\":{\"structured\":{\"value\":[\"x\",-5]}}",
        "\"body\":{\"structured\":[]}",
        "\"body\":{\"text\":\"00ff\"}",
        "\"body\":{\"text\":-0.5}",
        "\"body\":{\"text\":true}",
        "\"event_name\":\"checkout.done\"",
        "\"event_name\":\"named\"",
        "\"dropped_attributes_count\":",
        "\"resource\":{\"schema_url\":\"r-url\"",
        "\"scope\":{\"schema_url\":\"s-url\",\"name\":\"github.com/x/receiver/",
    ] {
        assert!(text.contains(shown), "{shown} not in\n{text}");
    }
    assert_eq!(text.lines().count(), 2 * decoded.len());
}
