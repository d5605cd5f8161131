//! Newline-delimited JSON for log records, written through a raw cursor.
//!
//! Every record first gets an upper bound on its encoded size (six bytes per input byte covers
//! the worst escape, `\u00XX`), one `reserve`, and then all writes go through a pointer held in
//! a register. Appending through `&mut Vec<u8>` instead stores and reloads the length on every
//! push, a chain of dependent memory round trips that cost more than the copying itself.

use super::rfc3339;
use crate::model::{Attrs, KeyValue, LogBatch, LogRecord, Value};
use crate::simd::Chunk;

/// Bytes that need escaping inside a JSON string: controls, `"` and `\`.
static ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Marks (0x80 in a byte's slot) the bytes of `v` that need escaping. Every such byte is
/// marked; borrows can also mark bytes *after* a real hit, never before it, so the lowest mark
/// is always exact.
#[inline(always)]
fn escape_marks(v: u64) -> u64 {
    let has_zero = |x: u64| x.wrapping_sub(LO) & !x & HI;
    let control = v.wrapping_sub(LO * 0x20) & !v & HI;
    control | has_zero(v ^ (LO * b'"' as u64)) | has_zero(v ^ (LO * b'\\' as u64))
}

/// One bit per byte of `chunk` that needs escaping: `"`, `\` and controls.
#[inline(always)]
fn escape_chunk(chunk: Chunk) -> u32 {
    chunk
        .eq(b'"')
        .or(chunk.eq(b'\\'))
        .or(chunk.at_most(0x1f))
        .bits()
}

#[inline(always)]
fn load(s: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&s[i..i + 8]);
    u64::from_le_bytes(w)
}

/// Loads fewer than eight bytes as a word padded with `a` (which needs no escaping), from at
/// most three overlapping reads: a byte-wise copy to the stack followed by a word load would
/// stall on store forwarding.
#[inline(always)]
fn load_short(s: &[u8]) -> u64 {
    let n = s.len();
    debug_assert!(n < 8);
    let v = if n >= 4 {
        let lo = u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as u64;
        let hi = u32::from_le_bytes([s[n - 4], s[n - 3], s[n - 2], s[n - 1]]) as u64;
        lo | hi << (8 * (n - 4))
    } else if n > 0 {
        s[0] as u64 | (s[n / 2] as u64) << (8 * (n / 2)) | (s[n - 1] as u64) << (8 * (n - 1))
    } else {
        0
    };
    let data = if n == 0 { 0 } else { u64::MAX >> (64 - 8 * n) };
    v | (LO * b'a' as u64) & !data
}

/// Whether any byte of `s` needs escaping, eight bytes at a time (SWAR).
#[cfg(test)]
fn needs_escape(s: &[u8]) -> bool {
    let mut i = 0;
    while i + 8 <= s.len() {
        if escape_marks(load(s, i)) != 0 {
            return true;
        }
        i += 8;
    }
    s[i..].iter().any(|&b| ESCAPE[b as usize])
}

/// The write position in a buffer that has room reserved. Every method is `unsafe` with one
/// contract: the caller has reserved enough room for what it writes (the `*_bound` functions
/// compute it).
struct Cursor(*mut u8);

impl Cursor {
    #[inline(always)]
    unsafe fn byte(&mut self, b: u8) {
        unsafe {
            *self.0 = b;
            self.0 = self.0.add(1);
        }
    }

    /// A fixed-size piece: compiles to a few immediate stores.
    #[inline(always)]
    unsafe fn lit<const N: usize>(&mut self, s: &[u8; N]) {
        unsafe {
            self.0.cast::<[u8; N]>().write_unaligned(*s);
            self.0 = self.0.add(N);
        }
    }

    /// Log fields are mostly a few bytes long, where a `memcpy` call and its size dispatch cost
    /// more than the copy: under 32 bytes, two overlapping fixed-size moves do it inline.
    #[inline(always)]
    unsafe fn bytes(&mut self, s: &[u8]) {
        let n = s.len();
        let src = s.as_ptr();
        let dst = self.0;
        // SAFETY: reads stay inside `s`; writes inside the `n` reserved bytes at `dst`.
        unsafe {
            if n >= 32 {
                std::ptr::copy_nonoverlapping(src, dst, n);
            } else if n >= 16 {
                let a = src.cast::<[u8; 16]>().read_unaligned();
                let b = src.add(n - 16).cast::<[u8; 16]>().read_unaligned();
                dst.cast::<[u8; 16]>().write_unaligned(a);
                dst.add(n - 16).cast::<[u8; 16]>().write_unaligned(b);
            } else if n >= 8 {
                let a = src.cast::<u64>().read_unaligned();
                let b = src.add(n - 8).cast::<u64>().read_unaligned();
                dst.cast::<u64>().write_unaligned(a);
                dst.add(n - 8).cast::<u64>().write_unaligned(b);
            } else if n >= 4 {
                let a = src.cast::<u32>().read_unaligned();
                let b = src.add(n - 4).cast::<u32>().read_unaligned();
                dst.cast::<u32>().write_unaligned(a);
                dst.add(n - 4).cast::<u32>().write_unaligned(b);
            } else if n > 0 {
                *dst = *src;
                *dst.add(n / 2) = *src.add(n / 2);
                *dst.add(n - 1) = *src.add(n - 1);
            }
            self.0 = dst.add(n);
        }
    }
}

/// Runs `write` on a cursor over `bound` reserved bytes at the end of `out`, then extends
/// `out` by what it wrote.
///
/// # Safety
/// `write` must not write more than `bound` bytes.
#[inline(always)]
unsafe fn write_with(out: &mut Vec<u8>, bound: usize, write: impl FnOnce(&mut Cursor)) {
    out.reserve(bound);
    // SAFETY: `reserve` made `bound` bytes of room after `len`; the caller promises `write`
    // stays inside them, and every byte it reports as written was written.
    unsafe {
        let base = out.as_mut_ptr().add(out.len());
        let mut c = Cursor(base);
        write(&mut c);
        let written = c.0.offset_from(base) as usize;
        debug_assert!(
            written <= bound,
            "wrote {written} bytes with {bound} reserved"
        );
        out.set_len(out.len() + written);
    }
}

#[inline(always)]
fn str_bound(s: &[u8]) -> usize {
    6 * s.len() + 2
}

#[inline(always)]
fn value_bound(v: &Value) -> usize {
    match v {
        Value::Str(s) => str_bound(s.as_bytes()),
        other => other_bound(other),
    }
}

#[inline(never)]
fn other_bound(v: &Value) -> usize {
    match v {
        Value::Str(s) => str_bound(s.as_bytes()),
        Value::Empty | Value::Bool(_) => 5,
        Value::Int(_) => 20,
        // ryu's longest f64 is 24 bytes.
        Value::Double(_) => 24,
        Value::Bytes(b) => 2 * b.len() + 2,
        Value::Array(items) => 2 + items.iter().map(|v| value_bound(v) + 1).sum::<usize>(),
        Value::Map(kvs) => map_bound(kvs),
    }
}

#[inline(always)]
fn map_bound<'a>(kvs: impl IntoIterator<Item = &'a KeyValue>) -> usize {
    2 + kvs
        .into_iter()
        .map(|(k, v)| str_bound(k.as_bytes()) + 2 + value_bound(v))
        .sum::<usize>()
}

#[cold]
unsafe fn escape_control(at: *mut u8, b: u8) -> *mut u8 {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let c = &mut Cursor(at);
    unsafe {
        c.lit(b"\\u00");
        c.byte(HEX[(b >> 4) as usize]);
        c.byte(HEX[(b & 0xf) as usize]);
    }
    c.0
}

#[inline(always)]
unsafe fn escape(c: &mut Cursor, b: u8) {
    unsafe {
        match b {
            b'"' => c.lit(b"\\\""),
            b'\\' => c.lit(b"\\\\"),
            b'\n' => c.lit(b"\\n"),
            b'\r' => c.lit(b"\\r"),
            b'\t' => c.lit(b"\\t"),
            _ => c.0 = escape_control(c.0, b),
        }
    }
}

/// A JSON string literal, 16 bytes at a time, then a word of eight, then the tail. Each chunk
/// or word is stored before it is checked: a clean one (the common case) is then already in
/// place, and for one with an escape the bytes before it are. Room: [`str_bound`], which covers
/// the stored chunk's overhang too, as at least as many input bytes as are stored are still to
/// come whenever a chunk is stored, and each needs at least one byte of room.
#[inline(always)]
unsafe fn str(c: &mut Cursor, s: &[u8]) {
    unsafe {
        c.byte(b'"');
        let n = s.len();
        let mut i = 0;
        while i + Chunk::LEN <= n {
            let chunk = Chunk::at(s, i);
            c.0.cast::<[u8; 16]>()
                .write_unaligned(*<&[u8; 16]>::try_from(&s[i..i + 16]).expect("16 bytes"));
            let marks = escape_chunk(chunk);
            if marks == 0 {
                c.0 = c.0.add(Chunk::LEN);
                i += Chunk::LEN;
                continue;
            }
            let k = marks.trailing_zeros() as usize;
            c.0 = c.0.add(k);
            escape(c, s[i + k]);
            i += k + 1;
        }
        while i + 8 <= n {
            let w = load(s, i);
            c.0.cast::<u64>().write_unaligned(w);
            let marks = escape_marks(w);
            if marks == 0 {
                c.0 = c.0.add(8);
                i += 8;
                continue;
            }
            let k = (marks.trailing_zeros() / 8) as usize;
            c.0 = c.0.add(k);
            escape(c, s[i + k]);
            i += k + 1;
        }
        let tail = &s[i..];
        if !tail.is_empty() {
            let marks = if n >= 8 {
                // The last eight bytes overlap ones already written; drop their marks.
                escape_marks(load(s, n - 8)) >> (8 * (8 - tail.len()))
            } else {
                escape_marks(load_short(s))
            };
            if marks == 0 {
                c.bytes(tail);
            } else {
                for &b in tail {
                    if ESCAPE[b as usize] {
                        escape(c, b);
                    } else {
                        c.byte(b);
                    }
                }
            }
        }
        c.byte(b'"');
    }
}

/// Strings, the common case, inline; everything else out of line.
#[inline(always)]
unsafe fn value(c: &mut Cursor, v: &Value) {
    unsafe {
        match v {
            Value::Str(s) => str(c, s.as_bytes()),
            // The position goes out and back by value: lending `&mut Cursor` to a call that
            // is not inlined would pin the cursor in memory for the whole record.
            other => c.0 = value_other(c.0, other),
        }
    }
}

#[inline(never)]
unsafe fn value_other(at: *mut u8, v: &Value) -> *mut u8 {
    let c = &mut Cursor(at);
    unsafe {
        match v {
            Value::Str(s) => str(c, s.as_bytes()),
            Value::Empty => c.lit(b"null"),
            Value::Bool(true) => c.lit(b"true"),
            Value::Bool(false) => c.lit(b"false"),
            Value::Int(i) => c.bytes(itoa::Buffer::new().format(*i).as_bytes()),
            Value::Double(d) if d.is_finite() => {
                c.bytes(ryu::Buffer::new().format_finite(*d).as_bytes())
            }
            // JSON has no NaN or infinity; null is what serde_json writes too.
            Value::Double(_) => c.lit(b"null"),
            Value::Bytes(b) => {
                c.byte(b'"');
                hex(c, b);
                c.byte(b'"');
            }
            Value::Array(items) => {
                c.byte(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        c.byte(b',');
                    }
                    value(c, item);
                }
                c.byte(b']');
            }
            Value::Map(kvs) => map(c, kvs),
        }
    }
    c.0
}

#[inline(always)]
unsafe fn map<'a>(c: &mut Cursor, kvs: impl IntoIterator<Item = &'a KeyValue>) {
    unsafe {
        c.byte(b'{');
        for (i, (k, v)) in kvs.into_iter().enumerate() {
            if i > 0 {
                c.byte(b',');
            }
            match k.static_json_safe() {
                Some(key) => {
                    c.byte(b'"');
                    c.bytes(key.as_bytes());
                    c.lit(b"\":");
                }
                None => {
                    str(c, k.as_bytes());
                    c.byte(b':');
                }
            }
            value(c, v);
        }
        c.byte(b'}');
    }
}

#[inline(always)]
unsafe fn hex(c: &mut Cursor, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        unsafe {
            c.byte(HEX[(b >> 4) as usize]);
            c.byte(HEX[(b & 0xf) as usize]);
        }
    }
}

/// Appends `s` as a JSON string literal.
pub fn write_json_str(out: &mut Vec<u8>, s: &[u8]) {
    // SAFETY: `str` writes at most `str_bound` bytes.
    unsafe { write_with(out, str_bound(s), |c| str(c, s)) }
}

/// Appends an `AnyValue` as JSON. Byte values become lowercase hex strings.
pub fn write_json_value(out: &mut Vec<u8>, v: &Value) {
    // SAFETY: `value` writes at most `value_bound` bytes.
    unsafe { write_with(out, value_bound(v), |c| value(c, v)) }
}

/// Appends attributes as a JSON object.
pub fn write_json_map<'a, I>(out: &mut Vec<u8>, kvs: I)
where
    I: IntoIterator<Item = &'a KeyValue> + Copy,
{
    // SAFETY: `map` writes at most `map_bound` bytes.
    unsafe { write_with(out, map_bound(kvs), |c| map(c, kvs)) }
}

/// A timestamp's quoted text, kept because the records of one request share one observed time.
#[derive(Default)]
struct CachedTime {
    nanos: u64,
    text: [u8; 32],
}

impl CachedTime {
    fn get(&mut self, nanos: u64) -> &[u8; 32] {
        if nanos != self.nanos || self.text[0] != b'"' {
            self.text[0] = b'"';
            self.text[1..31].copy_from_slice(&rfc3339(nanos));
            self.text[31] = b'"';
            self.nanos = nanos;
        }
        &self.text
    }
}

/// Encodes records as newline-delimited JSON objects.
#[derive(Default)]
pub struct JsonEncoder {
    time: CachedTime,
    observed: CachedTime,
}

static NO_ATTRS: Attrs = Attrs::EMPTY;

/// Room for everything in a record but its strings and maps: field names, times, ids.
const RECORD_FIXED: usize = 320;

impl JsonEncoder {
    pub fn encode_batch(&mut self, batch: &LogBatch, out: &mut Vec<u8>) {
        for record in &batch.records {
            let resource = batch
                .origins
                .get(record.origin as usize)
                .map_or(&NO_ATTRS, |o| &o.resource);
            self.encode(record, resource, out);
        }
    }

    pub fn encode(&mut self, r: &LogRecord, resource: &Attrs, out: &mut Vec<u8>) {
        let bound = RECORD_FIXED
            + str_bound(r.severity_text.as_bytes())
            + value_bound(&r.body)
            + map_bound(&r.attributes)
            + if resource.is_empty() {
                0
            } else {
                map_bound(resource)
            };
        let time = (r.time_unix_nano != 0).then(|| *self.time.get(r.time_unix_nano));
        let observed =
            (r.observed_time_unix_nano != 0).then(|| *self.observed.get(r.observed_time_unix_nano));
        // SAFETY: the fixed parts (names, two 32-byte times, a 3-digit severity, 48 hex digits)
        // fit in RECORD_FIXED; strings and maps in their bounds.
        unsafe {
            write_with(out, bound, |c| {
                c.byte(b'{');
                if let Some(t) = &time {
                    c.lit(b"\"timestamp\":");
                    c.lit(t);
                    c.byte(b',');
                }
                if let Some(t) = &observed {
                    c.lit(b"\"observed_timestamp\":");
                    c.lit(t);
                    c.byte(b',');
                }
                if !r.severity_text.is_empty() {
                    c.lit(b"\"severity_text\":");
                    str(c, r.severity_text.as_bytes());
                    c.byte(b',');
                }
                if r.severity_number != 0 {
                    c.lit(b"\"severity_number\":");
                    c.bytes(itoa::Buffer::new().format(r.severity_number).as_bytes());
                    c.byte(b',');
                }
                c.lit(b"\"body\":");
                value(c, &r.body);
                c.lit(b",\"attributes\":");
                map(c, &r.attributes);
                if !resource.is_empty() {
                    c.lit(b",\"resource\":");
                    map(c, resource);
                }
                if r.trace_id != [0; 16] {
                    c.lit(b",\"trace_id\":\"");
                    hex(c, &r.trace_id);
                    c.byte(b'"');
                }
                if r.span_id != [0; 8] {
                    c.lit(b",\"span_id\":\"");
                    hex(c, &r.span_id);
                    c.byte(b'"');
                }
                c.lit(b"}\n");
            })
        }
    }
}

#[cfg(test)]
mod tests;
