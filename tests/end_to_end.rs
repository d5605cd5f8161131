//! Black-box tests: the real binary, real sockets, a real TCP consumer.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// The guide's pipeline (`tests/fixtures/configs/guide_pipeline.yaml`) on free ports, plus
/// `exporter_extra` YAML for the tcp exporter and `service_extra` for the service; the tcp
/// peer's port is `TCP_PORT` (a free one, so a dead peer, unless the test gives its own).
fn guide(exporter_extra: &str, service_extra: &str) -> Launch {
    Launch::fixture("guide_pipeline")
        .put("tcp", exporter_extra)
        .put("service", service_extra)
}

fn body_of(lines: &[String]) -> Vec<u8> {
    let mut b = lines.join("\n").into_bytes();
    b.push(b'\n');
    b
}

#[test]
fn guide_config_verbatim_delivers_every_line_once_with_fields_and_metrics_agree() {
    let collector = Collector::on_port(9001);
    let config = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/guide.yaml"
    ))
    .unwrap();
    let _sluice = Sluice::start(&config, 9000);

    let lines: Vec<String> = (0..10_000)
        .map(|i| {
            if i % 10 == 7 {
                format!("not an access log line {i}")
            } else {
                apache_line(i)
            }
        })
        .collect();
    let mut client = Client::connect(9000).unwrap();
    let mut bytes = 0;
    for chunk in lines.chunks(1000) {
        let body = body_of(chunk);
        bytes += body.len();
        assert_eq!(client.post(&body).unwrap().status, 200);
    }
    // Every 200 came after delivery, so the lines are already at the consumer.
    let got = collector.wait_for(10_000, Duration::from_secs(5));
    assert_eq!(got.len(), 10_000);

    let mut seen = HashMap::new();
    for line in &got {
        let v: Value = serde_json::from_str(line).unwrap();
        *seen
            .entry(v["body"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
        let attrs = v["attributes"].as_object().unwrap();
        let body = v["body"].as_str().unwrap();
        if body.starts_with("not an access log line") {
            assert!(
                attrs.is_empty(),
                "non-matching lines are kept unparsed: {line}"
            );
            continue;
        }
        let i: usize = body
            .split("/item/")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(attrs.len(), 7, "{line}");
        assert_eq!(
            attrs["host"],
            format!("10.0.{}.{}", (i / 256) % 256, i % 256)
        );
        assert_eq!(attrs["user"], format!("user{}", i % 97));
        assert_eq!(
            attrs["timestamp"],
            format!("05/Feb/2023:09:{:02}:{:02} +0000", (i / 60) % 60, i % 60)
        );
        assert_eq!(attrs["method"], "GET");
        assert_eq!(attrs["path"], format!("/item/{i} HTTP/1.1"));
        assert_eq!(attrs["status"], [200, 404, 500, 302][i % 4].to_string());
        assert_eq!(attrs["bytes_out"], (1000 + i).to_string());
    }
    assert_eq!(seen.len(), 10_000, "every line exactly once");
    assert!(seen.values().all(|&n| n == 1));

    assert_eq!(
        metric(
            8888,
            r#"otelcol_receiver_accepted_log_records_total{receiver="http_logs",transport="http"}"#
        ),
        10_000
    );
    assert_eq!(
        metric(
            8888,
            r#"otelcol_receiver_refused_log_records_total{receiver="http_logs",transport="http"}"#
        ),
        0
    );
    assert_eq!(
        metric(
            8888,
            r#"sluice_receiver_accepted_bytes_total{receiver="http_logs",transport="http"}"#
        ),
        bytes as u64
    );
    assert_eq!(
        metric(
            8888,
            r#"otelcol_exporter_sent_log_records_total{exporter="tcp"}"#
        ),
        10_000
    );
    assert_eq!(
        metric(
            8888,
            r#"otelcol_exporter_send_failed_log_records_total{exporter="tcp"}"#
        ),
        0
    );
    assert_eq!(
        metric(8888, r#"otelcol_exporter_queue_size{exporter="tcp"}"#),
        0
    );
    assert_eq!(
        metric(
            8888,
            r#"sluice_processor_failed_log_records_total{processor="regex_parser/apache",pipeline="logs"}"#
        ),
        1000
    );
    assert_eq!(
        metric(
            8888,
            r#"otelcol_processor_dropped_log_records_total{processor="regex_parser/apache",pipeline="logs"}"#
        ),
        0
    );
}

#[test]
fn tcp_peer_down_then_up_loses_and_duplicates_nothing() {
    let tcp = free_port();
    let sluice = guide(
        "reconnect: { initial_interval: 50ms, max_interval: 300ms }",
        "",
    )
    .port("TCP_PORT", tcp)
    .start();
    let (http, metrics) = (sluice.port("HTTP_PORT"), sluice.port("METRICS_PORT"));

    let total = 20 * 250;
    let senders: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                let mut client = Client::connect(http).unwrap();
                for req in 0..5 {
                    let start = (t * 5 + req) * 250;
                    let lines: Vec<String> = (start..start + 250).map(apache_line).collect();
                    let resp = client.post(&body_of(&lines)).unwrap();
                    assert_eq!(resp.status, 200);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        metric(
            metrics,
            r#"otelcol_exporter_send_failed_log_records_total{exporter="tcp"}"#
        ) > 0,
        "the exporter tried while the peer was down"
    );
    let collector = Collector::on_port(tcp);
    for s in senders {
        s.join().unwrap();
    }
    let got = bodies(&collector, total, Duration::from_secs(10));
    let unique: HashSet<&String> = got.iter().collect();
    assert_eq!(got.len(), total, "no duplicates:\n{}", sluice.logs());
    assert_eq!(unique.len(), total, "no losses");
}

#[test]
fn sigterm_under_load_delivers_every_acknowledged_record() {
    let collector = Collector::start();
    let mut sluice = guide("", "")
        .port("TCP_PORT", collector.addr.port())
        .start();
    let http = sluice.port("HTTP_PORT");

    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..8)
        .map(|t| {
            let acked = Arc::clone(&acked);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let Ok(mut client) = Client::connect(http) else {
                    return;
                };
                for req in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let start = (t * 100_000) + req * 200;
                    let lines: Vec<String> = (start..start + 200).map(apache_line).collect();
                    match client.post(&body_of(&lines)) {
                        Ok(r) if r.status == 200 => acked.lock().unwrap().extend(lines),
                        Ok(r) => assert!(
                            r.status == 503 || r.status == 429,
                            "unexpected {}",
                            r.status
                        ),
                        // The connection closed during shutdown: nothing was acknowledged.
                        Err(_) => match Client::connect(http) {
                            Ok(c) => client = c,
                            Err(_) => return,
                        },
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(800));
    sluice.sigterm();
    let status = sluice.wait_exit(Duration::from_secs(30));
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        s.join().unwrap();
    }
    assert!(
        status.success(),
        "exit status {status:?}\n{}",
        sluice.logs()
    );

    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 1000,
        "the load ran ({} acknowledged)",
        acked.len()
    );
    let got: HashSet<String> = bodies(&collector, acked.len(), Duration::from_secs(5))
        .into_iter()
        .collect();
    let missing = acked.iter().filter(|l| !got.contains(*l)).count();
    assert_eq!(
        missing,
        0,
        "{missing} of {} acknowledged records never reached the consumer",
        acked.len()
    );
}

/// Starts the guide pipeline with a collector and returns both plus the HTTP port.
fn started(exporter_extra: &str, receiver_extra: &str) -> (Sluice, Collector, u16, u16) {
    let collector = Collector::start();
    let sluice = guide(exporter_extra, "")
        .put("http_logs", receiver_extra)
        .port("TCP_PORT", collector.addr.port())
        .start();
    let (http, metrics) = (sluice.port("HTTP_PORT"), sluice.port("METRICS_PORT"));
    (sluice, collector, http, metrics)
}

/// The `body` of every JSON line the collector got, once at least `n` arrived or `limit` passed.
fn bodies(collector: &Collector, n: usize, limit: Duration) -> Vec<String> {
    collector
        .wait_for(n, limit)
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["body"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn gzip_and_zstd_bodies_are_decoded() {
    let (_s, collector, http, _) = started("", "");
    let plain = body_of(&[apache_line(1), apache_line(2)]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&plain).unwrap();
    let gz = gz.finish().unwrap();
    assert_eq!(post(http, &[("Content-Encoding", "gzip")], &gz).status, 200);
    let zst = zstd::encode_all(&plain[..], 3).unwrap();
    assert_eq!(
        post(http, &[("Content-Encoding", "zstd")], &zst).status,
        200
    );
    assert_eq!(
        bodies(&collector, 4, Duration::from_secs(5)),
        [
            apache_line(1),
            apache_line(2),
            apache_line(1),
            apache_line(2)
        ]
    );
    let resp = post(http, &[("Content-Encoding", "br")], b"xx");
    assert_eq!(resp.status, 415);
    let resp = post(http, &[("Content-Encoding", "gzip")], b"not gzip at all");
    assert_eq!(resp.status, 400);
}

#[test]
fn oversized_bodies_and_decompression_bombs_get_413() {
    let (_s, collector, http, metrics) = started("", "max_request_body_size: 64KiB");
    let big = vec![b'a'; 65 * 1024];
    assert_eq!(post(http, &[], &big).status, 413);
    // A chunked body has no Content-Length to check up front; the streaming limit catches it.
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", http)).unwrap();
    let mut req = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..70 {
        req.extend_from_slice(b"400\r\n");
        req.extend_from_slice(&[b'b'; 1024]);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let _ = stream.write_all(&req);
    let mut head = [0u8; 12];
    std::io::Read::read_exact(&mut stream, &mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 413");
    // 10 MiB of zeros compresses to about 10 KiB: small on the wire, a bomb when inflated.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![0u8; 10 << 20]).unwrap();
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 64 * 1024);
    assert_eq!(
        post(http, &[("Content-Encoding", "gzip")], &bomb).status,
        413
    );
    let zbomb = zstd::encode_all(&vec![0u8; 10 << 20][..], 19).unwrap();
    assert_eq!(
        post(http, &[("Content-Encoding", "zstd")], &zbomb).status,
        413
    );
    // Nothing from the refused requests went anywhere, and the server still works.
    assert_eq!(post(http, &[], b"after\n").status, 200);
    assert_eq!(bodies(&collector, 1, Duration::from_secs(5)), ["after"]);
    assert_eq!(
        metric(
            metrics,
            r#"otelcol_receiver_accepted_log_records_total{receiver="http_logs",transport="http"}"#
        ),
        1
    );
}

#[test]
fn invalid_utf8_empty_body_and_missing_final_newline_are_handled() {
    let (_s, collector, http, _) = started("", "");
    assert_eq!(post(http, &[], b"").status, 200);
    assert_eq!(
        post(http, &[], b"first\nbad \xff\xfe bytes\r\nno final newline").status,
        200
    );
    assert_eq!(
        bodies(&collector, 3, Duration::from_secs(5)),
        ["first", "bad \u{fffd}\u{fffd} bytes", "no final newline"]
    );
    let mut c = Client::connect(http).unwrap();
    assert_eq!(c.request("GET", "/", &[], b"").unwrap().status, 405);
}

#[test]
fn full_queue_answers_429_with_retry_after_and_counts_refusals() {
    // The consumer's port has no listener, so nothing leaves the queue.
    let mut sluice = guide("sending_queue: { queue_size: 10 }", "shutdown_timeout: 1s").start();
    let (http, metrics) = (sluice.port("HTTP_PORT"), sluice.port("METRICS_PORT"));
    let held = std::thread::spawn(move || {
        post(
            http,
            &[],
            &body_of(&(0..6).map(apache_line).collect::<Vec<_>>()),
        )
        .status
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while metric(metrics, r#"otelcol_exporter_queue_size{exporter="tcp"}"#) != 6 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(10));
    }
    let resp = post(
        http,
        &[],
        &body_of(&(0..5).map(apache_line).collect::<Vec<_>>()),
    );
    assert_eq!(resp.status, 429);
    assert_eq!(resp.header("retry-after"), Some("1"));
    assert_eq!(
        metric(
            metrics,
            r#"otelcol_receiver_refused_log_records_total{receiver="http_logs",transport="http"}"#
        ),
        5
    );
    // On SIGTERM the held request cannot be delivered within the timeout: it is told so.
    sluice.sigterm();
    assert_eq!(held.join().unwrap(), 503);
    assert!(sluice.wait_exit(Duration::from_secs(10)).success());
}

#[test]
fn health_check_is_503_while_draining() {
    // The consumer's port has no listener: what is sent stays in flight.
    let mut sluice = guide("", "shutdown_timeout: 3s").start();
    let (http, health) = (sluice.port("HTTP_PORT"), sluice.port("HEALTH_PORT"));
    assert_eq!(get(health, "/").unwrap().status, 200);
    let held = std::thread::spawn(move || post(http, &[], b"stuck\n").status);
    std::thread::sleep(Duration::from_millis(300));
    sluice.sigterm();
    std::thread::sleep(Duration::from_millis(500));
    let resp = get(health, "/").unwrap();
    assert_eq!(resp.status, 503);
    assert!(String::from_utf8_lossy(&resp.body).contains("Server not available"));
    assert_eq!(held.join().unwrap(), 503);
    assert!(sluice.wait_exit(Duration::from_secs(10)).success());
}

#[test]
fn a_client_that_never_sends_headers_is_disconnected() {
    let (_s, _collector, http, _) = started("", "read_header_timeout: 300ms");
    let mut idle = std::net::TcpStream::connect(("127.0.0.1", http)).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    idle.write_all(b"POST / HTTP/1.1\r\nHost: x\r\n").unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut idle, &mut rest);
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(5),
        "the server closed the trickling connection ({waited:?})"
    );
    assert_eq!(post(http, &[], b"still serving\n").status, 200);
}

#[test]
fn connections_are_closed_after_max_connection_age() {
    let (_s, _collector, http, _) = started("", "max_connection_age: 300ms");
    let mut c = Client::connect(http).unwrap();
    assert_eq!(c.post(b"one\n").unwrap().status, 200);
    std::thread::sleep(Duration::from_millis(600));
    assert!(
        c.post(b"two\n").is_err(),
        "the aged connection was closed by the server"
    );
    assert_eq!(post(http, &[], b"three\n").status, 200);
}

/// The EDOT gateway's log transforms on ECS-style JSON lines such as the guide's apps write:
/// severity, `log.level`, trace and span ids, and the service in the resource.
#[test]
fn log_transform_sets_severity_ids_and_resource_on_ecs_json_lines() {
    let collector = Collector::start();
    let sluice = Launch::fixture("http_logs_to")
        .put(
            "processors",
            "processors: { log_transform: { parse_json_body: true } }",
        )
        .put(
            "exporters",
            &format!("tcp: {{ endpoint: '{}' }}", collector.addr),
        )
        .put("pipeline", "processors: [log_transform]\nexporters: [tcp]")
        .start();
    let (http, metrics) = (sluice.port("HTTP_PORT"), sluice.port("METRICS_PORT"));
    let body = concat!(
        r#"{"@timestamp":"2026-11-23T03:00:00Z","log":{"level":"ERROR"},"message":"redis timeout","trace.id":"0af7651916cd43dd8448eb211c80319c","span.id":"b7ad6b7169203331","service.name":"backend","service.version":"1.0.3","event.dataset":"backend.app"}"#,
        "\n",
        r#"{"message":"no level here","service.name":"frontend"}"#,
        "\n",
        "not json at all\n"
    );
    assert_eq!(post(http, &[], body.as_bytes()).status, 200);
    let got: Vec<Value> = collector
        .wait_for(3, Duration::from_secs(10))
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(got.len(), 3);
    let e = &got[0];
    assert_eq!(e["severity_number"], 17);
    assert_eq!(e["severity_text"], "ERROR");
    assert_eq!(e["attributes"]["log.level"], "error");
    assert_eq!(e["trace_id"], "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(e["span_id"], "b7ad6b7169203331");
    assert_eq!(
        e["attributes"]["trace.id"],
        "0af7651916cd43dd8448eb211c80319c"
    );
    assert_eq!(e["attributes"]["span.id"], "b7ad6b7169203331");
    assert_eq!(e["attributes"]["event.dataset"], "backend.app");
    assert_eq!(e["resource"]["service.name"], "backend");
    assert_eq!(e["resource"]["service.version"], "1.0.3");
    let n = &got[1];
    assert!(n.get("severity_number").is_none() && n.get("severity_text").is_none());
    assert!(n["attributes"].get("log.level").is_none());
    assert_eq!(n["resource"]["service.name"], "frontend");
    assert_eq!(got[2]["body"], "not json at all");
    assert_eq!(
        metric(
            metrics,
            r#"sluice_processor_failed_log_records_total{processor="log_transform",pipeline="logs"}"#
        ),
        0,
        "a plain-text line is not meant to be JSON"
    );
}

/// A memory limit below what the process already uses: every request is refused with a
/// retry hint, nothing is forwarded, and the state shows in the metrics.
#[test]
fn memory_limiter_over_its_limit_refuses_with_retry_after() {
    let collector = Collector::start();
    let sluice = Launch::fixture("http_logs_to")
        .put("http_logs", "retry_after: 2s")
        .put(
            "processors",
            "processors: { memory_limiter: { check_interval: 10ms, limit_mib: 1 } }",
        )
        .put(
            "exporters",
            &format!("tcp: {{ endpoint: '{}' }}", collector.addr),
        )
        .put("pipeline", "processors: [memory_limiter]\nexporters: [tcp]")
        .start();
    let (http, metrics) = (sluice.port("HTTP_PORT"), sluice.port("METRICS_PORT"));
    let resp = post(http, &[], b"one\ntwo\n");
    assert_eq!(resp.status, 429);
    assert_eq!(resp.header("retry-after"), Some("2"));
    assert!(String::from_utf8_lossy(&resp.body).contains("memory limit"));
    let labels = r#"{processor="memory_limiter",pipeline="logs"}"#;
    assert_eq!(
        metric(metrics, &format!("sluice_memory_limiter_refusing{labels}")),
        1
    );
    assert!(metric(metrics, &format!("sluice_memory_limiter_rss_bytes{labels}")) > 1 << 20);
    // Refused before the body was read (so a flood of refused requests holds no memory): the
    // request is counted, its records were never looked at.
    assert_eq!(
        metric(
            metrics,
            r#"sluice_receiver_refused_unread_requests_total{receiver="http_logs",transport="http"}"#
        ),
        1
    );
    assert_eq!(
        metric(
            metrics,
            r#"otelcol_receiver_refused_log_records_total{receiver="http_logs",transport="http"}"#
        ),
        0
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(collector.count(), 0);
}

/// A consumer that accepts and then stops reading: sluice's writes stall once both kernels'
/// buffers are full. After `write_timeout` the connection is dropped and every byte the
/// consumer's TCP had not acknowledged is written again on a new connection, so each line a
/// client was answered 200 for reaches the consumer (on the first connection, read late, or on
/// the second). Lines may arrive twice; none is lost.
#[test]
fn a_stalled_consumer_is_detected_and_unacknowledged_bytes_are_sent_again() {
    use std::io::{BufRead, BufReader};
    use std::net::TcpListener;

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp = listener.local_addr().unwrap().port();
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let consumer = {
        let (lines, connections) = (Arc::clone(&lines), Arc::clone(&connections));
        std::thread::spawn(move || {
            let read_all = |conn: std::net::TcpStream, lines: Arc<Mutex<Vec<String>>>| {
                for line in BufReader::new(conn).lines() {
                    match line {
                        Ok(l) => lines.lock().unwrap().push(l),
                        Err(_) => return,
                    }
                }
            };
            // The first connection is left unread until the second one arrives.
            let (stalled, _) = listener.accept().unwrap();
            connections.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let (second, _) = listener.accept().unwrap();
            connections.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let l2 = Arc::clone(&lines);
            let reader = std::thread::spawn(move || read_all(second, l2));
            read_all(stalled, Arc::clone(&lines));
            reader.join().unwrap();
        })
    };
    let sluice = guide(
        "write_timeout: 1s\nreconnect: { initial_interval: 50ms, max_interval: 200ms }",
        "",
    )
    .port("TCP_PORT", tcp)
    .start();
    let http = sluice.port("HTTP_PORT");
    // About 24 MB of JSON: far more than the socket buffers hold.
    let per_request = 500;
    let senders: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                let mut client = Client::connect(http).unwrap();
                let mut acknowledged = Vec::new();
                for req in 0..20 {
                    let start = (t * 20 + req) * per_request;
                    let lines: Vec<String> =
                        (start..start + per_request).map(apache_line).collect();
                    let resp = client.post(&body_of(&lines)).unwrap();
                    if resp.status == 200 {
                        acknowledged.extend(lines);
                    }
                }
                acknowledged
            })
        })
        .collect();
    let acknowledged: Vec<String> = senders
        .into_iter()
        .flat_map(|s| s.join().unwrap())
        .collect();
    assert_eq!(acknowledged.len(), 4 * 20 * per_request, "all answered 200");
    assert_eq!(
        connections.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "the stall was detected:\n{}",
        sluice.logs()
    );
    drop(sluice);
    consumer.join().unwrap();
    let got: HashSet<String> = lines
        .lock()
        .unwrap()
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["body"].as_str().unwrap().to_string()
        })
        .collect();
    let missing = acknowledged.iter().filter(|l| !got.contains(*l)).count();
    assert_eq!(missing, 0, "acknowledged lines that never arrived");
}

/// A body with more lines than the exporter's whole queue would never fit: it is refused for
/// good (413, no `Retry-After`) instead of being let past the queue's bound; one that fits is
/// taken.
#[test]
fn a_body_larger_than_the_whole_queue_is_refused_with_413() {
    let (sluice, collector, http, _metrics) = started("sending_queue: { queue_size: 10 }", "");
    let resp = post(
        http,
        &[],
        &body_of(&(0..11).map(apache_line).collect::<Vec<_>>()),
    );
    assert_eq!(resp.status, 413, "{}", sluice.logs());
    assert_eq!(resp.header("retry-after"), None);
    assert!(String::from_utf8_lossy(&resp.body).contains("queue_size"));
    let resp = post(
        http,
        &[],
        &body_of(&(0..10).map(apache_line).collect::<Vec<_>>()),
    );
    assert_eq!(resp.status, 200);
    assert_eq!(bodies(&collector, 10, Duration::from_secs(5)).len(), 10);
}

/// The queue is bounded in request bytes as well as records: with the consumer down, one
/// 670 KB body fills a 1 MiB queue (though it holds only 8,000 of its 100,000 records),
/// the next is answered 429, and a body larger than the whole queue 413.
#[test]
fn the_exporter_queue_is_bounded_in_request_bytes() {
    let mut sluice = guide(
        "sending_queue: { queue_size: 100000, queue_size_bytes: 1MiB }",
        "shutdown_timeout: 1s",
    )
    .start();
    let (http, metrics) = (sluice.port("HTTP_PORT"), sluice.port("METRICS_PORT"));
    let lines =
        |from: usize, n: usize| body_of(&(from..from + n).map(apache_line).collect::<Vec<_>>());
    let first = lines(0, 8000);
    assert!(
        first.len() > 600_000 && first.len() < 1 << 20,
        "{}",
        first.len()
    );
    let held = std::thread::spawn(move || post(http, &[], &first).status);
    let deadline = Instant::now() + Duration::from_secs(5);
    while metric(metrics, r#"otelcol_exporter_queue_size{exporter="tcp"}"#) != 8000 {
        assert!(Instant::now() < deadline, "the first body is queued");
        std::thread::sleep(Duration::from_millis(10));
    }
    let resp = post(http, &[], &lines(8000, 8000));
    assert_eq!(resp.status, 429, "{}", String::from_utf8_lossy(&resp.body));
    let resp = post(http, &[], &lines(14000, 14000));
    assert_eq!(resp.status, 413, "{}", String::from_utf8_lossy(&resp.body));
    assert!(String::from_utf8_lossy(&resp.body).contains("queue_size_bytes"));
    sluice.sigterm();
    assert_eq!(held.join().unwrap(), 503);
    assert!(sluice.wait_exit(Duration::from_secs(10)).success());
}
