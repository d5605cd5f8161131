//! What to send again after a `_bulk` answer: only the items that failed with a retryable
//! status, copied out of the request that carried them, never the ones that were indexed.

use std::time::Duration;

use super::response::Item;

/// The items of a request to send again: their bytes (action and document lines) one after
/// another, where each ends, and which item of the original request each one was.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Resend {
    pub body: Vec<u8>,
    pub ends: Vec<usize>,
    pub origin: Vec<usize>,
}

/// Picks the `Item::Retry` items of a request whose items end at `ends` in `body`.
pub fn resend(body: &[u8], ends: &[usize], items: &[Item]) -> Resend {
    let mut out = Resend::default();
    let mut start = 0;
    for (i, (&end, item)) in ends.iter().zip(items).enumerate() {
        if matches!(item, Item::Retry { .. }) {
            out.body.extend_from_slice(&body[start..end]);
            out.ends.push(out.body.len());
            out.origin.push(i);
        }
        start = end;
    }
    out
}

/// The wait before attempt `attempt` (0 = the first retry): `initial * 2^attempt` capped at
/// `max`, then "full jitter" (a uniform share of it, at least half), so that many gateways
/// rejected by one overloaded cluster do not come back in step.
pub fn backoff(initial: Duration, max: Duration, attempt: u32, random: u64) -> Duration {
    let base = initial
        .saturating_mul(1u32 << attempt.min(20))
        .min(max)
        .max(Duration::from_millis(1));
    let half = base / 2;
    let spread = base.as_nanos().saturating_sub(half.as_nanos()) as u64;
    half + Duration::from_nanos(if spread == 0 { 0 } else { random % spread })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_retryable_items_are_sent_again_with_their_positions() {
        let body = b"A1\nD1\nA2\nD2\nA3\nD3\n";
        let ends = [6, 12, 18];
        let items = [
            Item::Retry {
                status: 429,
                kind: "es_rejected_execution_exception".into(),
            },
            Item::Done,
            Item::Retry {
                status: 503,
                kind: String::new(),
            },
        ];
        let r = resend(body, &ends, &items);
        assert_eq!(r.body, b"A1\nD1\nA3\nD3\n");
        assert_eq!(r.ends, [6, 12]);
        assert_eq!(r.origin, [0, 2]);
        let none = resend(body, &ends, &[Item::Done, Item::Done, Item::Done]);
        assert!(none.body.is_empty() && none.ends.is_empty());
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter_in_the_upper_half() {
        let (i, m) = (Duration::from_millis(100), Duration::from_secs(5));
        for (attempt, base) in [(0, 100), (1, 200), (3, 800), (10, 5000)] {
            for random in [0u64, 1, 12_345_678_901, u64::MAX] {
                let w = backoff(i, m, attempt, random);
                let base = Duration::from_millis(base);
                assert!(w >= base / 2 && w <= base, "attempt {attempt}: {w:?}");
            }
        }
    }
}
