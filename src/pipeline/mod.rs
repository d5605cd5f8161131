//! The runtime graph: receivers push batches into [`Consumer`]s, which run each pipeline's
//! processors inline and fan the result out to exporter queues.
//!
//! Processors are synchronous and run in the receiver's own task, on a per-connection
//! [`Worker`] that owns its processor instances (regex caches included), so no lock or cache is
//! shared between threads and a refusal reaches the client in the same request. The exporter
//! queue is the only asynchronous hand-off.

pub mod ack;
mod batch;
pub mod batcher;
mod charge;
pub mod offload;
pub mod queue;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use hyper::header::{HeaderMap, HeaderName, HeaderValue};

use crate::model::{LogBatch, Signal};

use crate::shutdown::Shutdown;
use crate::telemetry::ReceiverMetrics;
pub use batch::Batch;
pub use charge::Charge;

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A synchronous transformation of a batch, in place.
pub trait Processor: Send + Sync {
    fn process(&mut self, batch: &mut LogBatch);

    /// [`Processor::process`] for a batch a client at `peer` sent (where the receiver knows
    /// it): what `k8sattributes` associates by `connection`.
    fn process_from(&mut self, batch: &mut LogBatch, _peer: Option<std::net::IpAddr>) {
        self.process(batch);
    }

    /// Traces or metrics (kept encoded) a client at `peer` sent: only processors whose type
    /// takes those signals see them (`k8sattributes`); the default leaves them alone.
    fn process_encoded(
        &mut self,
        _batch: &mut crate::otlp::raw::RawBatch,
        _peer: Option<std::net::IpAddr>,
    ) {
    }

    /// A fresh instance for one worker, with its own scratch state (regex caches, buffers).
    fn fork(&self) -> Box<dyn Processor>;

    /// Whether pipelines that list the same processor id share one instance (forks of it)
    /// rather than building their own: `k8sattributes`, whose watches and metadata should
    /// exist once per process, not once per pipeline.
    fn shared_across_pipelines(&self) -> bool {
        false
    }

    /// Starts what the processor needs besides the records (the Kubernetes watches of
    /// `k8sattributes`), once, before any receiver starts. The future resolves when records
    /// may flow (after the first sync, where the config asks to wait for it), or says why
    /// they may not; what it started runs until `shutdown`.
    fn start(&self, _shutdown: Shutdown) -> BoxFuture<Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
}

/// Decides whether new data may come in now: asked before a request's body is read and again
/// before its batch is processed; a refusal is answered as retryable (the memory limiter's way
/// of pushing back). One instance serves every worker.
pub trait Admission: Send + Sync {
    fn admit(&self) -> bool;

    /// Takes `bytes` more from the budget for a request in flight, which holds `held` already
    /// (see [`Charge`]); `false` refuses them. The default grants everything.
    fn reserve(&self, _bytes: u64, _held: u64) -> bool {
        true
    }

    /// Gives back `bytes` taken by [`Admission::reserve`].
    fn release(&self, _bytes: u64) {}
}

/// What a processor's config builds into: the place it takes in a pipeline.
pub enum Stage {
    /// Runs on each connection's worker, in place, and reads (and may change) the records: a
    /// logs pipeline with one of these decodes them.
    Inline(Box<dyn Processor>),
    /// Admits or refuses data before it is read (`memory_limiter`).
    Gate(Arc<dyn Admission>),
    /// Ends the pipeline in a batcher (`batch`); only the last processor of a pipeline may be.
    Batch(batcher::Settings),
}

/// Delivers batches from its queue until the queue closes (every sender gone) and is drained.
pub trait Exporter: Send {
    /// How many records, and how many request bytes they came in, may wait in its queue.
    fn sending_queue(&self) -> crate::exporters::QueueConfig;

    /// Delivers from `queue` until it closes (the receivers have stopped) and is drained.
    /// `deadline` fires when the service's `shutdown_timeout` runs out: stop retrying and
    /// reconnecting, drop what is left (which fails it back to its senders) and return. The
    /// service aborts an exporter that has not returned soon after.
    fn run(self: Box<Self>, queue: queue::Receiver, deadline: Shutdown) -> BoxFuture<()>;

    /// Whether it takes logs as encoded OTLP (`Batch::Raw`) as well as decoded records. See
    /// [`Stage::Inline`].
    fn takes_encoded_logs(&self) -> bool {
        false
    }

    /// Why this instance, as configured, cannot take `signal` though its type can (the
    /// Elasticsearch exporter's `ecs` mode takes logs only); checked with the pipelines.
    fn refuses(&self, _signal: crate::model::Signal) -> Option<String> {
        None
    }
}

/// Why a component could not start.
#[derive(Debug, thiserror::Error)]
#[error("{component}: {message}")]
pub struct StartError {
    pub component: String,
    pub message: String,
}

/// A started server: the future ends after shutdown, once in-flight requests are answered.
pub type Running = BoxFuture<()>;

/// Listens for data and pushes it into a [`Consumer`].
pub trait Receiver: Send {
    /// Binds its sockets (failing start-up if it cannot) and returns the serving future.
    fn start(
        self: Box<Self>,
        consumer: Consumer,
        shutdown: Shutdown,
    ) -> BoxFuture<Result<Running, StartError>>;
}

/// One pipeline as built from config: processor templates and the exporters it feeds, through
/// its batcher when it has one.
pub struct Pipeline {
    pub id: String,
    pub signal: Signal,
    pub processors: Vec<Box<dyn Processor>>,
    pub gates: Vec<Arc<dyn Admission>>,
    pub exporters: Vec<queue::Sender>,
    pub batch: Option<batcher::Input>,
    /// Logs may stay encoded: no processor reads records and every exporter takes OTLP bytes.
    pub encoded_logs: bool,
}

/// Everything one receiver feeds: the pipelines that list it.
#[derive(Clone)]
pub struct Consumer {
    pipelines: Arc<Vec<Arc<Pipeline>>>,
    /// Every gate of those pipelines, each once (a limiter listed by several pipelines is one).
    gates: Arc<[Arc<dyn Admission>]>,
    /// Every header some pipeline batches by.
    metadata_keys: Arc<[HeaderName]>,
}

/// The values of a request's headers (gRPC metadata) that some pipeline batches by, and the
/// client's address (which processors may read; nothing batches by it).
#[derive(Default)]
pub struct Metadata(Vec<(HeaderName, HeaderValue)>, Option<std::net::IpAddr>);

impl Metadata {
    /// The same, sent by a client at `peer`.
    pub fn from_peer(mut self, peer: Option<std::net::IpAddr>) -> Metadata {
        self.1 = peer;
        self
    }

    pub fn peer(&self) -> Option<std::net::IpAddr> {
        self.1
    }
}

/// Why a batch was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConsumeError {
    /// An exporter queue is full: retry later (HTTP 429, gRPC RESOURCE_EXHAUSTED).
    #[error("the pipeline is full")]
    Full,
    /// The service is shutting down: retry elsewhere (HTTP 503, gRPC UNAVAILABLE).
    #[error("the pipeline is shutting down")]
    Closed,
    /// Some exporter could not deliver the batch.
    #[error("the batch was not delivered")]
    NotDelivered,
    /// A processor (the memory limiter) refuses data for now: retry later, like `Full`.
    #[error("sluice is over its memory limit")]
    OverLimit,
    /// The batch holds more items than some exporter's whole queue: it would never fit, so it
    /// is refused for good (HTTP 413, gRPC RESOURCE_EXHAUSTED without a retry hint) rather than
    /// let past the queue's bound.
    #[error(
        "the request holds {items} items, more than an exporter's whole queue \
         (sending_queue.queue_size {capacity}); split it or raise queue_size"
    )]
    TooLarge { items: usize, capacity: usize },
    /// Likewise for the queue's bound in request bytes.
    #[error(
        "the request is {bytes} bytes, more than an exporter's whole queue holds \
         (sending_queue.queue_size_bytes {capacity}); split it or raise queue_size_bytes"
    )]
    TooManyBytes { bytes: usize, capacity: usize },
}

struct WorkerPipeline {
    signal: Signal,
    processors: Vec<Box<dyn Processor>>,
    gates: Vec<Arc<dyn Admission>>,
    exporters: Vec<queue::Sender>,
    batch: Option<batcher::Input>,
}

/// A receiver connection's private instance of its pipelines.
pub struct Worker {
    pipelines: Vec<WorkerPipeline>,
    reservations: Vec<queue::Reservation>,
}

impl Consumer {
    pub fn new(pipelines: Vec<Arc<Pipeline>>) -> Self {
        let mut keys: Vec<HeaderName> = Vec::new();
        for k in pipelines
            .iter()
            .filter_map(|p| p.batch.as_ref())
            .flat_map(|b| b.keys())
        {
            if !keys.contains(k) {
                keys.push(k.clone());
            }
        }
        let mut gates: Vec<Arc<dyn Admission>> = Vec::new();
        for g in pipelines.iter().flat_map(|p| p.gates.iter()) {
            if !gates.iter().any(|seen| Arc::ptr_eq(seen, g)) {
                gates.push(Arc::clone(g));
            }
        }
        Consumer {
            pipelines: Arc::new(pipelines),
            gates: gates.into(),
            metadata_keys: keys.into(),
        }
    }

    /// Whether some pipeline takes `signal` from this receiver (else the receiver answers as
    /// if it had no such endpoint, like the Collector).
    pub fn accepts(&self, signal: Signal) -> bool {
        self.pipelines.iter().any(|p| p.signal == signal)
    }

    /// Whether every logs pipeline this receiver feeds forwards logs encoded, so OTLP logs
    /// need only be checked and counted (`otlp::raw::decode_logs`), not decoded.
    pub fn encoded_logs(&self) -> bool {
        self.pipelines
            .iter()
            .filter(|p| p.signal == Signal::Logs)
            .all(|p| p.encoded_logs)
    }

    /// What of `headers` some pipeline batches by; nothing (and no allocation) when none does.
    pub fn metadata(&self, headers: &HeaderMap) -> Metadata {
        let mut out = Vec::new();
        for k in self.metadata_keys.iter() {
            for v in headers.get_all(k) {
                out.push((k.clone(), v.clone()));
            }
        }
        Metadata(out, None)
    }

    pub fn worker(&self) -> Worker {
        Worker {
            pipelines: self
                .pipelines
                .iter()
                .map(|p| WorkerPipeline {
                    signal: p.signal,
                    processors: p.processors.iter().map(|proc| proc.fork()).collect(),
                    gates: p.gates.clone(),
                    exporters: p.exporters.clone(),
                    batch: p.batch.clone(),
                })
                .collect(),
            reservations: Vec::new(),
        }
    }
}

/// A connection's worker, lent to one request at a time. HTTP/1.1 serves a connection's
/// requests in order, so the slot is nearly always full; concurrent HTTP/2 streams borrow a
/// fresh worker rather than wait.
pub struct WorkerSlot {
    consumer: Consumer,
    slot: Mutex<Option<Worker>>,
}

impl WorkerSlot {
    pub fn new(consumer: Consumer) -> Arc<WorkerSlot> {
        Arc::new(WorkerSlot {
            slot: Mutex::new(Some(consumer.worker())),
            consumer,
        })
    }

    /// The part of a request's headers the pipelines batch by; take it before the body.
    pub fn metadata(&self, headers: &HeaderMap) -> Metadata {
        self.consumer.metadata(headers)
    }

    pub fn accepts(&self, signal: Signal) -> bool {
        self.consumer.accepts(signal)
    }

    /// See [`Consumer::encoded_logs`].
    pub fn encoded_logs(&self) -> bool {
        self.consumer.encoded_logs()
    }

    /// Whether every gate (the memory limiter) would take data now; a receiver asks
    /// before reading a body so that it refuses without holding it.
    pub fn admits(&self) -> bool {
        self.consumer.gates.iter().all(|g| g.admit())
    }

    /// Admits a request ([`WorkerSlot::admits`]) and opens its charge against the gates' memory
    /// budget, which the receiver grows as the request's bytes are read and decoded; `None`
    /// refuses it.
    pub fn admit(&self) -> Option<Charge> {
        self.admits()
            .then(|| Charge::new(Arc::clone(&self.consumer.gates)))
    }

    /// Consumes `batch` and counts it in `metrics`: accepted (with the `wire_bytes` its request
    /// had) or refused. An empty batch is accepted without touching the pipeline. The request's
    /// `charge` is given back once the batch is in the exporter queues, before delivery is
    /// awaited: from there the live heap counts it.
    pub async fn consume(
        &self,
        batch: Batch,
        metadata: &Metadata,
        metrics: &ReceiverMetrics,
        wire_bytes: u64,
        charge: Charge,
    ) -> Result<(), ConsumeError> {
        let records = batch.len() as u64;
        let signal = batch.signal();
        if records == 0 {
            metrics.accepted_bytes.add(wire_bytes);
            return Ok(());
        }
        let mut worker = self
            .slot
            .lock()
            .ok()
            .and_then(|mut g| g.take())
            .unwrap_or_else(|| self.consumer.worker());
        // Processors run here, synchronously: for a large request, where they cannot hold up
        // the accept loops, health and metrics.
        let bytes = wire_bytes as usize;
        let dispatched = offload::run(bytes, || worker.dispatch(batch, metadata, bytes));
        drop(charge);
        let result = match dispatched {
            Ok(wait) => Worker::delivered(wait).await,
            Err(e) => Err(e),
        };
        if let Ok(mut g) = self.slot.lock() {
            *g = Some(worker);
        }
        match result {
            Ok(_) => {
                metrics.accepted.of(signal).add(records);
                metrics.accepted_bytes.add(wire_bytes);
                Ok(())
            }
            Err(e) => {
                metrics.refused.of(signal).add(records);
                Err(e)
            }
        }
    }
}

impl Worker {
    /// Processes `batch` through every pipeline and waits until all exporters have delivered it.
    /// Returns the number of records handed to exporters (after processors dropped some).
    pub async fn consume(
        &mut self,
        batch: Batch,
        metadata: &Metadata,
    ) -> Result<usize, ConsumeError> {
        let wait = self.dispatch(batch, metadata, 0)?;
        Self::delivered(wait).await
    }

    /// Waits for what [`Worker::dispatch`] sent to be delivered.
    async fn delivered(wait: Option<(ack::AckWait, usize)>) -> Result<usize, ConsumeError> {
        match wait {
            None => Ok(0),
            Some((wait, n)) => match wait.wait().await {
                ack::Delivery::Delivered => Ok(n),
                ack::Delivery::Failed => Err(ConsumeError::NotDelivered),
            },
        }
    }

    /// The synchronous half of [`Worker::consume`]: process, reserve room everywhere, enqueue.
    /// `bytes`: the request's size on the wire, which each queue it enters counts against its
    /// bound in bytes. A receiver that keeps several batches in flight (`filelog`) waits on
    /// the returned acknowledgement itself.
    pub fn dispatch(
        &mut self,
        batch: Batch,
        metadata: &Metadata,
        bytes: usize,
    ) -> Result<Option<(ack::AckWait, usize)>, ConsumeError> {
        if !self
            .pipelines
            .iter()
            .all(|p| p.gates.iter().all(|g| g.admit()))
        {
            return Err(ConsumeError::OverLimit);
        }
        let signal = batch.signal();
        let count = self.pipelines.iter().filter(|p| p.signal == signal).count();
        let mut outputs = Vec::with_capacity(self.pipelines.len());
        let mut source = Some(batch);
        let mut seen = 0;
        for pipeline in self.pipelines.iter_mut() {
            if pipeline.signal != signal {
                outputs.push(Batch::empty(signal));
                continue;
            }
            seen += 1;
            // The last pipeline takes the original: clone only for fan-out.
            let mut b = if seen == count {
                source.take().unwrap_or_default()
            } else {
                source.as_ref().cloned().unwrap_or_default()
            };
            match &mut b {
                Batch::Logs(logs) => {
                    for p in &mut pipeline.processors {
                        if logs.is_empty() {
                            break;
                        }
                        p.process_from(logs, metadata.peer());
                    }
                }
                Batch::Raw(raw) => {
                    for p in &mut pipeline.processors {
                        p.process_encoded(raw, metadata.peer());
                    }
                }
            }
            outputs.push(b);
        }

        // Reserve in every queue first so that a full queue refuses the whole batch rather than
        // delivering it to some exporters and not others.
        self.reservations.clear();
        for (pipeline, b) in self.pipelines.iter().zip(&outputs) {
            if b.is_empty() {
                continue;
            }
            for exporter in &pipeline.exporters {
                if b.len() > exporter.capacity() {
                    self.reservations.clear();
                    return Err(ConsumeError::TooLarge {
                        items: b.len(),
                        capacity: exporter.capacity(),
                    });
                }
                if bytes > exporter.byte_capacity() {
                    self.reservations.clear();
                    return Err(ConsumeError::TooManyBytes {
                        bytes,
                        capacity: exporter.byte_capacity(),
                    });
                }
                match exporter.try_reserve_sized(b.len(), bytes) {
                    Ok(r) => self.reservations.push(r),
                    Err(queue::Full) => {
                        self.reservations.clear();
                        return Err(ConsumeError::Full);
                    }
                }
            }
        }
        if self.reservations.is_empty() {
            return Ok(None);
        }

        let (ack, wait) = ack::new();
        let mut reservations = self.reservations.drain(..);
        let mut delivered_records = 0;
        let mut closed = false;
        for (pipeline, b) in self.pipelines.iter().zip(outputs) {
            if b.is_empty() {
                continue;
            }
            delivered_records += b.len();
            if let Some(input) = &pipeline.batch {
                let rooms: Vec<_> = reservations
                    .by_ref()
                    .take(pipeline.exporters.len())
                    .collect();
                let key = batch_key(input.keys(), metadata);
                if input.send(b, rooms, ack.clone(), key).is_err() {
                    closed = true;
                }
                continue;
            }
            let last = pipeline.exporters.len().saturating_sub(1);
            let mut b = Some(b);
            for (i, exporter) in pipeline.exporters.iter().enumerate() {
                let copy = if i == last {
                    b.take().unwrap_or_default()
                } else {
                    b.as_ref().cloned().unwrap_or_default()
                };
                let Some(r) = reservations.next() else { break };
                if exporter.send(r, copy, ack::Acks::one(ack.clone())).is_err() {
                    closed = true;
                }
            }
        }
        drop(reservations);
        if closed {
            ack.fail();
            return Err(ConsumeError::Closed);
        }
        Ok(Some((wait, delivered_records)))
    }
}

/// The batcher key of a request: the values it has for each of `keys`, in key order.
fn batch_key(keys: &[HeaderName], metadata: &Metadata) -> batcher::Key {
    let mut key = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        for (name, value) in &metadata.0 {
            if name == k {
                key.push((i as u8, value.clone()));
            }
        }
    }
    key
}

#[cfg(test)]
mod tests;
