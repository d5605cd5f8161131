//! `batch`: merges records from many requests into fewer, larger batches for the exporters,
//! like the OTel Collector's batch processor but without its two flaws: a client is answered
//! only once every batch holding its records is delivered, and a full exporter queue still
//! refuses new requests (429 / RESOURCE_EXHAUSTED) instead of piling them up in memory.
//!
//! ```yaml
//! processors:
//!   batch:
//!     send_batch_size: 8192        # send once this many records wait
//!     timeout: 200ms               # or once the oldest waited this long
//!     send_batch_max_size: 0       # cut larger batches to this size; 0 = no limit
//!     metadata_keys: [x-tenant]    # batch apart per value of these headers / gRPC metadata
//!     metadata_cardinality_limit: 1000
//! ```
//!
//! It must be a pipeline's last processor: the batching itself runs in the pipeline's batcher
//! task (`pipeline::batcher`), which hands batches to the exporters. Because requests wait for
//! delivery, a client that sends one request at a time waits up to `timeout` per request; such
//! clients want a shorter `timeout`, or the batching their exporter queue already does.
//! On shutdown what is waiting is sent at once.

use std::time::Duration;

use hyper::header::HeaderName;
use serde::Deserialize;

use crate::component::{ALL_SIGNALS, Built, Context, Spec, Yaml};
use crate::config::{ConfigError, decode, duration};
use crate::pipeline::Stage;
use crate::pipeline::batcher::{Metrics, Settings};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Records that make a batch worth sending; 0 sends on the timeout only. Default 8192.
    #[serde(default = "default_size")]
    pub send_batch_size: usize,
    /// How long the first record of a batch waits for it to fill; 0 sends each request as it
    /// comes. Default `200ms`.
    #[serde(default = "default_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
    /// The largest batch sent; larger ones are split. 0 for no limit (the default); otherwise
    /// at least `send_batch_size`.
    #[serde(default)]
    pub send_batch_max_size: usize,
    /// Request headers (gRPC metadata keys) whose values keep batches apart, for exporters
    /// that route by tenant. Default none.
    #[serde(default)]
    pub metadata_keys: Vec<String>,
    /// The most value combinations of `metadata_keys` batched at once; requests bringing a
    /// new one beyond it are refused as retryable. Default 1000.
    #[serde(default = "default_cardinality")]
    pub metadata_cardinality_limit: usize,
}

fn default_size() -> usize {
    8192
}

fn default_timeout() -> Duration {
    Duration::from_millis(200)
}

fn default_cardinality() -> usize {
    1000
}

/// The most `metadata_keys`; batch keys index them with a byte.
const MAX_KEYS: usize = 32;

/// The `batch` processor type, as the registry lists it.
pub const SPEC: Spec<Stage> = Spec::new("batch", ALL_SIGNALS, build, "~");

pub fn build(ctx: &Context, raw: Yaml) -> Built<Stage> {
    let cfg: Config = decode(ctx.path, raw).map_err(|e| vec![e])?;
    let mut errors = Vec::new();
    let at = |field: &str| format!("{}.{field}", ctx.path);
    if cfg.send_batch_max_size != 0 && cfg.send_batch_max_size < cfg.send_batch_size {
        errors.push(ConfigError::new(
            at("send_batch_max_size"),
            format!(
                "must be 0 or at least send_batch_size ({})",
                cfg.send_batch_size
            ),
        ));
    }
    if cfg.send_batch_size == 0 && cfg.timeout.is_zero() {
        errors.push(ConfigError::new(
            at("timeout"),
            "with send_batch_size 0 batches are sent on the timeout only, so it must be above 0",
        ));
    }
    if cfg.metadata_keys.len() > MAX_KEYS {
        errors.push(ConfigError::new(
            at("metadata_keys"),
            format!("at most {MAX_KEYS} keys"),
        ));
    }
    let mut keys: Vec<HeaderName> = Vec::new();
    for (i, k) in cfg.metadata_keys.iter().enumerate() {
        match HeaderName::try_from(k.to_ascii_lowercase()) {
            Ok(name) if keys.contains(&name) => errors.push(ConfigError::new(
                format!("{}.metadata_keys[{i}]", ctx.path),
                format!("{k:?} is listed twice (keys are case-insensitive)"),
            )),
            Ok(name) => keys.push(name),
            Err(_) => errors.push(ConfigError::new(
                format!("{}.metadata_keys[{i}]", ctx.path),
                format!("{k:?} is not a valid header or metadata name"),
            )),
        }
    }
    if cfg.metadata_cardinality_limit == 0 {
        errors.push(ConfigError::new(
            at("metadata_cardinality_limit"),
            "must be greater than zero",
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let id = ctx.id.to_string();
    Ok(Stage::Batch(Settings {
        send_batch_size: cfg.send_batch_size,
        send_batch_max_size: cfg.send_batch_max_size,
        timeout: cfg.timeout,
        metadata_keys: keys,
        metadata_cardinality_limit: cfg.metadata_cardinality_limit,
        metrics: Metrics::new(ctx.telemetry, &id, ctx.pipeline),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::build_errors;

    fn errors(yaml: &str) -> Vec<String> {
        build_errors(build, "processors", "batch", yaml)
    }

    #[test]
    fn defaults_follow_the_collector() {
        let id = crate::config::ComponentId::parse("batch").unwrap();
        let reg = crate::telemetry::Registry::default();
        let ctx = Context::for_test(&id, "processors.batch", &reg);
        let Ok(Stage::Batch(s)) = build(&ctx, serde_yaml_ng::Value::Null) else {
            panic!("batch builds into a batch stage");
        };
        assert_eq!(s.send_batch_size, 8192);
        assert_eq!(s.timeout, Duration::from_millis(200));
        assert_eq!(s.send_batch_max_size, 0);
        assert_eq!(s.metadata_cardinality_limit, 1000);
    }

    #[test]
    fn max_size_below_the_batch_size_is_refused() {
        assert_eq!(
            errors("{send_batch_size: 100, send_batch_max_size: 50}"),
            ["processors.batch.send_batch_max_size: must be 0 or at least send_batch_size (100)"]
        );
        assert!(errors("{send_batch_size: 100, send_batch_max_size: 100}").is_empty());
    }

    #[test]
    fn metadata_keys_must_be_header_names_and_distinct() {
        let errs = errors("{metadata_keys: [X-Tenant, x-tenant, 'bad key']}");
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].starts_with("processors.batch.metadata_keys[1]: "));
        assert!(errs[1].starts_with("processors.batch.metadata_keys[2]: "));
    }

    #[test]
    fn timeout_only_batching_needs_a_timeout() {
        assert_eq!(errors("{send_batch_size: 0, timeout: 0s}").len(), 1);
        assert!(errors("{send_batch_size: 0, timeout: 1s}").is_empty());
    }
}
