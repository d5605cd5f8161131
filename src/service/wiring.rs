//! Checking a config before anything is built to run: every component's own config (each
//! declared one, used or not, as the Collector does), the pipelines' references, the signals each
//! component takes, and the service's own settings. Every problem is reported at once, with its
//! path.

use std::collections::{BTreeMap, BTreeSet};

use crate::component::{Context, NOTHING_LENT, Spec};
use crate::config::{self, ComponentId, ConfigError, ConfigErrors, RawConfig, check_endpoint};
use crate::extensions::{Extension, Lent};
use crate::model::Signal;
use crate::pipeline::{Exporter, Receiver, Stage};
use crate::registry;
use crate::telemetry::Registry;

/// What the graph is built from, once the config checked out.
pub(super) struct Checked<'a> {
    pub receivers: Section<'a, Box<dyn Receiver>>,
    pub processors: Section<'a, Stage>,
    pub exporters: Section<'a, Box<dyn Exporter>>,
    pub extensions: Section<'a, Box<dyn Extension>>,
    /// What the enabled extensions lend (authenticators, storage), built once; receivers and
    /// exporters keep it.
    pub lent: Lent,
    /// Each pipeline with its signal.
    pub pipelines: Vec<(&'a String, Signal, &'a config::PipelineConfig)>,
}

pub(super) struct Section<'a, T: 'static> {
    name: &'static str,
    singular: &'static str,
    declared: &'a BTreeMap<String, serde_yaml_ng::Value>,
    table: &'static [Spec<T>],
}

impl<'a, T: 'static> Section<'a, T> {
    fn new(
        name: &'static str,
        declared: &'a BTreeMap<String, serde_yaml_ng::Value>,
        table: &'static [Spec<T>],
    ) -> Self {
        Section {
            name,
            // `receivers` -> `receiver`, for messages about one of them.
            singular: name.strip_suffix('s').unwrap_or(name),
            declared,
            table,
        }
    }

    /// Builds one instance of `key` (already checked to be declared and of a known type).
    pub(super) fn build_one(
        &self,
        key: &str,
        telemetry: &Registry,
        pipeline: &str,
        lent: &Lent,
    ) -> Result<T, Vec<ConfigError>> {
        let path = format!("{}.{key}", self.name);
        let id = ComponentId::parse(key).map_err(|m| vec![ConfigError::new(path.clone(), m)])?;
        let spec = registry::find(self.table, &id.kind).ok_or_else(|| {
            vec![ConfigError::new(
                path.clone(),
                format!(
                    "unknown {} type {:?} (known: {})",
                    self.singular,
                    id.kind,
                    registry::kinds(self.table)
                ),
            )]
        })?;
        let ctx = Context {
            id: &id,
            auth: &lent.auth,
            storage: &lent.storage,
            path: &path,
            telemetry,
            pipeline,
        };
        (spec.build)(&ctx, self.declared[key].clone())
    }

    /// Validates every declared component, used or not, as the OTel Collector does; returns
    /// the keys that are sound.
    fn check_all(
        &self,
        errors: &mut Vec<ConfigError>,
        lent: &Lent,
        mut each: impl FnMut(&str, &T),
    ) -> BTreeSet<String> {
        let scratch = Registry::default();
        let mut ok = BTreeSet::new();
        for key in self.declared.keys() {
            match self.build_one(key, &scratch, "", lent) {
                Ok(built) => {
                    each(key, &built);
                    ok.insert(key.clone());
                }
                Err(es) => errors.extend(es),
            }
        }
        ok
    }
}

/// The signal a pipeline id's type names.
fn signal_of(kind: &str) -> Option<Signal> {
    match kind {
        "logs" => Some(Signal::Logs),
        "traces" => Some(Signal::Traces),
        "metrics" => Some(Signal::Metrics),
        _ => None,
    }
}

/// Every problem of `raw`'s wiring and component configs, each with its path; or what the
/// graph is built from.
pub(super) fn check(raw: &RawConfig) -> Result<Checked<'_>, ConfigErrors> {
    let mut errors = Vec::new();
    let receivers = Section::new("receivers", &raw.receivers, registry::RECEIVERS);
    let processors = Section::new("processors", &raw.processors, registry::PROCESSORS);
    let exporters = Section::new("exporters", &raw.exporters, registry::EXPORTERS);
    let extensions = Section::new("extensions", &raw.extensions, registry::EXTENSIONS);
    let svc = &raw.service;
    // Extensions first: receivers and exporters look their authenticators up by id. The
    // instances built here are the ones they keep (an auth extension runs nothing itself).
    let mut lent = Lent::new();
    let good_extensions = extensions.check_all(&mut errors, &NOTHING_LENT, |key, ext| {
        let enabled = svc.extensions.iter().any(|e| e == key);
        lent.add(key, enabled, ext.as_ref());
    });
    let good_receivers = receivers.check_all(&mut errors, &lent, |_, _| {});
    // Which processors end a pipeline in a batcher, as their built stage says.
    let mut batching = BTreeSet::new();
    let good_processors = processors.check_all(&mut errors, &lent, |key, stage| {
        if matches!(stage, Stage::Batch(_)) {
            batching.insert(key.to_string());
        }
    });
    // What each exporter, as configured, refuses of the signals its type takes.
    let mut refusals: BTreeMap<String, Vec<(Signal, String)>> = BTreeMap::new();
    let good_exporters = exporters.check_all(&mut errors, &lent, |key, exporter| {
        for signal in [Signal::Logs, Signal::Traces, Signal::Metrics] {
            if let Some(why) = exporter.refuses(signal) {
                refusals
                    .entry(key.to_string())
                    .or_default()
                    .push((signal, why));
            }
        }
    });

    if let Err(e) = check_endpoint(&svc.telemetry.metrics.address) {
        errors.push(ConfigError::new("service.telemetry.metrics.address", e));
    }
    if tracing_subscriber::EnvFilter::try_new(&svc.telemetry.logs.level).is_err() {
        errors.push(ConfigError::new(
            "service.telemetry.logs.level",
            format!("invalid level {:?}", svc.telemetry.logs.level),
        ));
    }
    for (i, ext) in svc.extensions.iter().enumerate() {
        if !raw.extensions.contains_key(ext) {
            errors.push(ConfigError::new(
                format!("service.extensions[{i}]"),
                format!("extension {ext:?} is not declared under extensions"),
            ));
        }
    }
    if svc.pipelines.is_empty() {
        errors.push(ConfigError::new(
            "service.pipelines",
            "at least one pipeline is required",
        ));
    }

    // Check pipeline references before constructing anything that runs.
    let mut wiring: Vec<(&String, Signal, &config::PipelineConfig)> = Vec::new();
    for (pid, p) in &svc.pipelines {
        let path = format!("service.pipelines.{pid}");
        let before = errors.len();
        let signal = match ComponentId::parse(pid) {
            Ok(id) => match signal_of(&id.kind) {
                Some(s) => s,
                None => {
                    errors.push(ConfigError::new(
                        path.clone(),
                        format!(
                            "unknown signal {:?}: expected logs, traces or metrics",
                            id.kind
                        ),
                    ));
                    Signal::Logs
                }
            },
            Err(m) => {
                errors.push(ConfigError::new(path.clone(), m));
                Signal::Logs
            }
        };
        let mut refs = |field: &str,
                        list: &[String],
                        declared: &BTreeMap<String, serde_yaml_ng::Value>,
                        singular: &str,
                        required: bool| {
            if required && list.is_empty() {
                errors.push(ConfigError::new(
                    format!("{path}.{field}"),
                    format!("a pipeline needs at least one {singular}"),
                ));
            }
            let mut seen = BTreeSet::new();
            for (i, r) in list.iter().enumerate() {
                let kind = ComponentId::parse(r).map(|id| id.kind).unwrap_or_default();
                if !registry::supports(field, &kind, signal) {
                    errors.push(ConfigError::new(
                        format!("{path}.{field}[{i}]"),
                        format!(
                            "{singular} {r:?} works on logs only, not in a {} pipeline",
                            signal.name()
                        ),
                    ));
                } else if let Some((_, why)) = (field == "exporters")
                    .then(|| refusals.get(r.as_str()))
                    .flatten()
                    .and_then(|list| list.iter().find(|(s, _)| *s == signal))
                {
                    errors.push(ConfigError::new(
                        format!("{path}.{field}[{i}]"),
                        format!("{singular} {r:?}: {why}"),
                    ));
                } else if !declared.contains_key(r) {
                    errors.push(ConfigError::new(
                        format!("{path}.{field}[{i}]"),
                        format!("{singular} {r:?} is not declared under {field}"),
                    ));
                } else if !seen.insert(r) {
                    errors.push(ConfigError::new(
                        format!("{path}.{field}[{i}]"),
                        format!("{singular} {r:?} is listed twice"),
                    ));
                }
            }
        };
        refs("receivers", &p.receivers, &raw.receivers, "receiver", true);
        refs(
            "processors",
            &p.processors,
            &raw.processors,
            "processor",
            false,
        );
        refs("exporters", &p.exporters, &raw.exporters, "exporter", true);
        let last = p.processors.len().saturating_sub(1);
        for (i, k) in p.processors.iter().enumerate() {
            if i != last && batching.contains(k) {
                errors.push(ConfigError::new(
                    format!("{path}.processors[{i}]"),
                    "batch must be the last processor: it hands its batches to the exporters",
                ));
            }
        }
        if errors.len() == before {
            wiring.push((pid, signal, p));
        }
    }
    let all_good = |list: &[String], good: &BTreeSet<String>| list.iter().all(|k| good.contains(k));
    if !errors.is_empty()
        || !wiring.iter().all(|(_, _, p)| {
            all_good(&p.receivers, &good_receivers)
                && all_good(&p.processors, &good_processors)
                && all_good(&p.exporters, &good_exporters)
        })
        || !all_good(&svc.extensions, &good_extensions)
    {
        return Err(ConfigErrors(errors));
    }
    Ok(Checked {
        receivers,
        processors,
        exporters,
        extensions,
        lent,
        pipelines: wiring,
    })
}
