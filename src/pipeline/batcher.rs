//! The batcher: a pipeline's one asynchronous stage before its exporters, run when the
//! pipeline ends with the `batch` processor.
//!
//! Workers hand it their processed records together with the exporter-queue room they already
//! reserved and their request's acknowledgement share. It merges them per metadata key until
//! `send_batch_size` records or `timeout`, cuts at `send_batch_max_size`, and sends each batch
//! to every exporter holding the shares of every request with records in it. So, unlike the
//! OTel Collector's batch processor, a client is answered only once its records are delivered,
//! and backpressure is unchanged: room is reserved in the exporter queues before a request is
//! accepted, and merged or split here without being counted twice.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use hyper::header::{HeaderName, HeaderValue};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::ack::{Ack, Acks};
use super::queue::{self, Reservation};
use crate::pipeline::Batch;
use crate::pipeline::batch::Pending;
use crate::shutdown::Shutdown;
use crate::telemetry::{Counter, Gauge, Registry};

/// How a pipeline's `batch` processor batches (see `processors::batch` for the config).
#[derive(Clone)]
pub struct Settings {
    /// A batch is sent once it holds this many records; 0 sends on the timeout only.
    pub send_batch_size: usize,
    /// Larger batches are cut to this size; 0 for no limit.
    pub send_batch_max_size: usize,
    /// The longest a record waits for its batch to fill; zero sends every request at once.
    pub timeout: Duration,
    /// Request headers (gRPC metadata) whose values keep batches apart.
    pub metadata_keys: Vec<HeaderName>,
    /// The most distinct metadata combinations batched at once.
    pub metadata_cardinality_limit: usize,
    pub metrics: Metrics,
}

impl Settings {
    /// The most items sent in one batch.
    fn largest_batch(&self) -> usize {
        match self.send_batch_max_size {
            0 => usize::MAX,
            max => max,
        }
    }
}

/// The batcher's telemetry, named after the OTel Collector's batch processor metrics.
#[derive(Clone, Default)]
pub struct Metrics {
    pub size_trigger: Counter,
    pub timeout_trigger: Counter,
    pub shutdown_trigger: Counter,
    pub records: Counter,
    pub cardinality: Gauge,
    pub over_cardinality: Counter,
}

impl Metrics {
    pub fn new(registry: &Registry, id: &str, pipeline: &str) -> Self {
        let labels = [("processor", id), ("pipeline", pipeline)];
        Metrics {
            size_trigger: registry.counter(
                "otelcol_processor_batch_batch_size_trigger_send_total",
                "Batches sent because they reached send_batch_size.",
                &labels,
            ),
            timeout_trigger: registry.counter(
                "otelcol_processor_batch_timeout_trigger_send_total",
                "Batches sent because their timeout expired.",
                &labels,
            ),
            shutdown_trigger: registry.counter(
                "sluice_processor_batch_shutdown_trigger_send_total",
                "Batches sent early because the service is shutting down.",
                &labels,
            ),
            records: registry.counter(
                "sluice_processor_batch_sent_items_total",
                "Items (log records, spans, data points) sent on in batches.",
                &labels,
            ),
            cardinality: registry.gauge(
                "otelcol_processor_batch_metadata_cardinality",
                "Distinct metadata combinations being batched now.",
                &labels,
            ),
            over_cardinality: registry.counter(
                "sluice_processor_batch_refused_requests_total",
                "Requests refused (retryable) because metadata_cardinality_limit was reached.",
                &labels,
            ),
        }
    }
}

/// The header values a request is batched under: `(index in metadata_keys, value)` for every
/// value of every key, in key order. Empty when the pipeline has no `metadata_keys`.
pub type Key = Vec<(u8, HeaderValue)>;

/// One request's share of a pipeline, on its way to the batcher. Dropped anywhere but in the
/// batcher's hands (the batcher is gone), it fails the request.
pub struct Item {
    batch: Batch,
    rooms: Vec<Reservation>,
    ack: Option<Ack>,
    key: Key,
}

impl Drop for Item {
    fn drop(&mut self) {
        if let Some(ack) = self.ack.take() {
            ack.fail();
        }
    }
}

/// The workers' side, one clone per worker.
#[derive(Clone)]
pub struct Input {
    tx: mpsc::UnboundedSender<Item>,
    keys: std::sync::Arc<[HeaderName]>,
}

/// The batcher has stopped (shutdown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the batcher has stopped")]
pub struct Stopped;

impl Input {
    /// The headers this pipeline batches by.
    pub fn keys(&self) -> &[HeaderName] {
        &self.keys
    }

    /// Hands over `batch` with the room reserved for it in each exporter queue (in the order of
    /// the pipeline's exporters) and its request's share of the acknowledgement.
    pub fn send(
        &self,
        batch: Batch,
        rooms: Vec<Reservation>,
        ack: Ack,
        key: Key,
    ) -> Result<(), Stopped> {
        let item = Item {
            batch,
            rooms,
            ack: Some(ack),
            key,
        };
        // On a closed channel the item comes back and its drop fails the ack.
        self.tx.send(item).map_err(|_| Stopped)
    }
}

/// The task side: owns the pipeline's exporter senders, so the exporter queues close only
/// after it has flushed.
pub struct Batcher {
    rx: mpsc::UnboundedReceiver<Item>,
    exporters: Vec<queue::Sender>,
    settings: Settings,
    pipeline: String,
}

pub fn stage(
    settings: Settings,
    exporters: Vec<queue::Sender>,
    pipeline: &str,
) -> (Input, Batcher) {
    let (tx, rx) = mpsc::unbounded_channel();
    (
        Input {
            tx,
            keys: settings.metadata_keys.clone().into(),
        },
        Batcher {
            rx,
            exporters,
            settings,
            pipeline: pipeline.to_string(),
        },
    )
}

/// Records waiting under one key, with the room and the acknowledgement shares that go with
/// them. Each share is held with the number of its request's records still here.
struct Group {
    batch: Pending,
    rooms: Vec<Reservation>,
    acks: VecDeque<(Ack, usize)>,
    deadline: Instant,
}

impl Drop for Group {
    fn drop(&mut self) {
        // Records still here were never handed on: their requests must not count as delivered.
        for (ack, _) in &self.acks {
            ack.fail();
        }
    }
}

#[derive(Clone, Copy)]
enum Trigger {
    Size,
    Timeout,
    Shutdown,
}

impl Group {
    /// Takes the first `n` records (or all) with their room and the shares of their requests.
    fn take(&mut self, n: usize) -> (Batch, Vec<Reservation>, Acks) {
        let batch = self.batch.take(n);
        let n = batch.len();
        let rooms = self.rooms.iter_mut().map(|r| r.split(n)).collect();
        let mut acks = Acks::default();
        let mut left = n;
        while left > 0 {
            let Some(front) = self.acks.front_mut() else {
                break;
            };
            if front.1 <= left {
                left -= front.1;
                if let Some((ack, _)) = self.acks.pop_front() {
                    acks.push(ack);
                }
            } else {
                // The request straddles the cut: both parts hold a share.
                front.1 -= left;
                acks.push(front.0.clone());
                left = 0;
            }
        }
        (batch, rooms, acks)
    }
}

impl Batcher {
    /// Batches until every worker is gone, then flushes what is left. Once `shutdown` fires it
    /// stops waiting for batches to fill, so a draining service is not held up by `timeout`.
    pub async fn run(mut self, mut shutdown: Shutdown) {
        let mut groups: HashMap<Key, Group> = HashMap::new();
        let mut draining = false;
        loop {
            let deadline = groups.values().map(|g| g.deadline).min();
            tokio::select! {
                item = self.rx.recv() => match item {
                    Some(item) => self.add(&mut groups, item, draining),
                    None => break,
                },
                _ = sleep_until(deadline), if deadline.is_some() => {
                    let now = Instant::now();
                    let due: Vec<Key> = groups
                        .iter()
                        .filter(|(_, g)| g.deadline <= now)
                        .map(|(k, _)| k.clone())
                        .collect();
                    for key in due {
                        if let Some(mut group) = groups.remove(&key) {
                            self.flush(&mut group, Trigger::Timeout);
                        }
                    }
                }
                _ = shutdown.wait(), if !draining => {
                    draining = true;
                    for (_, mut group) in groups.drain() {
                        self.flush(&mut group, Trigger::Shutdown);
                    }
                }
            }
            self.settings.metrics.cardinality.set(groups.len() as i64);
        }
        for (_, mut group) in groups.drain() {
            self.flush(&mut group, Trigger::Shutdown);
        }
        self.settings.metrics.cardinality.set(0);
        tracing::debug!(pipeline = %self.pipeline, "batcher drained");
    }

    fn add(&self, groups: &mut HashMap<Key, Group>, mut item: Item, draining: bool) {
        let s = &self.settings;
        let Some(ack) = item.ack.take() else { return };
        let records = item.batch.len();
        let batch = std::mem::take(&mut item.batch);
        let rooms = std::mem::take(&mut item.rooms);
        let key = std::mem::take(&mut item.key);
        if !groups.contains_key(&key) && groups.len() >= s.metadata_cardinality_limit {
            ack.fail();
            s.metrics.over_cardinality.add(1);
            if s.metrics.over_cardinality.get() == 1 {
                tracing::warn!(
                    pipeline = %self.pipeline,
                    limit = s.metadata_cardinality_limit,
                    "too many distinct metadata values are being batched; refusing new ones \
                     (counted in sluice_processor_batch_refused_requests_total)"
                );
            }
            return;
        }
        let timeout = s.timeout;
        let signal = batch.signal();
        let group = groups.entry(key.clone()).or_insert_with(|| Group {
            batch: Pending::new(signal),
            rooms: Vec::new(),
            acks: VecDeque::new(),
            deadline: Instant::now() + timeout,
        });
        if group.batch.push(batch).is_err() {
            // Unreachable: a pipeline carries one signal. Refusing is the safe reading.
            ack.fail();
            return;
        }
        if group.rooms.is_empty() {
            group.rooms = rooms;
        } else {
            for (mine, theirs) in group.rooms.iter_mut().zip(rooms) {
                mine.merge(theirs);
            }
        }
        group.acks.push_back((ack, records));

        if draining {
            self.flush(group, Trigger::Shutdown);
        } else if timeout.is_zero() {
            self.flush(group, Trigger::Timeout);
        } else if s.send_batch_size > 0 && group.batch.len() >= s.send_batch_size {
            let cap = s.largest_batch();
            while group.batch.len() >= s.send_batch_size {
                let part = group.take(cap);
                self.send(part, Trigger::Size);
            }
            group.deadline = Instant::now() + timeout;
        }
        if group.batch.is_empty() {
            // Forget the key, so cardinality counts only batches being filled.
            groups.remove(&key);
        }
    }

    /// Sends everything `group` holds, cut at `send_batch_max_size`.
    fn flush(&self, group: &mut Group, trigger: Trigger) {
        let cap = self.settings.largest_batch();
        while !group.batch.is_empty() {
            let part = group.take(cap);
            self.send(part, trigger);
        }
    }

    fn send(&self, (batch, rooms, acks): (Batch, Vec<Reservation>, Acks), trigger: Trigger) {
        let m = &self.settings.metrics;
        match trigger {
            Trigger::Size => m.size_trigger.add(1),
            Trigger::Timeout => m.timeout_trigger.add(1),
            Trigger::Shutdown => m.shutdown_trigger.add(1),
        }
        m.records.add(batch.len() as u64);
        let last = self.exporters.len().saturating_sub(1);
        let mut batch = Some(batch);
        let mut acks = Some(acks);
        for (i, (exporter, room)) in self.exporters.iter().zip(rooms).enumerate() {
            let (b, a) = if i == last {
                (
                    batch.take().unwrap_or_default(),
                    acks.take().unwrap_or_default(),
                )
            } else {
                (
                    batch.clone().unwrap_or_default(),
                    acks.clone().unwrap_or_default(),
                )
            };
            // A closed queue hands the envelope back to be dropped, which fails its shares.
            let _ = exporter.send(room, b, a);
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::ack::{self, AckWait, Delivery};
    use crate::pipeline::batch::tests::{bodies, logs as records};
    use crate::shutdown;

    fn settings(size: usize, max: usize, timeout_ms: u64, keys: &[&'static str]) -> Settings {
        Settings {
            send_batch_size: size,
            send_batch_max_size: max,
            timeout: Duration::from_millis(timeout_ms),
            metadata_keys: keys.iter().map(|k| HeaderName::from_static(k)).collect(),
            metadata_cardinality_limit: 2,
            metrics: Metrics::default(),
        }
    }

    struct Rig {
        input: Input,
        queue: queue::Sender,
        rx: queue::Receiver,
        stop: shutdown::Trigger,
        task: tokio::task::JoinHandle<()>,
    }

    fn rig(s: Settings) -> Rig {
        let (queue, rx) = queue::bounded(1000, Gauge::default());
        let (input, batcher) = stage(s, vec![queue.clone()], "logs");
        let (stop, signal) = shutdown::channel();
        let task = tokio::spawn(batcher.run(signal));
        Rig {
            input,
            queue,
            rx,
            stop,
            task,
        }
    }

    impl Rig {
        fn send(&self, from: i64, n: usize, key: Key) -> AckWait {
            let (ack, wait) = ack::new();
            let room = self.queue.try_reserve(n).unwrap();
            self.input
                .send(records(from, n), vec![room], ack, key)
                .unwrap();
            wait
        }
    }

    fn resolved(wait: &mut AckWait) -> Option<Delivery> {
        wait.outcome()
    }

    #[tokio::test(start_paused = true)]
    async fn small_requests_leave_in_batches_of_the_configured_size() {
        let mut r = rig(settings(10, 0, 1000, &[]));
        let mut waits: Vec<AckWait> = (0..7).map(|i| r.send(i * 3, 3, Key::new())).collect();
        // 21 records: two size-triggered batches of at least 10 records.
        let first = r.rx.recv().await.unwrap();
        assert_eq!(bodies(&first.batch), (0..12).collect::<Vec<_>>());
        let second = r.rx.recv().await.unwrap();
        assert_eq!(bodies(&second.batch), (12..21).collect::<Vec<_>>());
        assert!(waits.iter_mut().all(|w| resolved(w).is_none()));
        first.delivered();
        tokio::task::yield_now().await;
        let done: Vec<bool> = waits.iter_mut().map(|w| resolved(w).is_some()).collect();
        assert_eq!(done, [true, true, true, true, false, false, false]);
        second.delivered();
        for w in waits {
            assert_eq!(w.wait().await, Delivery::Delivered);
        }
        assert_eq!(r.queue.try_reserve(1000).map(|_| ()), Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_partial_batch_leaves_when_the_timeout_expires() {
        let mut r = rig(settings(100, 0, 200, &[]));
        let started = Instant::now();
        let wait = r.send(0, 5, Key::new());
        let batch = r.rx.recv().await.unwrap();
        assert_eq!(started.elapsed(), Duration::from_millis(200));
        assert_eq!(batch.records(), 5);
        batch.delivered();
        assert_eq!(wait.wait().await, Delivery::Delivered);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_cut_in_two_is_answered_after_both_parts() {
        let mut r = rig(settings(4, 4, 1000, &[]));
        let mut wait = r.send(0, 6, Key::new());
        let a = r.rx.recv().await.unwrap();
        assert_eq!(a.records(), 4);
        a.delivered();
        tokio::task::yield_now().await;
        assert_eq!(resolved(&mut wait), None);
        let b = r.rx.recv().await.unwrap();
        assert_eq!(bodies(&b.batch), [4, 5]);
        drop(b);
        assert_eq!(
            wait.wait().await,
            Delivery::Failed,
            "a failed part fails the request"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn metadata_values_keep_batches_apart() {
        let mut r = rig(settings(4, 0, 1000, &["x-tenant"]));
        let key = |v: &'static str| vec![(0u8, HeaderValue::from_static(v))];
        let _a = r.send(0, 2, key("a"));
        let _b = r.send(100, 3, key("b"));
        let _a2 = r.send(2, 2, key("a"));
        let first = r.rx.recv().await.unwrap();
        assert_eq!(bodies(&first.batch), [0, 1, 2, 3]);
        let started = Instant::now();
        let second = r.rx.recv().await.unwrap();
        assert_eq!(bodies(&second.batch), [100, 101, 102]);
        assert!(
            started.elapsed() > Duration::ZERO,
            "b waited for its timeout"
        );
        // The third tenant exceeds metadata_cardinality_limit (2) only while two are pending.
        let _c = r.send(200, 1, key("c"));
        let _d = r.send(300, 1, key("d"));
        let e = r.send(400, 1, key("e"));
        assert_eq!(e.wait().await, Delivery::Failed);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_sends_what_waits_without_waiting_for_the_timeout() {
        let mut r = rig(settings(100, 0, 60_000, &[]));
        let wait = r.send(0, 3, Key::new());
        tokio::task::yield_now().await;
        let started = Instant::now();
        r.stop.fire();
        let batch = r.rx.recv().await.unwrap();
        assert_eq!(started.elapsed(), Duration::ZERO);
        assert_eq!(batch.records(), 3);
        batch.delivered();
        assert_eq!(wait.wait().await, Delivery::Delivered);
        drop(r.input);
        r.task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn records_held_by_an_aborted_batcher_fail_their_requests() {
        let r = rig(settings(100, 0, 60_000, &[]));
        let wait = r.send(0, 3, Key::new());
        tokio::task::yield_now().await;
        r.task.abort();
        assert_eq!(wait.wait().await, Delivery::Failed);
    }
}
