//! OpenTelemetry-Collector-shaped configuration: parsing, `${env:VAR}` substitution, component
//! IDs and the errors `sluice validate` prints.
//!
//! ```yaml
//! receivers:  { http_logs: { endpoint: "127.0.0.1:9000" } }
//! processors: { regex_parser/apache: { preset: apache_common } }
//! exporters:  { tcp: { endpoint: "127.0.0.1:9001", encoding: json } }
//! service:
//!   pipelines:
//!     logs: { receivers: [http_logs], processors: [regex_parser/apache], exporters: [tcp] }
//! ```
//!
//! Component sections are kept as raw YAML here and decoded by each component's own `Config`
//! (see `registry`), so every error carries the full YAML path and all of them are reported at
//! once rather than stopping at the first.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_yaml_ng::Value as Yaml;

mod nesting;
mod squash;
mod units;

pub use squash::decode_squashed;
pub use units::{
    MAX_DURATION, byte_size, check_count, check_duration, check_endpoint, duration,
    optional_duration, parse_byte_size, parse_duration, show_duration,
};

/// One configuration problem, with the YAML path it was found at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem found in a config, in document order.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> Self {
        ConfigErrors(vec![e])
    }
}

/// A component ID, `type[/name]`, as in the OTel Collector.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ComponentId {
    pub kind: String,
    pub name: Option<String>,
}

impl ComponentId {
    pub fn parse(s: &str) -> Result<ComponentId, String> {
        let (kind, name) = match s.split_once('/') {
            Some((k, n)) => (k, Some(n)),
            None => (s, None),
        };
        let valid_kind =
            !kind.is_empty() && kind.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid_kind {
            return Err(format!(
                "invalid component id {s:?}: the type must match [a-zA-Z0-9_]+"
            ));
        }
        if let Some(n) = name
            && (n.is_empty() || n.contains('/') || n.chars().any(char::is_whitespace))
        {
            return Err(format!(
                "invalid component id {s:?}: the name after '/' must be non-empty, without spaces or '/'"
            ));
        }
        Ok(ComponentId {
            kind: kind.to_string(),
            name: name.map(str::to_string),
        })
    }
}

impl fmt::Display for ComponentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, "{}/{}", self.kind, n),
            None => f.write_str(&self.kind),
        }
    }
}

/// The top level of a config file, before components are decoded.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub receivers: BTreeMap<String, Yaml>,
    #[serde(default)]
    pub processors: BTreeMap<String, Yaml>,
    #[serde(default)]
    pub exporters: BTreeMap<String, Yaml>,
    #[serde(default)]
    pub extensions: BTreeMap<String, Yaml>,
    pub service: Service,
    /// Where `${env:...}` references were substituted, so errors there never echo the value.
    #[serde(skip)]
    pub env_refs: Vec<EnvRef>,
}

/// A config value that came (wholly or partly) from environment variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvRef {
    pub path: String,
    pub vars: Vec<String>,
}

/// Keys whose values are secrets: an `${env:...}` value there stays the exact text of the
/// variable (a numeric password is not made a number, `null` is not made nothing).
const SECRET_KEYS: [&str; 6] = [
    "password",
    "api_key",
    "bearer_token",
    "token",
    "inline",
    "key_password",
];

fn is_secret_path(path: &str) -> bool {
    let (parent, key) = path.rsplit_once('.').unwrap_or(("", path));
    SECRET_KEYS.contains(&key) || parent == "headers" || parent.ends_with(".headers")
}

/// Rewrites errors found at (or under) a value that came from the environment, so that they
/// name the variable and what was expected but never show the value: it may be a secret.
pub fn redact_env_errors(errors: ConfigErrors, refs: &[EnvRef]) -> ConfigErrors {
    ConfigErrors(
        errors
            .0
            .into_iter()
            .map(|e| {
                let Some(r) = refs.iter().find(|r| {
                    e.path == r.path
                        || e.path.starts_with(&format!("{}.", r.path))
                        || e.path.starts_with(&format!("{}[", r.path))
                }) else {
                    return e;
                };
                let vars: Vec<String> = r.vars.iter().map(|v| format!("${{env:{v}}}")).collect();
                let mut why = e.message.as_str();
                if let Some(i) = why.find(" (got ") {
                    why = &why[..i];
                }
                let expected = match why.find("expected") {
                    Some(i) => format!(": {}", &why[i..]),
                    None if why.starts_with("must ") => format!(": {why}"),
                    None => String::new(),
                };
                ConfigError::new(
                    e.path,
                    format!(
                        "the value from {} is not valid here{expected} (the value is not shown)",
                        vars.join(", ")
                    ),
                )
            })
            .collect(),
    )
}

/// `service:`: which components run, wired into which pipelines.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// Extensions to start, by ID; each must be declared under `extensions:`.
    #[serde(default)]
    pub extensions: Vec<String>,
    /// Pipelines by ID, `logs[/name]`.
    pub pipelines: BTreeMap<String, PipelineConfig>,
    #[serde(default)]
    pub telemetry: Telemetry,
    /// How long SIGTERM may take to deliver in-flight records before sluice exits anyway.
    /// Default `30s`.
    #[serde(default = "default_shutdown_timeout", deserialize_with = "duration")]
    pub shutdown_timeout: Duration,
}

fn default_shutdown_timeout() -> Duration {
    Duration::from_secs(30)
}

/// One pipeline: records from any of `receivers` pass `processors` in order, then go to every
/// one of `exporters`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    pub receivers: Vec<String>,
    #[serde(default)]
    pub processors: Vec<String>,
    pub exporters: Vec<String>,
}

/// `service.telemetry:`: sluice's own metrics and logs.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Telemetry {
    #[serde(default)]
    pub metrics: MetricsTelemetry,
    #[serde(default)]
    pub logs: LogsTelemetry,
}

/// Prometheus metrics endpoint.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsTelemetry {
    /// Where `/metrics` is served. Default `localhost:8888`, as in the OTel Collector.
    #[serde(default = "default_metrics_address")]
    pub address: String,
}

fn default_metrics_address() -> String {
    "localhost:8888".to_string()
}

impl Default for MetricsTelemetry {
    fn default() -> Self {
        MetricsTelemetry {
            address: default_metrics_address(),
        }
    }
}

/// sluice's own log output.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsTelemetry {
    /// `trace`, `debug`, `info` (default), `warn` or `error`.
    #[serde(default = "default_log_level")]
    pub level: String,
    /// `console` (default, plain text) or `json`.
    #[serde(default)]
    pub encoding: LogEncoding,
}

fn default_log_level() -> String {
    "info".to_string()
}

impl Default for LogsTelemetry {
    fn default() -> Self {
        LogsTelemetry {
            level: default_log_level(),
            encoding: LogEncoding::Console,
        }
    }
}

#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LogEncoding {
    #[default]
    Console,
    Json,
}

/// Parses YAML text, substitutes `${env:VAR}` references and decodes the top level.
pub fn parse(text: &str) -> Result<RawConfig, ConfigErrors> {
    parse_with_env(text, &|k| std::env::var(k).ok())
}

/// [`parse`] with an injectable environment, so tests need not mutate the process's.
pub fn parse_with_env(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<RawConfig, ConfigErrors> {
    nesting::check(text).map_err(|e| ConfigError::new("", format!("invalid YAML: {e}")))?;
    let mut doc: Yaml = serde_yaml_ng::from_str(text)
        .map_err(|e| ConfigError::new("", format!("invalid YAML: {e}")))?;
    if doc.is_null() {
        return Err(ConfigError::new("", "the config is empty").into());
    }
    let mut errors = Vec::new();
    let mut refs = Vec::new();
    substitute_env(&mut doc, &mut String::new(), env, &mut errors, &mut refs);
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    let mut raw: RawConfig =
        decode("", doc).map_err(|e| redact_env_errors(ConfigErrors::from(e), &refs))?;
    raw.env_refs = refs;
    Ok(raw)
}

/// Decodes a YAML node into `T`, reporting the failing key's full path. A null node (a component
/// listed with no settings, `http_logs:`) decodes as an empty mapping so defaults apply.
pub fn decode<T: DeserializeOwned>(path: &str, value: Yaml) -> Result<T, ConfigError> {
    let value = if value.is_null() {
        Yaml::Mapping(Default::default())
    } else {
        value
    };
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.path().to_string();
        let full = match (path.is_empty(), inner.as_str()) {
            (_, ".") => path.to_string(),
            (true, _) => inner,
            (false, _) => format!("{path}.{inner}"),
        };
        ConfigError::new(full, e.into_inner().to_string())
    })
}

fn substitute_env(
    node: &mut Yaml,
    path: &mut String,
    env: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<ConfigError>,
    refs: &mut Vec<EnvRef>,
) {
    match node {
        Yaml::String(s) if s.contains("${") => match expand(s, env) {
            Ok((expanded, whole, vars)) => {
                if !vars.is_empty() {
                    refs.push(EnvRef {
                        path: path.clone(),
                        vars,
                    });
                }
                // A value that is exactly one reference is re-read as a YAML scalar, so
                // `queue_size: ${env:Q}` can be a number, as in the OTel Collector; a secret
                // stays the variable's exact text.
                *node = if whole && !is_secret_path(path) {
                    serde_yaml_ng::from_str::<Yaml>(&expanded)
                        .ok()
                        .filter(|v| !v.is_mapping() && !v.is_sequence())
                        .unwrap_or(Yaml::String(expanded))
                } else {
                    Yaml::String(expanded)
                };
            }
            Err(msg) => errors.push(ConfigError::new(path.clone(), msg)),
        },
        Yaml::Mapping(map) => {
            for (k, v) in map.iter_mut() {
                let key = match k {
                    Yaml::String(s) => s.clone(),
                    other => serde_yaml_ng::to_string(other)
                        .unwrap_or_default()
                        .trim()
                        .to_string(),
                };
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&key);
                substitute_env(v, path, env, errors, refs);
                path.truncate(len);
            }
        }
        Yaml::Sequence(seq) => {
            for (i, v) in seq.iter_mut().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                substitute_env(v, path, env, errors, refs);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// Expands `${env:VAR}` and `${env:VAR:-default}`; `$${` escapes a literal `${`. Returns the
/// text, whether the input was a single reference, and the variables it read.
fn expand(
    s: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, bool, Vec<String>), String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    let mut references = 0;
    let mut vars = Vec::new();
    while let Some(pos) = rest.find("${") {
        if rest[..pos].ends_with('$') {
            out.push_str(&rest[..pos]);
            out.push('{');
            rest = &rest[pos + 2..];
            continue;
        }
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unterminated \"${{\" in {s:?}"))?;
        let reference = &after[..end];
        let var_spec = reference.strip_prefix("env:").ok_or_else(|| {
            format!("unsupported reference \"${{{reference}}}\": only ${{env:VAR}} is supported")
        })?;
        let (name, default) = match var_spec.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (var_spec, None),
        };
        let valid = !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && !name.as_bytes()[0].is_ascii_digit();
        if !valid {
            return Err(format!("invalid environment variable name {name:?}"));
        }
        match (env(name), default) {
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => {
                return Err(format!(
                    "environment variable {name} is not set (use ${{env:{name}:-default}} for a default)"
                ));
            }
        }
        references += 1;
        vars.push(name.to_string());
        rest = &after[end + 1..];
        if references == 1 && pos == 0 && rest.is_empty() && s.starts_with("${") {
            return Ok((out, true, vars));
        }
    }
    out.push_str(rest);
    Ok((out, false, vars))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        match k {
            "PORT" => Some("9001".into()),
            "HOST" => Some("127.0.0.1".into()),
            _ => None,
        }
    }

    #[test]
    fn expands_env_references_with_defaults() {
        assert_eq!(
            expand("${env:HOST}:${env:PORT}", &env).unwrap().0,
            "127.0.0.1:9001"
        );
        assert_eq!(
            expand("${env:NOPE:-x:1}", &env).unwrap(),
            ("x:1".into(), true, vec!["NOPE".to_string()])
        );
        assert_eq!(expand("$${env:HOST}", &env).unwrap().0, "${env:HOST}");
        assert!(
            expand("${env:NOPE}", &env)
                .unwrap_err()
                .contains("NOPE is not set")
        );
        assert!(expand("${file:/x}", &env).is_err());
    }

    #[test]
    fn whole_value_reference_becomes_a_typed_scalar() {
        let text = "service:\n  pipelines: {}\n  shutdown_timeout: ${env:PORT}\n";
        let err = parse_with_env(text, &env).unwrap_err();
        // 9001 became a number, which a duration string field then rejects with its path.
        assert_eq!(err.0[0].path, "service.shutdown_timeout");
    }

    fn secret_env(k: &str) -> Option<String> {
        match k {
            "ES_PASSWORD" => Some("0123456789".into()),
            "NULLISH" => Some("null".into()),
            "TIMEOUT" => Some("s3cr3t-ish".into()),
            "QUEUE" => Some("42".into()),
            _ => None,
        }
    }

    #[test]
    fn secrets_from_the_environment_keep_their_exact_text() {
        let text = "exporters:\n  es:\n    password: ${env:ES_PASSWORD}\n    api_key: ${env:NULLISH}\n    headers: {x-key: '${env:ES_PASSWORD}'}\n    queue: ${env:QUEUE}\nservice: {pipelines: {}}\n";
        let raw = parse_with_env(text, &secret_env).unwrap();
        let es = &raw.exporters["es"];
        assert_eq!(es["password"], Yaml::String("0123456789".into()));
        assert_eq!(es["api_key"], Yaml::String("null".into()));
        assert_eq!(es["headers"]["x-key"], Yaml::String("0123456789".into()));
        // Elsewhere a whole reference is still typed, as in the Collector.
        assert!(es["queue"].is_number());
        let paths: Vec<&str> = raw.env_refs.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "exporters.es.password",
                "exporters.es.api_key",
                "exporters.es.headers.x-key",
                "exporters.es.queue"
            ]
        );
    }

    #[test]
    fn errors_at_environment_values_name_the_variable_not_the_value() {
        let text = "service:\n  pipelines: {}\n  shutdown_timeout: ${env:TIMEOUT}\n";
        let err = parse_with_env(text, &secret_env).unwrap_err();
        let shown = err.to_string();
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("${env:TIMEOUT}"), "{shown}");
        assert!(shown.starts_with("service.shutdown_timeout: "), "{shown}");
        let refs = [EnvRef {
            path: "x.n".into(),
            vars: vec!["N".into()],
        }];
        let redacted = redact_env_errors(
            ConfigErrors(vec![
                ConfigError::new("x.n", "must be between 1 and 10 (got 12345)"),
                ConfigError::new("x.m", "invalid type: integer `7`, expected a string"),
            ]),
            &refs,
        );
        assert_eq!(
            redacted.to_string(),
            "x.n: the value from ${env:N} is not valid here: must be between 1 and 10 (the value is not shown)\nx.m: invalid type: integer `7`, expected a string"
        );
    }

    #[test]
    fn unset_variable_error_names_its_path() {
        let text = "exporters:\n  tcp:\n    endpoint: ${env:MISSING}\nservice: {pipelines: {}}\n";
        let err = parse_with_env(text, &env).unwrap_err();
        assert_eq!(err.0[0].path, "exporters.tcp.endpoint");
    }

    #[test]
    fn unknown_top_level_key_is_an_error() {
        let err = parse_with_env("recievers: {}\nservice: {pipelines: {}}\n", &env).unwrap_err();
        assert!(
            err.0[0].message.contains("unknown field `recievers`"),
            "{err}"
        );
    }

    #[test]
    fn component_ids_have_type_and_optional_name() {
        let id = ComponentId::parse("regex_parser/apache").unwrap();
        assert_eq!(
            (id.kind.as_str(), id.name.as_deref()),
            ("regex_parser", Some("apache"))
        );
        assert_eq!(id.to_string(), "regex_parser/apache");
        assert!(ComponentId::parse("bad-type").is_err());
        assert!(ComponentId::parse("tcp/").is_err());
    }
}
