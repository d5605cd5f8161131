//! The retry policy (`retry:`) and what to send again after a `_bulk` answer: only the items
//! that failed with a retryable status, copied out of the request that carried them, never
//! the ones that were indexed.

use std::time::Duration;

use serde::Deserialize;

use super::response::Item;
use crate::config::{ConfigError, duration};
use crate::exporters::backoff;

/// `retry:` of the `elasticsearch` exporter.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// `false`: a failed request or item is not retried. Default `true`.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Attempts after the first, for a whole request and for each failed item. Default 10
    /// (with the default intervals, about three minutes of retrying).
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// Default `1s`.
    #[serde(default = "default_initial", deserialize_with = "duration")]
    pub initial_interval: Duration,
    /// Default `30s`.
    #[serde(default = "default_max_interval", deserialize_with = "duration")]
    pub max_interval: Duration,
    /// Statuses worth retrying, for whole requests and single items. Default 429, 502, 503,
    /// 504.
    #[serde(default = "default_retry_on")]
    pub retry_on_status: Vec<u16>,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            enabled: true,
            max_retries: default_max_retries(),
            initial_interval: default_initial(),
            max_interval: default_max_interval(),
            retry_on_status: default_retry_on(),
        }
    }
}

fn yes() -> bool {
    true
}
fn default_max_retries() -> u32 {
    10
}
fn default_initial() -> Duration {
    Duration::from_secs(1)
}
fn default_max_interval() -> Duration {
    Duration::from_secs(30)
}
fn default_retry_on() -> Vec<u16> {
    vec![429, 502, 503, 504]
}

impl RetryConfig {
    /// Reports bad settings under `<path>.retry`.
    pub fn check(&self, path: &str, errors: &mut Vec<ConfigError>) {
        if self.initial_interval.is_zero() || self.max_interval < self.initial_interval {
            errors.push(ConfigError::new(
                format!("{path}.retry"),
                "need 0 < initial_interval <= max_interval",
            ));
        }
        if let Some(bad) = self
            .retry_on_status
            .iter()
            .find(|s| !(100..=599).contains(*s))
        {
            errors.push(ConfigError::new(
                format!("{path}.retry.retry_on_status"),
                format!("{bad} is not an HTTP status"),
            ));
        }
    }

    /// Whether `attempt` retries (0 = none yet) have used up the policy.
    pub fn exhausted(&self, attempt: u32) -> bool {
        !self.enabled || attempt >= self.max_retries
    }

    /// The wait before retry number `attempt` (0 = the first).
    pub fn wait(&self, attempt: u32) -> Duration {
        backoff::jittered(
            self.initial_interval,
            self.max_interval,
            attempt,
            backoff::random(),
        )
    }
}

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
}
