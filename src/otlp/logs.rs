//! `ExportLogsServiceRequest` protobuf to and from [`LogBatch`].
//!
//! Decoding reads the request buffer in place: short strings are copied inline, longer ones and
//! byte values are slices of the buffer, so a request costs no allocation per attribute. Each
//! (resource, scope) pair becomes one [`Origin`]; encoding groups records by origin again.

use bytes::Bytes;

use super::wire::{
    DecodeError, Fields, Wire, len_field_size, put_bytes_field, put_key, put_len, put_varint,
    varint_len, wrong,
};
use crate::model::{KeyValue, LogBatch, LogRecord, Origin, Str, Value, push_in_place};

/// Deeper `AnyValue` nesting is refused rather than recursed into (a stack-overflow guard).
/// Every decoder counts alike: a body or attribute value is at depth 1, and each array or map
/// it holds adds one level, so the same request is accepted or refused whichever path reads it.
pub const MAX_DEPTH: usize = 32;

/// A decoded record costs about 200 bytes (a scope about 250) however little of the wire it
/// took: an empty record is 2 bytes. So that what a request may cost stays a constant times its
/// size, a request may hold at most one record or ScopeLogs per `MIN_BYTES_PER_ITEM` bytes,
/// beyond the first `FREE_ITEMS`. Real records (with a timestamp and a body) are far larger.
pub const MIN_BYTES_PER_ITEM: usize = 8;
pub const FREE_ITEMS: usize = 4096;

/// The most memory decoding may take per byte of a request, the request itself included: what
/// a receiver charges the memory limiter before it decodes. The costliest requests (nothing but
/// empty attributes, map entries, array elements or records, as dense as [`check_density`]
/// allows) come closest; `tests/request_cost.rs` measures them against it.
pub const COST_PER_BYTE: u64 = 48;

/// Key bytes (field number and wire type 2) of repeated fields: `LogRecord.attributes`,
/// `Resource.attributes`, `InstrumentationScope.attributes`, and the elements of `ArrayValue`
/// and `KeyValueList`.
const RECORD_ATTRIBUTE: u8 = 6 << 3 | 2;
const RESOURCE_ATTRIBUTE: u8 = 1 << 3 | 2;
const SCOPE_ATTRIBUTE: u8 = 3 << 3 | 2;
const ELEMENT: u8 = 1 << 3 | 2;

/// An attribute's value as [`Decoder::plain_key_value`] reads it: a scalar, or text still to be
/// made. Two words, so it stays in registers until it is stored.
enum Plain {
    Text,
    Bool(bool),
    Int(i64),
    Double(f64),
}

/// Sizes `attrs`, once, for the run of attributes being read (the field just read, keyed `key`,
/// and the ones right after it) and `spare` more. Pushed one by one they doubled: an empty
/// attribute is 2 bytes on the wire and 88 decoded, so doubling took a request of empty
/// attributes from about 44 times its size to over 80.
fn sized(attrs: &mut Vec<KeyValue>, f: &Fields<'_>, key: u8, spare: usize) {
    if attrs.capacity() == 0 {
        attrs.reserve_exact(1 + f.run_of(key) + spare);
    }
}

/// Refuses `items` records and scopes in a request of `bytes` (see [`MIN_BYTES_PER_ITEM`]).
pub fn check_density(items: usize, bytes: usize) -> Result<(), DecodeError> {
    if items > FREE_ITEMS.max(bytes / MIN_BYTES_PER_ITEM) {
        return Err(DecodeError::TooDense { items, bytes });
    }
    Ok(())
}

/// Decodes a request. Unknown fields are skipped, as protobuf requires.
pub fn decode(buf: &Bytes) -> Result<LogBatch, DecodeError> {
    let d = Decoder::new(buf);
    let mut batch = LogBatch::default();
    let mut f = Fields::new(buf, 0, buf.len());
    while let Some((field, wire)) = f.next_field()? {
        match (field, wire) {
            (1, Wire::Len(s, e)) => d.resource_logs(s, e, &mut batch)?,
            (1, w) => return Err(wrong(field, w, 0)),
            _ => {}
        }
    }
    Ok(batch)
}

struct Decoder<'a> {
    buf: &'a Bytes,
    /// Records and ScopeLogs so far, for [`check_density`].
    items: std::cell::Cell<usize>,
}

impl<'a> Decoder<'a> {
    fn new(buf: &'a Bytes) -> Decoder<'a> {
        Decoder {
            buf,
            items: std::cell::Cell::new(0),
        }
    }

    fn fields(&self, s: usize, e: usize) -> Fields<'_> {
        Fields::new(self.buf, s, e)
    }

    /// Inlined where the string is stored, so that it is built in registers and stored once:
    /// returned through memory, the copy out of the temporary stalled on store forwarding.
    #[inline(always)]
    fn str(&self, what: &'static str, s: usize, e: usize) -> Result<Str, DecodeError> {
        Str::from_utf8_slice(self.buf, s..e).map_err(|err| DecodeError::Utf8 {
            what,
            at: s + err.valid_up_to(),
        })
    }

    /// Stores the text at `s..e` in `dst`, built where it lands: short ASCII apart from the
    /// general case, which merged with it into one `Result` went through a stack temporary.
    #[inline(always)]
    fn set_str(
        &self,
        what: &'static str,
        s: usize,
        e: usize,
        dst: &mut Str,
    ) -> Result<(), DecodeError> {
        match Str::short_ascii(self.buf, s..e) {
            Some(text) => {
                *dst = text;
                Ok(())
            }
            None => Str::assign_utf8_slice(dst, self.buf, s..e).map_err(|err| DecodeError::Utf8 {
                what,
                at: s + err.valid_up_to(),
            }),
        }
    }

    fn resource_logs(&self, s: usize, e: usize, batch: &mut LogBatch) -> Result<(), DecodeError> {
        // Fields may come in any order: take the resource first, then the scopes under it.
        let mut origin = Origin::default();
        let mut resource = Vec::new();
        let mut scopes = 0;
        let mut f = self.fields(s, e);
        while let Some((field, wire)) = f.next_field()? {
            match (field, wire) {
                (1, Wire::Len(s, e)) => {
                    let mut r = self.fields(s, e);
                    while let Some((field, wire)) = r.next_field()? {
                        match (field, wire) {
                            (1, Wire::Len(s, e)) => {
                                sized(&mut resource, &r, RESOURCE_ATTRIBUTE, 0);
                                self.push_key_value(s, e, 0, &mut resource)?
                            }
                            (2, Wire::Varint(n)) => {
                                origin.resource_dropped_attributes_count = n as u32
                            }
                            (1 | 2, w) => return Err(wrong(field, w, s)),
                            _ => {}
                        }
                    }
                }
                (3, Wire::Len(s, e)) => {
                    origin.resource_schema_url = self.str("schema_url", s, e)?
                }
                (2, Wire::Len(..)) => scopes += 1,
                (1..=3, w) => return Err(wrong(field, w, s)),
                _ => {}
            }
        }
        // Shared by every ScopeLogs below: one copy however many scopes there are.
        origin.resource = resource.into();
        check_density(self.items.get() + scopes, self.buf.len())?;
        batch.origins.reserve(scopes);
        let mut f = self.fields(s, e);
        while let Some((field, wire)) = f.next_field()? {
            if let (2, Wire::Len(s, e)) = (field, wire) {
                self.scope_logs(s, e, &origin, batch)?;
            }
        }
        Ok(())
    }

    fn scope_logs(
        &self,
        s: usize,
        e: usize,
        resource: &Origin,
        batch: &mut LogBatch,
    ) -> Result<(), DecodeError> {
        let mut origin = Origin {
            resource: resource.resource.clone(),
            resource_schema_url: resource.resource_schema_url.clone(),
            resource_dropped_attributes_count: resource.resource_dropped_attributes_count,
            ..Default::default()
        };
        let mut records = 0;
        let mut scope_attributes = Vec::new();
        let mut f = self.fields(s, e);
        while let Some((field, wire)) = f.next_field()? {
            match (field, wire) {
                (1, Wire::Len(s, e)) => {
                    let mut sc = self.fields(s, e);
                    while let Some((field, wire)) = sc.next_field()? {
                        match (field, wire) {
                            (1, Wire::Len(s, e)) => {
                                origin.scope_name = self.str("scope.name", s, e)?
                            }
                            (2, Wire::Len(s, e)) => {
                                origin.scope_version = self.str("scope.version", s, e)?
                            }
                            (3, Wire::Len(s, e)) => {
                                sized(&mut scope_attributes, &sc, SCOPE_ATTRIBUTE, 0);
                                self.push_key_value(s, e, 0, &mut scope_attributes)?
                            }
                            (4, Wire::Varint(n)) => {
                                origin.scope_dropped_attributes_count = n as u32
                            }
                            (1..=4, w) => return Err(wrong(field, w, s)),
                            _ => {}
                        }
                    }
                }
                (3, Wire::Len(s, e)) => origin.scope_schema_url = self.str("schema_url", s, e)?,
                (2, Wire::Len(..)) => records += 1,
                (1..=3, w) => return Err(wrong(field, w, s)),
                _ => {}
            }
        }
        // Checked before the records are made, so a refused request never costs their memory.
        let items = self.items.get() + 1 + records;
        self.items.set(items);
        check_density(items, self.buf.len())?;
        if records == 0 {
            return Ok(());
        }
        origin.scope_attributes = scope_attributes.into();
        // Counted on the first pass: the records vector grows once, not by doubling (each
        // doubling moved every record decoded so far).
        batch.records.reserve(records);
        let index = batch.origins.len() as u32;
        let mut f = self.fields(s, e);
        while let Some((field, wire)) = f.next_field()? {
            if let (2, Wire::Len(s, e)) = (field, wire) {
                // Decoded in place: a record returned by value is copied once more. Its
                // defaults are stored straight into the slot: made before room was known, they
                // were built in a stack temporary and copied on with `memcpy` (2% of the time).
                push_in_place(&mut batch.records, || LogRecord {
                    origin: index,
                    ..Default::default()
                });
                if let Some(r) = batch.records.last_mut() {
                    self.record(s, e, r)?;
                }
            }
        }
        batch.origins.push(origin);
        Ok(())
    }

    /// The fields SDKs write are told apart by their one-byte key, field and wire type in
    /// one dispatch, and read by the `*_after_key` readers. The general reader took two (the
    /// wire type, then the field), and those indirect jumps mispredicted: a tenth of the
    /// record loop's time. Anything else, a payload those readers refuse included, goes
    /// through the general reader, and either way the field is stored by [`Self::field`], so
    /// what is accepted, and every error, stay the same.
    fn record(&self, s: usize, e: usize, r: &mut LogRecord) -> Result<(), DecodeError> {
        let mut f = self.fields(s, e);
        loop {
            let read = match f.peek() {
                None => return Ok(()),
                Some(0x09) => f.fixed64_after_key().map(|t| (1, Wire::Fixed64(t))),
                Some(0x10) => f
                    .small_varint_after_key()
                    .map(|n| (2, Wire::Varint(n.into()))),
                Some(0x1a) => f.len_after_key().map(|(s, e)| (3, Wire::Len(s, e))),
                Some(0x2a) => f.len_after_key().map(|(s, e)| (5, Wire::Len(s, e))),
                Some(0x32) => f.len_after_key().map(|(s, e)| (6, Wire::Len(s, e))),
                Some(0x45) => f.fixed32_after_key().map(|n| (8, Wire::Fixed32(n))),
                Some(0x4a) => f.len_after_key().map(|(s, e)| (9, Wire::Len(s, e))),
                Some(0x52) => f.len_after_key().map(|(s, e)| (10, Wire::Len(s, e))),
                Some(0x59) => f.fixed64_after_key().map(|t| (11, Wire::Fixed64(t))),
                _ => None,
            };
            let (field, wire) = match read {
                Some(read) => read,
                None => match f.next_field()? {
                    Some(read) => read,
                    None => return Ok(()),
                },
            };
            self.field(field, wire, s, &f, r)?;
        }
    }

    /// Stores one field of a record. Inlined into each arm of [`Self::record`]'s dispatch,
    /// where the field number is known, so that its own match folds away there.
    #[inline(always)]
    fn field(
        &self,
        field: u32,
        wire: Wire,
        record_at: usize,
        f: &Fields<'_>,
        r: &mut LogRecord,
    ) -> Result<(), DecodeError> {
        match (field, wire) {
            (1, Wire::Fixed64(t)) => r.time_unix_nano = t,
            (11, Wire::Fixed64(t)) => r.observed_time_unix_nano = t,
            (2, Wire::Varint(n)) => r.severity_number = u8::try_from(n).unwrap_or(0),
            (3, Wire::Len(s, e)) => self.set_str("severity_text", s, e, &mut r.severity_text)?,
            (5, Wire::Len(s, e)) => self.set_body(s, e, &mut r.body)?,
            (6, Wire::Len(s, e)) => {
                // With room for one that a processor adds (`log_transform`'s `log.level`):
                // pushed one by one they grew to four, and that one more moved all four to
                // a new allocation. Never more room than pushing gives, but for a count of
                // exactly four (or eight...).
                sized(&mut r.attributes, f, RECORD_ATTRIBUTE, 1);
                self.push_key_value(s, e, 0, &mut r.attributes)?
            }
            (7, Wire::Varint(n)) => r.dropped_attributes_count = n as u32,
            (8, Wire::Fixed32(n)) => r.flags = n,
            (9, Wire::Len(s, e)) => self.id("trace_id", s, e, &mut r.trace_id)?,
            (10, Wire::Len(s, e)) => self.id("span_id", s, e, &mut r.span_id)?,
            (12, Wire::Len(s, e)) => self.set_str("event_name", s, e, &mut r.event_name)?,
            (1..=3 | 5..=12, w) => return Err(wrong(field, w, record_at)),
            _ => {}
        }
        Ok(())
    }

    /// Stores the body at `s..e` in `body`. Most bodies are one string: that is stored where
    /// it lands (see [`Decoder::set_str`]); anything else is read by `any_value`.
    #[inline(always)]
    fn set_body(&self, s: usize, e: usize, body: &mut Value) -> Result<(), DecodeError> {
        let Some(text) = plain_string(self.buf, s, e) else {
            set(body, self.any_value(s, e, 1)?);
            return Ok(());
        };
        if !matches!(body, Value::Str(_)) {
            set(body, Value::Str(Str::default()));
        }
        if let Value::Str(dst) = body {
            self.set_str("string value", text.start, e, dst)?;
        }
        Ok(())
    }

    /// A trace or span id: exactly N bytes, or empty for "not set". Copied straight into
    /// `id`: an array returned in a `Result` came back at an odd offset, and copying it on
    /// stalled on store forwarding (3% of decoding a record with ids).
    #[inline(always)]
    fn id<const N: usize>(
        &self,
        what: &'static str,
        s: usize,
        e: usize,
        id: &mut [u8; N],
    ) -> Result<(), DecodeError> {
        match self.buf.get(s..e) {
            Some([]) => *id = [0; N],
            Some(bytes) if bytes.len() == N => id.copy_from_slice(bytes),
            _ => {
                return Err(DecodeError::Length {
                    what,
                    want: N,
                    got: e - s,
                });
            }
        }
        Ok(())
    }

    /// Decodes an attribute onto the end of `out`. It is written straight into the spare slot:
    /// returned as a `Result` and pushed, it went through two stack temporaries, and copying
    /// those on (wide loads of what narrow stores had just written) stalled on store forwarding
    /// for every attribute, a third of decoding's own time.
    fn push_key_value(
        &self,
        s: usize,
        e: usize,
        depth: usize,
        out: &mut Vec<KeyValue>,
    ) -> Result<(), DecodeError> {
        out.reserve(1);
        // In bounds: room for one was made above.
        let slot = &mut out.spare_capacity_mut()[0];
        let plain = if depth < MAX_DEPTH {
            self.plain_key_value(s, e, slot)
        } else {
            None
        };
        match plain {
            Some(done) => done?,
            None => {
                slot.write(self.key_value_fields(s, e, depth)?);
            }
        }
        // SAFETY: the first spare slot was initialised just above.
        unsafe { out.set_len(out.len() + 1) };
        Ok(())
    }

    /// A `KeyValue` of any shape, field by field.
    fn key_value_fields(&self, s: usize, e: usize, depth: usize) -> Result<KeyValue, DecodeError> {
        let mut key = Str::default();
        let mut value = Value::Empty;
        let mut f = self.fields(s, e);
        while let Some((field, wire)) = f.next_field()? {
            match (field, wire) {
                (1, Wire::Len(s, e)) => key = self.str("attribute key", s, e)?,
                (2, Wire::Len(s, e)) => set(&mut value, self.any_value(s, e, depth + 1)?),
                (1 | 2, w) => return Err(wrong(field, w, s)),
                _ => {}
            }
        }
        Ok((key, value))
    }

    /// An attribute as SDKs write it, read by position: the key, then an `AnyValue` of one
    /// scalar, each with a one-byte length and nothing else in either message. That is four
    /// fewer trips through the generic field loop, which cost 150 instructions an attribute.
    /// It is written into `slot`, which `Some(Ok(()))` says was done. `None` for any other
    /// shape (or a malformed one), which the generic loop then reads, so what is accepted, and
    /// every error, stay the same; `slot` is left as it was unless `Some(Ok(()))`.
    #[inline(always)]
    fn plain_key_value(
        &self,
        s: usize,
        e: usize,
        slot: &mut std::mem::MaybeUninit<KeyValue>,
    ) -> Option<Result<(), DecodeError>> {
        const KEY: u8 = 1 << 3 | 2;
        const VALUE: u8 = 2 << 3 | 2;
        let b = self.buf.get(s..e)?;
        let (&KEY, &klen) = (b.first()?, b.get(1)?) else {
            return None;
        };
        let ke = 2 + usize::from(klen);
        let (&VALUE, &vlen) = (b.get(ke)?, b.get(ke + 1)?) else {
            return None;
        };
        let vs = ke + 2;
        if klen >= 0x80 || vlen >= 0x80 || vs + usize::from(vlen) != b.len() {
            return None;
        }
        let v = &b[vs..];
        // A string is made after the key, so that a bad key is the error reported, as in the
        // generic loop. `Plain::Text` stands for it until then. A scalar is kept as a
        // `Plain` (two words, held in registers), not a `Value`: built in a stack temporary,
        // a `Value` was copied into the slot with wider loads than the stores that made it,
        // which stalled on store forwarding (a tenth of this function's time).
        // Tested in turn, strings first, not through a jump table: which kind comes next is
        // data, and the table's indirect jump mispredicted more than these branches do.
        let tag = *v.first()?;
        let value = if tag == 0x0a {
            // string_value: one more one-byte length, filling the AnyValue.
            if usize::from(*v.get(1)?) + 2 != v.len() || v[1] >= 0x80 {
                return None;
            }
            Plain::Text
        } else if tag & !0x08 == 0x10 {
            // bool_value (0x10), int_value (0x18): a varint filling the AnyValue.
            let mut f = Fields::new(v, 1, v.len());
            let n = f.next_varint().ok()?;
            if f.pos() != v.len() {
                return None;
            }
            if tag == 0x10 {
                Plain::Bool(n != 0)
            } else {
                Plain::Int(n as i64)
            }
        } else if tag == 0x21 {
            // double_value: fixed64.
            Plain::Double(f64::from_bits(u64::from_le_bytes(
                v.get(1..)?.try_into().ok()?,
            )))
        } else {
            return None;
        };
        // Each branch stores into `slot` what it built, and short ASCII text is taken apart
        // from the general case: merged into one `Result` first, the value went through a
        // stack temporary whose copy stalled on store forwarding.
        let key = match Str::short_ascii(self.buf, s + 2..s + ke) {
            Some(key) => key,
            None => match self.str("attribute key", s + 2, s + ke) {
                Ok(key) => key,
                Err(err) => return Some(Err(err)),
            },
        };
        match value {
            Plain::Bool(b) => {
                slot.write((key, Value::Bool(b)));
            }
            Plain::Int(n) => {
                slot.write((key, Value::Int(n)));
            }
            Plain::Double(x) => {
                slot.write((key, Value::Double(x)));
            }
            Plain::Text => match Str::short_ascii(self.buf, s + vs + 2..e) {
                Some(text) => {
                    slot.write((key, Value::Str(text)));
                }
                None => match self.str("string value", s + vs + 2, e) {
                    Ok(text) => {
                        slot.write((key, Value::Str(text)));
                    }
                    Err(err) => return Some(Err(err)),
                },
            },
        }
        Some(Ok(()))
    }

    /// Inlined where it is read: most values are one scalar field, and a call that returns a
    /// `Result<Value>` through memory cost more than reading it. Arrays and maps, which recurse,
    /// stay out of line.
    #[inline(always)]
    fn any_value(&self, s: usize, e: usize, depth: usize) -> Result<Value, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(DecodeError::TooDeep(MAX_DEPTH));
        }
        // A oneof: the last member on the wire wins.
        let mut v = Value::Empty;
        let mut f = self.fields(s, e);
        while let Some((field, wire)) = f.next_field()? {
            let new = match (field, wire) {
                (1, Wire::Len(s, e)) => Value::Str(self.str("string value", s, e)?),
                (2, Wire::Varint(n)) => Value::Bool(n != 0),
                (3, Wire::Varint(n)) => Value::Int(n as i64),
                (4, Wire::Fixed64(bits)) => Value::Double(f64::from_bits(bits)),
                (5, Wire::Len(s, e)) => self.array(s, e, depth)?,
                (6, Wire::Len(s, e)) => self.kvlist(s, e, depth)?,
                (7, Wire::Len(s, e)) => Value::Bytes(self.buf.slice(s..e)),
                (1..=7, w) => return Err(wrong(field, w, s)),
                _ => continue,
            };
            set(&mut v, new);
        }
        Ok(v)
    }

    #[inline(never)]
    fn array(&self, s: usize, e: usize, depth: usize) -> Result<Value, DecodeError> {
        let mut a = self.fields(s, e);
        let mut items = Vec::with_capacity(a.run_of(ELEMENT));
        while let Some((field, wire)) = a.next_field()? {
            match (field, wire) {
                (1, Wire::Len(s, e)) => items.push(self.any_value(s, e, depth + 1)?),
                (1, w) => return Err(wrong(field, w, s)),
                _ => {}
            }
        }
        Ok(Value::Array(items))
    }

    #[inline(never)]
    fn kvlist(&self, s: usize, e: usize, depth: usize) -> Result<Value, DecodeError> {
        let mut m = self.fields(s, e);
        let mut kvs = Vec::with_capacity(m.run_of(ELEMENT));
        while let Some((field, wire)) = m.next_field()? {
            match (field, wire) {
                (1, Wire::Len(s, e)) => self.push_key_value(s, e, depth, &mut kvs)?,
                (1, w) => return Err(wrong(field, w, s)),
                _ => {}
            }
        }
        Ok(Value::Map(kvs))
    }
}

/// Where the text is when the `AnyValue` at `s..e` holds one string and nothing else, written
/// as SDKs write it (a one- or two-byte length); `None` for anything else, which
/// `Decoder::any_value` then reads.
#[inline(always)]
fn plain_string(buf: &[u8], s: usize, e: usize) -> Option<std::ops::Range<usize>> {
    const STRING: u8 = 1 << 3 | 2;
    let b = buf.get(s..e)?;
    let (&STRING, &l0) = (b.first()?, b.get(1)?) else {
        return None;
    };
    let (len, at) = if l0 < 0x80 {
        (usize::from(l0), 2)
    } else {
        let l1 = *b.get(2)?;
        if l1 >= 0x80 {
            return None;
        }
        (usize::from(l0 & 0x7f) | usize::from(l1) << 7, 3)
    };
    (at + len == b.len()).then(|| s + at..e)
}

/// Stores `new` in `slot`. A field is most often set once, over the `Empty` it started as:
/// dropping that was an out-of-line call per value, 5% of decoding.
#[inline(always)]
fn set(slot: &mut Value, new: Value) {
    if matches!(slot, Value::Empty) {
        // Nothing to drop in `Empty`; forgetting it skips the call.
        std::mem::forget(std::mem::replace(slot, new));
    } else {
        *slot = new;
    }
}

/// Encodes `batch` as an `ExportLogsServiceRequest`, appending to `out`: one `ScopeLogs` per
/// origin, under one `ResourceLogs` per run of origins with the same resource. Default values
/// are left out, as proto3 does.
pub fn encode(batch: &LogBatch, out: &mut Vec<u8>) {
    // Records of one origin need not be adjacent (a batch can merge requests): group them.
    let mut order: Vec<u32> = (0..batch.records.len() as u32).collect();
    order.sort_by_key(|&i| batch.records[i as usize].origin);
    let default = Origin::default();
    let origin_of = |i: u32| {
        batch
            .origins
            .get(batch.records[i as usize].origin as usize)
            .unwrap_or(&default)
    };
    let mut groups: Vec<&[u32]> = Vec::new();
    let mut rest = &order[..];
    while let Some(&first) = rest.first() {
        let origin = batch.records[first as usize].origin;
        let n = rest
            .iter()
            .position(|&i| batch.records[i as usize].origin != origin)
            .unwrap_or(rest.len());
        let (group, tail) = rest.split_at(n);
        groups.push(group);
        rest = tail;
    }
    let mut groups = &groups[..];
    while let Some(first) = groups.first() {
        let o = origin_of(first[0]);
        let n = groups
            .iter()
            .position(|g| !same_resource(o, origin_of(g[0])))
            .unwrap_or(groups.len());
        let (run, tail) = groups.split_at(n);
        groups = tail;
        let scopes: Vec<(&Origin, &[u32], usize)> = run
            .iter()
            .map(|g| {
                let origin = origin_of(g[0]);
                (origin, *g, scope_logs_size(origin, g, batch))
            })
            .collect();
        let resource = attrs_size(&o.resource) + uint_size(o.resource_dropped_attributes_count);
        let resource_logs = opt_len_size(resource)
            + scopes.iter().map(|s| len_field_size(s.2)).sum::<usize>()
            + str_size(&o.resource_schema_url);
        out.reserve(len_field_size(resource_logs));
        put_len(out, 1, resource_logs);
        if resource > 0 {
            put_len(out, 1, resource);
            put_attrs(out, 1, &o.resource);
            put_uint(out, 2, o.resource_dropped_attributes_count);
        }
        for (origin, group, size) in scopes {
            put_len(out, 2, size);
            put_scope_logs(out, origin, group, batch);
        }
        put_str(out, 3, &o.resource_schema_url);
    }
}

fn same_resource(a: &Origin, b: &Origin) -> bool {
    std::ptr::eq(a, b)
        || (a.resource == b.resource
            && a.resource_schema_url == b.resource_schema_url
            && a.resource_dropped_attributes_count == b.resource_dropped_attributes_count)
}

fn scope_size(o: &Origin) -> usize {
    str_size(&o.scope_name)
        + str_size(&o.scope_version)
        + attrs_size(&o.scope_attributes)
        + uint_size(o.scope_dropped_attributes_count)
}

fn scope_logs_size(o: &Origin, group: &[u32], batch: &LogBatch) -> usize {
    let records: usize = group
        .iter()
        .map(|&i| len_field_size(record_size(&batch.records[i as usize])))
        .sum();
    opt_len_size(scope_size(o)) + records + str_size(&o.scope_schema_url)
}

fn put_scope_logs(out: &mut Vec<u8>, o: &Origin, group: &[u32], batch: &LogBatch) {
    let scope = scope_size(o);
    if scope > 0 {
        put_len(out, 1, scope);
        put_str(out, 1, &o.scope_name);
        put_str(out, 2, &o.scope_version);
        put_attrs(out, 3, &o.scope_attributes);
        put_uint(out, 4, o.scope_dropped_attributes_count);
    }
    for &i in group {
        let r = &batch.records[i as usize];
        put_len(out, 2, record_size(r));
        put_record(out, r);
    }
    put_str(out, 3, &o.scope_schema_url);
}

fn opt_len_size(n: usize) -> usize {
    if n > 0 { len_field_size(n) } else { 0 }
}

fn str_size(s: &Str) -> usize {
    if s.is_empty() {
        0
    } else {
        len_field_size(s.len())
    }
}

fn put_str(out: &mut Vec<u8>, field: u32, s: &Str) {
    if !s.is_empty() {
        put_bytes_field(out, field, s.as_bytes());
    }
}

fn uint_size(n: u32) -> usize {
    if n == 0 {
        0
    } else {
        1 + varint_len(u64::from(n))
    }
}

fn put_uint(out: &mut Vec<u8>, field: u32, n: u32) {
    if n != 0 {
        put_key(out, field, 0);
        put_varint(out, u64::from(n));
    }
}

fn attrs_size<'a>(kvs: impl IntoIterator<Item = &'a KeyValue>) -> usize {
    kvs.into_iter().map(|kv| len_field_size(kv_size(kv))).sum()
}

fn put_attrs<'a>(out: &mut Vec<u8>, field: u32, kvs: impl IntoIterator<Item = &'a KeyValue>) {
    for kv in kvs {
        put_len(out, field, kv_size(kv));
        put_kv(out, kv);
    }
}

fn kv_size((k, v): &KeyValue) -> usize {
    str_size(k) + len_field_size(value_size(v))
}

fn put_kv(out: &mut Vec<u8>, (k, v): &KeyValue) {
    put_str(out, 1, k);
    put_len(out, 2, value_size(v));
    put_value(out, v);
}

/// The size of an `AnyValue` message holding `v` (a oneof member is written even when it is
/// the default, so `""`, `0` and `false` survive).
fn value_size(v: &Value) -> usize {
    match v {
        Value::Empty => 0,
        Value::Str(s) => len_field_size(s.len()),
        Value::Bool(_) => 2,
        Value::Int(i) => 1 + varint_len(*i as u64),
        Value::Double(_) => 9,
        Value::Bytes(b) => len_field_size(b.len()),
        Value::Array(items) => {
            len_field_size(items.iter().map(|i| len_field_size(value_size(i))).sum())
        }
        Value::Map(kvs) => len_field_size(attrs_size(kvs)),
    }
}

fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Empty => {}
        Value::Str(s) => put_bytes_field(out, 1, s.as_bytes()),
        Value::Bool(b) => {
            put_key(out, 2, 0);
            out.push(u8::from(*b));
        }
        Value::Int(i) => {
            put_key(out, 3, 0);
            put_varint(out, *i as u64);
        }
        Value::Double(d) => {
            put_key(out, 4, 1);
            out.extend_from_slice(&d.to_bits().to_le_bytes());
        }
        Value::Bytes(b) => put_bytes_field(out, 7, b),
        Value::Array(items) => {
            put_len(
                out,
                5,
                items.iter().map(|i| len_field_size(value_size(i))).sum(),
            );
            for item in items {
                put_len(out, 1, value_size(item));
                put_value(out, item);
            }
        }
        Value::Map(kvs) => {
            put_len(out, 6, attrs_size(kvs));
            put_attrs(out, 1, kvs);
        }
    }
}

fn record_size(r: &LogRecord) -> usize {
    let fixed64 = |t: u64| if t != 0 { 9 } else { 0 };
    fixed64(r.time_unix_nano)
        + uint_size(u32::from(r.severity_number))
        + str_size(&r.severity_text)
        + match r.body {
            Value::Empty => 0,
            ref b => len_field_size(value_size(b)),
        }
        + attrs_size(&r.attributes)
        + uint_size(r.dropped_attributes_count)
        + if r.flags != 0 { 5 } else { 0 }
        + if r.trace_id != [0; 16] { 18 } else { 0 }
        + if r.span_id != [0; 8] { 10 } else { 0 }
        + fixed64(r.observed_time_unix_nano)
        + str_size(&r.event_name)
}

fn put_record(out: &mut Vec<u8>, r: &LogRecord) {
    if r.time_unix_nano != 0 {
        put_key(out, 1, 1);
        out.extend_from_slice(&r.time_unix_nano.to_le_bytes());
    }
    put_uint(out, 2, u32::from(r.severity_number));
    put_str(out, 3, &r.severity_text);
    if !matches!(r.body, Value::Empty) {
        put_len(out, 5, value_size(&r.body));
        put_value(out, &r.body);
    }
    put_attrs(out, 6, &r.attributes);
    put_uint(out, 7, r.dropped_attributes_count);
    if r.flags != 0 {
        put_key(out, 8, 5);
        out.extend_from_slice(&r.flags.to_le_bytes());
    }
    if r.trace_id != [0; 16] {
        put_bytes_field(out, 9, &r.trace_id);
    }
    if r.span_id != [0; 8] {
        put_bytes_field(out, 10, &r.span_id);
    }
    if r.observed_time_unix_nano != 0 {
        put_key(out, 11, 1);
        out.extend_from_slice(&r.observed_time_unix_nano.to_le_bytes());
    }
    put_str(out, 12, &r.event_name);
}

#[cfg(test)]
mod tests;
