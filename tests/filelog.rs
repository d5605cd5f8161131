//! The `filelog` receiver over real files, as the kubelet lays them out under /var/log/pods:
//! container formats, rotation, truncation, a crash and restart, and a consumer that is down.

mod common;

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Collector, Launch, Sluice, free_port, metric};
use serde_json::Value;

const T: &str = "2024-05-01T10:00:00.000000001Z";

/// A fresh directory for logs and one for checkpoints.
fn dirs(name: &str) -> (PathBuf, PathBuf) {
    let base = std::env::temp_dir().join(format!("sluice-filelog-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&base);
    let (logs, storage) = (base.join("pods"), base.join("storage"));
    fs::create_dir_all(&logs).unwrap();
    fs::create_dir_all(&storage).unwrap();
    (logs, storage)
}

/// `<logs>/<ns>_<pod>_<uid>/<container>/0.log`, created empty.
fn pod_log(logs: &Path, pod: &str, container: &str) -> PathBuf {
    let dir = logs
        .join(format!("default_{pod}_0000-{pod}"))
        .join(container);
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join("0.log");
    File::create(&path).unwrap();
    path
}

fn append(path: &Path, text: &str) {
    let mut f = OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// One CRI line in one write, as runtimes write them.
fn line(file: &mut File, body: &str) {
    file.write_all(format!("{T} stdout F {body}\n").as_bytes())
        .unwrap();
}

fn start(logs: &Path, storage: &Path, collector: &str) -> Sluice {
    Launch::fixture("filelog_to_tcp")
        .env("LOG_DIR", logs.to_str().unwrap())
        .env("STORAGE_DIR", storage.to_str().unwrap())
        .env("TCP_ADDR", collector)
        .start()
}

fn records(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// How many times each body arrived.
fn counts(collector: &Collector) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for r in records(&collector.lines.lock().unwrap()) {
        *out.entry(r["body"].as_str().unwrap_or_default().to_string())
            .or_default() += 1;
    }
    out
}

/// Waits until every one of `bodies` arrived at least once.
fn wait_all(collector: &Collector, bodies: &[String], limit: Duration) -> HashMap<String, usize> {
    let deadline = Instant::now() + limit;
    loop {
        let c = counts(collector);
        let missing = bodies.iter().filter(|b| !c.contains_key(*b)).count();
        if missing == 0 {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} of {} lines never arrived",
            bodies.len()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn cri_and_docker_lines_arrive_with_their_time_stream_and_pod() {
    let (logs, storage) = dirs("formats");
    let cri = pod_log(&logs, "web-1", "app");
    let docker = pod_log(&logs, "api-2", "server");
    append(
        &cri,
        &format!(
            "{T} stdout F {{\"message\":\"started\"}}\n{T} stderr P part one, \n\
             2024-05-01T10:00:01Z stdout F interleaved\n2024-05-01T10:00:02Z stderr F part two\n\
             not a container line\n"
        ),
    );
    append(
        &docker,
        &format!(
            "{{\"log\":\"{{\\\"level\\\":\\\"info\\\"}}\\n\",\"stream\":\"stdout\",\"time\":\"{T}\"}}\n\
             {{\"log\":\"16k \",\"stream\":\"stderr\",\"time\":\"{T}\"}}\n\
             {{\"log\":\"joined\\n\",\"stream\":\"stderr\",\"time\":\"{T}\"}}\n"
        ),
    );
    let collector = Collector::start();
    let sluice = start(&logs, &storage, &collector.addr.to_string());
    let lines = collector.wait_for(6, Duration::from_secs(20));
    let by_body: HashMap<String, Value> = records(&lines)
        .into_iter()
        .map(|r| (r["body"].as_str().unwrap().to_string(), r))
        .collect();
    let started = &by_body["{\"message\":\"started\"}"];
    assert_eq!(started["timestamp"], "2024-05-01T10:00:00.000000001Z");
    assert_eq!(started["attributes"]["log.iostream"], "stdout");
    assert_eq!(started["attributes"]["log.file.name"], "0.log");
    assert!(
        started["attributes"]["log.file.path"]
            .as_str()
            .unwrap()
            .ends_with("default_web-1_0000-web-1/app/0.log")
    );
    assert_eq!(started["resource"]["k8s.namespace.name"], "default");
    assert_eq!(started["resource"]["k8s.pod.name"], "web-1");
    assert_eq!(started["resource"]["k8s.pod.uid"], "0000-web-1");
    assert_eq!(started["resource"]["k8s.container.name"], "app");
    assert_eq!(started["resource"]["k8s.container.restart_count"], 0);
    // Fragments joined, with the first fragment's time; the other stream in between stays whole.
    let joined = &by_body["part one, part two"];
    assert_eq!(joined["attributes"]["log.iostream"], "stderr");
    assert_eq!(joined["timestamp"], "2024-05-01T10:00:00.000000001Z");
    assert!(by_body.contains_key("interleaved"));
    // A line of neither format is kept whole, without a stream.
    let other = &by_body["not a container line"];
    assert!(other["attributes"].get("log.iostream").is_none());
    // Docker: unescaped, and 16 KiB fragments joined.
    assert_eq!(
        by_body["{\"level\":\"info\"}"]["resource"]["k8s.container.name"],
        "server"
    );
    assert_eq!(
        by_body["16k joined"]["attributes"]["log.iostream"],
        "stderr"
    );
    assert_eq!(lines.len(), 6, "{lines:?}");
    let m = sluice.port("METRICS_PORT");
    assert_eq!(
        metric(
            m,
            r#"sluice_filelog_unparsed_lines_total{receiver="filelog"}"#
        ),
        1
    );
    // Counted once acknowledged, which can come a moment after the collector has the lines.
    let accepted =
        r#"otelcol_receiver_accepted_log_records_total{receiver="filelog",transport="file"}"#;
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(m, accepted) != 6 {
        assert!(Instant::now() < deadline, "{}", metric(m, accepted));
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Fragments joined past `max_log_size`, and a whole line longer than it, arrive as numbered
/// parts that together are the message.
#[test]
fn messages_over_max_log_size_arrive_in_numbered_parts() {
    let (logs, storage) = dirs("split");
    let path = pod_log(&logs, "web-1", "app");
    let (a, b, c) = ("a".repeat(700), "b".repeat(700), "c".repeat(700));
    let long = "L".repeat(2500);
    append(
        &path,
        &format!(
            "{T} stdout P {a}\n{T} stdout P {b}\n{T} stdout P {c}\n{T} stdout F end\n\
             {T} stderr F {long}\n"
        ),
    );
    let collector = Collector::start();
    let _sluice = Launch::fixture("filelog_to_tcp")
        .env("LOG_DIR", logs.to_str().unwrap())
        .env("STORAGE_DIR", storage.to_str().unwrap())
        .env("TCP_ADDR", &collector.addr.to_string())
        .env("MAX_LOG_SIZE", "1024")
        .start();
    let got = records(&collector.wait_for(6, Duration::from_secs(20)));
    let parts = |stream: &str| -> Vec<(i64, String)> {
        got.iter()
            .filter(|r| r["attributes"]["log.iostream"] == stream)
            .map(|r| {
                (
                    r["attributes"]["log.split_part"].as_i64().unwrap(),
                    r["body"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let joined = format!("{a}{b}{c}end");
    assert_eq!(
        parts("stdout"),
        [
            (1, joined[..1024].to_string()),
            (2, joined[1024..2048].to_string()),
            (3, joined[2048..].to_string()),
        ]
    );
    assert_eq!(
        parts("stderr"),
        [
            (1, long[..1024].to_string()),
            (2, long[1024..2048].to_string()),
            (3, long[2048..].to_string()),
        ]
    );
}

/// kubelet's rotation: `0.log` renamed out of the pattern while being written, a new `0.log`
/// created. The old file is read through its handle to its end; nothing is lost or repeated.
#[test]
fn rotation_by_rename_while_writing_loses_and_repeats_nothing() {
    let (logs, storage) = dirs("rotate");
    let path = pod_log(&logs, "web-1", "app");
    let collector = Collector::start();
    let _sluice = start(&logs, &storage, &collector.addr.to_string());
    let mut bodies = Vec::new();
    let mut file = OpenOptions::new().append(true).open(&path).unwrap();
    for i in 0..6000 {
        if i % 1500 == 1499 {
            // Rotate: the writer keeps the old handle for a few more lines, as a runtime
            // finishing its buffer would.
            let rotated = path.with_extension(format!("log.2024050110{i:04}"));
            fs::rename(&path, &rotated).unwrap();
            for j in 0..3 {
                let body = format!("line {i} tail {j}");
                line(&mut file, &body);
                bodies.push(body);
            }
            file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .unwrap();
        }
        let body = format!("line {i}");
        line(&mut file, &body);
        bodies.push(body);
        if i % 500 == 0 {
            std::thread::sleep(Duration::from_millis(30));
        }
    }
    let c = wait_all(&collector, &bodies, Duration::from_secs(30));
    let repeated: Vec<_> = c.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "repeated: {repeated:?}");
    assert_eq!(c.len(), bodies.len());
}

/// copytruncate: the file is copied away and truncated in place; what is written after is
/// read from the start of the file again.
#[test]
fn a_truncated_file_is_read_again_from_its_start() {
    let (logs, storage) = dirs("truncate");
    let path = pod_log(&logs, "web-1", "app");
    append(
        &path,
        &format!("{T} stdout F before 1\n{T} stdout F before 2\n"),
    );
    let collector = Collector::start();
    let _sluice = start(&logs, &storage, &collector.addr.to_string());
    collector.wait_for(2, Duration::from_secs(20));
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    append(&path, &format!("{T} stdout F after\n"));
    let c = wait_all(&collector, &["after".to_string()], Duration::from_secs(20));
    assert_eq!(c["before 1"], 1);
}

/// A file deleted while sluice reads it is read to its end through the open handle.
#[test]
fn a_deleted_file_is_drained_before_it_is_let_go() {
    let (logs, storage) = dirs("deleted");
    let path = pod_log(&logs, "web-1", "app");
    let collector = Collector::start();
    let sluice = start(&logs, &storage, &collector.addr.to_string());
    let mut file = OpenOptions::new().append(true).open(&path).unwrap();
    writeln!(file, "{T} stdout F first").unwrap();
    collector.wait_for(1, Duration::from_secs(20));
    // Deleted, then written through the writer's handle: those lines still arrive.
    fs::remove_file(&path).unwrap();
    let bodies: Vec<String> = (0..100).map(|i| format!("after delete {i}")).collect();
    for b in &bodies {
        writeln!(file, "{T} stdout F {b}").unwrap();
    }
    wait_all(&collector, &bodies, Duration::from_secs(20));
    let m = sluice.port("METRICS_PORT");
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(m, r#"otelcol_fileconsumer_open_files{receiver="filelog"}"#) != 0 {
        assert!(Instant::now() < deadline, "the deleted file is let go");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SIGKILL mid-stream, then a restart on the same checkpoints: every line arrives, and lines
/// arrive twice only from the window that was not acknowledged yet.
#[test]
fn after_a_sigkill_a_restart_loses_nothing() {
    let (logs, storage) = dirs("sigkill");
    let path = pod_log(&logs, "web-1", "app");
    let n = 200_000;
    let bodies: Vec<String> = (0..n).map(|i| format!("record {i:06}")).collect();
    let mut text = String::new();
    for b in &bodies {
        text.push_str(&format!("{T} stdout F {b}\n"));
    }
    append(&path, &text);
    let collector = Collector::start();
    let mut sluice = start(&logs, &storage, &collector.addr.to_string());
    let deadline = Instant::now() + Duration::from_secs(30);
    while collector.count() < n / 10 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(5));
    }
    sluice.child.kill().unwrap();
    sluice.child.wait().unwrap();
    let before = collector.count();
    assert!(before < n, "killed mid-stream ({before} of {n} delivered)");
    let _again = start(&logs, &storage, &collector.addr.to_string());
    let c = wait_all(&collector, &bodies, Duration::from_secs(60));
    let duplicates: usize = c.values().map(|k| k - 1).sum();
    // At most what can be in flight unacknowledged (16 MiB read, plus one read of 1 MiB), and
    // what was acknowledged after the last checkpoint write.
    let line = text.len() / n;
    assert!(duplicates * line <= 17 << 20, "{duplicates} duplicates");
    eprintln!("delivered before the kill: {before}; duplicates after restart: {duplicates}");
}

/// The consumer is down: reading pauses at the queue's bound instead of buffering, and once
/// it is up every line arrives once.
#[test]
fn a_consumer_that_is_down_pauses_reading_and_nothing_is_lost() {
    let (logs, storage) = dirs("down");
    let path = pod_log(&logs, "web-1", "app");
    let bodies: Vec<String> = (0..50_000).map(|i| format!("held {i}")).collect();
    let mut text = String::new();
    for b in &bodies {
        text.push_str(&format!("{T} stdout F {b}\n"));
    }
    append(&path, &text);
    let port = free_port();
    let sluice = Launch::fixture("filelog_to_tcp")
        .env("LOG_DIR", logs.to_str().unwrap())
        .env("STORAGE_DIR", storage.to_str().unwrap())
        .env("TCP_ADDR", &format!("127.0.0.1:{port}"))
        .env("QUEUE_SIZE", "10000")
        .start();
    let m = sluice.port("METRICS_PORT");
    std::thread::sleep(Duration::from_secs(2));
    let queued = metric(m, r#"otelcol_exporter_queue_size{exporter="tcp"}"#);
    assert!(queued <= 10_000, "{queued} queued");
    let unacked = metric(
        m,
        r#"sluice_filelog_unacknowledged_bytes{receiver="filelog"}"#,
    );
    assert!(unacked > 0);
    let collector = Collector::on_port(port);
    let c = wait_all(&collector, &bodies, Duration::from_secs(60));
    assert!(c.values().all(|n| *n == 1));
}

/// A checkpoint file that was torn or edited is not trusted. By default it is set aside and
/// counted, and sluice starts as if every file had appeared while it was down (read from the
/// beginning, even under `start_at: end`: duplicates, not losses); with
/// `on_damaged_checkpoint: fail` `sluice validate` reports it and sluice does not start.
#[test]
fn a_damaged_checkpoint_file_is_set_aside_or_refused_as_configured() {
    let (logs, storage) = dirs("damaged");
    let checkpoints = storage.join("filelog.checkpoints");
    fs::write(&checkpoints, "{\"version\":1,\"fil").unwrap();
    let config = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/configs/filelog_to_tcp.yaml"
    ))
    .unwrap();
    let path = common::write_config(&config);
    let validate = |on_damaged: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["validate", "--config", path.to_str().unwrap()])
            .env("LOG_DIR", &logs)
            .env("STORAGE_DIR", &storage)
            .env("TCP_ADDR", "127.0.0.1:9")
            .env("METRICS_PORT", "9")
            .env("ON_DAMAGED", on_damaged)
            .output()
            .unwrap()
    };
    let out = validate("fail");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("receivers.filelog.storage: checkpoints")
            && err.contains("are damaged (no checksum line)"),
        "{err}"
    );
    assert!(validate("set_aside").status.success());

    // Lines written while sluice was down (its checkpoints lost) still arrive.
    let log = pod_log(&logs, "web", "app");
    append(&log, &format!("{T} stdout F written while down\n"));
    let port = free_port();
    let sluice = Launch::fixture("filelog_to_tcp")
        .env("LOG_DIR", logs.to_str().unwrap())
        .env("STORAGE_DIR", storage.to_str().unwrap())
        .env("TCP_ADDR", &format!("127.0.0.1:{port}"))
        .env("START_AT", "end")
        .start();
    let collector = Collector::on_port(port);
    let c = wait_all(
        &collector,
        &["written while down".to_string()],
        Duration::from_secs(30),
    );
    assert_eq!(c["written while down"], 1);
    let m = sluice.port("METRICS_PORT");
    assert_eq!(
        metric(
            m,
            r#"sluice_filelog_checkpoints_damaged_total{receiver="filelog"}"#
        ),
        1
    );
    let aside: Vec<String> = fs::read_dir(&storage)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("filelog.checkpoints.damaged-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(
        fs::read(storage.join(&aside[0])).unwrap(),
        b"{\"version\":1,\"fil",
        "kept as it was, for a person to look at"
    );
}

/// More files than `max_concurrent_files` take turns: with 4 open at once, 12 files' lines all
/// arrive, and lines added later to every one of them (so also to files let go for another's
/// turn) arrive too, each once.
#[test]
fn files_beyond_max_concurrent_files_take_turns_and_none_is_starved() {
    let (logs, storage) = dirs("turns");
    let paths: Vec<PathBuf> = (0..12)
        .map(|p| pod_log(&logs, &format!("pod-{p}"), "app"))
        .collect();
    let mut bodies = Vec::new();
    for (p, path) in paths.iter().enumerate() {
        let b = format!("pod {p} first");
        append(path, &format!("{T} stdout F {b}\n"));
        bodies.push(b);
    }
    let port = free_port();
    let sluice = Launch::fixture("filelog_to_tcp")
        .env("LOG_DIR", logs.to_str().unwrap())
        .env("STORAGE_DIR", storage.to_str().unwrap())
        .env("TCP_ADDR", &format!("127.0.0.1:{port}"))
        .put("filelog", "max_concurrent_files: 4")
        .start();
    let collector = Collector::on_port(port);
    wait_all(&collector, &bodies, Duration::from_secs(30));
    for (p, path) in paths.iter().enumerate() {
        let b = format!("pod {p} later");
        append(path, &format!("{T} stdout F {b}\n"));
        bodies.push(b);
    }
    let c = wait_all(&collector, &bodies, Duration::from_secs(30));
    assert!(c.values().all(|n| *n == 1), "{c:?}");
    let m = sluice.port("METRICS_PORT");
    assert!(metric(m, r#"otelcol_fileconsumer_open_files{receiver="filelog"}"#) <= 4);
    assert_eq!(
        metric(m, r#"sluice_filelog_waiting_files{receiver="filelog"}"#),
        0
    );
}

/// With `confine_to`, a symlink under the include glob that leads out of the allowed
/// directories (to a secret) is not read, and is counted; the kubelet's own links, from
/// `/var/log/containers` into `/var/log/pods`, still are.
#[test]
fn confine_to_keeps_symlinks_from_leading_out_of_the_log_directories() {
    let (logs, storage) = dirs("confine");
    let secret_dir = logs.parent().unwrap().join("secrets");
    fs::create_dir_all(&secret_dir).unwrap();
    let secret = secret_dir.join("shadow");
    fs::write(
        &secret,
        format!("{T} stdout F root:hash-that-must-not-leave\n"),
    )
    .unwrap();
    // A pod's log reached through a link, as /var/log/containers has them.
    let real = pod_log(&logs.parent().unwrap().join("real-pods"), "web", "app");
    append(&real, &format!("{T} stdout F through a link\n"));
    let linked = logs.join("default_web_0000-web").join("app");
    fs::create_dir_all(&linked).unwrap();
    std::os::unix::fs::symlink(&real, linked.join("0.log")).unwrap();
    let planted = logs.join("default_evil_0000-evil").join("app");
    fs::create_dir_all(&planted).unwrap();
    std::os::unix::fs::symlink(&secret, planted.join("0.log")).unwrap();
    let plain = pod_log(&logs, "plain", "app");
    append(&plain, &format!("{T} stdout F a plain file\n"));
    let port = free_port();
    let confine = format!(
        "confine_to: [{}, {}]",
        logs.display(),
        logs.parent().unwrap().join("real-pods").display()
    );
    let sluice = Launch::fixture("filelog_to_tcp")
        .env("LOG_DIR", logs.to_str().unwrap())
        .env("STORAGE_DIR", storage.to_str().unwrap())
        .env("TCP_ADDR", &format!("127.0.0.1:{port}"))
        .put("filelog", &confine)
        .start();
    let collector = Collector::on_port(port);
    let want = ["through a link".to_string(), "a plain file".to_string()];
    wait_all(&collector, &want, Duration::from_secs(30));
    let m = sluice.port("METRICS_PORT");
    let refused = r#"sluice_filelog_refused_files_total{receiver="filelog"}"#;
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(m, refused) < 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(metric(m, refused), 1);
    let c = counts(&collector);
    assert!(
        !c.keys().any(|b| b.contains("must-not-leave")),
        "the secret was read: {c:?}"
    );
    assert_eq!(c.len(), 2, "{c:?}");
}

/// 1,000 files, each with a few lines: all arrive.
#[test]
fn a_thousand_files_are_all_read() {
    let (logs, storage) = dirs("thousand");
    let mut bodies = Vec::new();
    for p in 0..1000 {
        let path = pod_log(&logs, &format!("pod-{p}"), "app");
        let mut text = String::new();
        for l in 0..3 {
            let b = format!("pod {p} line {l}");
            text.push_str(&format!("{T} stdout F {b}\n"));
            bodies.push(b);
        }
        append(&path, &text);
    }
    let collector = Collector::start();
    let _sluice = start(&logs, &storage, &collector.addr.to_string());
    let c = wait_all(&collector, &bodies, Duration::from_secs(60));
    assert!(c.values().all(|n| *n == 1));
}
