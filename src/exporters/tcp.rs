//! `tcp`: newline-framed records over a TCP connection, like Vector's `socket` sink.
//!
//! ```yaml
//! exporters:
//!   tcp:
//!     endpoint: 127.0.0.1:9001
//!     encoding: json                  # or text: the body only
//!     sending_queue: { queue_size: 100000 }   # log records
//!     reconnect: { initial_interval: 100ms, max_interval: 5s }
//!     write_timeout: 30s              # a stalled peer is given up on after this
//!     keepalive: { time: 30s, interval: 10s, retries: 3 }
//! ```
//!
//! Batches are coalesced into writes of up to `write_buffer_size` bytes. A batch is released as
//! delivered only once the peer's TCP stack has acknowledged every byte of it (the socket's
//! unacknowledged send queue, `SIOCOUTQ`, has drained past its end), not merely when the local
//! kernel took the bytes. Bytes written but not yet acknowledged are kept; after any error the
//! exporter reconnects with capped exponential backoff and writes them again, so delivery is
//! at-least-once: a peer may see the same lines twice after a reconnect, never a gap.
//!
//! What TCP cannot promise: an acknowledgement means the peer's kernel has the bytes, not that
//! the peer's process read or stored them. A consumer that crashes with data in its receive
//! buffer loses it, and sluice cannot know. Use an exporter with application-level
//! acknowledgements (`otlp`, `elasticsearch`) where that matters.
//!
//! A peer that stops reading is detected: when neither a write nor the acknowledgements make
//! progress for `write_timeout`, the connection is dropped and the unacknowledged bytes are
//! sent again on a new one. TCP keepalive probes find peers that vanished without a reset.
//! While the peer is down the queue fills and receivers answer 429: nothing is dropped.

use std::collections::VecDeque;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::codec::{JsonEncoder, encode_text_batch};
use crate::component::{Built, Context, LOGS, Spec, Yaml};
use crate::config::{ConfigError, check_endpoint, decode, duration};
use crate::exporters::{QueueConfig, backoff};
use crate::model::Signal;
use crate::pipeline::queue::{self, Envelope, Take};
use crate::pipeline::{BoxFuture, Exporter};
use crate::shutdown::Shutdown;
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
    /// Give up on a connection when neither writing nor the peer's acknowledgements make
    /// progress for this long; the unacknowledged bytes go out again on a new one. Default
    /// `30s`.
    #[serde(default = "default_write_timeout", deserialize_with = "duration")]
    pub write_timeout: Duration,
    #[serde(default)]
    pub keepalive: Keepalive,
}

/// TCP keepalive probes, which find a peer that vanished without closing the connection.
#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub struct Keepalive {
    /// Quiet time before the first probe. Default `30s`.
    #[serde(default = "default_keepalive_time", deserialize_with = "duration")]
    pub time: Duration,
    /// Time between probes. Default `10s`.
    #[serde(default = "default_keepalive_interval", deserialize_with = "duration")]
    pub interval: Duration,
    /// Unanswered probes before the connection is dropped. Default 3.
    #[serde(default = "default_keepalive_retries")]
    pub retries: u32,
}

impl Default for Keepalive {
    fn default() -> Self {
        Keepalive {
            time: default_keepalive_time(),
            interval: default_keepalive_interval(),
            retries: default_keepalive_retries(),
        }
    }
}

fn default_write_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_keepalive_time() -> Duration {
    Duration::from_secs(30)
}

fn default_keepalive_interval() -> Duration {
    Duration::from_secs(10)
}

fn default_keepalive_retries() -> u32 {
    3
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

/// The `tcp` exporter type, as the registry lists it.
pub const SPEC: Spec<Box<dyn Exporter>> =
    Spec::new("tcp", LOGS, build, "{endpoint: 'localhost:9001'}");

pub fn build(ctx: &Context, raw: Yaml) -> Built<Box<dyn Exporter>> {
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
    let second = Duration::from_secs(1);
    let hour = Duration::from_secs(3600);
    let at = |field: &str| format!("{}.{field}", ctx.path);
    use crate::config::{check_count, check_duration};
    check_duration(
        &mut errors,
        at("write_timeout"),
        cfg.write_timeout,
        Duration::from_millis(1),
        hour,
    );
    check_duration(
        &mut errors,
        at("keepalive.time"),
        cfg.keepalive.time,
        second,
        2 * hour,
    );
    check_duration(
        &mut errors,
        at("keepalive.interval"),
        cfg.keepalive.interval,
        second,
        hour,
    );
    check_count(
        &mut errors,
        at("keepalive.retries"),
        u64::from(cfg.keepalive.retries),
        1,
        100,
        "",
    );
    check_duration(
        &mut errors,
        at("connect_timeout"),
        cfg.connect_timeout,
        Duration::from_millis(1),
        hour,
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
    fn sending_queue(&self) -> QueueConfig {
        self.cfg.sending_queue
    }

    fn run(self: Box<Self>, queue: queue::Receiver, deadline: Shutdown) -> BoxFuture<()> {
        Box::pin(Sender::new(*self, deadline).run(queue))
    }
}

struct Sender {
    id: String,
    cfg: Config,
    metrics: ExporterMetrics,
    conn: Option<TcpStream>,
    json: JsonEncoder,
    /// Being filled from the queue.
    buf: Vec<u8>,
    /// The envelopes whose records are in `buf`.
    pending: Vec<Envelope>,
    /// Chunks not yet acknowledged by the peer, oldest first; the first `sent` of them were
    /// written on the current connection.
    unacked: VecDeque<Chunk>,
    sent: usize,
    /// Bytes written on the current connection.
    written: u64,
    /// When the peer last made progress (a write completed or bytes were acknowledged).
    progress: Instant,
    spare: Vec<Vec<u8>>,
    /// Failed attempts since the last progress; the reconnect wait doubles with each.
    failures: u32,
    /// Fired at the shutdown deadline: reconnecting stops and what is held is dropped.
    deadline: Shutdown,
}

/// Encoded batches written together, released when the peer has acknowledged `end`.
struct Chunk {
    bytes: Vec<u8>,
    /// Offset on the current connection just past these bytes.
    end: u64,
    envelopes: Vec<Envelope>,
    records: usize,
}

/// Written buffers kept for reuse once the peer has acknowledged them: as many as are usually
/// in flight, so the encoder writes into warm memory instead of fresh pages.
const MAX_SPARE_BUFFERS: usize = 8;

/// How often unacknowledged bytes are checked while nothing else is to be done.
const ACK_POLL: Duration = Duration::from_millis(1);

impl Sender {
    fn new(t: Tcp, deadline: Shutdown) -> Self {
        Sender {
            deadline,
            buf: Vec::with_capacity(t.cfg.write_buffer_size + (64 << 10)),
            failures: 0,
            id: t.id,
            cfg: t.cfg,
            metrics: t.metrics,
            conn: None,
            json: JsonEncoder::default(),
            pending: Vec::new(),
            unacked: VecDeque::new(),
            sent: 0,
            written: 0,
            progress: Instant::now(),
            spare: Vec::new(),
        }
    }

    async fn run(mut self, mut queue: queue::Receiver) {
        loop {
            let next = if self.unacked.is_empty() {
                queue.recv().await
            } else {
                tokio::select! {
                    next = queue.recv() => next,
                    _ = tokio::time::sleep(ACK_POLL) => {
                        self.settle().await;
                        continue;
                    }
                }
            };
            let Some(first) = next else { break };
            if self.deadline.is_fired() {
                // Dropping the receiver fails this envelope and every queued one.
                tracing::warn!(exporter = %self.id, "shutdown deadline: dropping what is left");
                return;
            }
            self.encode(first);
            if self.buf.len() < self.cfg.write_buffer_size {
                queue.take_ready(|next| {
                    self.encode(next);
                    if self.buf.len() < self.cfg.write_buffer_size {
                        Take::More
                    } else {
                        Take::Full
                    }
                });
            }
            self.deliver().await;
        }
        // Drained: wait for the peer to acknowledge the rest before closing.
        while !self.unacked.is_empty() && !self.deadline.is_fired() {
            tokio::time::sleep(ACK_POLL).await;
            self.settle().await;
        }
        if let Some(mut conn) = self.conn.take() {
            let _ = conn.shutdown().await;
        }
        tracing::debug!(exporter = %self.id, "tcp exporter drained");
    }

    fn encode(&mut self, mut envelope: Envelope) {
        let Some(logs) = envelope.take_logs() else {
            return;
        };
        match self.cfg.encoding {
            Encoding::Json => self.json.encode_batch(&logs, &mut self.buf),
            Encoding::Text => encode_text_batch(&logs, &mut self.buf),
        }
        // Only the acknowledgement waits for the peer's ACK; the records and the request body
        // they point into are freed now (the encoded bytes are what would be sent again).
        drop(logs);
        self.pending.push(envelope);
    }

    /// Moves the buffer into the unacknowledged chunks and writes it, reconnecting (and writing
    /// every unacknowledged chunk again) until it succeeds. Only a shutdown deadline (which
    /// aborts this task and so fails the pending acks) ends it otherwise.
    async fn deliver(&mut self) {
        let records = self.pending.iter().map(Envelope::records).sum();
        // A buffer that has been written to before: its pages are mapped and likely in cache.
        let size = self.cfg.write_buffer_size + (64 << 10);
        let spare = self.spare.pop().unwrap_or_else(|| Vec::with_capacity(size));
        let bytes = std::mem::replace(&mut self.buf, spare);
        self.unacked.push_back(Chunk {
            bytes,
            end: 0,
            envelopes: std::mem::take(&mut self.pending),
            records,
        });
        self.resend().await;
        self.settle().await;
    }

    /// Writes the chunks not yet written on this connection (all of them after a reconnect).
    async fn write_unsent(&mut self) -> std::io::Result<()> {
        if self.conn.as_ref().is_some_and(peer_has_closed) {
            self.conn = None;
        }
        if self.conn.is_none() {
            self.conn = Some(self.connect().await?);
            self.sent = 0;
            self.written = 0;
            self.progress = Instant::now();
        }
        let timeout = self.cfg.write_timeout;
        while self.sent < self.unacked.len() {
            let conn = self
                .conn
                .as_mut()
                .ok_or_else(|| std::io::Error::other("no connection"))?;
            let chunk = &mut self.unacked[self.sent];
            tokio::time::timeout(timeout, conn.write_all(&chunk.bytes))
                .await
                .map_err(|_| {
                    std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the peer took no data for write_timeout",
                    )
                })??;
            self.written += chunk.bytes.len() as u64;
            chunk.end = self.written;
            self.sent += 1;
            self.progress = Instant::now();
        }
        Ok(())
    }

    async fn connect(&self) -> std::io::Result<TcpStream> {
        let connect = TcpStream::connect(&self.cfg.endpoint);
        let conn = tokio::time::timeout(self.cfg.connect_timeout, connect)
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out")
            })??;
        let _ = conn.set_nodelay(true);
        let k = &self.cfg.keepalive;
        let keepalive = socket2::TcpKeepalive::new()
            .with_time(k.time)
            .with_interval(k.interval)
            .with_retries(k.retries);
        if let Err(e) = socket2::SockRef::from(&conn).set_tcp_keepalive(&keepalive) {
            tracing::debug!(exporter = %self.id, error = %e, "cannot set TCP keepalive");
        }
        tracing::info!(exporter = %self.id, endpoint = %self.cfg.endpoint, "tcp exporter connected");
        Ok(conn)
    }

    /// Releases the chunks the peer has acknowledged; drops a connection on which nothing has
    /// moved for `write_timeout`, and writes what is unacknowledged again on a new one.
    async fn settle(&mut self) {
        let Some(conn) = &self.conn else {
            return;
        };
        let acked = match unacknowledged(conn) {
            Ok(pending) => self.written.saturating_sub(pending),
            Err(e) => {
                self.reconnect_later(e).await;
                return self.resend().await;
            }
        };
        let mut released = 0;
        while self.sent > 0 && self.unacked.front().is_some_and(|c| c.end <= acked) {
            let Some(chunk) = self.unacked.pop_front() else {
                break;
            };
            self.sent -= 1;
            released += 1;
            self.metrics.sent.of(Signal::Logs).add(chunk.records as u64);
            for envelope in chunk.envelopes {
                envelope.delivered();
            }
            let mut bytes = chunk.bytes;
            bytes.clear();
            if self.spare.len() < MAX_SPARE_BUFFERS {
                self.spare.push(bytes);
            }
        }
        if released > 0 || self.unacked.is_empty() {
            self.progress = Instant::now();
            self.failures = 0;
        } else if self.progress.elapsed() >= self.cfg.write_timeout {
            let e = std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the peer acknowledged nothing for write_timeout",
            );
            self.reconnect_later(e).await;
            self.resend().await;
        }
    }

    /// Writes until every unacknowledged chunk is written, reconnecting as needed; gives up
    /// at the shutdown deadline.
    async fn resend(&mut self) {
        while !self.deadline.is_fired() {
            match self.write_unsent().await {
                Ok(()) => return,
                Err(e) => self.reconnect_later(e).await,
            }
        }
    }

    /// Drops the connection after `e` and waits out the backoff; everything unacknowledged is
    /// written again on the next connection.
    async fn reconnect_later(&mut self, e: std::io::Error) {
        self.conn = None;
        self.sent = 0;
        let records: usize = self.unacked.iter().map(|c| c.records).sum();
        self.metrics
            .send_failed
            .of(Signal::Logs)
            .add(records as u64);
        let r = &self.cfg.reconnect;
        let wait = backoff::exponential(r.initial_interval, r.max_interval, self.failures);
        tracing::warn!(exporter = %self.id, endpoint = %self.cfg.endpoint, error = %e, retry_in = ?wait, "tcp send failed");
        self.deadline.sleep(wait).await;
        self.failures = self.failures.saturating_add(1);
    }
}

/// Bytes written to `conn` that the peer has not acknowledged yet (Linux `SIOCOUTQ`: the send
/// queue from the first unacknowledged byte on). Elsewhere 0: delivery then means "written".
fn unacknowledged(conn: &TcpStream) -> std::io::Result<u64> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let mut pending: libc::c_int = 0;
        // SAFETY: SIOCOUTQ (= TIOCOUTQ) writes one int through the pointer we pass; the fd is
        // open for as long as `conn` is borrowed.
        let rc = unsafe { libc::ioctl(conn.as_raw_fd(), libc::TIOCOUTQ, &mut pending) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(pending.max(0) as u64)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = conn;
        Ok(0)
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
