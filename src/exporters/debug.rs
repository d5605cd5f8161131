//! `debug`: writes records to standard output, like the OTel Collector's `debug` exporter.
//!
//! ```yaml
//! exporters:
//!   debug:
//!     verbosity: basic      # basic: a count per batch; normal: a line per record;
//!                           # detailed: every field of every record
//! ```

use std::io::Write;

use serde::Deserialize;

use crate::codec::{write_hex, write_json_map, write_json_value, write_rfc3339};
use crate::component::{ALL_SIGNALS, Built, Context, Spec, Yaml};
use crate::config::decode;
use crate::model::{KeyValue, LogBatch};
use crate::otlp::raw::RawBatch;
use crate::pipeline::Batch;
use crate::pipeline::{BoxFuture, Exporter, queue};
use crate::shutdown::Shutdown;
use crate::telemetry::ExporterMetrics;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `basic` (default), `normal` or `detailed`.
    #[serde(default)]
    pub verbosity: Verbosity,
    /// Log records that may wait to be printed. Default 100000, as for the other exporters (a
    /// request with more than this is refused).
    #[serde(default = "default_queue_size")]
    pub queue_size: usize,
}

fn default_queue_size() -> usize {
    100_000
}

#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Verbosity {
    #[default]
    Basic,
    Normal,
    Detailed,
}

pub struct Debug {
    id: String,
    cfg: Config,
    metrics: ExporterMetrics,
}

/// The `debug` exporter type, as the registry lists it.
pub const SPEC: Spec<Box<dyn Exporter>> = Spec::new("debug", ALL_SIGNALS, build, "~");

pub fn build(ctx: &Context, raw: Yaml) -> Built<Box<dyn Exporter>> {
    let cfg: Config = decode(ctx.path, raw).map_err(|e| vec![e])?;
    let mut errors = Vec::new();
    crate::config::check_count(
        &mut errors,
        format!("{}.queue_size", ctx.path),
        cfg.queue_size as u64,
        1,
        crate::exporters::MAX_QUEUE_SIZE,
        "",
    );
    if !errors.is_empty() {
        return Err(errors);
    }
    let id = ctx.id.to_string();
    Ok(Box::new(Debug {
        metrics: ExporterMetrics::new(ctx.telemetry, &id),
        id,
        cfg,
    }))
}

impl Exporter for Debug {
    fn sending_queue(&self) -> crate::exporters::QueueConfig {
        crate::exporters::QueueConfig {
            queue_size: self.cfg.queue_size,
            ..Default::default()
        }
    }

    /// `basic` only counts; the other verbosities print record fields.
    fn takes_encoded_logs(&self) -> bool {
        self.cfg.verbosity == Verbosity::Basic
    }

    fn run(self: Box<Self>, mut queue: queue::Receiver, _deadline: Shutdown) -> BoxFuture<()> {
        Box::pin(async move {
            let mut buf = Vec::new();
            while let Some(envelope) = queue.recv().await {
                let n = envelope.records();
                let signal = envelope.batch.signal();
                let logs = match &envelope.batch {
                    Batch::Logs(logs) => logs,
                    Batch::Raw(raw) if raw.signal == crate::model::Signal::Logs => {
                        // Encoded logs reach only a `basic` debug exporter: a count.
                        tracing::info!(exporter = %self.id, log_records = n, "Logs");
                        self.metrics.sent.of(signal).add(n as u64);
                        envelope.delivered();
                        continue;
                    }
                    Batch::Raw(raw) => {
                        tracing::info!(
                            exporter = %self.id,
                            signal = signal.name(),
                            items = n,
                            resources = raw.resources.len(),
                            "{}",
                            signal.items()
                        );
                        if self.cfg.verbosity != Verbosity::Basic {
                            buf.clear();
                            write_raw(raw, &mut buf);
                        }
                        self.write_out(&mut buf, signal, n);
                        self.metrics.sent.of(signal).add(n as u64);
                        envelope.delivered();
                        continue;
                    }
                };
                match self.cfg.verbosity {
                    Verbosity::Basic => {
                        tracing::info!(exporter = %self.id, log_records = n, "Logs");
                    }
                    Verbosity::Normal => {
                        buf.clear();
                        write_normal(logs, &mut buf);
                    }
                    Verbosity::Detailed => {
                        buf.clear();
                        write_detailed(logs, &mut buf);
                    }
                }
                self.write_out(&mut buf, signal, n);
                self.metrics.sent.of(signal).add(n as u64);
                envelope.delivered();
            }
        })
    }
}

impl Debug {
    /// Writes `buf` to standard output. Standard output going away (a closed pipe) must not
    /// stall the pipeline; the items are counted as failed instead.
    fn write_out(&self, buf: &mut Vec<u8>, signal: crate::model::Signal, items: usize) {
        if buf.is_empty() {
            return;
        }
        let mut out = std::io::stdout().lock();
        if out.write_all(buf).and_then(|_| out.flush()).is_err() {
            self.metrics.send_failed.of(signal).add(items as u64);
        }
        buf.clear();
    }
}

/// Traces and metrics are forwarded as received, not decoded: one line per resource with
/// what it holds.
pub fn write_raw(batch: &RawBatch, out: &mut Vec<u8>) {
    for (i, (bytes, items)) in batch.resources.iter().enumerate() {
        let _ = writeln!(
            out,
            "{} resource #{i}: {items} {}, {} bytes",
            batch.signal.name(),
            batch.signal.items(),
            bytes.len()
        );
    }
}

/// One line per record: `<time> <severity> <body> <attributes as JSON>`.
pub fn write_normal(batch: &LogBatch, out: &mut Vec<u8>) {
    for r in &batch.records {
        let t = if r.time_unix_nano != 0 {
            r.time_unix_nano
        } else {
            r.observed_time_unix_nano
        };
        write_rfc3339(out, t);
        out.push(b' ');
        out.extend_from_slice(if r.severity_text.is_empty() {
            b"-"
        } else {
            r.severity_text.as_bytes()
        });
        out.push(b' ');
        match &r.body {
            crate::model::Value::Str(s) => out.extend_from_slice(s.as_bytes()),
            other => write_json_value(out, other),
        }
        if !r.attributes.is_empty() {
            out.push(b' ');
            write_json_map(out, &r.attributes);
        }
        out.push(b'\n');
    }
}

/// Every field, in the layout of the OTel Collector's detailed output.
pub fn write_detailed(batch: &LogBatch, out: &mut Vec<u8>) {
    fn attrs<'a>(out: &mut Vec<u8>, title: &str, kvs: impl IntoIterator<Item = &'a KeyValue>) {
        out.extend_from_slice(title.as_bytes());
        out.extend_from_slice(b":\n");
        for (k, v) in kvs {
            out.extend_from_slice(b"     -> ");
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b": ");
            write_json_value(out, v);
            out.push(b'\n');
        }
    }
    for (oi, origin) in batch.origins.iter().enumerate() {
        out.extend_from_slice(format!("ResourceLog #{oi}\n").as_bytes());
        attrs(out, "Resource attributes", &origin.resource);
        out.extend_from_slice(
            format!(
                "ScopeLogs SchemaURL: \nInstrumentationScope {} {}\n",
                origin.scope_name, origin.scope_version
            )
            .as_bytes(),
        );
        for (ri, r) in batch
            .records
            .iter()
            .filter(|r| r.origin as usize == oi)
            .enumerate()
        {
            out.extend_from_slice(format!("LogRecord #{ri}\nObservedTimestamp: ").as_bytes());
            write_rfc3339(out, r.observed_time_unix_nano);
            out.extend_from_slice(b"\nTimestamp: ");
            write_rfc3339(out, r.time_unix_nano);
            out.extend_from_slice(
                format!(
                    "\nSeverityText: {}\nSeverityNumber: {}\nBody: ",
                    r.severity_text, r.severity_number
                )
                .as_bytes(),
            );
            write_json_value(out, &r.body);
            out.push(b'\n');
            attrs(out, "Attributes", &r.attributes);
            out.extend_from_slice(b"Trace ID: ");
            write_hex(out, &r.trace_id);
            out.extend_from_slice(b"\nSpan ID: ");
            write_hex(out, &r.span_id);
            out.extend_from_slice(format!("\nFlags: {}\n", r.flags).as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{LogRecord, Origin, Value};

    fn batch() -> LogBatch {
        LogBatch {
            origins: vec![Origin::default()],
            records: vec![LogRecord {
                body: Value::Str("hello".into()),
                attributes: vec![("k".into(), Value::Str("v".into()))],
                observed_time_unix_nano: 1_000_000_000,
                ..Default::default()
            }],
        }
    }

    #[test]
    fn normal_prints_one_line_per_record() {
        let mut out = Vec::new();
        write_normal(&batch(), &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "1970-01-01T00:00:01.000000000Z - hello {\"k\":\"v\"}\n"
        );
    }

    #[test]
    fn detailed_prints_every_field() {
        let mut out = Vec::new();
        write_detailed(&batch(), &mut out);
        let text = String::from_utf8(out).unwrap();
        for needle in [
            "ResourceLog #0",
            "LogRecord #0",
            "Body: \"hello\"",
            "     -> k: \"v\"",
            "Trace ID: 0000",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
    }
}
