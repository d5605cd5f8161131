//! TLS on the `otlphttp` and `otlp` exporters, against a real TLS server: socat's OpenSSL
//! listener terminates TLS (certificates made by the openssl CLI) in front of a plaintext
//! receiver, so what is tested is rustls in sluice talking to OpenSSL.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Client, Launch, Mock, OtlpSink, Sluice, certificates, free_port};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value::Value as PValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use prost::Message;

/// socat terminating TLS on `port` and forwarding plaintext to `to`; `client_ca` demands a
/// client certificate signed by that CA.
struct Terminator(Child);

impl Terminator {
    fn start(certs: &Path, port: u16, to: u16, require_client_cert: bool) -> Terminator {
        let verify = if require_client_cert {
            format!("verify=1,cafile={}", certs.join("ca.pem").display())
        } else {
            "verify=0".to_string()
        };
        let listen = format!(
            "OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,cert={},key={},{verify}",
            certs.join("server.pem").display(),
            certs.join("server.key").display()
        );
        let child = Command::new("socat")
            .arg(listen)
            .arg(format!("TCP:127.0.0.1:{to}"))
            .stderr(Stdio::null())
            .spawn()
            .expect("socat (Debian package socat)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "socat did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Terminator(child)
    }
}

impl Drop for Terminator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn logs(text: &str) -> Vec<u8> {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord {
                    body: Some(AnyValue {
                        value: Some(PValue::StringValue(text.into())),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

fn post(port: u16, body: &[u8]) -> common::Response {
    Client::connect(port)
        .unwrap()
        .request(
            "POST",
            "/v1/logs",
            &[("Content-Type", "application/x-protobuf")],
            body,
        )
        .unwrap()
}

fn bodies(sink: &OtlpSink) -> Vec<String> {
    sink.received
        .lock()
        .unwrap()
        .iter()
        .flat_map(|r| {
            let req = ExportLogsServiceRequest::decode(&r.body[..]).unwrap();
            req.resource_logs
                .into_iter()
                .flat_map(|rl| rl.scope_logs)
                .flat_map(|sl| sl.log_records)
                .filter_map(|lr| match lr.body?.value? {
                    PValue::StringValue(s) => Some(s),
                    _ => None,
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// otlp (HTTP) -> the `exporter` given (YAML, one exporter); its HTTP port with it.
fn agent(exporter: &str) -> (Sluice, u16) {
    let name = exporter.trim().split(':').next().unwrap();
    let sluice = Launch::fixture("otlp_http_logs_to")
        .put("exporter", exporter)
        .env("EXPORTER", name)
        .start();
    let http = sluice.port("HTTP_PORT");
    (sluice, http)
}

/// otlphttp to `https://localhost`: verified against the configured CA, and refused (the batch
/// fails, the client is told to retry) when the server's certificate is not trusted.
#[test]
fn otlphttp_exports_over_tls_and_verifies_the_server() {
    let certs = certificates();
    let sink = OtlpSink::start(Duration::ZERO);
    let tls_port = free_port();
    let _socat = Terminator::start(&certs, tls_port, sink.port, false);

    let (_trusting, http) = agent(&format!(
        "  otlphttp:\n    endpoint: https://localhost:{tls_port}\n    compression: none\n    \
             tls: {{ ca_file: {} }}",
        certs.join("ca.pem").display()
    ));
    let r = post(http, &logs("over tls"));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(bodies(&sink), ["over tls"]);

    // The system roots do not include the test CA: the handshake fails, nothing is delivered.
    let (untrusting, http2) = agent(&format!(
        "  otlphttp:\n    endpoint: https://localhost:{tls_port}\n    compression: none\n    \
             retry_on_failure: {{ enabled: false }}"
    ));
    let r = Client::connect(http2)
        .unwrap()
        .request(
            "POST",
            "/v1/logs",
            &[("Content-Type", "application/x-protobuf")],
            &logs("must not arrive"),
        )
        .unwrap_or_else(|e| panic!("{e}: {}", untrusting.logs()));
    assert_eq!(r.status, 503, "the sender is told to retry");
    assert_eq!(bodies(&sink), ["over tls"]);
    let log = untrusting.logs();
    assert!(
        log.contains("certificate") || log.contains("UnknownIssuer"),
        "the log says why: {log}"
    );
}

/// otlp (gRPC) agent -> TLS with a client certificate (socat demands one) -> a plaintext
/// gateway -> otlphttp -> the test sink.
#[test]
fn otlp_grpc_exports_over_mutual_tls() {
    let certs = certificates();
    let sink = OtlpSink::start(Duration::ZERO);
    let gateway = Launch::fixture("gateway_logs_to_sink")
        .port("SINK_PORT", sink.port)
        .start();
    let gw_grpc = gateway.port("GRPC_PORT");
    let tls_port = free_port();
    let _socat = Terminator::start(&certs, tls_port, gw_grpc, true);
    let (_agent, http) = agent(&format!(
        "  otlp:\n    endpoint: localhost:{tls_port}\n    tls:\n      ca_file: {ca}\n      \
             cert_file: {cert}\n      key_file: {key}",
        ca = certs.join("ca.pem").display(),
        cert = certs.join("client.pem").display(),
        key = certs.join("client.key").display()
    ));
    let r = post(http, &logs("grpc over mutual tls"));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(bodies(&sink), ["grpc over mutual tls"]);

    // Without its certificate the agent is turned away by the server.
    let (_anonymous, http2) = agent(&format!(
        "  otlp:\n    endpoint: localhost:{tls_port}\n    tls: {{ ca_file: {ca} }}\n    \
             retry_on_failure: {{ enabled: false }}",
        ca = certs.join("ca.pem").display()
    ));
    let r = post(http2, &logs("no client certificate"));
    assert_eq!(r.status, 503, "the sender is told to retry");
    assert_eq!(bodies(&sink), ["grpc over mutual tls"]);
}

/// elasticsearch -> TLS with a client certificate (socat demands one) -> sluice-es-mock: the
/// CA, the client certificate and the key are the transport's; without the certificate the
/// handshake fails and the sender is told to retry.
#[test]
fn elasticsearch_exports_over_mutual_tls() {
    let certs = certificates();
    let mock = Mock::start(&[]);
    let tls_port = free_port();
    let _socat = Terminator::start(&certs, tls_port, mock.port, true);
    let exporter = |client_cert: bool| {
        let cert = if client_cert {
            format!(
                ", cert_file: {}, key_file: {}",
                certs.join("client.pem").display(),
                certs.join("client.key").display()
            )
        } else {
            String::new()
        };
        format!(
            "  elasticsearch:\n    endpoint: https://localhost:{tls_port}\n    \
             mapping: {{ mode: raw }}\n    retry: {{ enabled: false }}\n    \
             tls: {{ ca_file: {}{cert} }}",
            certs.join("ca.pem").display()
        )
    };
    let (_with_cert, http) = agent(&exporter(true));
    let r = post(http, &logs("over mutual tls"));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let docs = mock.docs();
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0]["_source"]["message"], "over mutual tls");

    let (without, http2) = agent(&exporter(false));
    let r = post(http2, &logs("must not arrive"));
    assert_eq!(r.status, 503, "{}", without.logs());
    assert_eq!(mock.docs().len(), 1);

    // insecure_skip_verify: no CA, the server's certificate is accepted unchecked.
    let skipping = exporter(true).replace(
        &format!("ca_file: {}", certs.join("ca.pem").display()),
        "insecure_skip_verify: true",
    );
    let (_skipping, http3) = agent(&skipping);
    let r = post(http3, &logs("unverified"));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(mock.docs().len(), 2);
}
