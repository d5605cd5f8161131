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
