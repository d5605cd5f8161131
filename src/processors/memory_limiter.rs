//! `memory_limiter`: refuses new data while the process uses too much memory, like the OTel
//! Collector's, so a gateway under a traffic spike pushes back (429 / RESOURCE_EXHAUSTED with
//! a retry hint) instead of being OOM-killed with everything it held.
//!
//! ```yaml
//! processors:
//!   memory_limiter:
//!     check_interval: 1s
//!     limit_mib: 1500            # or limit_percentage: 80 (of the cgroup limit, else of RAM)
//!     spike_limit_mib: 300       # or spike_limit_percentage: 20; default 20% of the limit
//! ```
//!
//! Above the soft limit (`limit - spike_limit`) every receiver refuses new data; once back
//! below, it takes data again. Checking the heap when a request arrives is not enough: a burst
//! of requests all get in before any of them has allocated. So every request in flight also
//! holds a reservation (`pipeline::Charge`): its buffers as they grow, then what decoding may
//! cost (each decoder's stated bytes per body byte) until its records are queued. A reservation
//! is granted while the heap plus every reservation stays under the soft limit; a request that
//! is the only one holding any is granted up to the hard limit, so that one request larger than
//! the headroom is still taken when nothing else is in flight. Refused, the request is answered
//! 429 / RESOURCE_EXHAUSTED with the retry hint. What is reserved is exported as
//! `sluice_memory_limiter_reserved_bytes`. What is measured is the live heap: the bytes sluice's counting
//! global allocator (`crate::alloc`) has handed out and not had back, as the Collector reads
//! Go's heap. Resident memory (RSS) would be the wrong signal: after a spike the allocator keeps
//! freed pages mapped for reuse, so RSS stays near its peak while sluice holds nothing, and
//! the limiter would refuse forever. Where the counting allocator is not installed (sluice
//! used as a library) RSS from `/proc/self/statm` is the fallback. The spike headroom is what
//! covers the gap between the two: allocator overhead and the requests being read when the
//! limit is crossed. Memory is read on the request path at most once per `check_interval`, so
//! an idle process reads nothing. The state is exported as `sluice_memory_limiter_refusing`,
//! `sluice_memory_limiter_heap_bytes`, `sluice_memory_limiter_rss_bytes` and
//! `sluice_memory_limiter_soft_limit_bytes`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::component::{ALL_SIGNALS, Built, Context, Spec, Yaml};
use crate::config::{ConfigError, decode, duration};
use crate::pipeline::{Admission, Stage};
use crate::telemetry::Gauge;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// How often memory is measured. Default `1s`.
    #[serde(default = "default_interval", deserialize_with = "duration")]
    pub check_interval: Duration,
    /// The hard limit in MiB. One of this and `limit_percentage` is required.
    #[serde(default)]
    pub limit_mib: Option<u64>,
    /// Headroom below the limit in MiB: refusing starts at `limit - spike`. Default 20% of the
    /// limit.
    #[serde(default)]
    pub spike_limit_mib: Option<u64>,
    /// The limit as a percentage of the cgroup (v2 or v1) memory limit, or of total memory
    /// when there is none.
    #[serde(default)]
    pub limit_percentage: Option<u64>,
    /// The spike headroom as a percentage of the same total.
    #[serde(default)]
    pub spike_limit_percentage: Option<u64>,
}

fn default_interval() -> Duration {
    Duration::from_secs(1)
}

const MIB: u64 = 1 << 20;

/// The hard and soft limits in bytes, or why the settings do not give them.
fn limits(
    cfg: &Config,
    total: impl Fn() -> Option<u64>,
) -> Result<(u64, u64), (&'static str, String)> {
    let (limit, spike) = match (cfg.limit_mib, cfg.limit_percentage) {
        (Some(_), Some(_)) => {
            return Err((
                "limit_mib",
                "set limit_mib or limit_percentage, not both".into(),
            ));
        }
        (None, None) => {
            return Err((
                "limit_mib",
                "one of limit_mib and limit_percentage is required".into(),
            ));
        }
        (Some(mib), None) => {
            let limit = mib.saturating_mul(MIB);
            (limit, cfg.spike_limit_mib.map(|s| s.saturating_mul(MIB)))
        }
        (None, Some(pct)) => {
            if pct == 0 || pct > 100 {
                return Err(("limit_percentage", "must be between 1 and 100".into()));
            }
            let total =
                total().ok_or(("limit_percentage", "total memory is unknown".to_string()))?;
            let spike = cfg.spike_limit_percentage.map(|p| total / 100 * p);
            (total / 100 * pct, spike)
        }
    };
    if limit == 0 {
        return Err(("limit_mib", "must be greater than zero".into()));
    }
    let spike = spike.unwrap_or(limit / 5);
    if spike >= limit {
        return Err((
            "spike_limit_mib",
            format!("must be below the limit ({} MiB)", limit / MIB),
        ));
    }
    Ok((limit, limit - spike))
}

/// The memory this process may use: the cgroup v2 or v1 limit when one is set, else RAM.
fn total_memory() -> Option<u64> {
    let read = |p: &str| std::fs::read_to_string(p).ok();
    if let Some(v) = read("/sys/fs/cgroup/memory.max").and_then(|s| parse_limit(&s)) {
        return Some(v);
    }
    if let Some(v) =
        read("/sys/fs/cgroup/memory/memory.limit_in_bytes").and_then(|s| parse_limit(&s))
    {
        return Some(v);
    }
    read("/proc/meminfo").and_then(|m| {
        m.lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
    })
}

/// A cgroup limit file: a number of bytes, `max`, or (v1) a huge number meaning no limit.
fn parse_limit(s: &str) -> Option<u64> {
    let v = s.trim().parse::<u64>().ok()?;
    (v < 1 << 60).then_some(v)
}

/// The resident set size, from `/proc/self/statm` (its second field, in pages).
fn rss() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

/// The kernel's page size, from the auxiliary vector the kernel hands every process (no libc
/// call needed); 4 KiB if it cannot be read.
fn page_size() -> u64 {
    const AT_PAGESZ: u64 = 6;
    std::fs::read("/proc/self/auxv")
        .ok()
        .and_then(|auxv| {
            auxv.chunks_exact(16).find_map(|pair| {
                let key = u64::from_ne_bytes(pair[..8].try_into().ok()?);
                let value = u64::from_ne_bytes(pair[8..].try_into().ok()?);
                (key == AT_PAGESZ).then_some(value)
            })
        })
        .unwrap_or(4096)
}

/// State shared by every worker's instance.
struct Shared {
    soft_limit: u64,
    hard_limit: u64,
    /// Bytes reserved by requests in flight.
    reserved: AtomicU64,
    interval_ms: u64,
    started: Instant,
    last_check_ms: AtomicU64,
    refusing: AtomicBool,
    read: Box<dyn Fn() -> Option<Reading> + Send + Sync>,
    gauges: Gauges,
}

/// The limiter's state, as exported.
#[derive(Default)]
struct Gauges {
    refusing: Gauge,
    heap: Gauge,
    heap_peak: Gauge,
    rss: Gauge,
    reserved: Gauge,
}

impl Gauges {
    fn new(t: &crate::telemetry::Registry, labels: &[(&str, &str)]) -> Gauges {
        Gauges {
            refusing: t.gauge(
                "sluice_memory_limiter_refusing",
                "1 while the memory limiter refuses new data.",
                labels,
            ),
            heap: t.gauge(
                "sluice_memory_limiter_heap_bytes",
                "Live heap bytes at the last check (0 without sluice's counting allocator).",
                labels,
            ),
            heap_peak: t.gauge(
                "sluice_memory_limiter_heap_peak_bytes",
                "The most live heap bytes seen since start (0 without sluice's allocator).",
                labels,
            ),
            rss: t.gauge(
                "sluice_memory_limiter_rss_bytes",
                "Resident memory at the last check.",
                labels,
            ),
            reserved: t.gauge(
                "sluice_memory_limiter_reserved_bytes",
                "Bytes reserved by requests being read and decoded, at the last check.",
                labels,
            ),
        }
    }
}

/// One measurement: the live heap when the counting allocator is installed, and RSS.
#[derive(Clone, Copy, Debug, Default)]
struct Reading {
    heap: Option<u64>,
    rss: Option<u64>,
}

impl Reading {
    fn now() -> Option<Reading> {
        let r = Reading {
            heap: crate::alloc::live_bytes(),
            rss: rss(),
        };
        (r.heap.is_some() || r.rss.is_some()).then_some(r)
    }

    /// What the limit applies to: the heap, else RSS.
    fn used(&self) -> u64 {
        self.heap.or(self.rss).unwrap_or(0)
    }
}

impl Shared {
    /// Measures again if the last reading is older than the interval (one caller does it).
    fn refresh(&self) {
        let now = self.started.elapsed().as_millis() as u64 + self.interval_ms;
        let last = self.last_check_ms.load(Ordering::Relaxed);
        if now < last + self.interval_ms
            || self
                .last_check_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let Some(reading) = (self.read)() else {
            return;
        };
        let used = reading.used();
        let over = used > self.soft_limit;
        let was = self.refusing.swap(over, Ordering::Relaxed);
        if over != was {
            if over {
                tracing::warn!(
                    used_mib = used / MIB,
                    rss_mib = reading.rss.unwrap_or(0) / MIB,
                    soft_limit_mib = self.soft_limit / MIB,
                    "memory limiter: over the soft limit; refusing data"
                );
            } else {
                tracing::info!(
                    used_mib = used / MIB,
                    rss_mib = reading.rss.unwrap_or(0) / MIB,
                    "memory limiter: back below the soft limit; accepting data"
                );
            }
        }
        if over {
            // Refusing means what is freed will not be reused soon: hand it back, as the
            // Collector forces a GC, so the resident size follows the heap down.
            crate::alloc::release_free_memory();
        }
        let g = &self.gauges;
        g.heap.set(reading.heap.unwrap_or(0) as i64);
        g.heap_peak
            .set(crate::alloc::peak_bytes().unwrap_or(0) as i64);
        g.rss.set(reading.rss.unwrap_or(0) as i64);
        g.reserved.set(self.reserved.load(Ordering::Relaxed) as i64);
        g.refusing.set(i64::from(over));
    }
}

pub struct MemoryLimiter(Arc<Shared>);

/// The `memory_limiter` processor type, as the registry lists it.
pub const SPEC: Spec<Stage> = Spec::new("memory_limiter", ALL_SIGNALS, build, "{limit_mib: 1024}");

pub fn build(ctx: &Context, raw: Yaml) -> Built<Stage> {
    let cfg: Config = decode(ctx.path, raw).map_err(|e| vec![e])?;
    if cfg.check_interval.is_zero() {
        return Err(vec![ConfigError::new(
            format!("{}.check_interval", ctx.path),
            "must be greater than zero",
        )]);
    }
    let (hard, soft) = limits(&cfg, total_memory)
        .map_err(|(field, msg)| vec![ConfigError::new(format!("{}.{field}", ctx.path), msg)])?;
    let id = ctx.id.to_string();
    let labels = [("processor", id.as_str()), ("pipeline", ctx.pipeline)];
    let t = ctx.telemetry;
    t.gauge(
        "sluice_memory_limiter_soft_limit_bytes",
        "Live heap (or, without sluice's allocator, resident memory) above which new data is refused.",
        &labels,
    )
    .set(soft as i64);
    Ok(Stage::Gate(Arc::new(MemoryLimiter::new(
        (hard, soft),
        cfg.check_interval,
        Box::new(Reading::now),
        Gauges::new(t, &labels),
    ))))
}

impl MemoryLimiter {
    fn new(
        (hard_limit, soft_limit): (u64, u64),
        interval: Duration,
        read: Box<dyn Fn() -> Option<Reading> + Send + Sync>,
        gauges: Gauges,
    ) -> Self {
        MemoryLimiter(Arc::new(Shared {
            soft_limit,
            hard_limit,
            reserved: AtomicU64::new(0),
            interval_ms: (interval.as_millis() as u64).max(1),
            started: Instant::now(),
            last_check_ms: AtomicU64::new(0),
            refusing: AtomicBool::new(false),
            read,
            gauges,
        }))
    }
}

impl Admission for MemoryLimiter {
    /// Refuses while the last reading was over the soft limit, and also as soon as the live
    /// heap is, where reading it costs an atomic load (the counting allocator): requests
    /// arriving together between two readings cannot all come in.
    fn admit(&self) -> bool {
        self.0.refresh();
        !self.0.refusing.load(Ordering::Relaxed)
            && crate::alloc::live_bytes().is_none_or(|heap| heap <= self.0.soft_limit)
    }

    /// Grants `bytes` while the heap and every reservation stay under the soft limit, or, to a
    /// request that is the only one holding a reservation, while the heap and it stay under the
    /// hard limit. The heap already counts what admitted requests have allocated, so a request
    /// is counted twice for what it has read: the budget errs on the side of refusing.
    fn reserve(&self, bytes: u64, held: u64) -> bool {
        let s = &self.0;
        s.refresh();
        // Without the counting allocator the last reading (RSS) stands in for the heap.
        let heap = crate::alloc::live_bytes().unwrap_or_else(|| {
            if s.refusing.load(Ordering::Relaxed) {
                u64::MAX / 4
            } else {
                0
            }
        });
        let mut reserved = s.reserved.load(Ordering::Relaxed);
        loop {
            let after = reserved.saturating_add(bytes);
            let alone = reserved <= held;
            let fits = heap.saturating_add(after) <= s.soft_limit
                || (alone && heap.saturating_add(held + bytes) <= s.hard_limit);
            if !fits {
                return false;
            }
            match s.reserved.compare_exchange_weak(
                reserved,
                after,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => reserved = now,
            }
        }
    }

    fn release(&self, bytes: u64) {
        let _ = self
            .0
            .reserved
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |r| {
                Some(r.saturating_sub(bytes))
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    fn cfg(yaml: &str) -> Config {
        decode("p", serde_yaml_ng::from_str(yaml).unwrap()).unwrap()
    }

    #[test]
    fn soft_limit_is_the_limit_less_the_spike() {
        let none = || None;
        let soft = |c: &str, total: &dyn Fn() -> Option<u64>| limits(&cfg(c), total).map(|l| l.1);
        assert_eq!(
            limits(&cfg("{limit_mib: 100}"), none),
            Ok((100 * MIB, 80 * MIB))
        );
        assert_eq!(
            soft("{limit_mib: 100, spike_limit_mib: 30}", &none),
            Ok(70 * MIB)
        );
        let total = || Some(1000 * MIB);
        assert_eq!(
            soft("{limit_percentage: 80, spike_limit_percentage: 20}", &total),
            Ok(600 * MIB)
        );
        assert!(soft("{limit_mib: 100, spike_limit_mib: 100}", &none).is_err());
        assert!(soft("{}", &none).is_err());
        assert!(soft("{limit_mib: 1, limit_percentage: 5}", &none).is_err());
    }

    #[test]
    fn reservations_share_the_room_under_the_soft_limit_and_one_alone_may_reach_the_hard() {
        let limiter = MemoryLimiter::new(
            (1000, 800),
            Duration::from_secs(3600),
            Box::new(|| {
                Some(Reading {
                    heap: Some(0),
                    rss: Some(0),
                })
            }),
            Gauges::default(),
        );
        // The test binary has no counting allocator: the heap reads as 0.
        assert!(limiter.reserve(500, 0));
        assert!(limiter.reserve(300, 0), "800 in all: at the soft limit");
        assert!(!limiter.reserve(1, 0), "a third request finds no room");
        assert!(!limiter.reserve(1, 500), "nor does the first grow past it");
        limiter.release(300);
        limiter.release(500);
        assert_eq!(limiter.0.reserved.load(Ordering::Relaxed), 0);
        // Alone, a request may grow to the hard limit, and no further.
        assert!(limiter.reserve(700, 0));
        assert!(limiter.reserve(300, 700), "alone: up to the hard limit");
        assert!(!limiter.reserve(1, 1000));
        assert!(
            !limiter.reserve(100, 0),
            "another finds none while it holds everything"
        );
        limiter.release(1000);
        assert!(limiter.reserve(100, 0));
    }

    #[test]
    fn cgroup_limits_parse_and_max_means_none() {
        assert_eq!(parse_limit("536870912\n"), Some(512 * MIB));
        assert_eq!(parse_limit("max\n"), None);
        assert_eq!(parse_limit("9223372036854771712"), None, "v1's 'unlimited'");
        assert!(total_memory().is_some_and(|t| t > 0));
        assert!(rss().is_some_and(|r| r > 0));
    }

    #[test]
    fn the_heap_decides_when_counted_and_rss_otherwise() {
        let both = Reading {
            heap: Some(10),
            rss: Some(500),
        };
        assert_eq!(
            both.used(),
            10,
            "RSS stays high after a spike; the heap does not"
        );
        let rss_only = Reading {
            heap: None,
            rss: Some(500),
        };
        assert_eq!(rss_only.used(), 500);
    }

    #[test]
    fn refuses_above_the_soft_limit_and_accepts_again_below() {
        let used = Arc::new(AtomicU64::new(10));
        let reading = Arc::clone(&used);
        let limiter = MemoryLimiter::new(
            (200, 100),
            Duration::from_millis(1),
            Box::new(move || {
                Some(Reading {
                    heap: Some(reading.load(Ordering::Relaxed)),
                    rss: Some(1 << 40),
                })
            }),
            Gauges::default(),
        );
        // One limiter is shared by every worker (an `Arc` of it in each pipeline's gates).
        let limiter: Arc<dyn Admission> = Arc::new(limiter);
        let worker = Arc::clone(&limiter);
        assert!(worker.admit());
        used.store(150, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(5));
        assert!(!worker.admit(), "over the soft limit");
        assert!(!limiter.admit(), "every worker sees it");
        used.store(50, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(5));
        assert!(worker.admit(), "back below");
    }
}
