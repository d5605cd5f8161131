//! Damaged copies of protobuf messages, for tests that hold a fast reader to the general one
//! on any bytes.

/// Each of `cases` as it is, then damaged `rounds - 1` more times (bytes changed, cut short,
/// inserted), from a fixed seed.
pub fn damaged(cases: &[Vec<u8>], rounds: usize) -> impl Iterator<Item = Vec<u8>> + '_ {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed = xorshift(seed);
        seed
    };
    cases.iter().flat_map(move |base| {
        (0..rounds)
            .map(|round| {
                let mut b = base.clone();
                if round > 0 {
                    for _ in 0..1 + next() % 3 {
                        let at = (next() % b.len().max(1) as u64) as usize;
                        match next() % 3 {
                            0 if !b.is_empty() => b[at] = next() as u8,
                            1 if !b.is_empty() => b.truncate(at),
                            _ => b.insert(
                                at.min(b.len()),
                                [0x0a, 0x12, 0x80, 0xff][next() as usize % 4],
                            ),
                        }
                    }
                }
                b
            })
            .collect::<Vec<_>>()
    })
}

/// Marsaglia's xorshift64: the same noise on every run, with no crate for it.
fn xorshift(x: u64) -> u64 {
    let x = x ^ (x << 13);
    let x = x ^ (x >> 7);
    x ^ (x << 17)
}
