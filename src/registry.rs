//! The one list of component types. Adding a component is one file plus one line here.

use serde_yaml_ng::Value as Yaml;

use crate::auth::Authenticators;
use crate::config::{ComponentId, ConfigError};
use crate::extensions::{self, Extension};
use crate::model::Signal;
use crate::pipeline::{Exporter, Processor, Receiver};
use crate::telemetry::Registry;
use crate::{exporters, processors, receivers};

/// What a component's `build` gets besides its own config.
pub struct Context<'a> {
    pub id: &'a ComponentId,
    /// The enabled auth extensions, for `auth: {authenticator: ...}`.
    pub auth: &'a Authenticators,
    /// The YAML path of the component's section, e.g. `exporters.tcp`, for error messages.
    pub path: &'a str,
    pub telemetry: &'a Registry,
    /// The pipeline a processor instance is built for; empty for shared components.
    pub pipeline: &'a str,
}

/// No auth extensions, for components built outside a service.
pub static NO_AUTH: Authenticators = Authenticators::new();

#[cfg(test)]
impl<'a> Context<'a> {
    /// A context for building one component alone in a unit test.
    pub fn for_test(id: &'a ComponentId, path: &'a str, telemetry: &'a Registry) -> Self {
        Context {
            id,
            auth: &NO_AUTH,
            path,
            telemetry,
            pipeline: "",
        }
    }
}

/// Decodes and validates a component's config and constructs it. No sockets, no tasks: that
/// happens when it starts, so `sluice validate` can build everything safely.
pub type Build<T> = fn(&Context, Yaml) -> Result<T, Vec<ConfigError>>;

pub const RECEIVERS: &[(&str, Build<Box<dyn Receiver>>)] = &[
    ("http_logs", receivers::http_logs::build),
    ("otlp", receivers::otlp::build),
];

pub const PROCESSORS: &[(&str, Build<Box<dyn Processor>>)] = &[
    ("regex_parser", processors::regex_parser::build),
    ("log_transform", processors::log_transform::build),
    ("memory_limiter", processors::memory_limiter::build),
    ("batch", processors::batch::build),
];

pub const EXPORTERS: &[(&str, Build<Box<dyn Exporter>>)] = &[
    ("tcp", exporters::tcp::build),
    ("otlp", exporters::otlp::build),
    ("otlphttp", exporters::otlphttp::build),
    ("debug", exporters::debug::build),
    ("elasticsearch", exporters::elasticsearch::build),
];

pub const EXTENSIONS: &[(&str, Build<Box<dyn Extension>>)] = &[
    ("health_check", extensions::health_check::build),
    ("bearertokenauth", extensions::bearertokenauth::build),
    ("basicauth", extensions::basicauth::build),
];

/// Component types that work on logs only; every other type takes all three signals.
const LOGS_ONLY: &[(&str, &str)] = &[
    ("receivers", "http_logs"),
    ("processors", "regex_parser"),
    ("processors", "log_transform"),
    ("exporters", "tcp"),
    ("exporters", "elasticsearch"),
];

/// Whether a component of `kind` in `section` can be part of a `signal` pipeline.
pub fn supports(section: &str, kind: &str, signal: Signal) -> bool {
    signal == Signal::Logs || !LOGS_ONLY.contains(&(section, kind))
}

pub fn find<T>(table: &[(&'static str, Build<T>)], kind: &str) -> Option<Build<T>> {
    table.iter().find(|(k, _)| *k == kind).map(|(_, b)| *b)
}

pub fn kinds<T>(table: &[(&'static str, Build<T>)]) -> String {
    table.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
}

/// The errors `build` reports for `yaml` as the config of `section.kind` (none if it builds).
#[cfg(test)]
pub fn build_errors<T>(build: Build<T>, section: &str, kind: &str, yaml: &str) -> Vec<String> {
    let id = ComponentId::parse(kind).expect("a valid component id");
    let reg = Registry::default();
    let path = format!("{section}.{kind}");
    let ctx = Context {
        id: &id,
        auth: &NO_AUTH,
        path: &path,
        telemetry: &reg,
        pipeline: "",
    };
    match build(&ctx, serde_yaml_ng::from_str(yaml).expect("valid YAML")) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.iter().map(|e| e.to_string()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ComponentId;

    fn ctx<'a>(id: &'a ComponentId, reg: &'a Registry) -> Context<'a> {
        Context {
            id,
            auth: &NO_AUTH,
            path: "x",
            telemetry: reg,
            pipeline: "logs",
        }
    }

    /// Every component must build from its documented defaults (plus the one required field
    /// some have), so the defaults in the docs are real.
    #[test]
    fn every_component_builds_from_its_defaults() {
        let reg = Registry::default();
        // (section, kind) -> the fields a kind requires; the rest stays at its defaults.
        let required = |section: &str, kind: &str| -> Yaml {
            let yaml = match (section, kind) {
                ("exporters", "tcp") => "{endpoint: 'localhost:9001'}",
                ("processors", "regex_parser") => "{preset: apache_common}",
                ("processors", "memory_limiter") => "{limit_mib: 1024}",
                ("receivers", "otlp") => "{protocols: {http: }}",
                ("exporters", "otlp") => "{endpoint: 'gw:4317', tls: {insecure: true}}",
                ("exporters", "otlphttp") => "{endpoint: 'http://localhost:4318'}",
                ("exporters", "elasticsearch") => "{endpoint: 'http://localhost:9200'}",
                ("extensions", "bearertokenauth") => "{token: abc}",
                ("extensions", "basicauth") => "{client_auth: {username: a, password: b}}",
                _ => "~",
            };
            serde_yaml_ng::from_str(yaml).unwrap()
        };
        for (kind, b) in RECEIVERS {
            let id = ComponentId::parse(kind).unwrap();
            assert!(
                b(&ctx(&id, &reg), required("receivers", kind)).is_ok(),
                "receiver {kind}"
            );
        }
        for (kind, b) in PROCESSORS {
            let id = ComponentId::parse(kind).unwrap();
            assert!(
                b(&ctx(&id, &reg), required("processors", kind)).is_ok(),
                "processor {kind}"
            );
        }
        for (kind, b) in EXPORTERS {
            let id = ComponentId::parse(kind).unwrap();
            assert!(
                b(&ctx(&id, &reg), required("exporters", kind)).is_ok(),
                "exporter {kind}"
            );
        }
        for (kind, b) in EXTENSIONS {
            let id = ComponentId::parse(kind).unwrap();
            assert!(
                b(&ctx(&id, &reg), required("extensions", kind)).is_ok(),
                "extension {kind}"
            );
        }
    }

    #[test]
    fn unknown_keys_are_refused_by_every_component() {
        let reg = Registry::default();
        let extra: Yaml = serde_yaml_ng::from_str("{no_such_key: 1}").unwrap();
        let id = ComponentId::parse("c").unwrap();
        let c = ctx(&id, &reg);
        let check = |res: Result<(), Vec<ConfigError>>, kind: &str| {
            let errs = res.expect_err(kind);
            assert!(
                errs.iter().any(|e| e.message.contains("no_such_key")),
                "{kind}: {errs:?}"
            );
        };
        for (kind, b) in RECEIVERS {
            check(b(&c, extra.clone()).map(|_| ()), kind);
        }
        for (kind, b) in PROCESSORS {
            check(b(&c, extra.clone()).map(|_| ()), kind);
        }
        for (kind, b) in EXPORTERS {
            check(b(&c, extra.clone()).map(|_| ()), kind);
        }
        for (kind, b) in EXTENSIONS {
            check(b(&c, extra.clone()).map(|_| ()), kind);
        }
    }
}
