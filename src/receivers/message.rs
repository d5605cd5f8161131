//! A gRPC request body bounded the way [`body::collect`](super::body::collect) bounds HTTP
//! bodies, for tonic to read its message from.
//!
//! tonic reserves a message's whole declared length as soon as its 5-byte prefix is in, so a
//! client that declares 4 MiB and sends 5 bytes would cost 4 MiB, counted by the memory limiter
//! against every client. This body holds the arriving frames back (they are memory already
//! received) until a quarter of the declared message is in, so a client is charged at most about
//! four times what it sent. It also refuses a declared length over the limit before anything is
//! reserved (RESOURCE_EXHAUSTED, as gRPC servers answer), ends a message that does not arrive
//! within `read_timeout` (DEADLINE_EXCEEDED) and one still arriving at shutdown (UNAVAILABLE),
//! and counts the bytes received for `sluice_receiver_accepted_bytes_total`. Before tonic may
//! reserve the message, the request's [`Charge`] is grown to it (and, for a compressed message,
//! to the decompressed size it may reach): refused, the call ends RESOURCE_EXHAUSTED with
//! `RetryInfo`, as the memory limiter answers.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use hyper::body::{Body, Frame, Incoming};
use tokio::time::{Instant, Sleep};
use tonic::Status;

use crate::pipeline::Charge;
use crate::shutdown::Shutdown;
use crate::telemetry::Counter;

/// A request's charge, shared by its body (while tonic reads the message) and its handler.
pub type SharedCharge = Arc<std::sync::Mutex<Charge>>;

/// What bounds one message.
#[derive(Clone)]
pub struct Limits {
    /// Largest message (before decompression; tonic bounds the output).
    pub limit: usize,
    pub timeout: Duration,
    pub shutdown: Shutdown,
    pub timed_out: Counter,
    pub retry_after: Duration,
}

pub struct Bounded {
    inner: Incoming,
    limits: Arc<Limits>,
    started: Instant,
    held: VecDeque<Bytes>,
    held_trailers: Option<Frame<Bytes>>,
    released: bool,
    arrived: usize,
    /// Prefix plus message, once the prefix is in.
    declared: Option<usize>,
    /// Armed on the first wait, so a body that is already there costs no timer.
    deadline: Option<Pin<Box<Sleep>>>,
    stop: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    received: Arc<AtomicU64>,
    charge: SharedCharge,
    /// The message is compressed: tonic also holds its decompressed form, up to the limit.
    compressed: bool,
}

impl Bounded {
    pub fn new(
        inner: Incoming,
        limits: Arc<Limits>,
        received: Arc<AtomicU64>,
        charge: SharedCharge,
        compressed: bool,
    ) -> Self {
        Bounded {
            inner,
            limits,
            started: Instant::now(),
            held: VecDeque::new(),
            held_trailers: None,
            released: false,
            arrived: 0,
            declared: None,
            deadline: None,
            stop: None,
            received,
            charge,
            compressed,
        }
    }

    /// Charges what tonic will hold once the message is let through: refused, the call ends.
    fn release(&mut self) -> Result<(), Status> {
        self.released = true;
        let message = self.declared.unwrap_or(0).max(self.arrived);
        let decompressed = if self.compressed {
            self.limits.limit
        } else {
            0
        };
        let mut charge = self.charge.lock().unwrap_or_else(|p| p.into_inner());
        charge
            .grow_to((message + decompressed) as u64)
            .map_err(|_| crate::receivers::otlp::status::over_limit(self.limits.retry_after))
    }

    /// The message length from the first five held bytes, once they are in.
    fn read_prefix(&mut self) -> Option<usize> {
        if self.arrived < 5 {
            return None;
        }
        let mut prefix = [0u8; 5];
        let mut at = 0;
        for chunk in &self.held {
            let n = (5 - at).min(chunk.len());
            prefix[at..at + n].copy_from_slice(&chunk[..n]);
            at += n;
            if at == 5 {
                break;
            }
        }
        Some(5 + u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize)
    }

    fn too_large(&self) -> Status {
        Status::resource_exhausted(format!(
            "message larger than max_recv_msg_size_mib ({} bytes)",
            self.limits.limit
        ))
    }

    /// Whether the deadline or shutdown ended the wait, and with what.
    fn poll_bounds(&mut self, cx: &mut Context<'_>) -> Option<Status> {
        let deadline = self.deadline.get_or_insert_with(|| {
            Box::pin(tokio::time::sleep_until(self.started + self.limits.timeout))
        });
        if deadline.as_mut().poll(cx).is_ready() {
            self.limits.timed_out.add(1);
            return Some(Status::deadline_exceeded(
                "the message did not arrive within read_timeout",
            ));
        }
        let stop = self.stop.get_or_insert_with(|| {
            let mut s = self.limits.shutdown.clone();
            Box::pin(async move { s.wait().await })
        });
        if stop.as_mut().poll(cx).is_ready() {
            return Some(crate::receivers::otlp::status::retryable(
                tonic::Code::Unavailable,
                "sluice is shutting down; retry",
                self.limits.retry_after,
            ));
        }
        None
    }
}

impl Body for Bounded {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        loop {
            if this.released {
                if let Some(b) = this.held.pop_front() {
                    return Poll::Ready(Some(Ok(Frame::data(b))));
                }
                if let Some(t) = this.held_trailers.take() {
                    return Poll::Ready(Some(Ok(t)));
                }
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        this.arrived += data.remaining();
                        this.received
                            .fetch_add(data.len() as u64, Ordering::Relaxed);
                        if this.arrived > this.limits.limit.saturating_add(5) {
                            return Poll::Ready(Some(Err(this.too_large())));
                        }
                        if this.released {
                            return Poll::Ready(Some(Ok(Frame::data(data))));
                        }
                        this.held.push_back(data);
                        if this.declared.is_none() {
                            this.declared = this.read_prefix();
                            if this
                                .declared
                                .is_some_and(|d| d > this.limits.limit.saturating_add(5))
                            {
                                return Poll::Ready(Some(Err(this.too_large())));
                            }
                        }
                        if this.declared.is_some_and(|d| this.arrived * 4 >= d)
                            && let Err(status) = this.release()
                        {
                            return Poll::Ready(Some(Err(status)));
                        }
                    }
                    Err(frame) => {
                        this.held_trailers = Some(frame);
                        if let Err(status) = this.release() {
                            return Poll::Ready(Some(Err(status)));
                        }
                    }
                },
                Poll::Ready(Some(Err(_))) => {
                    return Poll::Ready(Some(Err(Status::cancelled("could not read the request"))));
                }
                Poll::Ready(None) => {
                    if this.held.is_empty() && this.held_trailers.is_none() {
                        return Poll::Ready(None);
                    }
                    if let Err(status) = this.release() {
                        return Poll::Ready(Some(Err(status)));
                    }
                }
                Poll::Pending => {
                    if let Some(status) = this.poll_bounds(cx) {
                        return Poll::Ready(Some(Err(status)));
                    }
                    return Poll::Pending;
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream() && self.held.is_empty() && self.held_trailers.is_none()
    }
}
