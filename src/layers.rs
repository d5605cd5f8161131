//! The tower layers every listener's requests pass through, whatever the protocol: the
//! in-flight tracking that the idle timeout reads, and the credentials check of `auth`.
//! `server::serve` stacks them in front of each receiver's handler; the body's own bounds (size,
//! `read_timeout`, shutdown) are applied where the body is read (`receivers::body`,
//! `receivers::message`), since a timeout around the whole request would also cut off the wait
//! for delivery that the answer depends on.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::FutureExt;
use http_body_util::Either;
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Request, Response};
use tokio::time::Instant;
use tower::{Layer, Service};

use crate::auth::{Denied, ServerAuth};
use crate::pipeline::BoxFuture;
use crate::server::HttpResponse;
use crate::telemetry::Counter;

/// Requests in flight on one connection and when the last one ended, for the idle timeout.
pub struct Activity {
    start: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds after `start` at which the last request ended.
    last_done_ms: AtomicU64,
}

/// Marks a request in flight until dropped (also when the connection is dropped mid-request).
pub struct InFlight(Arc<Activity>);

impl Default for Activity {
    /// A connection accepted now, with nothing in flight.
    fn default() -> Self {
        Activity {
            start: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_done_ms: AtomicU64::new(0),
        }
    }
}

impl Activity {
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(Arc::clone(self))
    }

    /// Completes once the connection has had nothing in flight for `timeout`.
    pub async fn idle_for(&self, timeout: Duration) {
        let mut deadline = self.start + timeout;
        loop {
            tokio::time::sleep_until(deadline).await;
            if self.in_flight.load(Ordering::Relaxed) > 0 {
                deadline = Instant::now() + timeout;
                continue;
            }
            let last =
                self.start + Duration::from_millis(self.last_done_ms.load(Ordering::Relaxed));
            let due = last + timeout;
            if Instant::now() >= due {
                return;
            }
            deadline = due;
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let a = &self.0;
        let ms = a.start.elapsed().as_millis().min(u64::MAX as u128) as u64;
        a.last_done_ms.store(ms, Ordering::Relaxed);
        a.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Guard")
    }
}

/// The credentials check in front of a listener's handler: a refused request is answered
/// without its body being read, so it costs no memory and forwards nothing.
pub struct Guard {
    pub auth: Arc<dyn ServerAuth>,
    /// Counts refused requests.
    pub refused: Counter,
    /// The answer to a refused request, in the listener's protocol (401 with the challenge, or
    /// gRPC UNAUTHENTICATED).
    pub answer: fn(Denied, HeaderValue) -> HttpResponse,
}

/// Marks each request in flight on its connection's [`Activity`] until its answer is made.
#[derive(Clone)]
pub struct TrackLayer(pub Arc<Activity>);

impl<S> Layer<S> for TrackLayer {
    type Service = Tracked<S>;

    fn layer(&self, inner: S) -> Tracked<S> {
        Tracked {
            inner,
            activity: Arc::clone(&self.0),
        }
    }
}

#[derive(Clone)]
pub struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S, R> Service<Request<Incoming>> for Tracked<S>
where
    S: Service<Request<Incoming>, Response = R, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = R;
    type Error = Infallible;
    type Future = BoxFuture<Result<R, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Incoming>) -> Self::Future {
        let in_flight = self.activity.begin();
        let answer = self.inner.call(req);
        Box::pin(async move {
            let r = answer.await;
            drop(in_flight);
            r
        })
    }
}

/// Checks each request's credentials with the listener's [`Guard`] (none: every request passes)
/// before the inner service sees it.
#[derive(Clone)]
pub struct AuthLayer(pub Option<Arc<Guard>>);

impl<S> Layer<S> for AuthLayer {
    type Service = Authenticated<S>;

    fn layer(&self, inner: S) -> Authenticated<S> {
        Authenticated {
            inner,
            guard: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Authenticated<S> {
    inner: S,
    guard: Option<Arc<Guard>>,
}

impl<S, B> Service<Request<Incoming>> for Authenticated<S>
where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<Either<B, http_body_util::Full<bytes::Bytes>>>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Incoming>) -> Self::Future {
        let Some(guard) = self.guard.clone() else {
            // Mapped, not awaited in an async block, which would hold the inner future twice
            // (captured, then awaited): the receiver's future is kilobytes, and the doubled
            // one was copied when boxed and again when first polled (`memmove` went from 8.0%
            // to 6.5% of a decoded OTLP pipeline's time with this and `serve_connection`'s).
            let answer = self.inner.call(req);
            return Box::pin(answer.map(|r| r.map(|r| r.map(Either::Left))));
        };
        let check = guard.auth.authenticate(req.headers());
        // The inner service is called only once the check passed; the clone is the one that
        // `poll_ready` readied (tower's usual swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            if let Err(denied) = check.outcome().await {
                guard.refused.add(1);
                let answer = (guard.answer)(denied, guard.auth.challenge());
                return Ok(answer.map(Either::Right));
            }
            inner.call(req).await.map(|r| r.map(Either::Left))
        })
    }
}
