//! [`Str`]: UTF-8 text that shares the buffer it arrived in, or is held inline when short.
//!
//! This is the data model's only `unsafe` code: the inline representation's word copies and the
//! unchecked UTF-8 views. Each block says why it is sound.

use std::fmt;
use std::ops::Deref;

use bytes::Bytes;

/// UTF-8 text that shares the buffer it was received in, or, when short, is held inline.
///
/// Sharing a slice of a `Bytes` costs an atomic increment and decrement; for text of up to
/// [`Str::INLINE`] bytes (most parsed fields: a status, a method, an IP address) copying those
/// few bytes inline is cheaper and allocates nothing. Longer text is never copied.
pub struct Str(Repr);

/// Copied as a whole from the original, not rebuilt variant by variant. Rebuilt, the tag
/// was stored as a lone byte beside the fields, and the clone, moved on through a temporary
/// (a tuple pushed into a `Vec`), was read back with a wide load across that byte and the
/// next field: a store-forwarding stall for every key cloned. The original has long been in
/// memory, so a copy of it forwards.
impl Clone for Str {
    #[inline(always)]
    fn clone(&self) -> Self {
        match &self.0 {
            Repr::Shared(b) => Str(Repr::Shared(b.clone())),
            // SAFETY: every other variant is plain data that owns nothing (a `&'static str`, or
            // a length and words), so a bitwise copy is a clone and nothing is dropped twice.
            _ => unsafe { std::ptr::read(self) },
        }
    }

    /// Copies `source` straight over `self`, for a clone into a slot already in place (an
    /// attribute pushed as a default first): a clone returned by value is still moved on
    /// through temporaries in pieces, and read back whole, which stalls.
    #[inline(always)]
    fn clone_from(&mut self, source: &Self) {
        match &source.0 {
            Repr::Shared(b) => *self = Str(Repr::Shared(b.clone())),
            _ => {
                // SAFETY: the old value is dropped once, in place, and then overwritten
                // without being read again; `source` owns nothing (as in `clone`), so its
                // bitwise copy is a clone. Dropping a `Str` cannot panic (`Bytes`'s drop
                // does not), so `self` is never left dropped but in use.
                unsafe {
                    std::ptr::drop_in_place(self);
                    std::ptr::copy_nonoverlapping(source, self, 1);
                }
            }
        }
    }
}

enum Repr {
    /// Compile-time and config text (attribute keys): cloned by copying a pointer.
    Static(&'static str),
    /// The same, known once to need no escaping in JSON. A variant rather than a `bool`
    /// field, which would be a byte beside the tag (see `Inline`).
    StaticJsonSafe(&'static str),
    Shared(Bytes),
    /// Held as words rather than a byte array: built from word loads, the value stays in
    /// registers and is stored once where it lands (a `Vec` slot). A byte array is assembled in
    /// a stack temporary and copied on with wider loads than the stores that filled it, which
    /// stalls on store forwarding for every captured field.
    ///
    /// `len` is 32 bits wide, not 8, so that nothing but the tag is a lone byte: a Str moved
    /// through a temporary (a `Result` handed back) is copied in word-sized pieces, and a
    /// piece that reads a byte stored on its own (a `u8` length beside the tag) stalls on
    /// store forwarding. Decoding paid that for every string.
    Inline {
        len: u32,
        words: [u64; Str::INLINE / 8],
    },
}

// What a record and each attribute cost (README's memory bound) depends on this staying 40
// bytes: the wider `len` must fit beside the tag, not after it.
const _: () = assert!(std::mem::size_of::<Str>() == 40);

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
        if json_safe {
            Str(Repr::StaticJsonSafe(s))
        } else {
            Str(Repr::Static(s))
        }
    }

    /// Static text that needs no JSON escaping (attribute keys, mostly), so encoders can skip
    /// scanning it for every record.
    pub fn static_json_safe(&self) -> Option<&'static str> {
        match self.0 {
            Repr::StaticJsonSafe(s) => Some(s),
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
    ///
    /// The short ASCII case (most keys and values) is always inlined into decoders, which call
    /// it per string, so the result is built in registers and stored once where it lands.
    /// Returned through memory, it was read back with wider loads than the byte stores that
    /// wrote its tag and length, which stalls on store forwarding for every string.
    #[inline(always)]
    pub fn from_utf8_slice(
        bytes: &Bytes,
        range: std::ops::Range<usize>,
    ) -> Result<Self, std::str::Utf8Error> {
        match Str::short_ascii(bytes, range.clone()) {
            Some(s) => Ok(s),
            None => Str::from_utf8_slice_checked(bytes, range),
        }
    }

    /// `bytes[range]` held inline, when it is at most [`Str::INLINE`] bytes of ASCII (valid
    /// UTF-8, checked on the words already loaded); `None` otherwise, also for a range outside
    /// `bytes`. For callers that store the text straight where it lands and take any other
    /// text through [`Str::from_utf8_slice`].
    #[inline(always)]
    pub fn short_ascii(bytes: &[u8], range: std::ops::Range<usize>) -> Option<Str> {
        let len = range.end.wrapping_sub(range.start);
        if range.start <= range.end && range.end <= bytes.len() && len <= Str::INLINE {
            let words = inline_words(bytes, range.start, len);
            if ascii_prefix(&words, len) {
                return Some(Str(Repr::Inline {
                    len: len as u32,
                    words,
                }));
            }
        }
        None
    }

    /// [`Str::from_utf8_slice`] into `dst`, for text that is long or not ASCII. Stored by the
    /// callee where it lands: returned through memory, it was copied on right after it was
    /// written, which stalls on store forwarding. `dst` is unchanged on an error.
    #[inline(never)]
    pub fn assign_utf8_slice(
        dst: &mut Str,
        bytes: &Bytes,
        range: std::ops::Range<usize>,
    ) -> Result<(), std::str::Utf8Error> {
        let part = &bytes[range.clone()];
        if part.len() <= Str::INLINE {
            std::str::from_utf8(part)?;
            *dst = Str(Repr::Inline {
                len: part.len() as u32,
                words: inline_words(bytes, range.start, part.len()),
            });
            return Ok(());
        }
        // Bodies and messages a little past INLINE: one vectorised OR answers for ASCII,
        // without the general validator's setup (half a short string's cost).
        if part.len() > 64 || part.iter().fold(0u8, |acc, b| acc | b) >= 0x80 {
            std::str::from_utf8(part)?;
        }
        // The shared slice is made straight in `dst`, not in a temporary: `Bytes`' clone
        // stores it through a pointer, and a copy of it made right after, with wider loads
        // than those stores, stalled on store forwarding (half of this function's time).
        *dst = Str(Repr::Shared(Bytes::new()));
        if let Repr::Shared(b) = &mut dst.0 {
            *b = bytes.slice(range);
        }
        Ok(())
    }

    /// [`Str::from_utf8_slice`] for text that is long or not ASCII: [`Str::assign_utf8_slice`]
    /// into a new value, so the checks live in one place.
    #[inline]
    fn from_utf8_slice_checked(
        bytes: &Bytes,
        range: std::ops::Range<usize>,
    ) -> Result<Self, std::str::Utf8Error> {
        let mut s = Str::default();
        Str::assign_utf8_slice(&mut s, bytes, range)?;
        Ok(s)
    }

    /// A copy of `s` this value owns: inline when short, so that values copied from state
    /// shared between threads (pod metadata) carry no reference count back to it.
    pub fn copied(s: &str) -> Self {
        if s.len() <= Str::INLINE {
            return Str(Repr::Inline {
                len: s.len() as u32,
                words: inline_words(s.as_bytes(), 0, s.len()),
            });
        }
        Str(Repr::Shared(Bytes::copy_from_slice(s.as_bytes())))
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
            Repr::Static(s) | Repr::StaticJsonSafe(s) => s.as_bytes(),
            Repr::Shared(b) => b,
            // SAFETY: the words are plain bytes in memory; `len` is at most INLINE.
            Repr::Inline { len, words } => unsafe {
                std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), *len as usize)
            },
        }
    }

    /// Whether this text is a view into a shared buffer (as opposed to held inline).
    pub fn is_shared(&self) -> bool {
        matches!(
            self.0,
            Repr::Shared(_) | Repr::Static(_) | Repr::StaticJsonSafe(_)
        )
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
                len: part.len() as u32,
                words: inline_words(bytes, range.start, part.len()),
            });
        }
        match &self.0 {
            Repr::Shared(b) => Str(Repr::Shared(b.slice(range))),
            Repr::Static(s) | Repr::StaticJsonSafe(s) => Str::from_static(&s[range]),
            // Unreachable: inline text is never longer than INLINE.
            Repr::Inline { .. } => Str(Repr::Shared(Bytes::copy_from_slice(part))),
        }
    }
}

/// Whether the first `len` bytes held in `words` are all ASCII.
///
/// The high-bit mask for those bytes is read from [`HIGH_BITS`] at an offset, with no branch
/// or shift per word: this ran once per decoded string, and the per-word clamping it replaced
/// was two thirds of [`Str::from_utf8_slice`].
#[inline(always)]
fn ascii_prefix(words: &[u64; Str::INLINE / 8], len: usize) -> bool {
    let Some(mask) = HIGH_BITS.get(Str::INLINE.saturating_sub(len)..) else {
        return false;
    };
    let mut high = 0u64;
    for (i, w) in words.iter().enumerate() {
        let mut m = [0u8; 8];
        m.copy_from_slice(&mask[8 * i..8 * i + 8]);
        // Memory order on both sides: native loads line the mask up with the bytes.
        high |= w & u64::from_ne_bytes(m);
    }
    high == 0
}

/// `INLINE` bytes of 0x80, then `INLINE` zeros: from offset `INLINE - len`, the high bit of
/// each of the first `len` bytes.
static HIGH_BITS: [u8; 2 * Str::INLINE] = {
    let mut t = [0u8; 2 * Str::INLINE];
    let mut i = 0;
    while i < Str::INLINE {
        t[i] = 0x80;
        i += 1;
    }
    t
};

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
            // Near the end of the buffer (a line's last fields): whole words while eight bytes
            // remain, the rest from loads that end at the buffer's end. Copied byte-wise into
            // a stack buffer and read back as words, as before, every such field stalled on
            // store forwarding.
            let tail = bytes.get(start..).unwrap_or_default();
            let mut words = [0u64; Str::INLINE / 8];
            for (i, w) in words.iter_mut().enumerate() {
                let at = 8 * i;
                if at >= len {
                    break;
                }
                *w = match tail.get(at..at + 8) {
                    Some(b) => le_word(b).to_le(),
                    None => partial_word(tail, at).to_le(),
                };
            }
            words
        }
    }
}

/// Up to eight bytes as a little-endian number (byte `k` in bits `8k..8k + 8`).
#[inline(always)]
fn le_word(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    let n = b.len().min(8);
    w[..n].copy_from_slice(&b[..n]);
    u64::from_le_bytes(w)
}

/// `tail[at..]`, fewer than eight bytes and at least one, as a little-endian number padded
/// with zeros, from at most three loads that stay inside `tail`.
#[inline(always)]
fn partial_word(tail: &[u8], at: usize) -> u64 {
    let end = tail.len();
    let r = end.saturating_sub(at);
    if end >= 8 {
        // The eight bytes that end where `tail` does, shifted down past the ones before `at`.
        le_word(&tail[end - 8..]) >> (8 * (8 - r))
    } else if r >= 4 {
        // Two overlapping four-byte loads; the bytes they share are the same.
        le_word(&tail[at..at + 4]) | le_word(&tail[end - 4..]) << (8 * (r - 4))
    } else if r > 0 {
        u64::from(tail[at])
            | u64::from(tail[at + r / 2]) << (8 * (r / 2))
            | u64::from(tail[end - 1]) << (8 * (r - 1))
    } else {
        0
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_are_inline_up_to_the_limit_and_equal_the_text() {
        for text in [
            "",
            "a",
            "checkout-7d9f8b6c5-x2x9q",
            &"é".repeat(16),
            &"x".repeat(33),
        ] {
            let s = Str::copied(text);
            assert_eq!(s.as_str(), text);
            assert_eq!(s.is_shared(), text.len() > Str::INLINE, "{text}");
        }
    }

    #[test]
    fn inline_text_is_exactly_its_bytes_wherever_it_ends_in_the_buffer() {
        // Every buffer length up to past INLINE, every start and length: text near the end
        // is read by the tail loads, the rest by whole words.
        for n in 0..=Str::INLINE + 9 {
            let buf = Bytes::from((0..n).map(|i| b'a' + (i % 26) as u8).collect::<Vec<u8>>());
            for start in 0..=n {
                for len in 0..=(n - start).min(Str::INLINE) {
                    let s = Str::from_utf8_slice(&buf, start..start + len).unwrap();
                    assert_eq!(s.as_bytes(), &buf[start..start + len], "{n} {start} {len}");
                    let line = Str::from_utf8(buf.clone()).unwrap();
                    // SAFETY: ASCII, so every index is a char boundary.
                    let part = unsafe { line.slice_unchecked(start..start + len) };
                    assert_eq!(part.as_bytes(), &buf[start..start + len]);
                }
            }
        }
    }

    #[test]
    fn the_ascii_check_looks_at_exactly_the_first_len_bytes() {
        for len in 0..=Str::INLINE {
            for bad in 0..Str::INLINE {
                let mut bytes = [b'a'; Str::INLINE];
                bytes[bad] = 0xc3;
                let words = inline_words(&bytes, 0, len);
                assert_eq!(
                    ascii_prefix(&words, len),
                    bad >= len,
                    "len {len}, 0xc3 at {bad}"
                );
            }
            let words = inline_words(&[b'a'; Str::INLINE], 0, len);
            assert!(ascii_prefix(&words, len));
        }
        // Through the constructor: a non-ASCII byte inside is checked, and refused when invalid.
        let buf = Bytes::from_static(b"ok \xff and \xc3\xa9 tail, with more bytes after it");
        assert!(Str::from_utf8_slice(&buf, 0..3).is_ok());
        assert!(Str::from_utf8_slice(&buf, 0..4).is_err());
        assert_eq!(
            Str::from_utf8_slice(&buf, 9..11).unwrap().as_str(),
            "\u{e9}"
        );
    }

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
}
