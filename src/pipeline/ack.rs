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
pub struct AckWait(oneshot::Receiver<Delivery>);

pub fn new() -> (Ack, AckWait) {
    let (tx, rx) = oneshot::channel();
    (
        Ack(Arc::new(Inner {
            failed: AtomicBool::new(false),
            tx: Some(tx),
        })),
        AckWait(rx),
    )
}

impl Ack {
    /// Marks the whole batch as not delivered; the receiver will answer with an error.
    pub fn fail(&self) {
        self.0.failed.store(true, Ordering::Release);
    }
}

impl AckWait {
    pub async fn wait(self) -> Delivery {
        // The sender lives in `Inner`, whose drop always sends; a closed channel cannot happen,
        // but if it did the only safe reading is "not delivered".
        self.0.await.unwrap_or(Delivery::Failed)
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
}
