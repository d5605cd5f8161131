//! OTLP/HTTP: `POST /v1/logs`, `/v1/traces`, `/v1/metrics` with `application/x-protobuf`,
//! or `application/json` for logs. A signal no pipeline takes from this receiver gets a 404,
//! as from the Collector.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response};
use tokio::net::TcpListener;
use tonic::Code;

use super::HttpConfig;
use crate::model::Signal;
use crate::otlp;
use crate::pipeline::Batch;
use crate::pipeline::{Consumer, Running, WorkerSlot};
use crate::receivers::edge::Edge;
use crate::receivers::step::{Invalid, Step, Words, per_byte};
use crate::server::{self, HttpResponse};
use crate::shutdown::Shutdown;
use crate::telemetry::ReceiverMetrics;

struct Shared {
    step: Step,
}

/// Serves OTLP/HTTP on `listener` until shutdown.
pub(super) fn serve(
    listener: TcpListener,
    cfg: HttpConfig,
    edge: &Edge,
    metrics: ReceiverMetrics,
    consumer: Consumer,
    shutdown: Shutdown,
) -> Running {
    let mut opts = cfg.server_options(&metrics);
    edge.apply(&mut opts, &metrics);
    let shared = Arc::new(Shared {
        step: cfg.step(metrics, shutdown.clone()),
    });
    Box::pin(server::serve(listener, shutdown, opts, move || {
        // One worker per connection; HTTP/1.1 serves one request at a time on it.
        let worker = WorkerSlot::new(consumer.clone());
        let shared = Arc::clone(&shared);
        move |req| handle(req, Arc::clone(&shared), Arc::clone(&worker))
    }))
}

/// The request's body encoding, which the answer uses too.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Protobuf,
    Json,
}

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

impl Format {
    fn of(req: &Request<Incoming>) -> Option<Format> {
        let ct = req.headers().get(CONTENT_TYPE)?.to_str().ok()?;
        let mime = ct.split(';').next().unwrap_or("").trim();
        if mime.eq_ignore_ascii_case(PROTOBUF) {
            Some(Format::Protobuf)
        } else if mime.eq_ignore_ascii_case(JSON) {
            Some(Format::Json)
        } else {
            None
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Format::Protobuf => PROTOBUF,
            Format::Json => JSON,
        }
    }

    fn respond(self, status: u16, body: Vec<u8>) -> HttpResponse {
        let mut resp = Response::new(Full::new(Bytes::from(body)));
        *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
        resp.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(self.content_type()));
        resp
    }

    /// A `google.rpc.Status` with a gRPC code, as OTLP/HTTP asks of every error answer.
    fn status(self, http: u16, code: i32, message: &str) -> HttpResponse {
        let message = message.trim_end();
        let body = match self {
            Format::Json => serde_json::json!({ "code": code, "message": message })
                .to_string()
                .into_bytes(),
            Format::Protobuf => {
                let mut out = Vec::new();
                otlp::wire::put_key(&mut out, 1, 0);
                otlp::wire::put_varint(&mut out, code as u64);
                otlp::wire::put_bytes_field(&mut out, 2, message.as_bytes());
                out
            }
        };
        self.respond(http, body)
    }
}

/// gRPC status codes used in `Status` bodies.
const INVALID_ARGUMENT: i32 = Code::InvalidArgument as i32;
const UNIMPLEMENTED: i32 = Code::Unimplemented as i32;

/// The protobuf message a signal's requests carry, for error messages.
pub(super) fn request_name(signal: Signal) -> &'static str {
    match signal {
        Signal::Logs => "ExportLogsServiceRequest",
        Signal::Traces => "ExportTraceServiceRequest",
        Signal::Metrics => "ExportMetricsServiceRequest",
    }
}

async fn handle(
    req: Request<Incoming>,
    shared: Arc<Shared>,
    slot: Arc<WorkerSlot>,
) -> HttpResponse {
    let format = Format::of(&req);
    let reply = format.unwrap_or(Format::Json);
    let signal = match req.uri().path() {
        "/v1/logs" => Signal::Logs,
        "/v1/traces" => Signal::Traces,
        "/v1/metrics" => Signal::Metrics,
        _ => {
            return reply.status(
                404,
                UNIMPLEMENTED,
                "unknown path; OTLP/HTTP uses /v1/logs, /v1/traces and /v1/metrics",
            );
        }
    };
    if !slot.accepts(signal) {
        return reply.status(
            404,
            UNIMPLEMENTED,
            &format!(
                "no {} pipeline takes data from this receiver",
                signal.name()
            ),
        );
    }
    if req.method() != Method::POST {
        let mut resp = reply.status(405, UNIMPLEMENTED, "only POST is accepted");
        resp.headers_mut()
            .insert(hyper::header::ALLOW, HeaderValue::from_static("POST"));
        return resp;
    }
    let Some(format) = format else {
        return reply.status(
            415,
            INVALID_ARGUMENT,
            "Content-Type must be application/x-protobuf or application/json",
        );
    };
    let encoded_logs = slot.encoded_logs();
    let cost = move |body: &[u8]| match (signal, format) {
        (_, Format::Json) => otlp::json::cost(body),
        (Signal::Logs, Format::Protobuf) if !encoded_logs => {
            per_byte(otlp::logs::COST_PER_BYTE)(body)
        }
        _ => per_byte(otlp::raw::COST_PER_BYTE)(body),
    };
    let decode = move |body: Bytes| {
        match (signal, format) {
            (Signal::Logs, Format::Protobuf) if encoded_logs => otlp::raw::decode_logs(&body)
                .map(Batch::Raw)
                .map_err(|e| e.to_string()),
            (Signal::Logs, Format::Protobuf) => otlp::logs::decode(&body)
                .map(Batch::Logs)
                .map_err(|e| e.to_string()),
            (Signal::Logs, Format::Json) => otlp::json::decode_logs(&body)
                .map(Batch::Logs)
                .map_err(|e| e.to_string()),
            (Signal::Traces, Format::Protobuf) => otlp::raw::decode_traces(&body)
                .map(Batch::Raw)
                .map_err(|e| e.to_string()),
            (Signal::Metrics, Format::Protobuf) => otlp::raw::decode_metrics(&body)
                .map(Batch::Raw)
                .map_err(|e| e.to_string()),
            (Signal::Traces, Format::Json) => otlp::transcode::decode_traces(&body)
                .map(Batch::Raw)
                .map_err(|e| e.to_string()),
            (Signal::Metrics, Format::Json) => otlp::transcode::decode_metrics(&body)
                .map(Batch::Raw)
                .map_err(|e| e.to_string()),
        }
        .map_err(|e| Invalid {
            status: 400,
            message: format!("invalid {}: {e}", request_name(signal)),
        })
    };
    shared.step.run(req, &slot, &format, cost, decode).await
}

impl Words for Format {
    fn ok(&self) -> HttpResponse {
        match self {
            Format::Protobuf => self.respond(200, Vec::new()),
            Format::Json => self.respond(200, b"{}".to_vec()),
        }
    }

    fn error(&self, status: u16, code: Code, message: &str) -> HttpResponse {
        self.status(status, code as i32, message)
    }
}
