//! TLS and authentication on the receivers, with real clients: curl (OpenSSL), grpcio and the
//! OpenTelemetry Python SDK, and sluice itself as an agent in front of a sluice gateway.
//! Certificates are made by the openssl CLI.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Collector, Launch, OtlpSink, certificates, metric, run_python};

/// Runs curl with `args` against `url`; its exit code, and the response headers followed by
/// `status=NNN` (000 when no HTTP answer came).
fn curl(url: &str, args: &[&str]) -> (i32, String) {
    let out = Command::new("curl")
        .args([
            "-s",
            "-D",
            "-",
            "-o",
            "/dev/null",
            "-w",
            "status=%{http_code}",
        ])
        .args(["--max-time", "10"])
        .args(args)
        .arg(url)
        .output()
        .expect("curl (Debian package curl)");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn status(out: &(i32, String)) -> &str {
    out.1.rsplit("status=").next().unwrap_or("")
}

/// Replaces `path` with `contents` the way a Secret update does: a new file renamed over it.
fn replace(path: &Path, contents: &[u8]) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, contents).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sluice-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// sluice serving http_logs over TLS with the bearer token `token` read from a file in a
/// scratch directory `name`, forwarding to a collector; with that file and the certificates.
fn bearer_over_tls(
    name: &str,
    token: &str,
) -> (
    common::Sluice,
    Collector,
    std::path::PathBuf,
    std::path::PathBuf,
) {
    let certs = certificates();
    let file = scratch(name).join("token");
    std::fs::write(&file, format!("{token}\n")).unwrap();
    let collector = Collector::start();
    let sluice = Launch::fixture("secure_http_logs_bearer_tls")
        .env("TOKEN_FILE", file.to_str().unwrap())
        .env("CERTS", certs.to_str().unwrap())
        .env("TCP_ADDR", &collector.addr.to_string())
        .start();
    (sluice, collector, file, certs)
}

/// http_logs over TLS with a bearer token from a file: curl with the token is forwarded; no
/// token, a wrong one, or plaintext HTTP are refused, counted and forward nothing; a rotated
/// token file takes effect without a restart.
#[test]
fn bearer_token_over_tls_is_required_and_its_file_is_reread() {
    let (sluice, collector, token, certs) = bearer_over_tls("bearer", "first-token");
    let (port, metrics) = (sluice.port("HTTP_PORT"), sluice.port("METRICS_PORT"));
    let url = format!("https://localhost:{port}/");
    let ca = certs.join("ca.pem");
    let ca = ca.to_str().unwrap();
    let send = |auth: Option<&str>, line: &str| {
        let mut args = vec!["--cacert", ca, "--data-binary", line];
        let header;
        if let Some(t) = auth {
            header = format!("Authorization: Bearer {t}");
            args.extend(["-H", &header]);
        }
        curl(&url, &args)
    };

    let ok = send(Some("first-token"), "hello with a token");
    assert_eq!(status(&ok), "200", "{ok:?}\n{}", sluice.logs());
    let missing = send(None, "no token");
    assert_eq!(status(&missing), "401");
    assert!(
        missing
            .1
            .to_ascii_lowercase()
            .contains("www-authenticate: bearer"),
        "{missing:?}"
    );
    assert_eq!(status(&send(Some("first-tokeN"), "wrong token")), "401");
    // Plaintext HTTP to a TLS port gets no HTTP answer at all.
    let plain = curl(
        &format!("http://127.0.0.1:{port}/"),
        &["--data-binary", "x"],
    );
    assert_eq!(status(&plain), "000", "{plain:?}");

    let lines = collector.wait_for(1, Duration::from_secs(10));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("hello with a token"), "{lines:?}");
    let series = |name: &str| format!("{name}{{receiver=\"http_logs\",transport=\"http\"}}");
    assert_eq!(
        metric(
            metrics,
            &series("sluice_receiver_unauthenticated_requests_total")
        ),
        2
    );
    assert!(
        metric(
            metrics,
            &series("sluice_receiver_tls_handshake_failures_total")
        ) >= 1
    );

    // Rotation: the new token works within a couple of seconds, the old one stops working.
    replace(&token, b"second-token\n");
    let deadline = Instant::now() + Duration::from_secs(10);
    while status(&send(Some("second-token"), "after rotation")) != "200" {
        assert!(
            Instant::now() < deadline,
            "the new token was never accepted"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(status(&send(Some("first-token"), "old token")), "401");
    // A broken update (an empty file) keeps the token in force.
    replace(&token, b"\n");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(status(&send(Some("second-token"), "still valid")), "200");
    let lines = collector.wait_for(3, Duration::from_secs(10));
    assert_eq!(lines.len(), 3, "{lines:?}");
    for refused in ["no token", "wrong token", "old token"] {
        assert!(!lines.iter().any(|l| l.contains(refused)), "{lines:?}");
    }
}

/// A token file replaced by a FIFO (or a stalled mount) once froze every listener and SIGTERM:
/// the file was re-read on the request path and `open` waited for a writer. Now it is looked
/// at off the request path and refused as not a regular file: requests keep the token in force,
/// the metrics endpoint answers, and SIGTERM drains and exits.
#[test]
fn a_token_file_replaced_by_a_fifo_freezes_nothing() {
    let (mut sluice, collector, token, certs) = bearer_over_tls("fifo", "the-token");
    let (port, metrics) = (sluice.port("HTTP_PORT"), sluice.port("METRICS_PORT"));
    let url = format!("https://localhost:{port}/");
    let ca = certs.join("ca.pem");
    let send = |line: &str| {
        let ca = ca.to_str().unwrap();
        curl(
            &url,
            &[
                "--cacert",
                ca,
                "-H",
                "Authorization: Bearer the-token",
                "--data-binary",
                line,
            ],
        )
    };
    assert_eq!(status(&send("before")), "200");
    std::fs::remove_file(&token).unwrap();
    assert!(
        Command::new("mkfifo")
            .arg(&token)
            .status()
            .unwrap()
            .success()
    );
    // Past the once-a-second look at the file, several times over.
    for n in 0..5 {
        std::thread::sleep(Duration::from_millis(400));
        assert_eq!(
            status(&send(&format!("after {n}"))),
            "200",
            "{}",
            sluice.logs()
        );
    }
    assert!(
        metric(
            metrics,
            "sluice_receiver_unauthenticated_requests_total{receiver=\"http_logs\",transport=\"http\"}"
        ) == 0
    );
    assert!(
        sluice.logs().contains("is not a regular file"),
        "the refusal is logged: {}",
        sluice.logs()
    );
    assert_eq!(collector.wait_for(6, Duration::from_secs(10)).len(), 6);
    sluice.sigterm();
    assert!(sluice.wait_exit(Duration::from_secs(30)).success());
}

/// OTLP/HTTP with mutual TLS: curl with the client certificate is served, without it the
/// handshake fails; a renewed server certificate (from another CA) is picked up from disk
/// without a restart.
#[test]
fn mutual_tls_is_enforced_and_a_renewed_certificate_is_reloaded() {
    let certs = certificates();
    let dir = scratch("mtls");
    let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    std::fs::copy(certs.join("server.pem"), &cert).unwrap();
    std::fs::copy(certs.join("server.key"), &key).unwrap();
    let sink = OtlpSink::start(Duration::ZERO);
    let sluice = Launch::fixture("secure_otlp_http_mtls")
        .env("CERT_FILE", cert.to_str().unwrap())
        .env("KEY_FILE", key.to_str().unwrap())
        .env("CERTS", certs.to_str().unwrap())
        .port("SINK_PORT", sink.port)
        .start();
    let (port, metrics) = (sluice.port("HTTP_PORT"), sluice.port("METRICS_PORT"));
    let body = dir.join("empty.pb");
    std::fs::write(&body, b"").unwrap();
    let body_arg = format!("@{}", body.display());
    let url = format!("https://localhost:{port}/v1/logs");
    let post = |ca: &str, client_cert: bool| {
        let (c, k) = (certs.join("client.pem"), certs.join("client.key"));
        let ca = certs.join(ca);
        let mut args: Vec<&str> = vec![
            "--cacert",
            ca.to_str().unwrap(),
            "-H",
            "Content-Type: application/x-protobuf",
            "--data-binary",
            &body_arg,
        ];
        if client_cert {
            args.extend(["--cert", c.to_str().unwrap(), "--key", k.to_str().unwrap()]);
        }
        curl(&url, &args)
    };
    let ok = post("ca.pem", true);
    assert_eq!(status(&ok), "200", "{ok:?}\n{}", sluice.logs());
    let anonymous = post("ca.pem", false);
    assert_eq!(status(&anonymous), "000", "{anonymous:?}");
    assert!(
        metric(
            metrics,
            "sluice_receiver_tls_handshake_failures_total{receiver=\"otlp\",transport=\"http\"}"
        ) >= 1
    );

    // cert-manager renews the Secret with a certificate from another CA.
    replace(&key, &std::fs::read(certs.join("server2.key")).unwrap());
    replace(&cert, &std::fs::read(certs.join("server2.pem")).unwrap());
    let deadline = Instant::now() + Duration::from_secs(10);
    while status(&post("ca2.pem", true)) != "200" {
        assert!(
            Instant::now() < deadline,
            "the new certificate was never served"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        status(&post("ca.pem", true)),
        "000",
        "the old CA no longer verifies it"
    );
}

/// http_logs with `basicauth`: users from an inline htpasswd ($apr1$, as `htpasswd` writes by
/// default) and from a file (SHA-512 crypt), checked with curl -u.
#[test]
fn basic_auth_checks_htpasswd_users() {
    let dir = scratch("basic");
    let hash = |args: &[&str]| {
        let out = Command::new("openssl")
            .arg("passwd")
            .args(args)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let file = dir.join("htpasswd");
    std::fs::write(&file, format!("bob:{}\n", hash(&["-6", "bobs-password"]))).unwrap();
    let alice = hash(&["-apr1", "alices-password"]);
    let collector = Collector::start();
    let sluice = Launch::fixture("secure_http_logs_basicauth")
        .env("HTPASSWD_FILE", file.to_str().unwrap())
        .env("ALICE_HASH", &alice)
        .env("TCP_ADDR", &collector.addr.to_string())
        .start();
    let (port, metrics) = (sluice.port("HTTP_PORT"), sluice.port("METRICS_PORT"));
    let url = format!("http://127.0.0.1:{port}/");
    let send = |user: &str, line: &str| curl(&url, &["-u", user, "--data-binary", line]);
    assert_eq!(status(&send("alice:alices-password", "from alice")), "200");
    assert_eq!(status(&send("bob:bobs-password", "from bob")), "200");
    // Again: served from the remembered verification.
    assert_eq!(status(&send("bob:bobs-password", "bob again")), "200");
    let wrong = send("alice:bobs-password", "wrong password");
    assert_eq!(status(&wrong), "401");
    assert!(wrong.1.contains("Basic realm=\"sluice\""), "{wrong:?}");
    assert_eq!(status(&send("carol:x", "unknown user")), "401");
    assert_eq!(status(&curl(&url, &["--data-binary", "anonymous"])), "401");
    let lines = collector.wait_for(3, Duration::from_secs(10));
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(
        metric(
            metrics,
            "sluice_receiver_unauthenticated_requests_total{receiver=\"http_logs\",transport=\"http\"}"
        ),
        3
    );
}

/// A flood of wrong passwords against a bcrypt user queues at most a bounded number of
/// verifications: the rest are answered 429 with `Retry-After` at once, so a legitimate client
/// is never queued behind the whole flood and gets in by retrying as told; the flood is
/// answered 401 or 429, nothing else; and a hash too slow to check is refused by `validate`.
#[test]
fn a_flood_of_wrong_passwords_is_bounded_and_told_to_retry() {
    use base64::Engine;
    let dir = scratch("flood");
    let file = dir.join("htpasswd");
    std::fs::write(
        &file,
        format!("bob:{}\n", bcrypt::hash("bobs-password", 10).unwrap()),
    )
    .unwrap();
    let collector = Collector::start();
    let sluice = Launch::fixture("secure_http_logs_basicauth")
        .env("HTPASSWD_FILE", file.to_str().unwrap())
        .env("ALICE_HASH", "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=")
        .env("TCP_ADDR", &collector.addr.to_string())
        .start();
    let port = sluice.port("HTTP_PORT");
    let basic = |creds: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(creds)
        )
    };
    let flood: Vec<_> = (0..60)
        .map(|i| {
            let auth = basic(&format!("bob:wrong-{i}"));
            std::thread::spawn(move || {
                let r = common::Client::connect(port)
                    .and_then(|mut c| c.request("POST", "/", &[("Authorization", &auth)], b"x"))
                    .unwrap();
                (r.status, r.header("retry-after").map(str::to_string))
            })
        })
        .collect();
    // The legitimate client, sent while the flood is queued: told to retry, or let in.
    let good = basic("bob:bobs-password");
    let mut tries = 0;
    loop {
        tries += 1;
        let r = common::Client::connect(port)
            .and_then(|mut c| c.request("POST", "/", &[("Authorization", &good)], b"from bob"))
            .unwrap();
        match r.status {
            200 => break,
            429 => {
                assert_eq!(r.header("retry-after"), Some("1"));
                assert!(tries < 60, "never let in");
                std::thread::sleep(Duration::from_secs(1));
            }
            other => panic!("the legitimate client got {other}"),
        }
    }
    let answers: Vec<_> = flood.into_iter().map(|t| t.join().unwrap()).collect();
    let busy = answers.iter().filter(|(s, _)| *s == 429).count();
    assert!(
        answers.iter().all(|(s, _)| *s == 401 || *s == 429),
        "{answers:?}"
    );
    assert!(
        busy > 0,
        "more than the queue holds were sent at once: {answers:?}"
    );
    assert!(
        answers
            .iter()
            .filter(|(s, _)| *s == 429)
            .all(|(_, retry)| retry.as_deref() == Some("1")),
        "{answers:?}"
    );
    assert!(collector.wait_for(1, Duration::from_secs(10)).len() == 1);

    // A cost no login should pay is refused before start.
    let slow = "$2b$31$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234";
    std::fs::write(&file, format!("slow:{slow}\n")).unwrap();
    let config = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/configs/secure_http_logs_basicauth.yaml"
    ))
    .unwrap()
    .replace("${env:HTPASSWD_FILE}", file.to_str().unwrap());
    let path = common::write_config(&config);
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["validate", "--config", path.to_str().unwrap()])
        .env("ALICE_HASH", "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=")
        .env("TCP_ADDR", "127.0.0.1:9")
        .env("HTTP_PORT", "9")
        .env("METRICS_PORT", "9")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("extensions.basicauth.htpasswd.file:")
            && err.contains("user \"slow\"'s hash has bcrypt cost 31, above 14"),
        "{err}"
    );
}

/// OTLP over TLS with a bearer token, from grpcio and the OpenTelemetry Python SDK (gRPC and
/// HTTP exporters, as applications configure them with headers and a CA).
#[test]
fn grpcio_and_the_python_sdk_authenticate_over_tls() {
    let certs = certificates();
    let sink = OtlpSink::start(Duration::ZERO);
    let sluice = Launch::fixture("secure_otlp_bearer_tls")
        .env("TOKEN", "s3cret-token")
        .env("CERTS", certs.to_str().unwrap())
        .port("SINK_PORT", sink.port)
        .start();
    let (grpc, http, metrics) = (
        sluice.port("GRPC_PORT"),
        sluice.port("HTTP_PORT"),
        sluice.port("METRICS_PORT"),
    );
    let ca = certs.join("ca.pem");
    let ca = ca.to_str().unwrap();
    let grpc_target = format!("localhost:{grpc}");
    let http_url = format!("https://localhost:{http}");
    let call = |client: &str, endpoint: &str, token: &str| {
        run_python("secure_call.py", &[client, endpoint, ca, token])["result"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        call("grpcio", &grpc_target, "s3cret-token"),
        "OK",
        "{}",
        sluice.logs()
    );
    assert_eq!(call("grpcio", &grpc_target, "-"), "UNAUTHENTICATED");
    assert_eq!(call("grpcio", &grpc_target, "wrong"), "UNAUTHENTICATED");
    assert_eq!(call("sdk-grpc", &grpc_target, "s3cret-token"), "OK");
    assert_eq!(call("sdk-grpc", &grpc_target, "wrong"), "FAILURE");
    assert_eq!(call("sdk-http", &http_url, "s3cret-token"), "OK");
    assert_eq!(call("sdk-http", &http_url, "-"), "FAILURE");
    // One logs request and two span exports got through, nothing from the refused ones.
    assert_eq!(sink.wait_for(3, Duration::from_secs(10)), 3);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(sink.count(), 3);
    let refused = |t: &str| {
        metric(
            metrics,
            &format!(
                "sluice_receiver_unauthenticated_requests_total{{receiver=\"otlp\",transport=\"{t}\"}}"
            ),
        )
    };
    assert_eq!(refused("grpc"), 3);
    assert_eq!(refused("http"), 1);
}

/// The agent -> gateway hop as the chart deploys it: the agent's `otlp` exporter presents the
/// gateway's token (from the same extension type) and a client certificate over TLS; an agent
/// with a wrong token delivers nothing and its sender is told to retry.
#[test]
fn agent_to_gateway_with_tls_and_a_bearer_token() {
    let certs = certificates();
    let sink = OtlpSink::start(Duration::ZERO);
    let gateway = Launch::fixture("secure_gateway")
        .env("TOKEN", "agent-token")
        .env("CERTS", certs.to_str().unwrap())
        .port("SINK_PORT", sink.port)
        .start();
    let gw_metrics = gateway.port("METRICS_PORT");
    let agent = |token: &str| {
        let s = Launch::fixture("secure_agent")
            .env("TOKEN", token)
            .env("CERTS", certs.to_str().unwrap())
            .port("GATEWAY_PORT", gateway.port("GRPC_PORT"))
            .start();
        let port = s.port("HTTP_PORT");
        (s, port)
    };
    let (trusted, port) = agent("agent-token");
    let r = common::post(port, &[], b"line one\nline two\n");
    assert_eq!(r.status, 200, "{}", trusted.logs());
    assert_eq!(sink.wait_for(1, Duration::from_secs(10)), 1);

    let (impostor, port) = agent("guessed-token");
    let r = common::post(port, &[], b"must not arrive\n");
    assert_eq!(r.status, 503, "{}", impostor.logs());
    assert!(
        impostor
            .logs()
            .to_ascii_lowercase()
            .contains("unauthenticated"),
        "the agent says why: {}",
        impostor.logs()
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(sink.count(), 1);
    assert_eq!(
        metric(
            gw_metrics,
            "sluice_receiver_unauthenticated_requests_total{receiver=\"otlp\",transport=\"grpc\"}"
        ),
        1
    );
}
