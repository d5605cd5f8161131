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
}
