//! `log_transform`: the EDOT gateway's log transforms, built in, so Kibana's level breakdown
//! and trace correlation work without an OTTL program.
//!
//! ```yaml
//! processors:
//!   log_transform:
//!     severity_fields: [level, log.level, severity]   # attributes / JSON fields, in order
//!     log_level_attribute: log.level                  # "" to leave attributes alone
//!     parse_json_body: true                           # opt-in: read ECS-style JSON bodies
//!     trace_id_fields: [trace.id, trace_id]
//!     span_id_fields: [span.id, span_id]
//!     resource_fields: [service.name, service.version]
//!     attribute_fields: [event.dataset]
//! ```
//!
//! Severity: a record with a `severity_text` but no number gets the number, and the other way
//! round; a record with neither takes its level from the first of `severity_fields` found in its
//! attributes or (with `parse_json_body`) its JSON body. Names are normalised to OTel numbers
//! (TRACE 1, DEBUG 5, INFO 9, WARN 13, ERROR 17, FATAL 21; `warning`, `err`, `critical` and
//! friends included), and `log.level` is set to the lower-case name, so no record lands in
//! Kibana's "(missing value)" bucket. A record with no level anywhere keeps an empty severity.
//!
//! JSON bodies: a field name is looked up as written (`"trace.id": …`) and then as a path
//! (`"trace": {"id": …}`). Trace and span ids become the record's ids (when it has none) and
//! `trace.id` / `span.id` attributes; `resource_fields` go into the record's resource when it
//! lacks them; `attribute_fields` into its attributes. A body that is not a JSON object is left
//! alone and counted in `sluice_processor_failed_log_records_total`.

use serde::Deserialize;
use serde_json::{Map, Value as Json};

use crate::component::{Built, Context, LOGS, Spec, Yaml};
use crate::config::decode;
use crate::model::{
    KeyValue, LogBatch, LogRecord, Origin, Severity, Str, Value, get_attr, push_cloned_text,
    push_in_place,
};
use crate::pipeline::{Processor, Stage};
use crate::telemetry::ProcessorMetrics;

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where a missing level is looked for, in order. Default `[level, log.level, severity]`.
    #[serde(default = "default_severity_fields")]
    pub severity_fields: Vec<String>,
    /// The attribute that gets the lower-case level name; empty to not set one.
    /// Default `log.level`.
    #[serde(default = "default_log_level_attribute")]
    pub log_level_attribute: String,
    /// Read string bodies that hold a JSON object. Default `false`.
    #[serde(default)]
    pub parse_json_body: bool,
    /// JSON fields holding a trace id (32 hex digits). Default `[trace.id, trace_id]`.
    #[serde(default = "default_trace_id_fields")]
    pub trace_id_fields: Vec<String>,
    /// JSON fields holding a span id (16 hex digits). Default `[span.id, span_id]`.
    #[serde(default = "default_span_id_fields")]
    pub span_id_fields: Vec<String>,
    /// JSON fields copied into the resource. Default `[service.name, service.version]`.
    #[serde(default = "default_resource_fields")]
    pub resource_fields: Vec<String>,
    /// JSON fields copied into the attributes. Default `[event.dataset]`.
    #[serde(default = "default_attribute_fields")]
    pub attribute_fields: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            severity_fields: default_severity_fields(),
            log_level_attribute: default_log_level_attribute(),
            parse_json_body: false,
            trace_id_fields: default_trace_id_fields(),
            span_id_fields: default_span_id_fields(),
            resource_fields: default_resource_fields(),
            attribute_fields: default_attribute_fields(),
        }
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn default_severity_fields() -> Vec<String> {
    strings(&["level", "log.level", "severity"])
}

fn default_log_level_attribute() -> String {
    "log.level".into()
}

fn default_trace_id_fields() -> Vec<String> {
    strings(&["trace.id", "trace_id"])
}

fn default_span_id_fields() -> Vec<String> {
    strings(&["span.id", "span_id"])
}

fn default_resource_fields() -> Vec<String> {
    strings(&["service.name", "service.version"])
}

fn default_attribute_fields() -> Vec<String> {
    strings(&["event.dataset"])
}

pub struct LogTransform {
    cfg: Config,
    /// Field names as static text: attribute keys then clone without a reference count.
    log_level: Option<Str>,
    resource_keys: Vec<Str>,
    attribute_keys: Vec<Str>,
    metrics: ProcessorMetrics,
}

fn leak(s: &str) -> Str {
    // Config field names are few and live as long as the process.
    Str::from_static(Box::leak(s.to_string().into_boxed_str()))
}

/// The `log_transform` processor type, as the registry lists it.
pub const SPEC: Spec<Stage> = Spec::new("log_transform", LOGS, build, "~");

pub fn build(ctx: &Context, raw: Yaml) -> Built<Stage> {
    let cfg: Config = decode(ctx.path, raw).map_err(|e| vec![e])?;
    let metrics = ProcessorMetrics::new(ctx.telemetry, &ctx.id.to_string(), ctx.pipeline);
    Ok(Stage::Inline(Box::new(LogTransform::new(cfg, metrics))))
}

impl LogTransform {
    fn new(cfg: Config, metrics: ProcessorMetrics) -> Self {
        LogTransform {
            log_level: (!cfg.log_level_attribute.is_empty())
                .then(|| leak(&cfg.log_level_attribute)),
            resource_keys: cfg.resource_fields.iter().map(|f| leak(f)).collect(),
            attribute_keys: cfg.attribute_fields.iter().map(|f| leak(f)).collect(),
            cfg,
            metrics,
        }
    }

    /// Transforms one record; returns resource values it wants set, or `Err` if its body was
    /// meant to be JSON and was not.
    fn record(&self, r: &mut LogRecord) -> Result<Vec<KeyValue>, ()> {
        let mut resource = Vec::new();
        let mut json_level = None;
        let mut bad_json = false;
        if self.cfg.parse_json_body
            && let Value::Str(body) = &r.body
            && body.trim_start().starts_with('{')
        {
            match serde_json::from_str::<Map<String, Json>>(body) {
                Ok(doc) => {
                    json_level = self.apply_json(&doc, r, &mut resource);
                }
                Err(_) => bad_json = true,
            }
        }
        self.severity(r, json_level);
        if bad_json { Err(()) } else { Ok(resource) }
    }

    /// Applies the id, resource and attribute fields of a JSON body; returns its level, if any.
    fn apply_json(
        &self,
        doc: &Map<String, Json>,
        r: &mut LogRecord,
        resource: &mut Vec<KeyValue>,
    ) -> Option<String> {
        if let Some(id) = first_str(doc, &self.cfg.trace_id_fields).and_then(hex::<16>) {
            if r.trace_id == [0; 16] {
                r.trace_id = id;
            }
            set_attr(
                &mut r.attributes,
                Str::from_static("trace.id"),
                hex_value(&id),
            );
        }
        if let Some(id) = first_str(doc, &self.cfg.span_id_fields).and_then(hex::<8>) {
            if r.span_id == [0; 8] {
                r.span_id = id;
            }
            set_attr(
                &mut r.attributes,
                Str::from_static("span.id"),
                hex_value(&id),
            );
        }
        for (field, key) in self.cfg.resource_fields.iter().zip(&self.resource_keys) {
            if let Some(v) = lookup(doc, field).and_then(scalar) {
                resource.push((key.clone(), v));
            }
        }
        for (field, key) in self.cfg.attribute_fields.iter().zip(&self.attribute_keys) {
            if let Some(v) = lookup(doc, field).and_then(scalar) {
                set_attr(&mut r.attributes, key.clone(), v);
            }
        }
        first_str(doc, &self.cfg.severity_fields).map(str::to_string)
    }

    fn severity(&self, r: &mut LogRecord, json_level: Option<String>) {
        if r.severity_number == 0 && r.severity_text.is_empty() {
            let found = self
                .cfg
                .severity_fields
                .iter()
                .find_map(|f| get_attr(&r.attributes, f).and_then(Value::as_str).cloned())
                .or_else(|| json_level.map(Str::from));
            match found {
                Some(text) => r.severity_text = text,
                None => return,
            }
        }
        let sev = if r.severity_number == 0 {
            let sev = Severity::parse(r.severity_text.trim());
            if let Some(s) = sev {
                r.severity_number = s as u8;
            }
            sev
        } else {
            let sev = Severity::of_number(r.severity_number);
            if r.severity_text.is_empty()
                && let Some(s) = sev
            {
                r.severity_text = Str::from_static(s.text());
            }
            sev
        };
        let Some(key) = &self.log_level else { return };
        if get_attr(&r.attributes, key).is_some() {
            return;
        }
        // Known levels get a static name; only an unknown one is lower-cased into a new string.
        match sev {
            Some(s) => push_cloned_text(&mut r.attributes, key, &LEVEL_NAMES[s as usize / 4]),
            None => {
                let name = Str::from(r.severity_text.trim().to_lowercase());
                if !name.is_empty() {
                    push_attribute(&mut r.attributes, key.clone(), name);
                }
            }
        }
    }
}

/// Appends an attribute with room for exactly it. A first push would make room for four
/// (320 bytes) on a record that most often gets only this one: more than the record itself.
/// Pushed in place ([`push_in_place`]): through a temporary, the copy stalled on store
/// forwarding (a quarter of this processor's time).
#[inline(always)]
fn push_attribute(attrs: &mut Vec<KeyValue>, key: Str, value: Str) {
    attrs.reserve_exact(1);
    push_in_place(attrs, || (key, Value::Str(value)));
}

/// Derived origins by what they were derived from: (from, additions) -> index of the new
/// origin. Keyed by a hash of both, with collisions told apart by comparing, so a batch whose
/// every record names another service costs one lookup per record, not a scan of all so far.
#[derive(Default)]
struct Derived {
    by_hash: std::collections::HashMap<u64, Vec<(u32, Vec<KeyValue>, u32)>>,
}

impl Derived {
    fn get_or_insert(
        &mut self,
        from: u32,
        additions: Vec<KeyValue>,
        make: impl FnOnce(&[KeyValue]) -> u32,
    ) -> u32 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        from.hash(&mut h);
        for (k, v) in &additions {
            k.hash(&mut h);
            hash_value(v, &mut h);
        }
        let bucket = self.by_hash.entry(h.finish()).or_default();
        if let Some((_, _, to)) = bucket
            .iter()
            .find(|(f, adds, _)| *f == from && *adds == additions)
        {
            return *to;
        }
        let to = make(&additions);
        bucket.push((from, additions, to));
        to
    }
}

fn hash_value(v: &Value, h: &mut impl std::hash::Hasher) {
    use std::hash::Hash;
    std::mem::discriminant(v).hash(h);
    match v {
        Value::Empty => {}
        Value::Str(s) => s.hash(h),
        Value::Bool(b) => b.hash(h),
        Value::Int(i) => i.hash(h),
        Value::Double(d) => d.to_bits().hash(h),
        Value::Bytes(b) => b.hash(h),
        Value::Array(items) => items.iter().for_each(|v| hash_value(v, h)),
        Value::Map(kvs) => kvs.iter().for_each(|(k, v)| {
            k.hash(h);
            hash_value(v, h)
        }),
    }
}

/// Lower-case level names by `severity_number / 4` (1 trace, 5 debug, 9 info, ...).
/// Built at compile time, so each is cloned by copying it, not made again per record.
static LEVEL_NAMES: [Str; 6] = [
    Str::from_static("trace"),
    Str::from_static("debug"),
    Str::from_static("info"),
    Str::from_static("warn"),
    Str::from_static("error"),
    Str::from_static("fatal"),
];

impl Processor for LogTransform {
    fn process(&mut self, batch: &mut LogBatch) {
        // Records that gain resource attributes move to an origin that has them; records with
        // the same origin and the same additions share one.
        let mut derived = Derived::default();
        let mut failed = 0u64;
        for i in 0..batch.records.len() {
            let additions = match self.record(&mut batch.records[i]) {
                Ok(a) => a,
                Err(()) => {
                    failed += 1;
                    continue;
                }
            };
            let from = batch.records[i].origin;
            let missing: Vec<KeyValue> = match batch.origins.get(from as usize) {
                Some(o) => additions
                    .into_iter()
                    .filter(|(k, _)| o.resource.get(k).is_none())
                    .collect(),
                None => Vec::new(),
            };
            if missing.is_empty() {
                continue;
            }
            let origins = &mut batch.origins;
            let to = derived.get_or_insert(from, missing, |adds| {
                // Shares the resource's and scope's attributes with the origin it came from:
                // a new origin costs its additions, however large the resource.
                let mut origin: Origin = origins[from as usize].clone();
                origin.resource = origin.resource.with_added(adds.iter().cloned());
                origins.push(origin);
                (origins.len() - 1) as u32
            });
            batch.records[i].origin = to;
        }
        self.metrics.errors.add(failed);
    }

    fn fork(&self) -> Box<dyn Processor> {
        // The keys are cloned, not leaked again: a worker is forked per connection.
        Box::new(LogTransform {
            cfg: self.cfg.clone(),
            log_level: self.log_level.clone(),
            resource_keys: self.resource_keys.clone(),
            attribute_keys: self.attribute_keys.clone(),
            metrics: self.metrics.clone(),
        })
    }
}

/// A field by its name as written, then as a dotted path into nested objects.
fn lookup<'a>(doc: &'a Map<String, Json>, field: &str) -> Option<&'a Json> {
    if let Some(v) = doc.get(field) {
        return Some(v);
    }
    let (head, rest) = field.split_once('.')?;
    lookup(doc.get(head)?.as_object()?, rest)
}

fn first_str<'a>(doc: &'a Map<String, Json>, fields: &[String]) -> Option<&'a str> {
    fields
        .iter()
        .find_map(|f| lookup(doc, f).and_then(Json::as_str))
}

fn scalar(v: &Json) -> Option<Value> {
    Some(match v {
        Json::String(s) => Value::Str(Str::from(s.clone())),
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Double(n.as_f64()?),
        },
        _ => return None,
    })
}

fn hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let b = s.as_bytes();
    if b.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        let d = |c: u8| (c as char).to_digit(16);
        *o = (d(b[2 * i])? * 16 + d(b[2 * i + 1])?) as u8;
    }
    (out != [0; N]).then_some(out)
}

fn hex_value(id: &[u8]) -> Value {
    let mut s = Vec::with_capacity(id.len() * 2);
    crate::codec::write_hex(&mut s, id);
    Value::Str(Str::from(String::from_utf8(s).unwrap_or_default()))
}

fn set_attr(attrs: &mut Vec<KeyValue>, key: Str, value: Value) {
    match attrs.iter_mut().find(|(k, _)| *k == key) {
        Some(slot) => slot.1 = value,
        None => attrs.push((key, value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::Registry;

    fn transform(yaml: &str, records: Vec<LogRecord>) -> LogBatch {
        let cfg: Config = decode("p", serde_yaml_ng::from_str(yaml).unwrap()).unwrap();
        let mut p = LogTransform::new(
            cfg,
            ProcessorMetrics::new(&Registry::default(), "t", "logs"),
        );
        let mut batch = LogBatch {
            origins: vec![Origin {
                resource: vec![(Str::from("k8s.pod.name"), Value::Str(Str::from("api-1")))].into(),
                ..Default::default()
            }],
            records,
        };
        p.process(&mut batch);
        batch
    }

    fn body(text: &str) -> LogRecord {
        LogRecord {
            body: Value::Str(Str::from(text.to_string())),
            ..Default::default()
        }
    }

    fn attr<'a>(attrs: impl IntoIterator<Item = &'a KeyValue>, k: &str) -> Option<&'a str> {
        get_attr(attrs, k)
            .and_then(Value::as_str)
            .map(|s| s.as_str())
    }

    #[test]
    fn ecs_json_logs_get_severity_ids_and_resource() {
        let line = r#"{"@timestamp":"2026-01-01T00:00:00Z","log.level":"warning","message":"slow","trace.id":"4bf92f3577b34da6a3ce929d0e0e4736","span":{"id":"00f067aa0ba902b7"},"service.name":"backend","service":{"version":"2.1.0"},"event.dataset":"backend.log"}"#;
        let b = transform("{parse_json_body: true}", vec![body(line), body(line)]);
        for r in &b.records {
            assert_eq!(r.severity_number, 13);
            assert_eq!(r.severity_text.as_str(), "warning");
            assert_eq!(attr(&r.attributes, "log.level"), Some("warn"));
            assert_eq!(r.trace_id[..2], [0x4b, 0xf9]);
            assert_eq!(r.span_id[..2], [0x00, 0xf0]);
            assert_eq!(
                attr(&r.attributes, "trace.id"),
                Some("4bf92f3577b34da6a3ce929d0e0e4736")
            );
            assert_eq!(attr(&r.attributes, "span.id"), Some("00f067aa0ba902b7"));
            assert_eq!(attr(&r.attributes, "event.dataset"), Some("backend.log"));
            let o = &b.origins[r.origin as usize];
            assert_eq!(attr(&o.resource, "service.name"), Some("backend"));
            assert_eq!(attr(&o.resource, "service.version"), Some("2.1.0"));
            assert_eq!(attr(&o.resource, "k8s.pod.name"), Some("api-1"), "kept");
        }
        assert_eq!(b.origins.len(), 2, "both records share one derived origin");
        assert_eq!(b.records[0].origin, b.records[1].origin);
    }

    #[test]
    fn severity_comes_from_text_number_or_attributes_and_none_stays_empty() {
        let text_only = LogRecord {
            severity_text: Str::from("Error"),
            ..Default::default()
        };
        let number_only = LogRecord {
            severity_number: 10,
            ..Default::default()
        };
        let attr_only = LogRecord {
            attributes: vec![(Str::from("level"), Value::Str(Str::from("DEBUG")))],
            ..Default::default()
        };
        let unknown = LogRecord {
            severity_text: Str::from("NOTE"),
            ..Default::default()
        };
        let b = transform(
            "{}",
            vec![
                text_only,
                number_only,
                attr_only,
                unknown,
                body("no level at all"),
            ],
        );
        let r = &b.records;
        assert_eq!(
            (r[0].severity_number, attr(&r[0].attributes, "log.level")),
            (17, Some("error"))
        );
        assert_eq!(
            (
                r[1].severity_text.as_str(),
                attr(&r[1].attributes, "log.level")
            ),
            ("INFO", Some("info"))
        );
        assert_eq!(
            (r[2].severity_number, attr(&r[2].attributes, "log.level")),
            (5, Some("debug"))
        );
        assert_eq!(
            (r[3].severity_number, attr(&r[3].attributes, "log.level")),
            (0, Some("note"))
        );
        assert_eq!((r[4].severity_number, r[4].severity_text.as_str()), (0, ""));
        assert!(r[4].attributes.is_empty(), "no level: no log.level either");
    }

    #[test]
    fn unparsable_json_is_left_alone_and_counted() {
        let reg = Registry::default();
        let cfg: Config = decode(
            "p",
            serde_yaml_ng::from_str("{parse_json_body: true}").unwrap(),
        )
        .unwrap();
        let mut p = LogTransform::new(cfg, ProcessorMetrics::new(&reg, "t", "logs"));
        let mut batch = LogBatch {
            origins: vec![Origin::default()],
            records: vec![body("{not json"), body("plain text")],
        };
        p.process(&mut batch);
        assert_eq!(
            batch.records[0].body.as_str().map(|s| s.as_str()),
            Some("{not json")
        );
        assert!(reg.render().contains(
            "sluice_processor_failed_log_records_total{processor=\"t\",pipeline=\"logs\"} 1"
        ));
    }

    #[test]
    fn existing_ids_and_resource_are_not_overridden() {
        let mut r =
            body(r#"{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","k8s.pod.name":"other"}"#);
        r.trace_id = [7; 16];
        let b = transform(
            "{parse_json_body: true, resource_fields: [k8s.pod.name]}",
            vec![r],
        );
        assert_eq!(b.records[0].trace_id, [7; 16]);
        assert_eq!(b.origins.len(), 1, "the resource already had the field");
    }
}
