//! A shutdown signal every long-running task takes, so the service can stop receivers first and
//! let exporters drain (see `service`).

use tokio::sync::watch;

/// Fires once; every clone observes it.
#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

/// The side that fires a [`Shutdown`].
pub struct Trigger(watch::Sender<bool>);

pub fn channel() -> (Trigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (Trigger(tx), Shutdown(rx))
}

impl Trigger {
    pub fn fire(&self) {
        let _ = self.0.send(true);
    }
}

impl Shutdown {
    pub fn is_fired(&self) -> bool {
        *self.0.borrow()
    }

    /// Completes once fired, or once the trigger is gone (which can only mean the service is
    /// tearing down).
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|fired| *fired).await;
    }

    /// Sleeps for `d`, or less if fired first; `false` when fired. For retry and reconnect
    /// waits, which must not outlast a shutdown.
    pub async fn sleep(&self, d: std::time::Duration) -> bool {
        self.unless(tokio::time::sleep(d)).await.is_some()
    }

    /// Runs `f` to completion unless this fires first (`None` then, and `f` is dropped).
    pub async fn unless<F: std::future::Future>(&self, f: F) -> Option<F::Output> {
        if self.is_fired() {
            return None;
        }
        let mut this = self.clone();
        tokio::select! {
            out = f => Some(out),
            _ = this.wait() => None,
        }
    }
}
