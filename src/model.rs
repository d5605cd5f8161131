//! The in-memory log data model, shaped after OTLP's `LogRecord` so that later OTLP receivers and
//! exporters can map to it field for field.
//!
//! Text is held as [`Str`], a UTF-8 view into the bytes a receiver was handed: a line of a request
//! body, or a regex capture within that line, shares the request's buffer instead of copying it.
//! Records are flat in a [`LogBatch`]; each names the [`Origin`] (OTLP resource + scope) it came
//! from by index, so processors loop over one `Vec` and exporters can still regroup by origin.

use std::fmt;
use std::ops::Deref;

use bytes::Bytes;

/// UTF-8 text that shares the buffer it was received in, or, when short, is held inline.
///
/// Sharing a slice of a `Bytes` costs an atomic increment and decrement; for text of up to
/// [`Str::INLINE`] bytes (most parsed fields: a status, a method, an IP address) copying those
/// few bytes inline is cheaper and allocates nothing. Longer text is never copied.
#[derive(Clone)]
pub struct Str(Repr);

#[derive(Clone)]
enum Repr {
    /// Compile-time and config text (attribute keys): cloned by copying a pointer. The flag
    /// records, once, whether it can be written into JSON without escaping.
    Static(&'static str, bool),
    Shared(Bytes),
    /// Held as words rather than a byte array: built from word loads, the value stays in
    /// registers and is stored once where it lands (a `Vec` slot). A byte array is assembled in
    /// a stack temporary and copied on with wider loads than the stores that filled it, which
    /// stalls on store forwarding for every captured field.
    Inline {
        len: u8,
        words: [u64; Str::INLINE / 8],
    },
}

impl Default for Str {
    fn default() -> Self {
        Str(Repr::Inline {
            len: 0,
            words: [0; Str::INLINE / 8],
        })
    }
}

impl Str {
    /// The longest text kept inline.
    pub const INLINE: usize = 32;

    /// Text known at compile time; cloning it touches no reference count.
    pub const fn from_static(s: &'static str) -> Self {
        let b = s.as_bytes();
        let mut i = 0;
        let mut json_safe = true;
        while i < b.len() {
            if b[i] < 0x20 || b[i] == b'"' || b[i] == b'\\' {
                json_safe = false;
            }
            i += 1;
        }
        Str(Repr::Static(s, json_safe))
    }

    /// Static text that needs no JSON escaping (attribute keys, mostly), so encoders can skip
    /// scanning it for every record.
    pub fn static_json_safe(&self) -> Option<&'static str> {
        match self.0 {
            Repr::Static(s, true) => Some(s),
            _ => None,
        }
    }

    /// Checks `bytes` once; slices taken at char boundaries later need no further check.
    pub fn from_utf8(bytes: Bytes) -> Result<Self, std::str::Utf8Error> {
        std::str::from_utf8(&bytes)?;
        Ok(Str(Repr::Shared(bytes)))
    }

    /// Wraps bytes that the caller has already validated as UTF-8.
    ///
    /// # Safety
    /// `bytes` must be valid UTF-8; [`Str::as_str`] relies on it without checking.
    pub unsafe fn from_utf8_unchecked(bytes: Bytes) -> Self {
        debug_assert!(std::str::from_utf8(&bytes).is_ok());
        Str(Repr::Shared(bytes))
    }

    /// `bytes[range]` after checking it is UTF-8: copied inline when short, else shared.
    pub fn from_utf8_slice(
        bytes: &Bytes,
        range: std::ops::Range<usize>,
    ) -> Result<Self, std::str::Utf8Error> {
        let part = &bytes[range.clone()];
        if part.len() <= Str::INLINE {
            let words = inline_words(bytes, range.start, part.len());
            // ASCII (most keys and values) is valid UTF-8: checked on the words already loaded,
            // without a call.
            if !ascii_prefix(&words, part.len()) {
                std::str::from_utf8(part)?;
            }
            return Ok(Str(Repr::Inline {
                len: part.len() as u8,
                words,
            }));
        }
        std::str::from_utf8(part)?;
        Ok(Str(Repr::Shared(bytes.slice(range))))
    }

    /// Decodes `bytes` as UTF-8, replacing invalid sequences with U+FFFD. Copies only when the
    /// input is invalid, which keeps the common case zero-copy.
    pub fn from_utf8_lossy(bytes: Bytes) -> Self {
        match std::str::from_utf8(&bytes) {
            Ok(_) => Str(Repr::Shared(bytes)),
            Err(_) => Str(Repr::Shared(Bytes::from(
                String::from_utf8_lossy(&bytes).into_owned(),
            ))),
        }
    }

    pub fn as_str(&self) -> &str {
        // SAFETY: every constructor either validates or documents the UTF-8 requirement, and
        // inline copies are taken from valid text at char boundaries.
        unsafe { std::str::from_utf8_unchecked(self.as_bytes()) }
    }

    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Static(s, _) => s.as_bytes(),
            Repr::Shared(b) => b,
            // SAFETY: the words are plain bytes in memory; `len` is at most INLINE.
            Repr::Inline { len, words } => unsafe {
                std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), *len as usize)
            },
        }
    }

    /// Whether this text is a view into a shared buffer (as opposed to held inline).
    pub fn is_shared(&self) -> bool {
        matches!(self.0, Repr::Shared(_) | Repr::Static(..))
    }

    /// A sub-slice: short ones are copied inline, longer ones share the same buffer.
    ///
    /// # Safety
    /// `range` must fall on char boundaries.
    #[inline(always)]
    pub unsafe fn slice_unchecked(&self, range: std::ops::Range<usize>) -> Str {
        debug_assert!(self.as_str().is_char_boundary(range.start));
        debug_assert!(self.as_str().is_char_boundary(range.end));
        let bytes = self.as_bytes();
        let part = &bytes[range.clone()];
        if part.len() <= Str::INLINE {
            return Str(Repr::Inline {
                len: part.len() as u8,
                words: inline_words(bytes, range.start, part.len()),
            });
        }
        match &self.0 {
            Repr::Shared(b) => Str(Repr::Shared(b.slice(range))),
            Repr::Static(s, _) => Str::from_static(&s[range]),
            // Unreachable: inline text is never longer than INLINE.
            Repr::Inline { .. } => Str(Repr::Shared(Bytes::copy_from_slice(part))),
        }
    }
}

/// Whether the first `len` bytes held in `words` are all ASCII.
#[inline(always)]
fn ascii_prefix(words: &[u64; Str::INLINE / 8], len: usize) -> bool {
    let mut high = 0u64;
    for (i, w) in words.iter().enumerate() {
        let bytes = len.saturating_sub(8 * i).min(8);
        let mask = if bytes == 8 {
            u64::MAX
        } else {
            (1u64 << (8 * bytes)) - 1
        };
        // Native order: on big-endian the first byte is the top one.
        let mask = if cfg!(target_endian = "big") {
            mask.swap_bytes()
        } else {
            mask
        };
        high |= w & mask;
    }
    high & 0x8080_8080_8080_8080 == 0
}

/// `len` (at most [`Str::INLINE`]) bytes of `bytes` from `start` as words, padded with zeros
/// or with the bytes that follow them (never read). Four word loads when the buffer reaches
/// that far, the common case for all but the last fields of a line.
#[inline(always)]
fn inline_words(bytes: &[u8], start: usize, len: usize) -> [u64; Str::INLINE / 8] {
    match bytes.get(start..start + Str::INLINE) {
        Some(window) => {
            let p = window.as_ptr();
            // SAFETY: `window` has INLINE = 4 * 8 readable bytes.
            unsafe {
                [
                    p.cast::<u64>().read_unaligned(),
                    p.add(8).cast::<u64>().read_unaligned(),
                    p.add(16).cast::<u64>().read_unaligned(),
                    p.add(24).cast::<u64>().read_unaligned(),
                ]
            }
        }
        None => {
            let mut buf = [0u8; Str::INLINE];
            buf[..len].copy_from_slice(&bytes[start..start + len]);
            let word = |i: usize| {
                let mut w = [0u8; 8];
                w.copy_from_slice(&buf[i * 8..i * 8 + 8]);
                u64::from_ne_bytes(w)
            };
            [word(0), word(1), word(2), word(3)]
        }
    }
}

impl PartialEq for Str {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Str {}

impl std::hash::Hash for Str {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state)
    }
}

impl PartialOrd for Str {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Str {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl Deref for Str {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl From<String> for Str {
    fn from(s: String) -> Self {
        Str(Repr::Shared(Bytes::from(s)))
    }
}

impl From<&'static str> for Str {
    fn from(s: &'static str) -> Self {
        Str::from_static(s)
    }
}

impl fmt::Debug for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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

/// What flows through a pipeline: logs as the data model (processors work on them), traces
/// and metrics as validated OTLP bytes (the gateway only forwards them).
#[derive(Clone, Debug, PartialEq)]
pub enum Batch {
    Logs(LogBatch),
    Raw(crate::otlp::raw::RawBatch),
}

impl Default for Batch {
    fn default() -> Self {
        Batch::Logs(LogBatch::default())
    }
}

impl Batch {
    /// An empty batch of `signal`.
    pub fn empty(signal: Signal) -> Batch {
        match signal {
            Signal::Logs => Batch::Logs(LogBatch::default()),
            s => Batch::Raw(crate::otlp::raw::RawBatch::new(s)),
        }
    }

    pub fn signal(&self) -> Signal {
        match self {
            Batch::Logs(_) => Signal::Logs,
            Batch::Raw(r) => r.signal,
        }
    }

    /// Log records, spans or data points.
    pub fn len(&self) -> usize {
        match self {
            Batch::Logs(b) => b.len(),
            Batch::Raw(r) => r.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        match self {
            Batch::Logs(b) => b.is_empty(),
            Batch::Raw(r) => r.is_empty(),
        }
    }

    /// Appends `other`; a batch of another signal is handed back untouched. Decoded and
    /// encoded logs (two receivers feeding one pipeline that forwards logs encoded) meet as
    /// encoded: the decoded ones are encoded once, as the exporter would have.
    pub fn append(&mut self, other: Batch) -> Result<(), Batch> {
        use crate::otlp::raw::RawBatch;
        match (&mut *self, other) {
            (Batch::Logs(a), Batch::Logs(b)) => a.append(b),
            (Batch::Raw(a), Batch::Raw(b)) if a.signal == b.signal => a.append(b),
            (Batch::Raw(a), Batch::Logs(b)) if a.signal == Signal::Logs => {
                a.append(RawBatch::from_logs(&b))
            }
            (Batch::Logs(a), Batch::Raw(b)) if b.signal == Signal::Logs => {
                let mut raw = RawBatch::from_logs(a);
                raw.append(b);
                *self = Batch::Raw(raw);
            }
            (_, other) => return Err(other),
        }
        Ok(())
    }

    /// Splits off the first `n` items; traces and metrics are cut between resources only.
    pub fn split_to(&mut self, n: usize) -> Batch {
        match self {
            Batch::Logs(b) => Batch::Logs(b.split_to(n)),
            Batch::Raw(r) => Batch::Raw(r.split_to(n)),
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

    #[test]
    fn lossy_decoding_copies_only_invalid_input() {
        let valid = Bytes::from_static(b"plain");
        let s = Str::from_utf8_lossy(valid.clone());
        assert_eq!(s.as_bytes().as_ptr(), valid.as_ptr());
        assert!(s.is_shared());
        let s = Str::from_utf8_lossy(Bytes::from_static(b"bad \xff byte"));
        assert_eq!(s.as_str(), "bad \u{fffd} byte");
    }

    #[test]
    fn short_slices_are_inline_and_long_ones_share_the_buffer() {
        let text = Str::from_utf8(Bytes::from("x".repeat(100))).unwrap();
        let short = unsafe { text.slice_unchecked(0..Str::INLINE) };
        let long = unsafe { text.slice_unchecked(10..10 + Str::INLINE + 1) };
        assert!(!short.is_shared());
        assert_eq!(short.as_str(), "x".repeat(Str::INLINE));
        assert!(long.is_shared());
        assert_eq!(long.as_bytes().as_ptr(), text.as_bytes()[10..].as_ptr());
        assert_eq!(short, Str::from("x".repeat(Str::INLINE)));
    }

    #[test]
    fn inline_slices_copy_exactly_their_bytes_at_every_length_and_offset() {
        for total in 0..48 {
            let text: String = (0..total)
                .map(|i| (b'a' + (i % 26) as u8) as char)
                .collect();
            let s = Str::from(text.clone());
            for start in 0..=total {
                for end in start..=total.min(start + Str::INLINE) {
                    let part = unsafe { s.slice_unchecked(start..end) };
                    assert_eq!(
                        part.as_str(),
                        &text[start..end],
                        "{start}..{end} of {total}"
                    );
                }
            }
        }
    }

    #[test]
    fn utf8_slices_are_checked_only_within_their_range() {
        let bytes =
            Bytes::from_static(b"ab\xff\xffcd\xc3\xa9xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
        assert_eq!(Str::from_utf8_slice(&bytes, 0..2).unwrap().as_str(), "ab");
        assert!(Str::from_utf8_slice(&bytes, 0..3).is_err());
        assert_eq!(
            Str::from_utf8_slice(&bytes, 4..8).unwrap().as_str(),
            "cd\u{e9}"
        );
        assert!(
            Str::from_utf8_slice(&bytes, 4..7).is_err(),
            "a cut character"
        );
        assert_eq!(Str::from_utf8_slice(&bytes, 8..46).unwrap().len(), 38);
        for end in 0..=bytes.len() {
            let want = std::str::from_utf8(&bytes[8.min(end)..end]).is_ok();
            assert_eq!(Str::from_utf8_slice(&bytes, 8.min(end)..end).is_ok(), want);
        }
    }

    #[test]
    fn static_text_knows_whether_json_needs_escaping() {
        assert_eq!(Str::from_static("host").static_json_safe(), Some("host"));
        assert_eq!(Str::from_static("a\"b").static_json_safe(), None);
        assert_eq!(Str::from("host".to_string()).static_json_safe(), None);
    }

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
