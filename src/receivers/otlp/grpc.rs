//! OTLP/gRPC: the logs, trace and metrics services' unary `Export` over HTTP/2 with prior
//! knowledge.
//!
//! The request body (one length-prefixed message, gzip or zstd when `grpc-encoding` says so)
//! goes straight to the zero-copy protobuf decoder. Errors are "Trailers-Only" answers whose
//! `grpc-status-details-bin` holds a `google.rpc.Status`, with `RetryInfo` when the client
//! should come back later.

use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response};
use tokio::net::TcpListener;

use super::GrpcConfig;
use crate::model::{Batch, Signal};
use crate::otlp::grpc::{self as wire, UnaryBody, code};
use crate::pipeline::{ConsumeError, Consumer, Running, WorkerSlot, offload};
use crate::receivers::body::{self, Refusal};
use crate::receivers::edge::Edge;
use crate::server;
use crate::shutdown::Shutdown;
use crate::telemetry::ReceiverMetrics;

struct Shared {
    /// Largest message, compressed or not.
    limit: usize,
    /// Bounds on reading one message with its 5-byte header.
    bounds: body::Bounds,
    retry_after: Duration,
    metrics: ReceiverMetrics,
}

/// Serves OTLP/gRPC on `listener` until shutdown.
pub(super) fn serve(
    listener: TcpListener,
    cfg: GrpcConfig,
    edge: &Edge,
    metrics: ReceiverMetrics,
    consumer: Consumer,
    shutdown: Shutdown,
) -> Running {
    let params = &cfg.keepalive.server_parameters;
    let mut opts = server::Options {
        max_connection_age: params.max_connection_age,
        max_connection_age_grace: params.max_connection_age_grace,
        http2: true,
        idle_timeout: Some(params.max_connection_idle),
        max_connections: cfg.max_connections,
        data: true,
        keepalive_time: Some(params.time),
        keepalive_timeout: params.timeout,
        max_concurrent_streams: Some(cfg.max_concurrent_streams),
        refused_connections: Some(metrics.refused_connections.clone()),
        ..Default::default()
    };
    edge.apply(&mut opts, &metrics);
    let limit = cfg.limit();
    let shared = Arc::new(Shared {
        limit,
        bounds: body::Bounds {
            limit: limit + 5,
            timeout: cfg.read_timeout,
            shutdown: shutdown.clone(),
        },
        retry_after: cfg.retry_after,
        metrics,
    });
    Box::pin(server::serve(listener, shutdown, opts, move || {
        // One worker per connection; concurrent streams on it borrow extra workers.
        let worker = WorkerSlot::new(consumer.clone());
        let shared = Arc::clone(&shared);
        move |req| handle(req, Arc::clone(&shared), Arc::clone(&worker))
    }))
}

type GrpcResponse = Response<UnaryBody>;

/// A "Trailers-Only" answer: the status in the headers, no body.
fn status(code: u32, message: &str, retry: Option<Duration>) -> GrpcResponse {
    let mut resp = Response::new(UnaryBody::new(None, None));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    resp.headers_mut()
        .extend(wire::status_headers(code, message, retry));
    resp
}

/// Success: an empty `ExportLogsServiceResponse`, then `grpc-status: 0`.
fn ok() -> GrpcResponse {
    let mut resp = Response::new(UnaryBody::new(
        Some(wire::frame(&[], false)),
        Some(wire::status_headers(code::OK, "", None)),
    ));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    resp
}

async fn handle(
    req: Request<Incoming>,
    shared: Arc<Shared>,
    slot: Arc<WorkerSlot>,
) -> GrpcResponse {
    let is_grpc = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    if !is_grpc {
        let mut resp = status(
            code::INVALID_ARGUMENT,
            "content-type must be application/grpc",
            None,
        );
        *resp.status_mut() = hyper::StatusCode::UNSUPPORTED_MEDIA_TYPE;
        return resp;
    }
    let signal = match req.uri().path() {
        wire::LOGS_EXPORT => Signal::Logs,
        wire::TRACES_EXPORT => Signal::Traces,
        wire::METRICS_EXPORT => Signal::Metrics,
        other => {
            return status(
                code::UNIMPLEMENTED,
                &format!("unknown method {other}"),
                None,
            );
        }
    };
    if !slot.accepts(signal) {
        return status(
            code::UNIMPLEMENTED,
            &format!(
                "no {} pipeline takes data from this receiver",
                signal.name()
            ),
            None,
        );
    }
    let encoding = req
        .headers()
        .get("grpc-encoding")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .to_ascii_lowercase();
    if !matches!(encoding.as_str(), "identity" | "gzip" | "zstd") {
        let mut resp = status(
            code::UNIMPLEMENTED,
            &format!("grpc-encoding {encoding:?} is not supported"),
            None,
        );
        resp.headers_mut().insert(
            "grpc-accept-encoding",
            HeaderValue::from_static("identity,gzip,zstd"),
        );
        return resp;
    }

    if !slot.admits() {
        // Refused before the message is read, so a flood of refused requests holds no memory.
        body::drain(req.into_body(), &shared.bounds).await;
        shared.metrics.refused_requests.add(1);
        return over_limit(shared.retry_after);
    }
    let metadata = slot.metadata(req.headers());
    // One message plus its 5-byte header, at most.
    let raw = match body::collect(req.into_body(), &shared.bounds, message_size).await {
        Ok(raw) => raw,
        Err(Refusal::TooLarge) => return too_large(shared.limit),
        Err(Refusal::TimedOut) => {
            shared.metrics.timed_out_requests.add(1);
            return status(
                code::DEADLINE_EXCEEDED,
                "the message did not arrive within read_timeout",
                None,
            );
        }
        Err(Refusal::ShuttingDown) => {
            return status(
                code::UNAVAILABLE,
                "sluice is shutting down; retry",
                Some(shared.retry_after),
            );
        }
        Err(_) => return status(code::CANCELLED, "could not read the request", None),
    };
    let wire_bytes = raw.len() as u64;
    let message = match wire::unframe(&raw, shared.limit) {
        Ok((false, m)) => m,
        Ok((true, m)) if encoding != "identity" => {
            match body::decompress(&encoding, m, shared.limit) {
                Ok(m) => m,
                Err(Refusal::DecompressedTooLarge) => return too_large(shared.limit),
                Err(_) => {
                    return status(
                        code::INVALID_ARGUMENT,
                        &format!("the message is not valid {encoding}"),
                        None,
                    );
                }
            }
        }
        Ok((true, _)) => {
            return status(
                code::INTERNAL,
                "compressed flag set without a grpc-encoding",
                None,
            );
        }
        Err(wire::FrameError::TooLarge(_)) => return too_large(shared.limit),
        Err(wire::FrameError::Malformed(why)) => {
            return status(code::INVALID_ARGUMENT, why, None);
        }
    };
    let decoded = offload::run(message.len(), || match signal {
        Signal::Logs if slot.encoded_logs() => {
            crate::otlp::raw::decode_logs(&message).map(Batch::Raw)
        }
        Signal::Logs => crate::otlp::logs::decode(&message).map(Batch::Logs),
        Signal::Traces => crate::otlp::raw::decode_traces(&message).map(Batch::Raw),
        Signal::Metrics => crate::otlp::raw::decode_metrics(&message).map(Batch::Raw),
    });
    let batch = match decoded {
        Ok(b) => b,
        Err(e) => {
            return status(
                code::INVALID_ARGUMENT,
                &format!("invalid {}: {e}", super::http::request_name(signal)),
                None,
            );
        }
    };
    match slot
        .consume(batch, &metadata, &shared.metrics, wire_bytes)
        .await
    {
        Ok(()) => ok(),
        Err(e) => {
            let retry = Some(shared.retry_after);
            match e {
                ConsumeError::Full => status(
                    code::RESOURCE_EXHAUSTED,
                    "the pipeline is full; retry later",
                    retry,
                ),
                ConsumeError::OverLimit => over_limit(shared.retry_after),
                ConsumeError::Closed => {
                    status(code::UNAVAILABLE, "sluice is shutting down; retry", retry)
                }
                ConsumeError::NotDelivered => status(
                    code::UNAVAILABLE,
                    "the records could not be delivered; retry",
                    retry,
                ),
                // The same request would never fit: no retry hint.
                ConsumeError::TooLarge { .. } | ConsumeError::TooManyBytes { .. } => {
                    status(code::RESOURCE_EXHAUSTED, &e.to_string(), None)
                }
            }
        }
    }
}

/// The memory limiter refuses: retryable, with the hint.
fn over_limit(retry_after: Duration) -> GrpcResponse {
    status(
        code::RESOURCE_EXHAUSTED,
        "sluice is over its memory limit; retry later",
        Some(retry_after),
    )
}

/// A gRPC message's size from its 5-byte prefix (flag, then big-endian length).
fn message_size(first: &[u8]) -> Option<usize> {
    let len: [u8; 4] = first.get(1..5)?.try_into().ok()?;
    Some(5 + u32::from_be_bytes(len) as usize)
}

/// Over `max_recv_msg_size_mib`: RESOURCE_EXHAUSTED without a retry hint, as gRPC servers
/// answer, since the same message would be refused again.
fn too_large(limit: usize) -> GrpcResponse {
    status(
        code::RESOURCE_EXHAUSTED,
        &format!("message larger than max_recv_msg_size_mib ({limit} bytes)"),
        None,
    )
}
