//! End-to-end acknowledgement: a receiver answers success only after every exporter a batch was
//! fanned out to has delivered it.
//!
//! Each copy of a batch travels with a clone of one [`Ack`]. A copy that is delivered is released
//! with [`Ack::delivered`]-free drop; a copy that is dropped undelivered (an exporter gave up or
//! the process is out of time) must call [`Ack::fail`] first, which `Envelope` in `queue` does
//! on drop unless told otherwise. When the last clone goes, the receiver's [`AckWait`] resolves,
//! like Vector's event finalizers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::oneshot;

/// What happened to every copy of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Delivered,
    Failed,
}

struct Inner {
    failed: AtomicBool,
    tx: Option<oneshot::Sender<Delivery>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(tx) = self.tx.take() {
            let outcome = if self.failed.load(Ordering::Acquire) {
                Delivery::Failed
            } else {
                Delivery::Delivered
            };
            let _ = tx.send(outcome);
        }
    }
}

/// A share in a batch's acknowledgement.
#[derive(Clone)]
pub struct Ack(Arc<Inner>);

/// Resolves when every [`Ack`] share is gone.
pub struct AckWait {
    rx: oneshot::Receiver<Delivery>,
    /// The outcome once [`AckWait::outcome`] has seen it (the channel yields it only once).
    seen: Option<Delivery>,
}

pub fn new() -> (Ack, AckWait) {
    let (tx, rx) = oneshot::channel();
    (
        Ack(Arc::new(Inner {
            failed: AtomicBool::new(false),
            tx: Some(tx),
        })),
        AckWait { rx, seen: None },
    )
}

impl Ack {
    /// Marks the whole batch as not delivered; the receiver will answer with an error.
    pub fn fail(&self) {
        self.0.failed.store(true, Ordering::Release);
    }
}

/// The acknowledgement shares one batch carries: one request's, or every request a batcher
/// merged into it. Dropped without [`Acks::release`], it fails them all, so a batch lost to a
/// bug or a shutdown deadline can never be acknowledged as a success.
#[derive(Clone, Default)]
pub struct Acks(Vec<Ack>);

impl Acks {
    pub fn one(ack: Ack) -> Acks {
        Acks(vec![ack])
    }

    pub fn push(&mut self, ack: Ack) {
        self.0.push(ack);
    }

    /// Lets every share go as delivered.
    pub fn release(mut self) {
        self.0.clear();
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Drop for Acks {
    fn drop(&mut self) {
        for ack in &self.0 {
            ack.fail();
        }
    }
}

impl AckWait {
    /// The outcome if it is known already, without waiting.
    pub fn outcome(&mut self) -> Option<Delivery> {
        if self.seen.is_none() {
            self.seen = match self.rx.try_recv() {
                Ok(d) => Some(d),
                Err(oneshot::error::TryRecvError::Empty) => None,
                Err(oneshot::error::TryRecvError::Closed) => Some(Delivery::Failed),
            };
        }
        self.seen
    }

    /// Waits for the outcome without giving the wait up, so it can be asked again.
    pub async fn settled(&mut self) -> Delivery {
        if let Some(d) = self.seen {
            return d;
        }
        let d = (&mut self.rx).await.unwrap_or(Delivery::Failed);
        self.seen = Some(d);
        d
    }

    pub async fn wait(self) -> Delivery {
        // The sender lives in `Inner`, whose drop always sends; a closed channel cannot happen,
        // but if it did the only safe reading is "not delivered".
        match self.seen {
            Some(d) => d,
            None => self.rx.await.unwrap_or(Delivery::Failed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn resolves_delivered_when_every_share_is_released() {
        let (ack, wait) = new();
        let other = ack.clone();
        drop(ack);
        drop(other);
        assert_eq!(wait.wait().await, Delivery::Delivered);
    }

    #[tokio::test]
    async fn one_failed_share_fails_the_batch() {
        let (ack, wait) = new();
        let other = ack.clone();
        other.fail();
        drop(other);
        drop(ack);
        assert_eq!(wait.wait().await, Delivery::Failed);
    }

    #[tokio::test]
    async fn dropped_ack_sets_fail_and_released_ones_deliver() {
        let (a, wait_a) = new();
        let (b, wait_b) = new();
        let mut set = Acks::one(a);
        set.push(b);
        drop(set);
        assert_eq!(wait_a.wait().await, Delivery::Failed);
        assert_eq!(wait_b.wait().await, Delivery::Failed);
        let (c, wait_c) = new();
        Acks::one(c).release();
        assert_eq!(wait_c.wait().await, Delivery::Delivered);
    }
}
