//! The protobuf wire format, just what OTLP needs: a field reader over a received buffer that
//! hands out ranges (so strings and bytes can share that buffer), and varint / length writers.
//!
//! Hand-written rather than prost-generated because prost decodes every string into an owned
//! `String`, one allocation and copy per attribute, which is the cost this gateway is built to
//! avoid. Tests check it against the prost types of `opentelemetry-proto`.

/// Why a message could not be decoded. Every variant says where, for a 400 that helps.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("message truncated at byte {0}")]
    Truncated(usize),
    #[error("malformed varint at byte {0}")]
    Varint(usize),
    #[error("field {field} has wire type {wire}, which OTLP does not use there (byte {at})")]
    WireType { field: u32, wire: u8, at: usize },
    #[error("field number 0 at byte {0}")]
    FieldZero(usize),
    #[error("{what} is not valid UTF-8 (byte {at})")]
    Utf8 { what: &'static str, at: usize },
    #[error("{what} must be {want} bytes, not {got}")]
    Length {
        what: &'static str,
        want: usize,
        got: usize,
    },
    #[error("values nested deeper than {0} levels")]
    TooDeep(usize),
    /// More records (and scopes) than the request's size allows; see `logs::check_density`.
    #[error(
        "{items} log records and scopes in {bytes} bytes: beyond the first {free}, a request may hold one per {per} bytes (split it, or send fuller records)",
        free = super::logs::FREE_ITEMS,
        per = super::logs::MIN_BYTES_PER_ITEM
    )]
    TooDense { items: usize, bytes: usize },
}

/// One field's payload. `Len` is a range of the buffer being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    Varint(u64),
    Fixed64(u64),
    Len(usize, usize),
    Fixed32(u32),
}

/// Iterates the fields of the message in `buf[start..end]`.
pub struct Fields<'a> {
    /// The buffer up to the end of this message: nothing past it can be read by mistake.
    data: &'a [u8],
    pos: usize,
}

impl<'a> Fields<'a> {
    pub fn new(buf: &'a [u8], start: usize, end: usize) -> Self {
        Fields {
            data: &buf[..end.min(buf.len())],
            pos: start,
        }
    }

    /// Where the next field starts.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// The next byte: a field's whole key when the field number is below 16. Decoders of
    /// hot messages dispatch on it once, for field and wire type together, and read the
    /// payload with the `*_after_key` readers below.
    #[inline(always)]
    pub fn peek(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    /// After a one-byte key, a fixed64 payload; `None`, with nothing read, if it is cut short.
    #[inline(always)]
    pub fn fixed64_after_key(&mut self) -> Option<u64> {
        let b: [u8; 8] = self.data.get(self.pos + 1..self.pos + 9)?.try_into().ok()?;
        self.pos += 9;
        Some(u64::from_le_bytes(b))
    }

    /// After a one-byte key, a fixed32 payload; `None`, with nothing read, if it is cut short.
    #[inline(always)]
    pub fn fixed32_after_key(&mut self) -> Option<u32> {
        let b: [u8; 4] = self.data.get(self.pos + 1..self.pos + 5)?.try_into().ok()?;
        self.pos += 5;
        Some(u32::from_le_bytes(b))
    }

    /// After a one-byte key, a varint of one byte; `None`, with nothing read, otherwise.
    #[inline(always)]
    pub fn small_varint_after_key(&mut self) -> Option<u8> {
        match self.data.get(self.pos + 1) {
            Some(&b) if b < 0x80 => {
                self.pos += 2;
                Some(b)
            }
            _ => None,
        }
    }

    /// After a one-byte key, a length of one or two bytes and that many bytes, as the range
    /// they take; `None`, with nothing read, for a longer length or one past the message.
    #[inline(always)]
    pub fn len_after_key(&mut self) -> Option<(usize, usize)> {
        let b = *self.data.get(self.pos + 1)?;
        let (n, s) = if b < 0x80 {
            (usize::from(b), self.pos + 2)
        } else {
            let c = *self.data.get(self.pos + 2)?;
            if c >= 0x80 {
                return None;
            }
            (usize::from(b & 0x7f) | usize::from(c) << 7, self.pos + 3)
        };
        if s + n > self.data.len() {
            return None;
        }
        self.pos = s + n;
        Some((s, s + n))
    }

    /// Reads one varint: the elements of a packed repeated field.
    pub fn next_varint(&mut self) -> Result<u64, DecodeError> {
        self.varint()
    }

    /// Keys, lengths and most small numbers are one byte, and the lengths of log records and
    /// bodies (up to 16 KiB) two: those cases are inline. Out of line, the result came back
    /// through memory and was read right after the callee wrote it, for every record.
    #[inline(always)]
    fn varint(&mut self) -> Result<u64, DecodeError> {
        match self.data.get(self.pos) {
            Some(&b) if b < 0x80 => {
                self.pos += 1;
                Ok(u64::from(b))
            }
            Some(&b) => match self.data.get(self.pos + 1) {
                Some(&c) if c < 0x80 => {
                    self.pos += 2;
                    Ok(u64::from(b & 0x7f) | u64::from(c) << 7)
                }
                _ => self.varint_slow(),
            },
            None => Err(DecodeError::Truncated(self.pos)),
        }
    }

    #[inline(never)]
    fn varint_slow(&mut self) -> Result<u64, DecodeError> {
        let at = self.pos;
        let mut v = 0u64;
        for i in 0..10 {
            let Some(&b) = self.data.get(self.pos) else {
                return Err(DecodeError::Truncated(self.pos));
            };
            self.pos += 1;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(DecodeError::Varint(at))
    }

    #[inline(always)]
    fn take(&mut self, n: usize) -> Result<usize, DecodeError> {
        let start = self.pos;
        match start.checked_add(n) {
            Some(end) if end <= self.data.len() => {
                self.pos = end;
                Ok(start)
            }
            _ => Err(DecodeError::Truncated(self.data.len())),
        }
    }

    /// How many length-delimited fields with the one-byte `key` follow back to back from the
    /// reading position, which stays where it is. Repeated fields (a record's attributes) are
    /// written together, so this sizes their `Vec` once, for a few instructions per field; a
    /// malformed field only ends the count, and is reported when it is read.
    pub fn run_of(&self, key: u8) -> usize {
        let mut pos = self.pos;
        let mut n = 0;
        while self.data.get(pos) == Some(&key) {
            let mut len = 0usize;
            let mut shift = 0;
            loop {
                pos += 1;
                let Some(&b) = self.data.get(pos) else {
                    return n;
                };
                len |= usize::from(b & 0x7f) << shift;
                shift += 7;
                if b < 0x80 {
                    break;
                }
                if shift > 28 {
                    return n;
                }
            }
            pos = match (pos + 1).checked_add(len) {
                Some(end) if end <= self.data.len() => end,
                _ => return n,
            };
            n += 1;
        }
        n
    }

    /// The next field as (number, payload), or `None` at the end of the message. Inlined into
    /// every decoding loop: out of line, the `Result<Option<..>>` it returns went through
    /// memory and its match was re-done by the caller (a third of the validator's time).
    #[inline(always)]
    pub fn next_field(&mut self) -> Result<Option<(u32, Wire)>, DecodeError> {
        if self.pos >= self.data.len() {
            return Ok(None);
        }
        let at = self.pos;
        let key = self.varint()?;
        let field = u32::try_from(key >> 3).map_err(|_| DecodeError::Varint(at))?;
        if field == 0 {
            return Err(DecodeError::FieldZero(at));
        }
        let wire = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => {
                let s = self.take(8)?;
                Wire::Fixed64(u64::from_le_bytes(
                    self.data[s..s + 8].try_into().unwrap_or_default(),
                ))
            }
            2 => {
                let n = self.varint()?;
                let n = usize::try_from(n).map_err(|_| DecodeError::Truncated(self.data.len()))?;
                let s = self.take(n)?;
                Wire::Len(s, s + n)
            }
            5 => {
                let s = self.take(4)?;
                Wire::Fixed32(u32::from_le_bytes(
                    self.data[s..s + 4].try_into().unwrap_or_default(),
                ))
            }
            w => {
                return Err(DecodeError::WireType {
                    field,
                    wire: w as u8,
                    at,
                });
            }
        };
        Ok(Some((field, wire)))
    }
}

/// Whether `bytes` is UTF-8. Protobuf strings in telemetry are short and nearly always
/// ASCII: one OR over the bytes (vectorised) answers that without the general validator's
/// per-call setup, which measured a quarter of the OTLP check's time.
#[inline]
pub fn is_utf8(bytes: &[u8]) -> bool {
    if bytes.len() <= 64 && bytes.iter().fold(0u8, |acc, b| acc | b) < 0x80 {
        return true;
    }
    std::str::from_utf8(bytes).is_ok()
}

/// A field of the wrong wire type for its number.
pub fn wrong(field: u32, wire: Wire, at: usize) -> DecodeError {
    let wire = match wire {
        Wire::Varint(_) => 0,
        Wire::Fixed64(_) => 1,
        Wire::Len(..) => 2,
        Wire::Fixed32(_) => 5,
    };
    DecodeError::WireType { field, wire, at }
}

pub fn varint_len(v: u64) -> usize {
    // 1 byte per 7 bits, at least one.
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn put_key(out: &mut Vec<u8>, field: u32, wire: u8) {
    put_varint(out, u64::from(field) << 3 | u64::from(wire));
}

/// The size of a length-delimited field with a payload of `len` bytes (field numbers < 16).
pub fn len_field_size(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

pub fn put_len(out: &mut Vec<u8>, field: u32, len: usize) {
    put_key(out, field, 2);
    put_varint(out, len as u64);
}

pub fn put_bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_len(out, field, bytes.len());
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_check_agrees_with_the_standard_library() {
        let cases: [&[u8]; 7] = [
            b"",
            b"plain ascii",
            "caf\u{e9} \u{1f600}".as_bytes(),
            b"\xff",
            b"abc\xc3",
            &[b'a'; 200],
            b"\xed\xa0\x80",
        ];
        for c in cases {
            assert_eq!(is_utf8(c), std::str::from_utf8(c).is_ok(), "{c:?}");
        }
    }

    #[test]
    fn a_run_counts_only_whole_fields_of_its_key_back_to_back() {
        let mut msg = Vec::new();
        put_bytes_field(&mut msg, 6, b"a");
        put_bytes_field(&mut msg, 6, &[b'x'; 200]); // a two-byte length
        put_bytes_field(&mut msg, 6, b"");
        put_bytes_field(&mut msg, 5, b"body");
        put_bytes_field(&mut msg, 6, b"later");
        let key = 6 << 3 | 2;
        let f = Fields::new(&msg, 0, msg.len());
        assert_eq!(f.run_of(key), 3, "stops at the first other field");
        assert_eq!(f.pos(), 0, "reading position unchanged");
        // Truncated: a length past the end, and a length cut off, end the count.
        assert_eq!(Fields::new(&msg, 0, 10).run_of(key), 1);
        assert_eq!(Fields::new(&[key, 0x80], 0, 2).run_of(key), 0);
        assert_eq!(
            Fields::new(&[key, 0xff, 0xff, 0xff, 0xff, 0x7f], 0, 6).run_of(key),
            0
        );
        assert_eq!(Fields::new(&[], 0, 0).run_of(key), 0);
    }

    #[test]
    fn varint_lengths_match_what_is_written() {
        for v in [0u64, 1, 127, 128, 16_383, 16_384, u32::MAX as u64, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v), "{v}");
            let mut f = Fields::new(&out, 0, out.len());
            assert_eq!(f.varint(), Ok(v));
        }
    }

    #[test]
    fn overlong_and_truncated_varints_are_errors() {
        let eleven = [0xffu8; 11];
        assert_eq!(
            Fields::new(&eleven, 0, 11).next_field(),
            Err(DecodeError::Varint(0))
        );
        let cut = [0x0a, 0x05, b'a'];
        assert!(matches!(
            Fields::new(&cut, 0, 3).next_field(),
            Err(DecodeError::Truncated(_))
        ));
    }

    #[test]
    fn a_length_cannot_reach_past_its_enclosing_message() {
        // An inner field claiming 3 bytes inside a 2-byte window of a longer buffer.
        let buf = [0x0a, 0x03, b'a', b'b', b'c'];
        assert!(Fields::new(&buf, 0, 4).next_field().is_err());
        assert!(Fields::new(&buf, 0, 5).next_field().is_ok());
    }
}
