//! `regex_parser`: parses a field with a regex of named captures, like Vector's
//! `parse_regex!` and the OTel Collector's stanza `regex_parser`.
//!
//! ```yaml
//! processors:
//!   regex_parser/apache:
//!     preset: apache_common          # or regex: '^(?P<host>\S+) ...'
//!     parse_from: body               # or attributes.NAME
//!     target: attributes             # or body (the body becomes a map of the captures)
//!     timestamp: { parse_from: timestamp, layout: "%d/%b/%Y:%H:%M:%S %z" }
//!     severity:  { parse_from: status, mapping: { error: 5xx, warn: 4xx, info: [2xx, 3xx] } }
//!     on_error: keep                 # or drop; counted either way
//! ```
//!
//! Captures are slices of the parsed text (no copies). Each worker owns its regex cache and
//! capture slots, reused for every record: the compiled regex is shared read-only, the mutable
//! search state never is.

use std::sync::Arc;

use regex_automata::meta::{Cache, Regex};
use regex_automata::util::captures::Captures;
use regex_automata::{Input, PatternID};
use serde::Deserialize;

use super::segments::{Segments, Spans};
use crate::component::{Built, Context, LOGS, Spec, Yaml};
use crate::config::{ConfigError, decode};
use crate::model::{KeyValue, LogBatch, LogRecord, Severity, Str, Value, get_attr};
use crate::pipeline::{Processor, Stage};
use crate::telemetry::ProcessorMetrics;

/// Apache common log format: `host ident user [time] "method path protocol" status bytes`.
/// Written so that each field ends at a byte its pattern cannot match, which keeps the regex
/// one-pass and therefore on the fastest capture engine.
pub const APACHE_COMMON: &str = r#"^(?P<host>\S+) (?P<ident>\S+) (?P<user>\S+) \[(?P<timestamp>[^\]]*)\] "(?P<method>\S+) (?P<path>\S+) (?P<protocol>[^"]*)" (?P<status>\d{3}) (?P<bytes_out>[\d\-]+)$"#;

/// Apache combined log format: common plus referer and user agent.
pub const APACHE_COMBINED: &str = r#"^(?P<host>\S+) (?P<ident>\S+) (?P<user>\S+) \[(?P<timestamp>[^\]]*)\] "(?P<method>\S+) (?P<path>\S+) (?P<protocol>[^"]*)" (?P<status>\d{3}) (?P<bytes_out>[\d\-]+) "(?P<referer>[^"]*)" "(?P<user_agent>[^"]*)"$"#;

/// The capture names of the Apache presets, as slices of one string. Records parsed by a preset
/// carry these very slices as attribute keys (not copies), which is how an exporter can tell an
/// Apache `status` capture, worth an ECS name, from any other attribute called `status`: see
/// [`preset_capture`]. Slices of a longer string, because the compiler may merge equal string
/// literals: a `"status"` literal elsewhere could share a standalone one's address.
static CAPTURE_TEXT: &str = "regex_parser Apache preset captures: host ident user timestamp \
                             method path protocol status bytes_out referer user_agent";

/// The Apache presets' capture names (see [`CAPTURE_TEXT`]).
pub fn apache_captures() -> impl Iterator<Item = &'static str> {
    let names = CAPTURE_TEXT.split_once(": ").map_or("", |(_, n)| n);
    names.split(' ').filter(|n| !n.is_empty())
}

/// The Apache preset capture `key` is, if it is one: the same static string, not merely the
/// same text.
pub fn preset_capture(key: &Str) -> Option<&'static str> {
    let s = key.static_json_safe()?;
    apache_captures().find(|c| std::ptr::eq(c.as_ptr(), s.as_ptr()) && c.len() == s.len())
}

/// The timestamp layout both Apache presets use, e.g. `05/Feb/2023:09:39:56 +0000`.
pub const APACHE_TIME_LAYOUT: &str = "%d/%b/%Y:%H:%M:%S %z";

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// A regex with named capture groups, `(?P<name>...)`. Exactly one of `regex` and `preset`.
    pub regex: Option<String>,
    /// A built-in regex: `apache_common` or `apache_combined`.
    pub preset: Option<Preset>,
    /// What to parse: `body` (default) or `attributes.NAME`.
    #[serde(default = "default_parse_from")]
    pub parse_from: String,
    /// Where captures go: `attributes` (default) or `body`.
    #[serde(default)]
    pub target: Target,
    /// Sets the record's timestamp from a capture.
    pub timestamp: Option<TimestampConfig>,
    /// Sets the record's severity from a capture.
    pub severity: Option<SeverityConfig>,
    /// A record that does not match (or whose timestamp does not parse): `keep` it unchanged
    /// (default) or `drop` it. Both are counted in `sluice_processor_failed_log_records_total`.
    #[serde(default)]
    pub on_error: OnError,
}

fn default_parse_from() -> String {
    "body".to_string()
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    ApacheCommon,
    ApacheCombined,
}

#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    #[default]
    Attributes,
    Body,
}

#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    #[default]
    Keep,
    Drop,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimestampConfig {
    /// The capture to read: `NAME`, `attributes.NAME` or `body.NAME`.
    pub parse_from: String,
    /// A strftime layout (`%d/%b/%Y:%H:%M:%S %z`), or `rfc3339`. Without an offset (`%z`) the
    /// time is taken as UTC. Default: the Apache layout.
    #[serde(default = "default_layout")]
    pub layout: String,
}

fn default_layout() -> String {
    APACHE_TIME_LAYOUT.to_string()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeverityConfig {
    /// The capture to read: `NAME`, `attributes.NAME` or `body.NAME`.
    pub parse_from: String,
    /// Severity name (`trace`, `debug`, `info`, `warn`, `error`, `fatal`) to the values that
    /// mean it: exact strings, compared ignoring ASCII case, or HTTP status classes like `5xx`.
    /// Without a mapping the value itself must be a level name (`WARN`, `error`, ...).
    #[serde(default)]
    pub mapping: std::collections::BTreeMap<String, OneOrMany>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

enum Source {
    Body,
    Attribute(String),
}

enum Layout {
    Rfc3339,
    Strftime { layout: String, has_offset: bool },
}

enum Matcher {
    Exact(Vec<u8>),
    StatusClass(u8),
}

struct Compiled {
    regex: Regex,
    /// The same pattern as a single-pass matcher, when its shape allows (see `segments`).
    fast: Option<Segments>,
    /// Named groups only, as (group index, name): the per-record loop skips unnamed ones
    /// without looking at them.
    fields: Vec<(usize, Str)>,
    source: Source,
    target: Target,
    timestamp: Option<(usize, Layout)>,
    severity: Option<(usize, Vec<(Matcher, Severity)>)>,
    on_error: OnError,
}

pub struct RegexParser {
    compiled: Arc<Compiled>,
    cache: Cache,
    caps: Captures,
    spans: Spans,
    metrics: ProcessorMetrics,
}

/// The `regex_parser` processor type, as the registry lists it.
pub const SPEC: Spec<Stage> = Spec::new("regex_parser", LOGS, build, "{preset: apache_common}");

pub fn build(ctx: &Context, raw: Yaml) -> Built<Stage> {
    let cfg: Config = decode(ctx.path, raw).map_err(|e| vec![e])?;
    let compiled = compile(ctx.path, &cfg)?;
    let metrics = ProcessorMetrics::new(ctx.telemetry, &ctx.id.to_string(), ctx.pipeline);
    Ok(Stage::Inline(Box::new(RegexParser::new(
        Arc::new(compiled),
        metrics,
    ))))
}

fn compile(path: &str, cfg: &Config) -> Result<Compiled, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let pattern = match (&cfg.regex, cfg.preset) {
        (Some(r), None) => r.as_str(),
        (None, Some(Preset::ApacheCommon)) => APACHE_COMMON,
        (None, Some(Preset::ApacheCombined)) => APACHE_COMBINED,
        _ => {
            return Err(vec![ConfigError::new(
                path,
                "exactly one of `regex` and `preset` must be set",
            )]);
        }
    };
    let regex = Regex::new(pattern).map_err(|e| {
        vec![ConfigError::new(
            format!("{path}.regex"),
            format!("invalid regex: {e}"),
        )]
    })?;
    // Capture names are few and live as long as the process; leaking them makes every
    // attribute key a static `Str`, which clones without touching a reference count. A preset's
    // names are its static table's own strings (`preset_capture`).
    let preset = cfg.preset.is_some();
    let names: Vec<Option<Str>> = regex
        .group_info()
        .pattern_names(PatternID::ZERO)
        .map(|n| {
            n.map(|s| match apache_captures().find(|c| preset && *c == s) {
                Some(c) => Str::from_static(c),
                None => Str::from_static(Box::leak(s.to_string().into_boxed_str())),
            })
        })
        .collect();
    if names.iter().all(Option::is_none) {
        errors.push(ConfigError::new(
            format!("{path}.regex"),
            "the regex has no named capture groups",
        ));
    }
    let group = |field: &str, reference: &str| -> Result<usize, ConfigError> {
        let name = reference
            .strip_prefix("attributes.")
            .or_else(|| reference.strip_prefix("body."))
            .unwrap_or(reference);
        names
            .iter()
            .position(|n| n.as_deref() == Some(name))
            .ok_or_else(|| {
                ConfigError::new(
                    format!("{path}.{field}"),
                    format!("{reference:?} is not a named capture group of the regex"),
                )
            })
    };

    let source = if cfg.parse_from == "body" {
        Source::Body
    } else if let Some(attr) = cfg
        .parse_from
        .strip_prefix("attributes.")
        .filter(|a| !a.is_empty())
    {
        Source::Attribute(attr.to_string())
    } else {
        errors.push(ConfigError::new(
            format!("{path}.parse_from"),
            format!(
                "expected `body` or `attributes.NAME`, got {:?}",
                cfg.parse_from
            ),
        ));
        Source::Body
    };

    let timestamp = cfg.timestamp.as_ref().and_then(|t| {
        let g = group("timestamp.parse_from", &t.parse_from)
            .map_err(|e| errors.push(e))
            .ok()?;
        let layout = if t.layout.eq_ignore_ascii_case("rfc3339") {
            Layout::Rfc3339
        } else {
            use chrono::format::{Item, StrftimeItems};
            if StrftimeItems::new(&t.layout).any(|i| matches!(i, Item::Error)) {
                errors.push(ConfigError::new(
                    format!("{path}.timestamp.layout"),
                    format!("invalid strftime layout {:?}", t.layout),
                ));
                return None;
            }
            let has_offset =
                t.layout.contains("%z") || t.layout.contains("%:z") || t.layout.contains("%#z");
            Layout::Strftime {
                layout: t.layout.clone(),
                has_offset,
            }
        };
        Some((g, layout))
    });

    let severity = cfg.severity.as_ref().and_then(|s| {
        let g = group("severity.parse_from", &s.parse_from)
            .map_err(|e| errors.push(e))
            .ok()?;
        let mut matchers = Vec::new();
        for (name, values) in &s.mapping {
            let Some(sev) = Severity::parse(name) else {
                errors.push(ConfigError::new(
                    format!("{path}.severity.mapping.{name}"),
                    "unknown severity: expected trace, debug, info, warn, error or fatal",
                ));
                continue;
            };
            let values = match values {
                OneOrMany::One(v) => std::slice::from_ref(v),
                OneOrMany::Many(v) => v.as_slice(),
            };
            for v in values {
                let b = v.as_bytes();
                let m = if b.len() == 3
                    && b[0].is_ascii_digit()
                    && b[1..].eq_ignore_ascii_case(b"xx")
                {
                    Matcher::StatusClass(b[0])
                } else {
                    Matcher::Exact(b.to_vec())
                };
                matchers.push((m, sev));
            }
        }
        Some((g, matchers))
    });

    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Compiled {
        fast: Segments::compile(pattern),
        regex,
        fields: names
            .iter()
            .enumerate()
            .filter_map(|(g, n)| Some((g, n.clone()?)))
            .collect(),
        source,
        target: cfg.target,
        timestamp,
        severity,
        on_error: cfg.on_error,
    })
}

impl RegexParser {
    fn new(compiled: Arc<Compiled>, metrics: ProcessorMetrics) -> Self {
        RegexParser {
            cache: compiled.regex.create_cache(),
            caps: compiled.regex.create_captures(),
            spans: Spans::new(),
            compiled,
            metrics,
        }
    }

    /// Parses one record in place; `false` if it did not match or its timestamp did not parse.
    fn parse(&mut self, rec: &mut LogRecord) -> bool {
        let RegexParser {
            compiled,
            cache,
            caps,
            spans,
            ..
        } = self;
        let c = &**compiled;
        let from_attr;
        // The body is borrowed, not cloned or moved: cloning shared bytes costs an atomic
        // increment and decrement per record, and moving it out and back two 40-byte copies.
        let hay: &Str = match (&c.source, &rec.body) {
            (Source::Body, Value::Str(s)) => s,
            (Source::Attribute(key), _) => {
                from_attr = get_attr(&rec.attributes, key)
                    .and_then(Value::as_str)
                    .cloned();
                match &from_attr {
                    Some(s) => s,
                    None => return false,
                }
            }
            _ => return false,
        };
        let bytes: &[u8] = hay.as_bytes();
        let matched = match &c.fast {
            Some(fast) if bytes.is_ascii() => fast.captures(bytes, spans),
            _ => {
                c.regex
                    .search_captures_with(cache, &Input::new(bytes), caps);
                spans.clear();
                spans.extend(
                    (0..caps.group_len()).map(|g| caps.get_group(g).map(|s| (s.start, s.end))),
                );
                caps.is_match()
            }
        };
        if !matched {
            return false;
        }
        // SAFETY: the haystack is valid UTF-8, and spans fall on char boundaries: the regex runs
        // in UTF-8 mode, and the fast matcher only sees ASCII.
        let capture = |g: usize| {
            spans
                .get(g)
                .copied()
                .flatten()
                .map(|(s, e)| unsafe { hay.slice_unchecked(s..e) })
        };

        let mut ok = true;
        if let Some((g, layout)) = &c.timestamp {
            match capture(*g).and_then(|t| parse_time(&t, layout)) {
                Some(nanos) => rec.time_unix_nano = nanos,
                None => ok = false,
            }
        }
        if let Some((g, matchers)) = &c.severity
            && let Some(sev) = capture(*g).and_then(|v| map_severity(v.as_bytes(), matchers))
        {
            rec.severity_number = sev as u8;
            rec.severity_text = Str::from_static(sev.text());
        }

        match c.target {
            Target::Attributes if rec.attributes.is_empty() => {
                let attrs = &mut rec.attributes;
                attrs.reserve_exact(c.fields.len());
                // Written straight into the reserved slots: `push` keeps each pair in a stack
                // temporary for its grow path, and copying it on stalls on store forwarding.
                let slots = &mut attrs.spare_capacity_mut()[..c.fields.len()];
                let mut n = 0;
                for (g, name) in &c.fields {
                    // An optional group that did not take part leaves no attribute.
                    if let Some(v) = capture(*g) {
                        slots[n].write((name.clone(), Value::Str(v)));
                        n += 1;
                    }
                }
                // SAFETY: the first `n` spare slots were initialised just above.
                unsafe { attrs.set_len(n) };
            }
            Target::Attributes => {
                for (g, name) in &c.fields {
                    if let Some(v) = capture(*g) {
                        upsert(&mut rec.attributes, name.clone(), Value::Str(v));
                    }
                }
            }
            Target::Body => {
                let mut map = Vec::with_capacity(c.fields.len());
                for (g, name) in &c.fields {
                    if let Some(v) = capture(*g) {
                        map.push((name.clone(), Value::Str(v)));
                    }
                }
                rec.body = Value::Map(map);
            }
        }
        ok
    }
}

fn upsert(attrs: &mut Vec<KeyValue>, key: Str, value: Value) {
    match attrs.iter_mut().find(|(k, _)| *k == key) {
        Some(slot) => slot.1 = value,
        None => attrs.push((key, value)),
    }
}

fn map_severity(v: &[u8], matchers: &[(Matcher, Severity)]) -> Option<Severity> {
    if matchers.is_empty() {
        return Severity::parse(std::str::from_utf8(v).ok()?);
    }
    matchers.iter().find_map(|(m, sev)| {
        let hit = match m {
            Matcher::Exact(e) => e.eq_ignore_ascii_case(v),
            Matcher::StatusClass(c) => {
                v.len() == 3 && v[0] == *c && v[1..].iter().all(u8::is_ascii_digit)
            }
        };
        hit.then_some(*sev)
    })
}

fn parse_time(text: &str, layout: &Layout) -> Option<u64> {
    let dt = match layout {
        Layout::Rfc3339 => chrono::DateTime::parse_from_rfc3339(text).ok()?.to_utc(),
        Layout::Strftime {
            layout,
            has_offset: true,
        } => chrono::DateTime::parse_from_str(text, layout)
            .ok()?
            .to_utc(),
        Layout::Strftime {
            layout,
            has_offset: false,
        } => chrono::NaiveDateTime::parse_from_str(text, layout)
            .ok()?
            .and_utc(),
    };
    u64::try_from(dt.timestamp_nanos_opt()?).ok()
}

impl Processor for RegexParser {
    fn process(&mut self, batch: &mut LogBatch) {
        let mut failed = 0u64;
        let drop_failed = self.compiled.on_error == OnError::Drop;
        batch.records.retain_mut(|rec| {
            let ok = self.parse(rec);
            failed += u64::from(!ok);
            ok || !drop_failed
        });
        if drop_failed {
            self.metrics.dropped.add(failed);
        }
        self.metrics.errors.add(failed);
    }

    fn fork(&self) -> Box<dyn Processor> {
        Box::new(RegexParser::new(
            Arc::clone(&self.compiled),
            self.metrics.clone(),
        ))
    }
}

/// Builds a parser outside a pipeline, for benches and tests.
pub fn standalone(cfg: &Config) -> Result<Box<dyn Processor>, Vec<ConfigError>> {
    let compiled = compile("processors.regex_parser", cfg)?;
    let registry = crate::telemetry::Registry::default();
    Ok(Box::new(RegexParser::new(
        Arc::new(compiled),
        ProcessorMetrics::new(&registry, "regex_parser", "logs"),
    )))
}

#[cfg(test)]
mod tests;
