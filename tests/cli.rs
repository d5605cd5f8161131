//! The command line: `validate`, `--version`, and the built-in default config.

mod common;

use std::process::Command;
use std::time::Duration;

fn sluice(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn validate(yaml: &str) -> (i32, String) {
    let path = common::write_config(yaml);
    let (code, out, err) = sluice(&["validate", "--config", path.to_str().unwrap()]);
    (code, out + &err)
}

#[test]
fn validate_accepts_the_guide_config() {
    let (code, out, _) = sluice(&[
        "validate",
        "--config",
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/guide.yaml"),
    ]);
    assert_eq!(code, 0);
    assert!(out.contains("valid"));
}

#[test]
fn validate_lists_every_error_with_its_path() {
    let (code, out) = validate(
        r#"
receivers:
  http_logs: { endpoint: "127.0.0.1:9000", colour: blue }
  kafka: {}
processors:
  regex_parser/apache: { regex: '^(?P<host>[\w\.]+' }
exporters:
  tcp: { endpoint: "x:y" }
service:
  pipelines:
    logs:
      receivers: [http_logs]
      processors: [regex_parser/apache, batch]
      exporters: [tcp]
"#,
    );
    assert_eq!(code, 1, "{out}");
    for expected in [
        "receivers.http_logs.colour: unknown field `colour`",
        "receivers.kafka: unknown receiver type \"kafka\"",
        "processors.regex_parser/apache.regex: invalid regex",
        "exporters.tcp.endpoint: invalid socket address \"x:y\"",
        "service.pipelines.logs.processors[1]: processor \"batch\" is not declared under processors",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
}

#[test]
fn validate_reports_yaml_syntax_errors_and_missing_files() {
    let (code, out) = validate("receivers: [unclosed\n");
    assert_eq!(code, 1);
    assert!(out.contains("invalid YAML"), "{out}");
    let (code, _, err) = sluice(&["validate", "--config", "/nonexistent/sluice.yaml"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("cannot read /nonexistent/sluice.yaml"),
        "{err}"
    );
}

#[test]
fn validate_refuses_deeply_nested_flow_collections_at_once() {
    // 100,000 levels in 200 KB: the YAML parser took over 20 s to refuse it.
    let deep = format!(
        "receivers: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let (code, out) = validate(&deep);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("invalid YAML: line 1: flow collections nested deeper than 64 levels"),
        "{out}"
    );
}

#[test]
fn version_is_printed() {
    let (code, out, _) = sluice(&["--version"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("sluice "), "{out}");
}

#[test]
fn validate_without_config_checks_the_built_in_default() {
    let (code, out, _) = sluice(&["validate"]);
    assert_eq!(code, 0);
    assert!(out.contains("<built-in default>: valid"), "{out}");
}

/// The default config prints parsed records; it listens on fixed ports, so this is the only
/// test that runs it.
#[test]
fn default_config_runs_and_prints_parsed_records() {
    let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while common::get(13133, "/").map(|r| r.status).unwrap_or(0) != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "default config did not become healthy"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let line = common::apache_line(42);
    assert_eq!(
        common::post(9000, &[], format!("{line}\n").as_bytes()).status,
        200
    );
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&line) && stdout.contains("\"path\":\"/item/42\""),
        "{stdout}"
    );
}

fn validate_env(yaml: &str, env: &[(&str, &str)]) -> (i32, String) {
    let path = common::write_config(yaml);
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["validate", "--config", path.to_str().unwrap()])
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// Each of these once panicked, aborted at start, or failed every connection at run time while
/// `validate` called it valid.
#[test]
fn validate_refuses_values_that_would_crash_at_run_time() {
    let headers: String = (0..40_000)
        .map(|i| format!("x-h{i}: v"))
        .collect::<Vec<_>>()
        .join(", ");
    let digits = "9".repeat(400);
    let (code, out) = validate(&format!(
        r#"
receivers:
  http_logs:
    endpoint: 127.0.0.1:9000
    read_header_timeout: 10000000000000000000s
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:4317
        max_recv_msg_size_mib: 18446744073709551615
      http:
        endpoint: 127.0.0.1:4318
        max_connections: 0
exporters:
  tcp:
    endpoint: 127.0.0.1:9001
    write_buffer_size: 1000GiB
  tcp/2:
    endpoint: 127.0.0.1:9002
    connect_timeout: {digits}s
  otlp:
    endpoint: 127.0.0.1:4319
    tls: {{ insecure: true }}
    headers: {{ {headers} }}
service:
  pipelines:
    logs:
      receivers: [http_logs, otlp]
      exporters: [tcp, tcp/2, otlp]
"#
    ));
    assert_eq!(code, 1, "{out}");
    for expected in [
        "receivers.http_logs.read_header_timeout: invalid duration",
        "exporters.tcp/2.connect_timeout: invalid duration",
        "receivers.otlp.protocols.grpc.max_recv_msg_size_mib: must be between 1 and 1024 MiB",
        "receivers.otlp.protocols.http.max_connections: must be between 1 and",
        "exporters.tcp.write_buffer_size: must be between 1 and 67108864 bytes",
        "exporters.otlp.headers: at most 64 headers",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    assert!(out.len() < 4096, "errors stay short: {} bytes", out.len());
}

/// A numeric or `null`-looking secret from the environment is the secret's text, and a value
/// from the environment that is invalid is named by its variable, never printed.
#[test]
fn secrets_from_the_environment_are_kept_exact_and_never_printed() {
    let yaml = r#"
receivers:
  http_logs: { endpoint: "127.0.0.1:9000" }
exporters:
  elasticsearch:
    endpoint: http://127.0.0.1:9200
    user: elastic
    password: ${env:ES_PASSWORD}
service:
  pipelines:
    logs: { receivers: [http_logs], exporters: [elasticsearch] }
"#;
    for password in ["0123456789", "null", "true", "~"] {
        let (code, out) = validate_env(yaml, &[("ES_PASSWORD", password)]);
        assert_eq!(code, 0, "password {password:?}: {out}");
    }
    let (code, out) = validate_env(
        &yaml.replace(
            "user: elastic",
            "user: elastic\n    sending_queue:\n      queue_size: ${env:QUEUE}",
        ),
        &[("ES_PASSWORD", "x"), ("QUEUE", "hunter2-not-a-number")],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("exporters.elasticsearch.sending_queue.queue_size: the value from ${env:QUEUE} is not valid here"), "{out}");
    assert!(!out.contains("hunter2"), "{out}");
}

/// TLS files and authenticators are checked by `validate`, each problem with its path, and a
/// secret written as a number is refused without being echoed.
#[test]
fn validate_checks_tls_files_and_authenticators() {
    let (code, out) = validate(
        r#"
extensions:
  bearertokenauth: { token: 918273645 }
  basicauth/unused: { client_auth: { username: a, password: b } }
  basicauth/clients: { client_auth: { username: a, password: b } }
receivers:
  otlp:
    protocols:
      grpc:
        tls: { cert_file: /nonexistent/tls.crt, key_file: /nonexistent/tls.key }
        auth: { authenticator: basicauth/unused }
      http:
        auth: { authenticator: basicauth/clients }
  http_logs:
    auth: { authenticator: nothing }
exporters:
  otlp:
    endpoint: gw:4317
    auth: { authenticator: basicauth/unused }
service:
  extensions: [basicauth/clients]
  pipelines:
    logs: { receivers: [otlp, http_logs], exporters: [otlp] }
"#,
    );
    assert_eq!(code, 1, "{out}");
    for expected in [
        "extensions.bearertokenauth.token: expected a string; quote the value",
        "receivers.otlp.protocols.grpc.tls.cert_file: cannot read /nonexistent/tls.crt",
        "receivers.otlp.protocols.grpc.auth.authenticator: extension \"basicauth/unused\" is not an enabled auth extension",
        "receivers.otlp.protocols.http.auth.authenticator: extension \"basicauth/clients\" has no server side",
        "receivers.http_logs.auth.authenticator: extension \"nothing\" is not declared under extensions",
        "exporters.otlp.auth.authenticator: extension \"basicauth/unused\" is not an enabled auth extension",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in\n{out}");
    }
    assert!(!out.contains("918273645"), "{out}");
}

/// `sluice components` lists every component type with the signals it takes, without a config.
#[test]
fn components_lists_every_type_with_its_signals() {
    let (code, out, _) = sluice(&["components"]);
    assert_eq!(code, 0);
    for line in [
        "receivers:",
        "  - otlp: [logs, traces, metrics]",
        "  - http_logs: [logs]",
        "  - batch: [logs, traces, metrics]",
        "  - elasticsearch: [logs, traces, metrics]",
        "  - tcp: [logs]",
        "  - bearertokenauth",
    ] {
        assert!(out.lines().any(|l| l == line), "missing {line:?} in\n{out}");
    }
}
