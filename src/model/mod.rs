//! The in-memory log data model, shaped after OTLP's `LogRecord` so that later OTLP receivers and
//! exporters can map to it field for field.
//!
//! Text is held as [`Str`], a UTF-8 view into the bytes a receiver was handed: a line of a request
//! body, or a regex capture within that line, shares the request's buffer instead of copying it.
//! Records are flat in a [`LogBatch`]; each names the [`Origin`] (OTLP resource + scope) it came
//! from by index, so processors loop over one `Vec` and exporters can still regroup by origin.

mod str;

use std::fmt;

use bytes::Bytes;

pub use str::Str;

/// An OTLP `AnyValue`.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Value {
    #[default]
    Empty,
    Str(Str),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(Bytes),
    Array(Vec<Value>),
    Map(Vec<KeyValue>),
}

impl Value {
    pub fn as_str(&self) -> Option<&Str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// One attribute. A `Vec` of these (not a map) keeps insertion order, costs one allocation per
/// record and is faster to scan than a hash for the handful of attributes a log carries.
pub type KeyValue = (Str, Value);

/// Attributes held by many origins at once: a resource's, shared by every ScopeLogs under it,
/// and a scope's, shared by the origins `log_transform` derives from it.
///
/// Copying them per ScopeLogs made memory grow with scopes times attributes, which a 48 KB
/// request could push past 5 GB. The shared part is behind one `Arc`; a processor that adds
/// attributes (moving `service.name` from a body into the resource) puts them in `added`, so
/// each derived origin costs its additions, not a copy of everything.
#[derive(Clone, Default)]
pub struct Attrs {
    shared: Option<std::sync::Arc<Vec<KeyValue>>>,
    added: Vec<KeyValue>,
}

impl Attrs {
    /// No attributes, in a `static` where a default is needed by reference.
    pub const EMPTY: Attrs = Attrs {
        shared: None,
        added: Vec::new(),
    };

    pub fn new(attrs: Vec<KeyValue>) -> Attrs {
        Attrs {
            shared: (!attrs.is_empty()).then(|| std::sync::Arc::new(attrs)),
            added: Vec::new(),
        }
    }

    /// The shared attributes first, then the added ones, in insertion order.
    pub fn iter(&self) -> AttrsIter<'_> {
        let shared: &[KeyValue] = self.shared.as_deref().map_or(&[], Vec::as_slice);
        shared.iter().chain(self.added.iter())
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.iter().find(|(k, _)| k.as_str() == key).map(|(_, v)| v)
    }

    pub fn len(&self) -> usize {
        self.shared.as_ref().map_or(0, |s| s.len()) + self.added.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// These attributes plus `more`, sharing the present ones.
    pub fn with_added(&self, more: impl IntoIterator<Item = KeyValue>) -> Attrs {
        let mut added = self.added.clone();
        added.extend(more);
        Attrs {
            shared: self.shared.clone(),
            added,
        }
    }
}

pub type AttrsIter<'a> =
    std::iter::Chain<std::slice::Iter<'a, KeyValue>, std::slice::Iter<'a, KeyValue>>;

impl<'a> IntoIterator for &'a Attrs {
    type Item = &'a KeyValue;
    type IntoIter = AttrsIter<'a>;
    fn into_iter(self) -> AttrsIter<'a> {
        self.iter()
    }
}

impl From<Vec<KeyValue>> for Attrs {
    fn from(attrs: Vec<KeyValue>) -> Attrs {
        Attrs::new(attrs)
    }
}

impl PartialEq for Attrs {
    fn eq(&self, other: &Attrs) -> bool {
        let same_shared = match (&self.shared, &other.shared) {
            (Some(a), Some(b)) => std::sync::Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        if same_shared {
            self.added == other.added
        } else {
            self.len() == other.len() && self.iter().eq(other.iter())
        }
    }
}

impl fmt::Debug for Attrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Pushes what `make` builds, with room made first, so that the push itself has no grow path.
/// With one, the value is kept in a stack temporary across it and copied on after, reading
/// with wide loads what narrow stores had just written: a store-forwarding stall per record
/// or attribute pushed. Built once room is known, it is stored where it lands.
#[inline(always)]
pub fn push_in_place<T>(v: &mut Vec<T>, make: impl FnOnce() -> T) {
    v.reserve(1);
    // Always true after `reserve`; said again so the compiler drops the grow path.
    if v.len() < v.capacity() {
        v.push(make());
    }
}

/// Pushes `(key, Value::Str(value))`, both cloned, with room for exactly it. Each clone is
/// copied from its original over a default already in the slot: built as a tuple and pushed,
/// the clones went through stack temporaries in pieces and were read back whole, a
/// store-forwarding stall per attribute.
#[inline(always)]
pub fn push_cloned_text(attrs: &mut Vec<KeyValue>, key: &Str, value: &Str) {
    attrs.reserve_exact(1);
    push_in_place(attrs, || (Str::default(), Value::Str(Str::default())));
    if let Some((k, Value::Str(v))) = attrs.last_mut() {
        k.clone_from(key);
        v.clone_from(value);
    }
}

/// Finds an attribute by key.
pub fn get_attr<'a>(attrs: impl IntoIterator<Item = &'a KeyValue>, key: &str) -> Option<&'a Value> {
    attrs
        .into_iter()
        .find(|(k, _)| k.as_str() == key)
        .map(|(_, v)| v)
}

/// OTLP severity numbers: the first number of each range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
#[repr(u8)]
pub enum Severity {
    #[default]
    Unspecified = 0,
    Trace = 1,
    Debug = 5,
    Info = 9,
    Warn = 13,
    Error = 17,
    Fatal = 21,
}

impl Severity {
    pub fn text(self) -> &'static str {
        match self {
            Severity::Unspecified => "",
            Severity::Trace => "TRACE",
            Severity::Debug => "DEBUG",
            Severity::Info => "INFO",
            Severity::Warn => "WARN",
            Severity::Error => "ERROR",
            Severity::Fatal => "FATAL",
        }
    }

    /// The range an OTLP severity number falls in (`10`, INFO2, is Info).
    pub fn of_number(n: u8) -> Option<Severity> {
        Some(match n {
            1..=4 => Severity::Trace,
            5..=8 => Severity::Debug,
            9..=12 => Severity::Info,
            13..=16 => Severity::Warn,
            17..=20 => Severity::Error,
            21..=24 => Severity::Fatal,
            _ => return None,
        })
    }

    /// Parses the level names used in configs and common log formats (syslog's, Go's zap,
    /// Java's), ignoring case.
    pub fn parse(name: &str) -> Option<Severity> {
        const NAMES: [(&str, Severity); 22] = [
            ("trace", Severity::Trace),
            ("trc", Severity::Trace),
            ("debug", Severity::Debug),
            ("dbg", Severity::Debug),
            ("info", Severity::Info),
            ("information", Severity::Info),
            ("informational", Severity::Info),
            ("notice", Severity::Info),
            ("warn", Severity::Warn),
            ("warning", Severity::Warn),
            ("error", Severity::Error),
            ("err", Severity::Error),
            ("eror", Severity::Error),
            ("fatal", Severity::Fatal),
            ("critical", Severity::Fatal),
            ("crit", Severity::Fatal),
            ("alert", Severity::Fatal),
            ("emerg", Severity::Fatal),
            ("emergency", Severity::Fatal),
            ("panic", Severity::Fatal),
            ("dpanic", Severity::Fatal),
            ("severe", Severity::Error),
        ];
        NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, s)| *s)
    }
}

/// The resource and instrumentation scope a group of records came from.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Origin {
    pub resource: Attrs,
    pub resource_schema_url: Str,
    pub resource_dropped_attributes_count: u32,
    pub scope_name: Str,
    pub scope_version: Str,
    pub scope_attributes: Attrs,
    pub scope_dropped_attributes_count: u32,
    pub scope_schema_url: Str,
}

/// One log record, as in OTLP. Zero means "not set" for times and severity.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogRecord {
    /// Index into [`LogBatch::origins`].
    pub origin: u32,
    pub time_unix_nano: u64,
    pub observed_time_unix_nano: u64,
    pub severity_number: u8,
    pub severity_text: Str,
    pub body: Value,
    pub attributes: Vec<KeyValue>,
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub flags: u32,
    pub dropped_attributes_count: u32,
    /// OTLP's `event_name`, for records that are events.
    pub event_name: Str,
}

/// The unit that flows through a pipeline: processors mutate it in place, exporters encode it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogBatch {
    pub origins: Vec<Origin>,
    pub records: Vec<LogRecord>,
}

impl LogBatch {
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Moves every record of `other` to the end of this batch, with its origins.
    pub fn append(&mut self, mut other: LogBatch) {
        if self.records.is_empty() {
            // Keeps the buffers of the first batch a batcher gets instead of copying into new.
            *self = other;
            return;
        }
        let offset = self.origins.len() as u32;
        let start = self.records.len();
        self.origins.append(&mut other.origins);
        // One bulk move, then the origin indices fixed in place.
        self.records.append(&mut other.records);
        if offset > 0 {
            for r in &mut self.records[start..] {
                r.origin += offset;
            }
        }
    }

    /// Splits off and returns the first `n` records (all of them if there are fewer). Each part
    /// keeps only the origins its records name, so a split never sends an empty resource.
    pub fn split_to(&mut self, n: usize) -> LogBatch {
        if n >= self.records.len() {
            return std::mem::take(self);
        }
        let rest = self.records.split_off(n);
        let front = std::mem::replace(&mut self.records, rest);
        let mut head = LogBatch {
            origins: Vec::new(),
            records: front,
        };
        head.origins = keep_named_origins(&self.origins, &mut head.records);
        self.origins = keep_named_origins(&self.origins, &mut self.records);
        head
    }
}

/// The three OTLP signals; a pipeline carries one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    Logs,
    Traces,
    Metrics,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Logs => "logs",
            Signal::Traces => "traces",
            Signal::Metrics => "metrics",
        }
    }

    /// What a batch's length counts: log records, spans, or metric data points (as the
    /// Collector's batch processor counts them).
    pub fn items(self) -> &'static str {
        match self {
            Signal::Logs => "log records",
            Signal::Traces => "spans",
            Signal::Metrics => "data points",
        }
    }
}

/// The origins `records` name, in first-use order, with the records' indices rewritten to match.
fn keep_named_origins(origins: &[Origin], records: &mut [LogRecord]) -> Vec<Origin> {
    let mut map = vec![u32::MAX; origins.len()];
    let mut kept = Vec::new();
    for r in records {
        let Some(slot) = map.get_mut(r.origin as usize) else {
            continue;
        };
        if *slot == u32::MAX {
            *slot = kept.len() as u32;
            kept.push(origins[r.origin as usize].clone());
        }
        r.origin = *slot;
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tagged(origin: &'static str, bodies: &[i64]) -> LogBatch {
        LogBatch {
            origins: vec![Origin {
                scope_name: Str::from_static(origin),
                ..Default::default()
            }],
            records: bodies
                .iter()
                .map(|&b| LogRecord {
                    body: Value::Int(b),
                    ..Default::default()
                })
                .collect(),
        }
    }

    fn flat(batch: &LogBatch) -> Vec<(String, i64)> {
        batch
            .records
            .iter()
            .map(|r| {
                let Value::Int(b) = r.body else { panic!() };
                (batch.origins[r.origin as usize].scope_name.to_string(), b)
            })
            .collect()
    }

    #[test]
    fn appended_records_keep_their_own_origins() {
        let mut a = tagged("a", &[1, 2]);
        a.append(tagged("b", &[3]));
        a.append(tagged("c", &[4, 5]));
        let want: Vec<(String, i64)> = [("a", 1), ("a", 2), ("b", 3), ("c", 4), ("c", 5)]
            .iter()
            .map(|(o, b)| (o.to_string(), *b))
            .collect();
        assert_eq!(flat(&a), want);
    }

    #[test]
    fn split_parts_keep_only_the_origins_they_name() {
        let mut a = tagged("a", &[1, 2]);
        a.append(tagged("b", &[3, 4]));
        a.append(tagged("c", &[5]));
        let head = a.split_to(3);
        assert_eq!(head.origins.len(), 2);
        assert_eq!(a.origins.len(), 2);
        let names = |b: &LogBatch| flat(b).into_iter().map(|(o, _)| o).collect::<Vec<_>>();
        assert_eq!(names(&head), ["a", "a", "b"]);
        assert_eq!(names(&a), ["b", "c"]);
        assert_eq!(a.split_to(10).len(), 2);
        assert!(a.is_empty());
    }

    #[test]
    fn severity_names_parse_case_insensitively() {
        assert_eq!(Severity::parse("WARNING"), Some(Severity::Warn));
        assert_eq!(Severity::parse("Error"), Some(Severity::Error));
        assert_eq!(Severity::parse("loud"), None);
    }
}
