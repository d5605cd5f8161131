//! The one retry schedule every exporter uses: `initial * 2^attempt`, capped at `max`. The
//! Elasticsearch exporter adds jitter ([`jittered`]), since many gateways rejected by one
//! overloaded cluster must not come back in step; a tcp or OTLP peer is one connection's own.

use std::time::Duration;

/// The wait before retry number `attempt` (0 = the first): `initial * 2^attempt` capped at `max`
/// (and at least a millisecond, so a loop never spins).
pub fn exponential(initial: Duration, max: Duration, attempt: u32) -> Duration {
    initial
        .saturating_mul(1u32 << attempt.min(20))
        .min(max)
        .max(Duration::from_millis(1))
}

/// [`exponential`], then "full jitter" in its upper half: a uniform share of it, at least half,
/// chosen by `random`.
pub fn jittered(initial: Duration, max: Duration, attempt: u32, random: u64) -> Duration {
    let base = exponential(initial, max, attempt);
    let half = base / 2;
    let spread = base.as_nanos().saturating_sub(half.as_nanos()) as u64;
    half + Duration::from_nanos(if spread == 0 { 0 } else { random % spread })
}

/// A random number for [`jittered`], from the standard library's per-process random keys.
pub fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_cap() {
        let (i, m) = (Duration::from_millis(100), Duration::from_secs(5));
        let waits: Vec<u128> = (0..8).map(|a| exponential(i, m, a).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(exponential(i, m, u32::MAX), m);
        assert_eq!(exponential(Duration::ZERO, m, 0), Duration::from_millis(1));
    }

    #[test]
    fn jitter_stays_in_the_upper_half_of_the_wait() {
        let (i, m) = (Duration::from_millis(100), Duration::from_secs(5));
        for (attempt, base) in [(0, 100), (1, 200), (3, 800), (10, 5000)] {
            for random in [0u64, 1, 12_345_678_901, u64::MAX] {
                let w = jittered(i, m, attempt, random);
                let base = Duration::from_millis(base);
                assert!(w >= base / 2 && w <= base, "attempt {attempt}: {w:?}");
            }
        }
    }
}
