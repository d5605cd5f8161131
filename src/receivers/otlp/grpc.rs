//! OTLP/gRPC: the logs, trace and metrics services' unary `Export`, served by tonic's unary
//! handler on sluice's own HTTP/2 connections (`server::serve`: limits, TLS, auth).
//!
//! tonic does the protocol: `grpc-encoding` (gzip, zstd) with its output bounded by
//! `max_recv_msg_size_mib`, status and trailers, `grpc-accept-encoding`. The message arrives as
//! raw bytes ([`RawCodec`]) and goes straight to the zero-copy protobuf decoder. Errors carry a
//! `google.rpc.Status` with `RetryInfo` when the client should come back later
//! ([`status`](super::status)).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response};
use tokio::net::TcpListener;
use tonic::codec::CompressionEncoding;
use tonic::{Code, Status};

use super::GrpcConfig;
use super::status::{from_consume, over_limit};
use crate::model::Signal;
use crate::otlp::codec::RawCodec;
use crate::otlp::grpc as wire;
use crate::pipeline::Batch;
use crate::pipeline::{Consumer, Running, WorkerSlot, offload};
use crate::receivers::body;
use crate::receivers::edge::Edge;
use crate::receivers::message::{Bounded, Limits, SharedCharge};
use crate::server;
use crate::shutdown::Shutdown;
use crate::telemetry::ReceiverMetrics;

struct Shared {
    /// Largest message, compressed or not.
    limit: usize,
    /// How refused requests' bodies are drained.
    bounds: body::Bounds,
    message: Arc<Limits>,
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
        message: Arc::new(Limits {
            limit,
            timeout: cfg.read_timeout,
            shutdown: shutdown.clone(),
            timed_out: metrics.timed_out_requests.clone(),
            retry_after: cfg.retry_after,
        }),
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

type GrpcResponse = Response<tonic::body::Body>;

/// A status as a whole answer ("Trailers-Only").
fn answer(status: Status) -> GrpcResponse {
    status.into_http()
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
        let mut resp = answer(Status::invalid_argument(
            "content-type must be application/grpc",
        ));
        *resp.status_mut() = hyper::StatusCode::UNSUPPORTED_MEDIA_TYPE;
        return resp;
    }
    let signal = match req.uri().path() {
        wire::LOGS_EXPORT => Signal::Logs,
        wire::TRACES_EXPORT => Signal::Traces,
        wire::METRICS_EXPORT => Signal::Metrics,
        other => return answer(Status::unimplemented(format!("unknown method {other}"))),
    };
    if !slot.accepts(signal) {
        return answer(Status::unimplemented(format!(
            "no {} pipeline takes data from this receiver",
            signal.name()
        )));
    }
    let Some(charge) = slot.admit() else {
        // Refused before the message is read, so a flood of refused requests holds no memory.
        body::drain(req.into_body(), &shared.bounds).await;
        shared.metrics.refused_requests.add(1);
        return answer(over_limit(shared.retry_after));
    };
    let charge: SharedCharge = Arc::new(std::sync::Mutex::new(charge));
    let compressed = req
        .headers()
        .get("grpc-encoding")
        .is_some_and(|v| v.as_bytes() != b"identity");
    let metadata = slot
        .metadata(req.headers())
        .from_peer(crate::server::peer_ip(&req));
    let received = Arc::new(AtomicU64::new(0));
    let req = req.map(|b| {
        let limits = Arc::clone(&shared.message);
        Bounded::new(
            b,
            limits,
            Arc::clone(&received),
            Arc::clone(&charge),
            compressed,
        )
    });
    let export = Export {
        signal,
        slot,
        shared: Arc::clone(&shared),
        metadata,
        received,
        charge,
    };
    let mut grpc = tonic::server::Grpc::new(RawCodec)
        .accept_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Zstd)
        .max_decoding_message_size(shared.limit);
    let mut resp = grpc.unary(export, req).await;
    resp.headers_mut()
        .entry("grpc-accept-encoding")
        .or_insert(HeaderValue::from_static("gzip,zstd"));
    resp
}

/// One call's `Export`: decode the message, push it into the pipeline, answer.
struct Export {
    signal: Signal,
    slot: Arc<WorkerSlot>,
    shared: Arc<Shared>,
    metadata: crate::pipeline::Metadata,
    received: Arc<AtomicU64>,
    charge: SharedCharge,
}

impl tower::Service<tonic::Request<Bytes>> for Export {
    type Response = tonic::Response<Bytes>;
    type Error = Status;
    type Future = crate::pipeline::BoxFuture<Result<tonic::Response<Bytes>, Status>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Status>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: tonic::Request<Bytes>) -> Self::Future {
        let signal = self.signal;
        let slot = Arc::clone(&self.slot);
        let shared = Arc::clone(&self.shared);
        let metadata = std::mem::take(&mut self.metadata);
        let wire_bytes = self.received.load(Ordering::Relaxed);
        let message = req.into_inner();
        // The body is read: the charge is this handler's alone now.
        let charge = std::mem::replace(
            &mut *self.charge.lock().unwrap_or_else(|p| p.into_inner()),
            crate::pipeline::Charge::unlimited(),
        );
        Box::pin(async move {
            let mut charge = charge;
            let cost = match signal {
                Signal::Logs if !slot.encoded_logs() => crate::otlp::logs::COST_PER_BYTE,
                _ => crate::otlp::raw::COST_PER_BYTE,
            };
            let decoding = charge.held() + cost.saturating_mul(message.len() as u64);
            if charge.grow_to(decoding).is_err() {
                shared.metrics.refused_requests.add(1);
                return Err(over_limit(shared.retry_after));
            }
            let decoded = offload::run(message.len(), || match signal {
                Signal::Logs if slot.encoded_logs() => {
                    crate::otlp::raw::decode_logs(&message).map(Batch::Raw)
                }
                Signal::Logs => crate::otlp::logs::decode(&message).map(Batch::Logs),
                Signal::Traces => crate::otlp::raw::decode_traces(&message).map(Batch::Raw),
                Signal::Metrics => crate::otlp::raw::decode_metrics(&message).map(Batch::Raw),
            });
            let batch = decoded.map_err(|e| {
                Status::new(
                    Code::InvalidArgument,
                    format!("invalid {}: {e}", super::http::request_name(signal)),
                )
            })?;
            slot.consume(batch, &metadata, &shared.metrics, wire_bytes, charge)
                .await
                .map_err(|e| from_consume(e, shared.retry_after))?;
            // An empty Export*ServiceResponse: no partial success to report.
            Ok(tonic::Response::new(Bytes::new()))
        })
    }
}
