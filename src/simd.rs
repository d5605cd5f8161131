//! Sixteen bytes at a time: the byte scans of the hot paths (JSON escaping, the log-format
//! matcher's class runs) classify a 16-byte chunk into a bit mask, one bit per byte, with a few
//! vector instructions and one branch, where a scalar scan spends a table lookup and a branch
//! per byte and mispredicts where each short field ends.
//!
//! x86-64 uses SSE2, which every x86-64 CPU has, so there is no runtime detection; other
//! targets get the same operations written byte by byte, which the compiler vectorises where it
//! can. Rust makes each SSE2 intrinsic `unsafe` to call (sound here: x86-64 guarantees SSE2);
//! the only ones that touch memory are the unaligned load and the store in `to_bytes`.
//! `fuzz/checks.rs` (`str_json`) compares every operation with its byte-by-byte definition on
//! fuzzed input.

/// Sixteen bytes, or a lane mask (each byte 0x00 or 0xFF) computed from them.
#[derive(Clone, Copy)]
pub struct Chunk(imp::V);

impl Chunk {
    /// The chunk's width in bytes.
    pub const LEN: usize = 16;

    #[inline(always)]
    pub fn load(bytes: &[u8; 16]) -> Chunk {
        Chunk(imp::load(bytes))
    }

    /// The 16 bytes of `s` starting at `at`.
    ///
    /// # Panics
    /// When `s` has fewer than 16 bytes from `at`; callers loop while `at + 16 <= s.len()`,
    /// which lets the compiler drop the check.
    #[inline(always)]
    pub fn at(s: &[u8], at: usize) -> Chunk {
        let bytes: &[u8; 16] = s[at..at + 16].try_into().expect("16 bytes");
        Chunk::load(bytes)
    }

    /// Lanes equal to `b`.
    #[inline(always)]
    pub fn eq(self, b: u8) -> Chunk {
        Chunk(imp::eq(self.0, imp::splat(b)))
    }

    /// Lanes whose byte is at most `hi` (unsigned).
    #[inline(always)]
    pub fn at_most(self, hi: u8) -> Chunk {
        Chunk(imp::at_most(self.0, imp::splat(hi)))
    }

    /// `b` in every lane. SSE2 has no one-instruction broadcast of a byte from a register, so
    /// scans whose bytes are known only at run time keep their splats built once
    /// ([`Chunk::in_span`]).
    #[inline(always)]
    pub fn splat(b: u8) -> Chunk {
        Chunk(imp::splat(b))
    }

    /// Lanes whose byte lies in `lo ..= lo + span` (unsigned), with `lo` and `span` splats
    /// built once: three instructions.
    #[inline(always)]
    pub fn in_span(self, lo: Chunk, span: Chunk) -> Chunk {
        let t = imp::sub(self.0, lo.0);
        Chunk(imp::at_most(t, span.0))
    }

    #[inline(always)]
    pub fn or(self, other: Chunk) -> Chunk {
        Chunk(imp::or(self.0, other.0))
    }

    /// One bit per lane, lane 0 in bit 0: set where the lane's top bit is (every lane of a
    /// mask is 0x00 or 0xFF).
    #[inline(always)]
    pub fn bits(self) -> u32 {
        imp::bits(self.0)
    }

    /// The chunk's bytes, for tests and the fuzz check.
    pub fn to_bytes(self) -> [u8; 16] {
        imp::to_bytes(self.0)
    }
}

#[cfg(target_arch = "x86_64")]
mod imp {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8, _mm_storeu_si128, _mm_sub_epi8,
    };

    pub type V = __m128i;

    #[inline(always)]
    pub fn load(bytes: &[u8; 16]) -> V {
        // SAFETY: `bytes` is valid for 16 bytes of reads, and `loadu` has no alignment
        // requirement; SSE2 is part of the x86-64 baseline.
        unsafe { _mm_loadu_si128(bytes.as_ptr().cast()) }
    }

    #[inline(always)]
    pub fn splat(b: u8) -> V {
        // SAFETY: SSE2 is part of the x86-64 baseline: every x86-64 CPU has the instruction.
        unsafe { _mm_set1_epi8(b as i8) }
    }

    #[inline(always)]
    pub fn eq(v: V, b: V) -> V {
        // SAFETY: SSE2 is part of the x86-64 baseline: every x86-64 CPU has the instruction.
        unsafe { _mm_cmpeq_epi8(v, b) }
    }

    #[inline(always)]
    pub fn sub(v: V, b: V) -> V {
        // SAFETY: SSE2 is part of the x86-64 baseline: every x86-64 CPU has the instruction.
        unsafe { _mm_sub_epi8(v, b) }
    }

    /// `min(v, hi) == v` per lane: SSE2 has no unsigned byte compare, but an unsigned minimum.
    #[inline(always)]
    pub fn at_most(v: V, hi: V) -> V {
        // SAFETY: SSE2 is part of the x86-64 baseline: every x86-64 CPU has the instruction.
        unsafe { _mm_cmpeq_epi8(_mm_min_epu8(v, hi), v) }
    }

    #[inline(always)]
    pub fn or(a: V, b: V) -> V {
        // SAFETY: SSE2 is part of the x86-64 baseline: every x86-64 CPU has the instruction.
        unsafe { _mm_or_si128(a, b) }
    }

    #[inline(always)]
    pub fn bits(v: V) -> u32 {
        // SAFETY: SSE2 is part of the x86-64 baseline: every x86-64 CPU has the instruction.
        unsafe { _mm_movemask_epi8(v) as u32 }
    }

    pub fn to_bytes(v: V) -> [u8; 16] {
        let mut out = [0u8; 16];
        // SAFETY: `out` is valid for 16 bytes of writes; `storeu` needs no alignment.
        unsafe { _mm_storeu_si128(out.as_mut_ptr().cast(), v) };
        out
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod imp {
    pub type V = [u8; 16];

    #[inline(always)]
    pub fn load(bytes: &[u8; 16]) -> V {
        *bytes
    }

    #[inline(always)]
    pub fn splat(b: u8) -> V {
        [b; 16]
    }

    #[inline(always)]
    pub fn eq(v: V, b: V) -> V {
        std::array::from_fn(|i| if v[i] == b[i] { 0xFF } else { 0 })
    }

    #[inline(always)]
    pub fn sub(v: V, b: V) -> V {
        std::array::from_fn(|i| v[i].wrapping_sub(b[i]))
    }

    #[inline(always)]
    pub fn at_most(v: V, hi: V) -> V {
        std::array::from_fn(|i| if v[i] <= hi[i] { 0xFF } else { 0 })
    }

    #[inline(always)]
    pub fn or(a: V, b: V) -> V {
        std::array::from_fn(|i| a[i] | b[i])
    }

    #[inline(always)]
    pub fn bits(v: V) -> u32 {
        v.iter()
            .enumerate()
            .fold(0, |m, (i, &b)| m | u32::from(b >> 7) << i)
    }

    pub fn to_bytes(v: V) -> [u8; 16] {
        v
    }
}

#[cfg(test)]
mod tests {
    use super::Chunk;

    fn bits_where(bytes: &[u8; 16], f: impl Fn(u8) -> bool) -> u32 {
        (0..16).fold(0, |m, i| m | u32::from(f(bytes[i])) << i)
    }

    #[test]
    fn every_operation_agrees_with_its_byte_by_byte_definition() {
        // Every byte value appears in some lane, next to neighbours that differ.
        for start in 0..=255u8 {
            let bytes: [u8; 16] = std::array::from_fn(|i| start.wrapping_add((i * 37) as u8));
            let c = Chunk::load(&bytes);
            for probe in [0u8, 0x1f, b'"', b'\\', 0x7f, 0x80, 0xff, start] {
                assert_eq!(c.eq(probe).bits(), bits_where(&bytes, |b| b == probe));
                assert_eq!(c.at_most(probe).bits(), bits_where(&bytes, |b| b <= probe));
                for hi in [probe, probe.saturating_add(9), 0xff, probe.wrapping_sub(1)] {
                    if probe <= hi {
                        let want = bits_where(&bytes, |b| (probe..=hi).contains(&b));
                        let (lo, span) = (Chunk::splat(probe), Chunk::splat(hi - probe));
                        assert_eq!(c.in_span(lo, span).bits(), want, "{probe}..={hi}");
                    }
                }
            }
            assert_eq!(
                c.eq(b'a').or(c.eq(b'b')).bits(),
                bits_where(&bytes, |b| b == b'a' || b == b'b')
            );
            assert_eq!(c.to_bytes(), bytes);
        }
    }

    #[test]
    fn at_reads_the_sixteen_bytes_from_the_offset() {
        let s: Vec<u8> = (0..40).collect();
        let c = Chunk::at(&s, 20);
        assert_eq!(c.to_bytes().to_vec(), s[20..36].to_vec());
    }
}
