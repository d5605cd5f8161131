//! `tcp`: newline-framed records over a TCP connection, like Vector's `socket` sink.
//!
//! ```yaml
//! exporters:
//!   tcp:
//!     endpoint: 127.0.0.1:9001
//!     encoding: json                  # or text: the body only
//!     sending_queue: { queue_size: 100000 }   # log records
//!     reconnect: { initial_interval: 100ms, max_interval: 5s }
//! ```
//!
//! Batches are coalesced into writes of up to `write_buffer_size` bytes. A batch is released as
//! delivered once the kernel has taken all its bytes; on any error the exporter reconnects with
//! capped exponential backoff and writes the same bytes again, so delivery is at-least-once.
//! While the peer is down the queue fills and receivers answer 429: nothing is dropped.

use std::time::Duration;

use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::codec::{JsonEncoder, encode_text_batch};
use crate::config::{ConfigError, check_endpoint, decode, duration};
use crate::exporters::QueueConfig;
use crate::model::Batch;
use crate::model::Signal;
use crate::pipeline::queue::{self, Envelope};
use crate::pipeline::{BoxFuture, Exporter};
use crate::registry::Context;
use crate::telemetry::ExporterMetrics;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `host:port` of the consumer. Required.
    pub endpoint: String,
    /// `json` (default): one JSON object per record. `text`: the body as a line.
    #[serde(default)]
    pub encoding: Encoding,
    #[serde(default)]
    pub sending_queue: QueueConfig,
    #[serde(default)]
    pub reconnect: Backoff,
    /// Give up on one connection attempt after this long. Default `5s`.
    #[serde(default = "default_connect_timeout", deserialize_with = "duration")]
    pub connect_timeout: Duration,
    /// Queued batches are coalesced into one write of about this many bytes. Default `1MiB`,
    /// at most `64MiB`.
    #[serde(
        default = "default_write_buffer",
        deserialize_with = "crate::config::byte_size"
    )]
    pub write_buffer_size: usize,
}

#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    #[default]
    Json,
    Text,
}

/// Capped exponential backoff between connection attempts.
#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub struct Backoff {
    /// First wait after a failure. Default `100ms`.
    #[serde(default = "default_initial", deserialize_with = "duration")]
    pub initial_interval: Duration,
    /// Longest wait. Default `5s`.
    #[serde(default = "default_max", deserialize_with = "duration")]
    pub max_interval: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial_interval: default_initial(),
            max_interval: default_max(),
        }
    }
}

fn default_initial() -> Duration {
    Duration::from_millis(100)
}

fn default_max() -> Duration {
    Duration::from_secs(5)
}

fn default_connect_timeout() -> Duration {
    Duration::from_secs(5)
}

fn default_write_buffer() -> usize {
    1 << 20
}

/// The largest `write_buffer_size`.
const MAX_WRITE_BUFFER: u64 = 64 << 20;

pub struct Tcp {
    id: String,
    cfg: Config,
    metrics: ExporterMetrics,
}

pub fn build(
    ctx: &Context,
    raw: serde_yaml_ng::Value,
) -> Result<Box<dyn Exporter>, Vec<ConfigError>> {
    let cfg: Config = decode(ctx.path, raw).map_err(|e| vec![e])?;
    let mut errors = Vec::new();
    if let Err(e) = check_endpoint(&cfg.endpoint) {
        errors.push(ConfigError::new(format!("{}.endpoint", ctx.path), e));
    }
    cfg.sending_queue.check(ctx.path, &mut errors);
    // The buffer is allocated up front: a huge value would abort at start.
    crate::config::check_count(
        &mut errors,
        format!("{}.write_buffer_size", ctx.path),
        cfg.write_buffer_size as u64,
        1,
        MAX_WRITE_BUFFER,
        "bytes",
    );
    if cfg.reconnect.initial_interval.is_zero()
        || cfg.reconnect.max_interval < cfg.reconnect.initial_interval
    {
        errors.push(ConfigError::new(
            format!("{}.reconnect", ctx.path),
            "need 0 < initial_interval <= max_interval",
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let id = ctx.id.to_string();
    Ok(Box::new(Tcp {
        metrics: ExporterMetrics::new(ctx.telemetry, &id),
        id,
        cfg,
    }))
}

impl Exporter for Tcp {
    fn queue_capacity(&self) -> usize {
        self.cfg.sending_queue.queue_size
    }

    fn run(self: Box<Self>, queue: queue::Receiver) -> BoxFuture<()> {
        Box::pin(Sender::new(*self).run(queue))
    }
}

struct Sender {
    id: String,
    cfg: Config,
    metrics: ExporterMetrics,
    conn: Option<TcpStream>,
    json: JsonEncoder,
    buf: Vec<u8>,
    pending: Vec<Envelope>,
    wait: Duration,
}

impl Sender {
    fn new(t: Tcp) -> Self {
        Sender {
            buf: Vec::with_capacity(t.cfg.write_buffer_size + (64 << 10)),
            wait: t.cfg.reconnect.initial_interval,
            id: t.id,
            cfg: t.cfg,
            metrics: t.metrics,
            conn: None,
            json: JsonEncoder::default(),
            pending: Vec::new(),
        }
    }

    async fn run(mut self, mut queue: queue::Receiver) {
        while let Some(first) = queue.recv().await {
            self.buf.clear();
            self.encode(first);
            while self.buf.len() < self.cfg.write_buffer_size {
                match queue.try_recv() {
                    Some(next) => self.encode(next),
                    None => break,
                }
            }
            self.deliver().await;
        }
        if let Some(mut conn) = self.conn.take() {
            let _ = conn.shutdown().await;
        }
        tracing::debug!(exporter = %self.id, "tcp exporter drained");
    }

    fn encode(&mut self, envelope: Envelope) {
        // Config validation keeps this exporter out of traces and metrics pipelines; anything
        // else is refused (dropping the envelope fails its ack) rather than mis-encoded.
        let Batch::Logs(logs) = &envelope.batch else {
            return;
        };
        match self.cfg.encoding {
            Encoding::Json => self.json.encode_batch(logs, &mut self.buf),
            Encoding::Text => encode_text_batch(logs, &mut self.buf),
        }
        self.pending.push(envelope);
    }

    /// Writes the buffer, reconnecting until it succeeds. Only a shutdown deadline (which aborts
    /// this task and so fails the pending acks) ends it otherwise.
    async fn deliver(&mut self) {
        let records: usize = self.pending.iter().map(Envelope::records).sum();
        loop {
            match self.write_once().await {
                Ok(()) => break,
                Err(e) => {
                    self.conn = None;
                    self.metrics
                        .send_failed
                        .of(Signal::Logs)
                        .add(records as u64);
                    tracing::warn!(exporter = %self.id, endpoint = %self.cfg.endpoint, error = %e, retry_in = ?self.wait, "tcp send failed");
                    tokio::time::sleep(self.wait).await;
                    self.wait = (self.wait * 2).min(self.cfg.reconnect.max_interval);
                }
            }
        }
        self.wait = self.cfg.reconnect.initial_interval;
        self.metrics.sent.of(Signal::Logs).add(records as u64);
        for envelope in self.pending.drain(..) {
            envelope.delivered();
        }
    }

    async fn write_once(&mut self) -> std::io::Result<()> {
        if self.conn.as_ref().is_some_and(peer_has_closed) {
            self.conn = None;
        }
        if self.conn.is_none() {
            let connect = TcpStream::connect(&self.cfg.endpoint);
            let conn = tokio::time::timeout(self.cfg.connect_timeout, connect)
                .await
                .map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out")
                })??;
            let _ = conn.set_nodelay(true);
            tracing::info!(exporter = %self.id, endpoint = %self.cfg.endpoint, "tcp exporter connected");
            self.conn = Some(conn);
        }
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| std::io::Error::other("no connection"))?;
        conn.write_all(&self.buf).await
    }
}

/// A consumer that closed its end still accepts one write into the kernel, which would then be
/// lost; checking for EOF before writing catches the common case of a restarted consumer.
fn peer_has_closed(conn: &TcpStream) -> bool {
    let mut probe = [0u8; 512];
    loop {
        match conn.try_read(&mut probe) {
            Ok(0) => return true,
            // The consumer sent something; this protocol has no replies, so discard it.
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}
