//! An exporter's bounded in-memory queue, sized in items (log records, spans, data points) and
//! in the request bytes those items came in, so that neither many small records nor a few huge
//! ones can make it hold more than its configured share of memory.
//!
//! Room is reserved before anything is sent (so fan-out to several exporters is all or nothing)
//! and given back only when the exporter releases the [`Envelope`], that is after delivery. A full
//! queue is how backpressure reaches receivers: they answer 429 / `RESOURCE_EXHAUSTED` instead of
//! buffering without bound.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::ack::Acks;
use crate::model::LogBatch;
use crate::pipeline::Batch;
use crate::telemetry::Gauge;

/// A batch in an exporter's queue, with its share of the acknowledgement and of the queue's room.
pub struct Envelope {
    pub batch: Batch,
    acks: Acks,
    records: usize,
    queue_size: Gauge,
    queue_bytes: Gauge,
    _room: Option<OwnedSemaphorePermit>,
    bytes: Option<OwnedSemaphorePermit>,
}

impl Envelope {
    /// Takes the decoded log records out, for an exporter that takes nothing else: the wiring
    /// sends such an exporter only logs pipelines, decoded (`Exporter::takes_encoded_logs`).
    /// `None` for anything else; the caller then drops the envelope, which fails it back to its
    /// sender rather than mis-encoding it.
    pub fn take_logs(&mut self) -> Option<LogBatch> {
        match std::mem::take(&mut self.batch) {
            Batch::Logs(logs) => Some(logs),
            other => {
                self.batch = other;
                None
            }
        }
    }

    /// Takes the batch out, whatever it holds; the envelope stays to be acknowledged.
    pub fn take_batch(&mut self) -> Batch {
        std::mem::take(&mut self.batch)
    }

    /// Releases the batch as delivered. Dropping an envelope any other way counts as a failure,
    /// so a batch lost to a bug or a shutdown deadline can never be acknowledged as a success.
    pub fn delivered(self) {
        // `Envelope` has a `Drop`, so the shares are swapped out rather than moved.
        let mut this = self;
        std::mem::take(&mut this.acks).release();
    }

    pub fn records(&self) -> usize {
        self.records
    }
}

impl Drop for Envelope {
    fn drop(&mut self) {
        self.queue_size.add(-(self.records as i64));
        self.queue_bytes.add(-kib_as_bytes(&self.bytes));
    }
}

/// The request bytes a byte permit stands for (it counts KiB).
fn kib_as_bytes(permit: &Option<OwnedSemaphorePermit>) -> i64 {
    permit.as_ref().map_or(0, |p| p.num_permits() as i64 * 1024)
}

/// The queue is full; the caller should ask its client to retry later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the exporter queue is full")]
pub struct Full;

/// The exporter has stopped taking batches (shutdown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the exporter is shut down")]
pub struct Closed;

/// The sending side, cloned into every pipeline worker that feeds this exporter.
#[derive(Clone)]
pub struct Sender {
    tx: mpsc::UnboundedSender<Envelope>,
    room: Arc<Semaphore>,
    capacity: usize,
    /// Request bytes, counted in KiB so that one permit count covers terabytes.
    bytes: Arc<Semaphore>,
    capacity_kib: usize,
    queue_size: Gauge,
    queue_bytes: Gauge,
}

/// The gauges a queue keeps up to date: items, and the request bytes they came in (KiB
/// granularity).
#[derive(Clone, Default)]
pub struct Gauges {
    pub items: Gauge,
    pub bytes: Gauge,
}

/// The exporter's side.
pub struct Receiver {
    rx: mpsc::UnboundedReceiver<Envelope>,
    /// An envelope [`Receiver::take_ready`] was handed but did not belong with the others;
    /// it comes first next time.
    held: Option<Envelope>,
}

/// Room for one batch, reserved but not yet used. `None` holds no permit: what is left of a
/// reservation that was clamped to the queue's capacity and then split.
pub struct Reservation {
    permit: Option<OwnedSemaphorePermit>,
    records: usize,
    bytes: Option<OwnedSemaphorePermit>,
}

impl Reservation {
    pub fn records(&self) -> usize {
        self.records
    }

    /// Joins another reservation from the same queue (a batcher merging requests).
    pub fn merge(&mut self, other: Reservation) {
        self.records += other.records;
        merge_permits(&mut self.permit, other.permit);
        merge_permits(&mut self.bytes, other.bytes);
    }

    /// Splits off the room for `records` of the records this one covers (a batcher cutting a
    /// batch). A reservation clamped to the queue's capacity holds fewer permits than records;
    /// the part split off then takes what there is and the rest keeps the remainder.
    pub fn split(&mut self, records: usize) -> Reservation {
        let records = records.min(self.records);
        // The bytes go with the records, in proportion.
        let kib = self.bytes.as_ref().map_or(0, |p| p.num_permits());
        let kib_part = if records >= self.records {
            kib
        } else {
            (kib as u128 * records as u128 / self.records.max(1) as u128) as usize
        };
        let bytes = if kib_part >= kib {
            self.bytes.take()
        } else {
            self.bytes.as_mut().and_then(|p| p.split(kib_part))
        };
        self.records -= records;
        let held = self.permit.as_ref().map_or(0, |p| p.num_permits());
        let permit = if records >= held || self.records == 0 {
            self.permit.take()
        } else {
            self.permit.as_mut().and_then(|p| p.split(records))
        };
        Reservation {
            permit,
            records,
            bytes,
        }
    }
}

fn merge_permits(mine: &mut Option<OwnedSemaphorePermit>, theirs: Option<OwnedSemaphorePermit>) {
    match (mine, theirs) {
        (Some(m), Some(t)) => m.merge(t),
        (m @ None, t) => *m = t,
        (_, None) => {}
    }
}

/// A queue of `capacity` items and no byte bound to speak of (tests).
pub fn bounded(capacity: usize, queue_size: Gauge) -> (Sender, Receiver) {
    let gauges = Gauges {
        items: queue_size,
        bytes: Gauge::default(),
    };
    bounded_in_bytes(capacity, usize::MAX, gauges)
}

/// A queue of `capacity` items and `bytes` request bytes (rounded up to KiB).
pub fn bounded_in_bytes(capacity: usize, bytes: usize, gauges: Gauges) -> (Sender, Receiver) {
    let capacity = capacity.clamp(1, Semaphore::MAX_PERMITS);
    let capacity_kib = bytes.div_ceil(1024).clamp(1, Semaphore::MAX_PERMITS);
    let (tx, rx) = mpsc::unbounded_channel();
    (
        Sender {
            tx,
            room: Arc::new(Semaphore::new(capacity)),
            capacity,
            bytes: Arc::new(Semaphore::new(capacity_kib)),
            capacity_kib,
            queue_size: gauges.items,
            queue_bytes: gauges.bytes,
        },
        Receiver { rx, held: None },
    )
}

impl Sender {
    /// Reserves room for `records`. Receivers refuse a batch larger than the whole queue before
    /// asking (`ConsumeError::TooLarge`); one a batcher made larger needs the queue empty.
    pub fn try_reserve(&self, records: usize) -> Result<Reservation, Full> {
        self.try_reserve_sized(records, 0)
    }

    /// [`Sender::try_reserve`] for items that came in `bytes` of requests.
    pub fn try_reserve_sized(&self, records: usize, bytes: usize) -> Result<Reservation, Full> {
        let want = records.clamp(1, self.capacity);
        let permits = u32::try_from(want).unwrap_or(u32::MAX);
        let kib = u32::try_from(bytes.div_ceil(1024).min(self.capacity_kib)).unwrap_or(u32::MAX);
        let room = Arc::clone(&self.room)
            .try_acquire_many_owned(permits)
            .map_err(|_| Full)?;
        let bytes = if kib == 0 {
            None
        } else {
            Some(
                Arc::clone(&self.bytes)
                    .try_acquire_many_owned(kib)
                    .map_err(|_| Full)?,
            )
        };
        Ok(Reservation {
            permit: Some(room),
            records,
            bytes,
        })
    }

    /// The request bytes the whole queue holds.
    pub fn byte_capacity(&self) -> usize {
        self.capacity_kib.saturating_mul(1024)
    }

    pub fn send(&self, reservation: Reservation, batch: Batch, acks: Acks) -> Result<(), Closed> {
        self.queue_size.add(reservation.records as i64);
        self.queue_bytes.add(kib_as_bytes(&reservation.bytes));
        let envelope = Envelope {
            batch,
            acks,
            records: reservation.records,
            queue_size: self.queue_size.clone(),
            queue_bytes: self.queue_bytes.clone(),
            _room: reservation.permit,
            bytes: reservation.bytes,
        };
        // On a closed channel the envelope comes back and its drop fails the ack.
        self.tx.send(envelope).map_err(|_| Closed)
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

impl Receiver {
    /// The next batch; `None` once every sender is gone and the queue is drained.
    pub async fn recv(&mut self) -> Option<Envelope> {
        match self.held.take() {
            Some(e) => Some(e),
            None => self.rx.recv().await,
        }
    }

    /// A batch that is already queued, without waiting.
    pub fn try_recv(&mut self) -> Option<Envelope> {
        self.held.take().or_else(|| self.rx.try_recv().ok())
    }

    /// The one way exporters gather what is queued into one request: hands each envelope that
    /// is already queued to `take`, without waiting, until `take` says the request is full or
    /// gives one back (another signal: it is held and comes first next time), or nothing more
    /// is queued.
    pub fn take_ready(&mut self, mut take: impl FnMut(Envelope) -> Take) {
        while let Some(e) = self.try_recv() {
            match take(e) {
                Take::More => {}
                Take::Full => return,
                Take::Back(e) => {
                    self.held = Some(e);
                    return;
                }
            }
        }
    }
}

/// What [`Receiver::take_ready`]'s caller did with an envelope.
pub enum Take {
    /// Added; there is room for more.
    More,
    /// Added; the request is full.
    Full,
    /// Not added: it belongs in the next request.
    Back(Envelope),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::ack::{self, Delivery};

    fn batch(n: usize) -> Batch {
        Batch::Logs(crate::model::LogBatch {
            origins: vec![Default::default()],
            records: vec![Default::default(); n],
        })
    }

    #[tokio::test]
    async fn refuses_reservation_over_capacity_until_room_is_released() {
        let (tx, mut rx) = bounded(10, Gauge::default());
        let r = tx.try_reserve(8).unwrap();
        assert_eq!(tx.try_reserve(3).err(), Some(Full));
        let (a, _wait) = ack::new();
        tx.send(r, batch(8), Acks::one(a)).unwrap();
        assert_eq!(tx.try_reserve(3).err(), Some(Full));
        rx.recv().await.unwrap().delivered();
        assert!(tx.try_reserve(10).is_ok());
    }

    #[tokio::test]
    async fn dropping_an_undelivered_envelope_fails_its_ack() {
        let (tx, mut rx) = bounded(10, Gauge::default());
        let (a, wait) = ack::new();
        tx.send(tx.try_reserve(1).unwrap(), batch(1), Acks::one(a))
            .unwrap();
        drop(rx.recv().await.unwrap());
        assert_eq!(wait.wait().await, Delivery::Failed);
    }

    /// Exporters gather queued batches with `take_ready`: it stops when told the request is
    /// full, and a batch given back comes first on the next receive.
    #[tokio::test]
    async fn take_ready_gathers_until_full_and_keeps_what_it_gives_back() {
        let (tx, mut rx) = bounded(100, Gauge::default());
        for n in [1, 2, 3, 4] {
            let (a, _w) = ack::new();
            tx.send(tx.try_reserve(n).unwrap(), batch(n), Acks::one(a))
                .unwrap();
        }
        let first = rx.recv().await.unwrap();
        let mut taken = vec![first.records()];
        rx.take_ready(|e| {
            taken.push(e.records());
            if taken.len() < 2 {
                Take::More
            } else {
                Take::Full
            }
        });
        assert_eq!(taken, [1, 2]);
        rx.take_ready(Take::Back);
        assert_eq!(
            rx.recv().await.unwrap().records(),
            3,
            "given back, so it comes first"
        );
        assert_eq!(rx.try_recv().unwrap().records(), 4);
        assert!(rx.try_recv().is_none());
    }

    #[tokio::test]
    async fn queue_size_gauge_tracks_records_until_release() {
        let gauge = Gauge::default();
        let (tx, mut rx) = bounded(100, gauge.clone());
        let (a, _w) = ack::new();
        tx.send(tx.try_reserve(7).unwrap(), batch(7), Acks::one(a))
            .unwrap();
        assert_eq!(gauge.get(), 7);
        rx.recv().await.unwrap().delivered();
        assert_eq!(gauge.get(), 0);
    }

    #[test]
    fn merged_and_split_reservations_give_back_exactly_their_room() {
        let (tx, _rx) = bounded(10, Gauge::default());
        let mut r = tx.try_reserve(3).unwrap();
        r.merge(tx.try_reserve(4).unwrap());
        assert_eq!((r.records(), tx.room.available_permits()), (7, 3));
        let part = r.split(5);
        assert_eq!((part.records(), r.records()), (5, 2));
        drop(part);
        assert_eq!(tx.room.available_permits(), 8);
        drop(r);
        assert_eq!(tx.room.available_permits(), 10);
    }

    #[tokio::test]
    async fn request_bytes_are_bounded_too_and_given_back_on_delivery() {
        let (tx, mut rx) = bounded_in_bytes(1000, 100 << 10, Gauges::default());
        let r = tx.try_reserve_sized(2, 60 << 10).unwrap();
        assert_eq!(
            tx.try_reserve_sized(2, 60 << 10).err(),
            Some(Full),
            "bytes full"
        );
        assert!(
            tx.try_reserve_sized(2, 40 << 10).is_ok(),
            "items never were"
        );
        let (a, _wait) = ack::new();
        tx.send(r, batch(2), Acks::one(a)).unwrap();
        rx.recv().await.unwrap().delivered();
        assert!(tx.try_reserve_sized(2, 60 << 10).is_ok());
        assert_eq!(tx.byte_capacity(), 100 << 10);
    }

    #[test]
    fn split_reservations_share_their_bytes_in_proportion() {
        let (tx, _rx) = bounded_in_bytes(100, 100 << 10, Gauges::default());
        let mut r = tx.try_reserve_sized(10, 40 << 10).unwrap();
        let part = r.split(4);
        assert_eq!(tx.bytes.available_permits(), 60);
        drop(part);
        assert_eq!(
            tx.bytes.available_permits(),
            76,
            "16 KiB went with 4 of 10 records"
        );
        drop(r);
        assert_eq!(tx.bytes.available_permits(), 100);
    }

    #[test]
    fn a_clamped_reservation_splits_without_losing_room() {
        let (tx, _rx) = bounded(4, Gauge::default());
        let mut r = tx.try_reserve(9).unwrap();
        let a = r.split(5);
        let b = r.split(4);
        assert_eq!((a.records(), b.records(), r.records()), (5, 4, 0));
        drop(a);
        assert_eq!(tx.room.available_permits(), 4);
        drop(b);
    }
}
