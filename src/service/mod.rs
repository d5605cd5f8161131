//! Builds the component graph from a config and runs it: start-up order, readiness, and the
//! SIGTERM drain.
//!
//! Shutdown order: health goes 503; receivers stop accepting and finish in-flight requests
//! (which wait for their acks); once the last receiver connection is gone the exporter queues
//! close and exporters drain them; `/metrics` and extensions stop last. All of it is bounded by
//! `service.shutdown_timeout`, after which undelivered batches fail their acks.
//!
//! `wiring` checks a config; `build` constructs the graph from what it checked.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

mod wiring;

use crate::component::NOTHING_LENT;
use crate::config::{self, ConfigError, ConfigErrors, LogsTelemetry, RawConfig};
use crate::extensions::{Extension, Health, State};
use crate::model::Signal;
use crate::pipeline::{Consumer, Exporter, Pipeline, Receiver, Stage, StartError, batcher, queue};
use crate::shutdown;
use crate::telemetry::{ExporterMetrics, Registry};

/// The config the binary runs when given none.
pub const DEFAULT_CONFIG: &str = include_str!("../default.yaml");

/// A validated, constructed service, ready to run.
pub struct Service {
    pub telemetry: Arc<Registry>,
    pub logs: LogsTelemetry,
    metrics_address: String,
    shutdown_timeout: Duration,
    receivers: Vec<(String, Box<dyn Receiver>, Consumer)>,
    /// Every pipeline, for starting its processors.
    pipelines: Vec<Arc<Pipeline>>,
    exporters: Vec<(String, Box<dyn Exporter>, queue::Receiver)>,
    /// Pipelines' batchers; they hold exporter senders, so they drain before the exporters.
    batchers: Vec<batcher::Batcher>,
    extensions: Vec<(String, Box<dyn Extension>)>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Start(#[from] StartError),
}

/// Parses and builds `text`; every problem is reported, each with its YAML path.
pub fn load(text: &str) -> Result<Service, ConfigErrors> {
    let raw = config::parse(text)?;
    let refs = raw.env_refs.clone();
    build(raw).map_err(|e| config::redact_env_errors(e, &refs))
}

pub fn build(raw: RawConfig) -> Result<Service, ConfigErrors> {
    let checked = wiring::check(&raw)?;
    let (receivers, processors, exporters) =
        (&checked.receivers, &checked.processors, &checked.exporters);
    let (lent, wiring) = (&checked.lent, &checked.pipelines);
    let svc = &raw.service;
    let telemetry = Registry::new();

    // Construct: exporters once (shared by pipelines), processors per pipeline, receivers once.
    let build_err = |es: Vec<ConfigError>| ConfigErrors(es);
    let mut exporter_senders: BTreeMap<&str, queue::Sender> = BTreeMap::new();
    let mut takes_encoded: BTreeSet<&str> = BTreeSet::new();
    let mut built_exporters = Vec::new();
    for key in wiring
        .iter()
        .flat_map(|(_, _, p)| p.exporters.iter())
        .collect::<BTreeSet<_>>()
    {
        let exporter = exporters
            .build_one(key, &telemetry, "", lent)
            .map_err(build_err)?;
        let room = exporter.sending_queue();
        let (records, bytes) = (room.queue_size, room.queue_size_bytes);
        let gauges = ExporterMetrics::queue_gauges(&telemetry, key, records, bytes);
        let (tx, rx) = queue::bounded_in_bytes(records, bytes, gauges);
        exporter_senders.insert(key, tx);
        if exporter.takes_encoded_logs() {
            takes_encoded.insert(key);
        }
        built_exporters.push((key.clone(), exporter, rx));
    }
    let mut feeds: BTreeMap<&str, Vec<Arc<Pipeline>>> = BTreeMap::new();
    let mut all_pipelines = Vec::new();
    // Processors shared by every pipeline that lists them, by id.
    let mut shared: BTreeMap<&str, Box<dyn crate::pipeline::Processor>> = BTreeMap::new();
    let mut batchers = Vec::new();
    for (pid, signal, p) in wiring {
        let mut procs = Vec::new();
        let mut gates = Vec::new();
        let mut batching = None;
        for k in &p.processors {
            match processors
                .build_one(k, &telemetry, pid, lent)
                .map_err(build_err)?
            {
                Stage::Inline(proc) if proc.shared_across_pipelines() => {
                    let first = shared.entry(k.as_str()).or_insert(proc);
                    procs.push(first.fork());
                }
                Stage::Inline(proc) => procs.push(proc),
                Stage::Gate(gate) => gates.push(gate),
                // The wiring check made sure it is the last processor.
                Stage::Batch(settings) => batching = Some(settings),
            }
        }
        let senders: Vec<queue::Sender> = p
            .exporters
            .iter()
            .map(|k| exporter_senders[k.as_str()].clone())
            .collect();
        // No inline processor reads the records: logs can stay encoded if every exporter agrees.
        let encoded_logs = *signal == Signal::Logs
            && procs.is_empty()
            && p.exporters
                .iter()
                .all(|k| takes_encoded.contains(k.as_str()));
        let (exporters, batch) = match batching {
            Some(settings) => {
                let (input, batcher) = batcher::stage(settings, senders.clone(), pid);
                batchers.push(batcher);
                (senders, Some(input))
            }
            None => (senders, None),
        };
        let pipeline = Arc::new(Pipeline {
            id: pid.to_string(),
            signal: *signal,
            processors: procs,
            gates,
            exporters,
            batch,
            encoded_logs,
        });
        for r in &p.receivers {
            feeds.entry(r).or_default().push(Arc::clone(&pipeline));
        }
        all_pipelines.push(pipeline);
    }
    drop(exporter_senders);
    let mut built_receivers = Vec::new();
    for (key, pipelines) in feeds {
        let receiver = receivers
            .build_one(key, &telemetry, "", lent)
            .map_err(build_err)?;
        built_receivers.push((key.to_string(), receiver, Consumer::new(pipelines)));
    }
    let mut built_extensions = Vec::new();
    for key in &svc.extensions {
        built_extensions.push((
            key.clone(),
            checked
                .extensions
                .build_one(key, &telemetry, "", &NOTHING_LENT)
                .map_err(build_err)?,
        ));
    }

    Ok(Service {
        telemetry,
        logs: LogsTelemetry {
            level: svc.telemetry.logs.level.clone(),
            encoding: svc.telemetry.logs.encoding,
        },
        metrics_address: svc.telemetry.metrics.address.clone(),
        shutdown_timeout: svc.shutdown_timeout,
        receivers: built_receivers,
        pipelines: all_pipelines,
        exporters: built_exporters,
        batchers,
        extensions: built_extensions,
    })
}

impl Service {
    /// Runs until `stop` completes (SIGTERM in the binary), then drains. Fails only if a
    /// component cannot start.
    pub async fn run(self, stop: impl Future<Output = ()>) -> Result<(), ServiceError> {
        let health = Health::default();
        let (stop_receivers, receivers_shutdown) = shutdown::channel();
        let (stop_telemetry, telemetry_shutdown) = shutdown::channel();
        let mut telemetry_tasks = JoinSet::new();

        let metrics_listener =
            crate::server::bind("service.telemetry.metrics".into(), &self.metrics_address).await?;
        let registry = Arc::clone(&self.telemetry);
        telemetry_tasks.spawn(crate::server::serve(
            metrics_listener,
            telemetry_shutdown.clone(),
            crate::server::Options::default(),
            move || {
                let registry = Arc::clone(&registry);
                move |req: hyper::Request<hyper::body::Incoming>| {
                    let resp = registry.page(req.uri().path());
                    async move { resp }
                }
            },
        ));
        for (id, ext) in self.extensions {
            match ext.start(health.clone(), telemetry_shutdown.clone()).await {
                Ok(running) => {
                    telemetry_tasks.spawn(running);
                }
                Err(e) => {
                    stop_telemetry.fire();
                    return Err(e.into());
                }
            }
            tracing::info!(extension = %id, "extension started");
        }

        let (give_up, deadline) = shutdown::channel();
        let mut exporter_tasks = JoinSet::new();
        for (id, exporter, rx) in self.exporters {
            tracing::info!(exporter = %id, "exporter started");
            exporter_tasks.spawn(exporter.run(rx, deadline.clone()));
        }
        for batcher in self.batchers {
            exporter_tasks.spawn(batcher.run(receivers_shutdown.clone()));
        }
        let mut receiver_tasks = JoinSet::new();
        let mut start_error = None;
        let pipelines = self.pipelines;
        // Processors first (the Kubernetes watches of `k8sattributes`), so that no record
        // arrives before what tags it is ready, where the config asks for that.
        'processors: for pipeline in &pipelines {
            for p in &pipeline.processors {
                if let Err(message) = p.start(receivers_shutdown.clone()).await {
                    start_error = Some(StartError {
                        component: format!("pipeline {}", pipeline.id),
                        message,
                    });
                    break 'processors;
                }
            }
        }
        // The receivers' consumers hold the pipelines from here: their queues close when the
        // receivers end.
        drop(pipelines);
        for (id, receiver, consumer) in self.receivers {
            if start_error.is_some() {
                break;
            }
            match receiver.start(consumer, receivers_shutdown.clone()).await {
                Ok(running) => {
                    receiver_tasks.spawn(running);
                }
                Err(e) => {
                    start_error = Some(e);
                    break;
                }
            }
            tracing::info!(receiver = %id, "receiver started");
        }

        if start_error.is_none() {
            health.set(State::Ready);
            tracing::info!("Everything is ready. Begin running and processing data.");
            stop.await;
            tracing::info!("shutting down: draining in-flight data");
        }
        health.set(State::Draining);
        stop_receivers.fire();
        let drain = async {
            while receiver_tasks.join_next().await.is_some() {}
            while exporter_tasks.join_next().await.is_some() {}
        };
        if tokio::time::timeout(self.shutdown_timeout, drain)
            .await
            .is_err()
        {
            tracing::warn!(
                timeout = ?self.shutdown_timeout,
                "shutdown timeout reached; undelivered batches were answered with errors"
            );
        }
        // Exporters stop retrying and drop what they hold, which fails its acks; one that does
        // not return within a second is aborted (the same, less tidily). The receivers then get
        // a moment to tell waiting clients (503) before they go too.
        give_up.fire();
        let returned = async { while exporter_tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(Duration::from_secs(1), returned)
            .await
            .is_err()
        {
            exporter_tasks.abort_all();
            while exporter_tasks.join_next().await.is_some() {}
        }
        let answered = async { while receiver_tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(Duration::from_secs(2), answered)
            .await
            .is_err()
        {
            receiver_tasks.abort_all();
            while receiver_tasks.join_next().await.is_some() {}
        }
        stop_telemetry.fire();
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while telemetry_tasks.join_next().await.is_some() {}
        })
        .await;
        match start_error {
            Some(e) => Err(e.into()),
            None => {
                tracing::info!("shutdown complete");
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(yaml: &str) -> Vec<String> {
        match load(yaml) {
            Ok(_) => vec![],
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn default_config_is_valid() {
        assert!(
            errors(DEFAULT_CONFIG).is_empty(),
            "{:?}",
            errors(DEFAULT_CONFIG)
        );
    }

    #[test]
    fn reports_every_error_with_its_path() {
        let errs = errors(
            r#"
receivers:
  http_logs: { endpoint: "x:y", bogus: 1 }
  nope: {}
processors:
  regex_parser: { regex: '(?P<a' }
exporters:
  tcp: { endpoint: "x:y" }
service:
  pipelines:
    logs:
      receivers: [http_logs, missing]
      processors: [regex_parser]
      exporters: [tcp, debug]
"#,
        );
        let expect = [
            "receivers.http_logs.bogus: unknown field `bogus`",
            "receivers.nope: unknown receiver type \"nope\"",
            "processors.regex_parser.regex: invalid regex",
            "exporters.tcp.endpoint: invalid socket address \"x:y\"",
            "service.pipelines.logs.receivers[1]: receiver \"missing\" is not declared under receivers",
            "service.pipelines.logs.exporters[1]: exporter \"debug\" is not declared under exporters",
        ];
        for e in expect {
            assert!(
                errs.iter().any(|got| got.starts_with(e)),
                "missing {e:?} in {errs:#?}"
            );
        }
    }

    #[test]
    fn logs_only_components_are_refused_in_traces_and_metrics_pipelines() {
        let errs = errors(
            r#"
receivers: { otlp: { protocols: { grpc: } }, http_logs: {} }
processors: { log_transform: {}, batch: {}, memory_limiter: { limit_mib: 100 } }
exporters: { tcp: { endpoint: "localhost:1" }, otlp: { endpoint: "gw:4317", tls: { insecure: true } } }
service:
  pipelines:
    traces: { receivers: [otlp, http_logs], processors: [memory_limiter, log_transform, batch], exporters: [otlp, tcp] }
    metrics: { receivers: [otlp], processors: [batch, memory_limiter], exporters: [otlp] }
    spans: { receivers: [otlp], exporters: [otlp] }
"#,
        );
        let expect = [
            "service.pipelines.traces.receivers[1]: receiver \"http_logs\" works on logs only, not in a traces pipeline",
            "service.pipelines.traces.processors[1]: processor \"log_transform\" works on logs only",
            "service.pipelines.traces.exporters[1]: exporter \"tcp\" works on logs only",
            "service.pipelines.metrics.processors[0]: batch must be the last processor",
            "service.pipelines.spans: unknown signal \"spans\": expected logs, traces or metrics",
        ];
        for e in expect {
            assert!(
                errs.iter().any(|got| got.starts_with(e)),
                "missing {e:?} in {errs:#?}"
            );
        }
        assert_eq!(errs.len(), expect.len(), "{errs:#?}");
    }

    #[test]
    fn an_elasticsearch_exporter_in_ecs_mode_is_refused_in_traces_and_metrics_pipelines() {
        let errs = errors(
            r#"
receivers: { otlp: { protocols: { grpc: } } }
exporters:
  elasticsearch/ecs: { endpoint: "http://es:9200", mapping: { mode: ecs } }
  elasticsearch: { endpoint: "http://es:9200" }
service:
  pipelines:
    traces: { receivers: [otlp], exporters: [elasticsearch/ecs, elasticsearch] }
    metrics: { receivers: [otlp], exporters: [elasticsearch, elasticsearch/ecs] }
    logs: { receivers: [otlp], exporters: [elasticsearch/ecs, elasticsearch] }
"#,
        );
        assert_eq!(
            errs,
            [
                "service.pipelines.metrics.exporters[1]: exporter \"elasticsearch/ecs\": mapping.mode ecs takes logs only; metrics need mapping.mode otel",
                "service.pipelines.traces.exporters[0]: exporter \"elasticsearch/ecs\": mapping.mode ecs takes logs only; traces need mapping.mode otel",
            ]
        );
    }

    #[test]
    fn one_receiver_feeds_several_pipelines_and_exporters_are_shared() {
        let svc = load(
            r#"
receivers: { http_logs: {} }
processors: { regex_parser/a: { preset: apache_common } }
exporters: { debug: {}, tcp: { endpoint: "localhost:1" } }
service:
  pipelines:
    logs/raw: { receivers: [http_logs], exporters: [debug, tcp] }
    logs/parsed: { receivers: [http_logs], processors: [regex_parser/a], exporters: [tcp] }
"#,
        )
        .unwrap();
        assert_eq!(svc.receivers.len(), 1);
        assert_eq!(
            svc.exporters.len(),
            2,
            "tcp is built once though two pipelines use it"
        );
    }
}
