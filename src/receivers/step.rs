//! The one request step of every HTTP receiver (`http_logs`, OTLP/HTTP): admit (the memory
//! limiter, before a byte of the body is read), read the body within its bounds, decode it (off
//! the reactor when large), push it into the pipeline, answer. From admission until its records
//! are queued the request holds a [`Charge`] on the limiter's budget: its buffers as they grow,
//! then what decoding may cost (the receiver's stated bytes per body byte) before it starts; and the one mapping of each
//! refusal to an HTTP status, a gRPC code for `Status` bodies, and a retry hint. Receivers only
//! say how to decode and how their answers are worded. (OTLP/gRPC has the same steps inside
//! tonic's unary handler, with `otlp::status` for the codes.)

use bytes::Bytes;
use hyper::Request;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, RETRY_AFTER};
use tonic::Code;

use crate::pipeline::Batch;
#[cfg(doc)]
use crate::pipeline::Charge;
use crate::pipeline::{ConsumeError, WorkerSlot, offload};
use crate::receivers::body::{self, Refusal};
use crate::server::HttpResponse;
use crate::telemetry::ReceiverMetrics;

/// Decoding costs at most `per_byte` bytes of memory per body byte.
pub fn per_byte(per_byte: u64) -> impl FnOnce(&[u8]) -> u64 {
    move |body| per_byte.saturating_mul(body.len() as u64)
}

/// What one receiver's requests share.
pub struct Step {
    pub bounds: body::Bounds,
    pub metrics: ReceiverMetrics,
    /// Sent as `Retry-After` with every retryable refusal.
    pub retry_after: HeaderValue,
}

/// How a receiver words its answers: plain text, or a `google.rpc.Status` in the request's
/// encoding as OTLP/HTTP asks.
pub trait Words {
    fn ok(&self) -> HttpResponse;
    fn error(&self, status: u16, code: Code, message: &str) -> HttpResponse;
}

/// A body that is not a valid request: the status to answer and why.
pub struct Invalid {
    pub status: u16,
    pub message: String,
}

impl Step {
    /// Runs the step for `req` on this connection's pipeline worker `slot`. Decoding the
    /// (decompressed) body may take up to `cost(body)` bytes of memory.
    pub async fn run<W: Words>(
        &self,
        req: Request<Incoming>,
        slot: &WorkerSlot,
        words: &W,
        cost: impl FnOnce(&[u8]) -> u64,
        decode: impl FnOnce(Bytes) -> Result<Batch, Invalid>,
    ) -> HttpResponse {
        let Some(mut charge) = slot.admit() else {
            // Refused before the body is read, so a flood of refused requests holds no memory.
            body::drain(req.into_body(), &self.bounds).await;
            self.metrics.refused_requests.add(1);
            return self.refuse(words, ConsumeError::OverLimit);
        };
        let metadata = slot
            .metadata(req.headers())
            .from_peer(crate::server::peer_ip(&req));
        let (body, wire_bytes) = match body::read(req, &self.bounds, &mut charge).await {
            Ok(read) => read,
            Err(Refusal::ShuttingDown) => return self.refuse(words, ConsumeError::Closed),
            Err(Refusal::OverLimit) => {
                self.metrics.refused_requests.add(1);
                return self.refuse(words, ConsumeError::OverLimit);
            }
            Err(refusal) => {
                let code = match refusal {
                    Refusal::TimedOut => {
                        self.metrics.timed_out_requests.add(1);
                        Code::DeadlineExceeded
                    }
                    Refusal::TooLarge | Refusal::DecompressedTooLarge => Code::ResourceExhausted,
                    _ => Code::InvalidArgument,
                };
                return words.error(refusal.status(), code, refusal.message());
            }
        };
        let decoding = charge.held().saturating_add(cost(&body));
        if charge.grow_to(decoding).is_err() {
            self.metrics.refused_requests.add(1);
            return self.refuse(words, ConsumeError::OverLimit);
        }
        let batch = match offload::run(body.len(), || decode(body)) {
            Ok(b) => b,
            Err(e) => return words.error(e.status, Code::InvalidArgument, &e.message),
        };
        match slot
            .consume(batch, &metadata, &self.metrics, wire_bytes, charge)
            .await
        {
            Ok(()) => words.ok(),
            Err(e) => self.refuse(words, e),
        }
    }

    /// The answer to a request the pipeline did not take: retryable ones carry `Retry-After`.
    pub fn refuse<W: Words>(&self, words: &W, e: ConsumeError) -> HttpResponse {
        let (status, code, retry) = match e {
            ConsumeError::Full | ConsumeError::OverLimit => (429, Code::ResourceExhausted, true),
            ConsumeError::Closed | ConsumeError::NotDelivered => (503, Code::Unavailable, true),
            // The same request would never fit: no retry hint.
            ConsumeError::TooLarge { .. } | ConsumeError::TooManyBytes { .. } => {
                (413, Code::ResourceExhausted, false)
            }
        };
        let message = match e {
            ConsumeError::Full => "the pipeline is full; retry later".to_string(),
            ConsumeError::OverLimit => "sluice is over its memory limit; retry later".to_string(),
            ConsumeError::Closed => "sluice is shutting down; retry".to_string(),
            ConsumeError::NotDelivered => "the records could not be delivered; retry".to_string(),
            ConsumeError::TooLarge { .. } | ConsumeError::TooManyBytes { .. } => e.to_string(),
        };
        let over_limit = matches!(e, ConsumeError::OverLimit);
        let mut resp = words.error(status, code, &message);
        if retry {
            resp.headers_mut()
                .insert(RETRY_AFTER, self.retry_after.clone());
        }
        if over_limit {
            // Over the memory limit the connection goes too: a keep-alive connection keeps the
            // read buffer it grew to (up to 408 KiB), which the limiter cannot refuse; 600
            // retrying clients held twice the limit in such buffers (fault drill 5). The
            // client reconnects when it retries, after the hint.
            resp.headers_mut().insert(
                hyper::header::CONNECTION,
                hyper::header::HeaderValue::from_static("close"),
            );
        }
        resp
    }
}

/// Plain-text answers (`http_logs`): an empty 200, and errors as one line of text.
pub struct PlainText;

impl Words for PlainText {
    fn ok(&self) -> HttpResponse {
        crate::server::text(200, "")
    }

    fn error(&self, status: u16, _code: Code, message: &str) -> HttpResponse {
        let mut text = message.trim_end().to_string();
        text.push('\n');
        let mut resp = hyper::Response::new(http_body_util::Full::new(Bytes::from(text)));
        *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
        resp.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        resp
    }
}
