//! Finding component types. Each section lists its own in one `components!` line
//! (`receivers/mod.rs`, `processors/mod.rs`, `exporters/mod.rs`, `extensions/mod.rs`), which
//! declares the modules too: adding a component is one file (with its `SPEC`, see
//! `component::Spec`) plus its name in that line.

use crate::component::Spec;
#[cfg(test)]
use crate::component::{Build, Context};
#[cfg(test)]
use crate::config::ComponentId;

use crate::model::Signal;

#[cfg(test)]
use crate::telemetry::Registry;

pub use crate::exporters::EXPORTERS;
pub use crate::extensions::EXTENSIONS;
pub use crate::processors::PROCESSORS;
pub use crate::receivers::RECEIVERS;

/// The signals a component of `kind` in `section` (`receivers`, `processors`, `exporters`) takes;
/// none for an unknown one.
pub fn signals(section: &str, kind: &str) -> &'static [Signal] {
    let found = match section {
        "receivers" => find(RECEIVERS, kind).map(|s| s.signals),
        "processors" => find(PROCESSORS, kind).map(|s| s.signals),
        "exporters" => find(EXPORTERS, kind).map(|s| s.signals),
        _ => None,
    };
    found.unwrap_or(&[])
}

/// Whether a component of `kind` in `section` can be part of a `signal` pipeline. Unknown kinds
/// say yes: they are reported as unknown instead.
pub fn supports(section: &str, kind: &str, signal: Signal) -> bool {
    let s = signals(section, kind);
    s.is_empty() || s.contains(&signal)
}

pub fn find<T>(table: &'static [Spec<T>], kind: &str) -> Option<&'static Spec<T>> {
    table.iter().find(|s| s.kind == kind)
}

pub fn kinds<T>(table: &[Spec<T>]) -> String {
    table.iter().map(|s| s.kind).collect::<Vec<_>>().join(", ")
}

/// Every component type by section, with the signals each takes, as `sluice components` prints
/// them (like `otelcol components`).
pub fn listing() -> String {
    fn section<T>(out: &mut String, name: &str, table: &[Spec<T>]) {
        out.push_str(name);
        out.push_str(":\n");
        for s in table {
            let signals: Vec<&str> = s.signals.iter().map(|s| s.name()).collect();
            if signals.is_empty() {
                out.push_str(&format!("  - {}\n", s.kind));
            } else {
                out.push_str(&format!("  - {}: [{}]\n", s.kind, signals.join(", ")));
            }
        }
    }
    let mut out = String::new();
    section(&mut out, "receivers", RECEIVERS);
    section(&mut out, "processors", PROCESSORS);
    section(&mut out, "exporters", EXPORTERS);
    section(&mut out, "extensions", EXTENSIONS);
    out
}

/// The errors `build` reports for `yaml` as the config of `section.kind` (none if it builds).
#[cfg(test)]
pub fn build_errors<T>(build: Build<T>, section: &str, kind: &str, yaml: &str) -> Vec<String> {
    let id = ComponentId::parse(kind).expect("a valid component id");
    let reg = Registry::default();
    let path = format!("{section}.{kind}");
    let ctx = Context::alone(&id, &path, &reg);
    match build(&ctx, serde_yaml_ng::from_str(yaml).expect("valid YAML")) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.iter().map(|e| e.to_string()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigError;
    use serde_yaml_ng::Value as Yaml;

    /// Runs `check` on every component type of every section, with its section's name.
    fn each_spec(mut check: impl FnMut(&str, &str, &str, Result<(), Vec<ConfigError>>, Yaml)) {
        fn run<T>(
            section: &str,
            table: &[Spec<T>],
            check: &mut impl FnMut(&str, &str, &str, Result<(), Vec<ConfigError>>, Yaml),
        ) {
            let reg = Registry::default();
            for s in table {
                let id = ComponentId::parse(s.kind).unwrap();
                let path = format!("{section}.{}", s.kind);
                let ctx = Context::alone(&id, &path, &reg);
                let example: Yaml = serde_yaml_ng::from_str(s.example).unwrap();
                let built = (s.build)(&ctx, example).map(|_| ());
                let extra: Yaml = serde_yaml_ng::from_str("{no_such_key: 1}").unwrap();
                check(
                    section,
                    s.kind,
                    s.example,
                    built,
                    (s.build)(&ctx, extra)
                        .map(|_| ())
                        .err()
                        .map(|e| {
                            Yaml::String(
                                e.iter()
                                    .map(|e| e.to_string())
                                    .collect::<Vec<_>>()
                                    .join("\n"),
                            )
                        })
                        .unwrap_or(Yaml::Null),
                );
            }
        }
        run("receivers", RECEIVERS, &mut check);
        run("processors", PROCESSORS, &mut check);
        run("exporters", EXPORTERS, &mut check);
        run("extensions", EXTENSIONS, &mut check);
    }

    /// Every component builds from the example in its SPEC (its required fields, the rest at
    /// the documented defaults), and refuses a key it does not know.
    #[test]
    fn every_component_builds_from_its_example_and_refuses_unknown_keys() {
        let mut seen = 0;
        each_spec(|section, kind, example, built, unknown| {
            seen += 1;
            assert!(built.is_ok(), "{section}.{kind} from {example}: {built:?}");
            let Yaml::String(errors) = unknown else {
                panic!("{section}.{kind} accepted an unknown key");
            };
            assert!(errors.contains("no_such_key"), "{section}.{kind}: {errors}");
        });
        assert_eq!(
            seen,
            RECEIVERS.len() + PROCESSORS.len() + EXPORTERS.len() + EXTENSIONS.len()
        );
    }

    /// Every component built from its example starts (receivers and extensions on port 0) and
    /// stops cleanly: receivers and extensions when shutdown fires, exporters when their queue
    /// closes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_component_starts_from_its_example_and_stops_cleanly() {
        use crate::pipeline::{Consumer, queue};
        use crate::telemetry::Gauge;
        use std::time::Duration;
        let reg = Registry::default();
        let ctx_for = |kind: &'static str, section: &str| {
            (
                ComponentId::parse(kind).unwrap(),
                format!("{section}.{kind}"),
            )
        };
        let yaml = |s: &str| serde_yaml_ng::from_str::<Yaml>(s).unwrap();
        let within = Duration::from_secs(10);
        for s in RECEIVERS {
            let (id, path) = ctx_for(s.kind, "receivers");
            let r = (s.build)(&Context::alone(&id, &path, &reg), yaml(s.example)).unwrap();
            let (stop, shutdown) = crate::shutdown::channel();
            let running = r.start(Consumer::new(Vec::new()), shutdown).await.unwrap();
            let task = tokio::spawn(running);
            stop.fire();
            tokio::time::timeout(within, task)
                .await
                .unwrap_or_else(|_| panic!("receiver {} did not stop", s.kind))
                .unwrap();
        }
        for s in EXPORTERS {
            let (id, path) = ctx_for(s.kind, "exporters");
            let e = (s.build)(&Context::alone(&id, &path, &reg), yaml(s.example)).unwrap();
            let (tx, rx) = queue::bounded(10, Gauge::default());
            drop(tx);
            let (_keep, deadline) = crate::shutdown::channel();
            tokio::time::timeout(within, e.run(rx, deadline))
                .await
                .unwrap_or_else(|_| panic!("exporter {} did not stop", s.kind));
        }
        for s in EXTENSIONS {
            let (id, path) = ctx_for(s.kind, "extensions");
            let e = (s.build)(&Context::alone(&id, &path, &reg), yaml(s.example)).unwrap();
            let (stop, shutdown) = crate::shutdown::channel();
            let running = e
                .start(crate::extensions::Health::default(), shutdown)
                .await
                .unwrap();
            let task = tokio::spawn(running);
            stop.fire();
            tokio::time::timeout(within, task)
                .await
                .unwrap_or_else(|_| panic!("extension {} did not stop", s.kind))
                .unwrap();
        }
        // Processors start nothing: building is all there is, and each forks per worker.
        for s in PROCESSORS {
            let (id, path) = ctx_for(s.kind, "processors");
            let p = (s.build)(&Context::alone(&id, &path, &reg), yaml(s.example)).unwrap();
            drop(p);
        }
    }

    #[test]
    fn kinds_are_unique_within_a_section_and_pipelines_know_their_signals() {
        fn unique<T>(table: &[Spec<T>]) {
            let mut kinds: Vec<&str> = table.iter().map(|s| s.kind).collect();
            kinds.sort_unstable();
            let n = kinds.len();
            kinds.dedup();
            assert_eq!(kinds.len(), n, "a kind is listed twice");
        }
        unique(RECEIVERS);
        unique(PROCESSORS);
        unique(EXPORTERS);
        unique(EXTENSIONS);
        assert!(supports("exporters", "elasticsearch", Signal::Logs));
        assert!(supports("exporters", "elasticsearch", Signal::Traces));
        assert!(!supports("exporters", "tcp", Signal::Traces));
        assert!(supports("receivers", "otlp", Signal::Metrics));
        assert!(!supports("receivers", "http_logs", Signal::Metrics));
        assert!(supports("exporters", "no_such_kind", Signal::Traces));
        let listing = listing();
        assert!(
            listing.contains("  - otlp: [logs, traces, metrics]\n"),
            "{listing}"
        );
        assert!(listing.contains("  - tcp: [logs]\n"), "{listing}");
        assert!(
            listing.contains("extensions:\n  - health_check\n"),
            "{listing}"
        );
    }

    /// An exporter whose peer is down keeps retrying while the queue drains, but gives up at
    /// the shutdown deadline: it returns promptly, and the batch it held fails back to its
    /// sender instead of being reported delivered.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_exporter_gives_up_at_the_shutdown_deadline() {
        use crate::model::{LogBatch, LogRecord};
        use crate::pipeline::ack::{self, Acks, Delivery};
        use crate::pipeline::{Batch, queue};
        use crate::telemetry::Gauge;
        use std::time::Duration;
        // A port nothing listens on: connections are refused, and every exporter retries.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let reg = Registry::default();
        for s in EXPORTERS {
            let config = match s.kind {
                "tcp" => format!("{{endpoint: '127.0.0.1:{port}'}}"),
                "otlp" => format!("{{endpoint: '127.0.0.1:{port}', tls: {{insecure: true}}}}"),
                "otlphttp" | "elasticsearch" => format!("{{endpoint: 'http://127.0.0.1:{port}'}}"),
                _ => continue, // no peer to be down
            };
            let id = ComponentId::parse(s.kind).unwrap();
            let path = format!("exporters.{}", s.kind);
            let e = (s.build)(
                &Context::alone(&id, &path, &reg),
                serde_yaml_ng::from_str(&config).unwrap(),
            )
            .unwrap();
            let (tx, rx) = queue::bounded(10, Gauge::default());
            let (share, wait) = ack::new();
            let mut batch = LogBatch::default();
            batch.records.push(LogRecord::default());
            tx.send(
                tx.try_reserve(1).unwrap(),
                Batch::Logs(batch),
                Acks::one(share),
            )
            .unwrap();
            drop(tx);
            let (give_up, deadline) = crate::shutdown::channel();
            let run = tokio::spawn(e.run(rx, deadline));
            tokio::time::sleep(Duration::from_millis(300)).await;
            give_up.fire();
            tokio::time::timeout(Duration::from_secs(5), run)
                .await
                .unwrap_or_else(|_| panic!("{} kept going past the deadline", s.kind))
                .unwrap();
            assert_eq!(wait.wait().await, Delivery::Failed, "{}", s.kind);
        }
    }
}
