//! Bounds on what the API server (or a kubelet) may make sluice hold: a tower layer under
//! kube-rs's client that ends an answer that grows past its limit or stops arriving, with an
//! error the component logs before it retries (kube-rs's watcher with its backoff, the next
//! scrape).
//!
//! - An answer that is not a watch (a list page, an object, the kubelet's summary) may be at
//!   most `max_answer_size` bytes and must arrive whole within `answer_timeout` of the request.
//!   A server that ignores `limit` and sends 100,000 pods in one page, or a summary of a
//!   gigabyte, is cut off at the bound instead of being read whole.
//! - A watch event (one line) may be at most `max_event_size` bytes, and a watch must send
//!   something (an event or a bookmark) at least every [`WATCH_IDLE`]. A line of a gigabyte with
//!   no newline is cut off at the bound; kube-rs's own line reader has no limit.
//!
//! ```yaml
//! processors:
//!   k8sattributes:
//!     api_limits: { max_answer_size: 32MiB, max_event_size: 4MiB, answer_timeout: 60s }
//! ```

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame};
use hyper::{Request, Response};
use serde::Deserialize;
use tokio::time::{Instant, Sleep};
use tower::{BoxError, Layer, Service};

use crate::config::{byte_size, duration};

/// How long a watch may stay silent. kube-rs asks the API server to end a watch after 290 s
/// (`timeoutSeconds`), and bookmarks come far more often; a watch quiet for longer is dead.
pub const WATCH_IDLE: Duration = Duration::from_secs(350);

/// `api_limits`: what one answer from the cluster may cost. A sluice-only setting.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiLimits {
    /// Largest answer that is not a watch: a list page (the watcher asks for 500 objects a
    /// page), an object, the kubelet's summary (about 1 MB for a full node). Default `32MiB`.
    #[serde(default = "default_answer", deserialize_with = "byte_size")]
    pub max_answer_size: usize,
    /// Largest watch event, one line. Default `4MiB`: etcd keeps objects of at most 1.5 MiB.
    #[serde(default = "default_event", deserialize_with = "byte_size")]
    pub max_event_size: usize,
    /// An answer that is not a watch must have arrived whole this long after the request (a
    /// list that never answers is retried). Default `60s`.
    #[serde(default = "default_timeout", deserialize_with = "duration")]
    pub answer_timeout: Duration,
}

fn default_answer() -> usize {
    32 << 20
}

fn default_event() -> usize {
    4 << 20
}

fn default_timeout() -> Duration {
    Duration::from_secs(60)
}

impl Default for ApiLimits {
    fn default() -> Self {
        ApiLimits {
            max_answer_size: default_answer(),
            max_event_size: default_event(),
            answer_timeout: default_timeout(),
        }
    }
}

impl ApiLimits {
    /// Range errors, with their paths under `path`.
    pub fn check(&self, path: &str, errors: &mut Vec<crate::config::ConfigError>) {
        let size = |errors: &mut Vec<_>, field: &str, v: usize| {
            crate::config::check_count(
                errors,
                format!("{path}.{field}"),
                v as u64,
                64 << 10,
                1 << 30,
                "bytes",
            )
        };
        size(errors, "max_answer_size", self.max_answer_size);
        size(errors, "max_event_size", self.max_event_size);
        crate::config::check_duration(
            errors,
            format!("{path}.answer_timeout"),
            self.answer_timeout,
            Duration::from_millis(100),
            Duration::from_secs(3600),
        );
    }
}

/// Why an answer was cut off.
#[derive(Debug, thiserror::Error)]
pub enum Cut {
    #[error("the answer is over api_limits.max_answer_size ({0} bytes); not read further")]
    TooLarge(usize),
    #[error("a watch event is over api_limits.max_event_size ({0} bytes); not read further")]
    EventTooLarge(usize),
    #[error("no whole answer within api_limits.answer_timeout ({0:?})")]
    TimedOut(Duration),
    #[error("the watch sent nothing for {0:?}")]
    Silent(Duration),
}

/// Builds kube-rs's client for `config` with these bounds under it.
pub fn client(config: kube::Config, limits: &ApiLimits) -> Result<kube::Client, kube::Error> {
    Ok(kube::client::ClientBuilder::try_from(config)?
        .with_layer(&BoundLayer(limits.clone()))
        .build())
}

#[derive(Clone)]
struct BoundLayer(ApiLimits);

impl<S> Layer<S> for BoundLayer {
    type Service = Bound<S>;

    fn layer(&self, inner: S) -> Bound<S> {
        Bound {
            inner,
            limits: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Bound<S> {
    inner: S,
    limits: ApiLimits,
}

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S, ReqB, B> Service<Request<ReqB>> for Bound<S>
where
    S: Service<Request<ReqB>, Response = Response<B>>,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Bounded<B>>;
    type Error = BoxError;
    type Future = BoxFuture<Result<Response<Bounded<B>>, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let watch = is_watch(req.uri());
        let limits = self.limits.clone();
        let deadline = Instant::now() + limits.answer_timeout;
        let answer = self.inner.call(req);
        Box::pin(async move {
            let resp = match tokio::time::timeout_at(deadline, answer).await {
                Ok(r) => r.map_err(Into::into)?,
                Err(_) => return Err(Cut::TimedOut(limits.answer_timeout).into()),
            };
            let mode = if watch {
                Mode::Watch {
                    max_event: limits.max_event_size,
                    since_newline: 0,
                }
            } else {
                Mode::Whole {
                    left: limits.max_answer_size,
                    limit: limits.max_answer_size,
                }
            };
            let (deadline, wait) = if watch {
                (Instant::now() + WATCH_IDLE, WATCH_IDLE)
            } else {
                (deadline, limits.answer_timeout)
            };
            Ok(resp.map(|inner| Bounded {
                inner,
                mode,
                timer: Box::pin(tokio::time::sleep_until(deadline)),
                wait,
            }))
        })
    }
}

/// Whether a request is a watch (`?watch=true` or `?watch=1`).
fn is_watch(uri: &hyper::Uri) -> bool {
    uri.query()
        .is_some_and(|q| q.split('&').any(|kv| kv == "watch=true" || kv == "watch=1"))
}

enum Mode {
    Whole {
        left: usize,
        limit: usize,
    },
    Watch {
        max_event: usize,
        since_newline: usize,
    },
}

/// An answer's body, ended with a [`Cut`] error at its bound.
pub struct Bounded<B> {
    inner: B,
    mode: Mode,
    /// The whole answer's deadline; for a watch, the end of the allowed silence.
    timer: Pin<Box<Sleep>>,
    wait: Duration,
}

impl<B> Body for Bounded<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let frame = match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending => {
                if this.timer.as_mut().poll(cx).is_ready() {
                    let cut = match this.mode {
                        Mode::Whole { .. } => Cut::TimedOut(this.wait),
                        Mode::Watch { .. } => Cut::Silent(this.wait),
                    };
                    return Poll::Ready(Some(Err(cut.into())));
                }
                return Poll::Pending;
            }
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(Some(Ok(frame))) => frame,
        };
        if let Some(data) = frame.data_ref() {
            match &mut this.mode {
                Mode::Whole { left, limit } => {
                    if data.len() > *left {
                        return Poll::Ready(Some(Err(Cut::TooLarge(*limit).into())));
                    }
                    *left -= data.len();
                }
                Mode::Watch {
                    max_event,
                    since_newline,
                } => {
                    *since_newline = match memchr::memrchr(b'\n', data) {
                        Some(at) => data.len() - at - 1,
                        None => *since_newline + data.len(),
                    };
                    // A line longer than the bound within this one frame is caught too.
                    let longest = data
                        .split(|b| *b == b'\n')
                        .map(<[u8]>::len)
                        .max()
                        .unwrap_or(0);
                    if *since_newline > *max_event || longest > *max_event {
                        return Poll::Ready(Some(Err(Cut::EventTooLarge(*max_event).into())));
                    }
                    let next = Instant::now() + this.wait;
                    this.timer.as_mut().reset(next);
                }
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    type Frames = http_body_util::StreamBody<
        futures::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, std::io::Error>>>,
    >;

    /// A body of the given frames, then its end.
    fn frames(parts: &[&[u8]]) -> Frames {
        let v: Vec<Result<Frame<Bytes>, std::io::Error>> = parts
            .iter()
            .map(|p| Ok(Frame::data(Bytes::copy_from_slice(p))))
            .collect();
        http_body_util::StreamBody::new(futures::stream::iter(v))
    }

    fn bounded<B>(inner: B, mode: Mode) -> Bounded<B> {
        Bounded {
            inner,
            mode,
            timer: Box::pin(tokio::time::sleep(Duration::from_secs(3600))),
            wait: Duration::from_secs(3600),
        }
    }

    #[tokio::test]
    async fn an_answer_is_cut_at_its_size_and_an_event_at_its_length() {
        let whole = |parts: &[&[u8]]| {
            bounded(
                frames(parts),
                Mode::Whole {
                    left: 10,
                    limit: 10,
                },
            )
        };
        assert!(whole(&[b"12345", b"67890"]).collect().await.is_ok());
        let e = whole(&[b"12345", b"678901"]).collect().await.unwrap_err();
        assert!(e.to_string().contains("max_answer_size (10 bytes)"), "{e}");

        let watch = |parts: &[&[u8]]| {
            bounded(
                frames(parts),
                Mode::Watch {
                    max_event: 8,
                    since_newline: 0,
                },
            )
        };
        // Many short lines, split anywhere: fine however long the stream.
        assert!(
            watch(&[b"1234", b"5678\n12", b"345678\n", b"1\n2\n3\n"])
                .collect()
                .await
                .is_ok()
        );
        // One line growing over frames, or one too long inside a frame.
        let e = watch(&[b"12345", b"6789"]).collect().await.unwrap_err();
        assert!(e.to_string().contains("max_event_size (8 bytes)"), "{e}");
        assert!(watch(&[b"1\n123456789\n2"]).collect().await.is_err());
    }

    /// A body that never sends anything, ended after `wait`.
    fn silent(
        mode: Mode,
        wait: Duration,
    ) -> Bounded<impl Body<Data = Bytes, Error = std::io::Error> + Unpin> {
        let pending = http_body_util::StreamBody::new(futures::stream::pending::<
            Result<Frame<Bytes>, std::io::Error>,
        >());
        let mut b = bounded(pending, mode);
        b.timer = Box::pin(tokio::time::sleep(wait));
        b.wait = wait;
        b
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_that_stops_arriving_is_ended() {
        let whole = Mode::Whole {
            left: 10,
            limit: 10,
        };
        let e = silent(whole, Duration::from_secs(5))
            .collect()
            .await
            .unwrap_err();
        assert!(e.to_string().contains("no whole answer within"), "{e}");

        // A watch quiet for longer than allowed.
        let watch = Mode::Watch {
            max_event: 8,
            since_newline: 0,
        };
        let e = silent(watch, WATCH_IDLE).collect().await.unwrap_err();
        assert!(
            e.to_string().contains("the watch sent nothing for 350s"),
            "{e}"
        );
    }

    #[test]
    fn watches_are_told_from_other_requests() {
        assert!(is_watch(
            &"/api/v1/pods?watch=true&resourceVersion=1".parse().unwrap()
        ));
        assert!(is_watch(&"/api/v1/pods?limit=500&watch=1".parse().unwrap()));
        assert!(!is_watch(&"/api/v1/pods?limit=500".parse().unwrap()));
        assert!(!is_watch(&"/api/v1/pods?watchful=true".parse().unwrap()));
    }
}
