//! The HTTP server loop shared by every listener (the receivers, `/metrics`, `health_check`):
//! keep-alive, connection limits, idle and age timeouts, and graceful shutdown that lets
//! in-flight requests finish (so a request accepted before SIGTERM still gets its answer).
//!
//! Every listener has a bound on its connections, and data listeners share one more bound
//! derived from the open-files limit, so thousands of idle or hostile clients cost a bounded
//! number of descriptors and never make `accept` fail for the health and metrics listeners.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use http_body_util::Full;
use hyper::body::Body;
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

pub use crate::layers::Guard;
use crate::layers::{Activity, AuthLayer, TrackLayer};
use crate::pipeline::StartError;
use crate::receivers::tls::{HANDSHAKE_TIMEOUT, ServerTls};
use crate::shutdown::Shutdown;
use crate::telemetry::Counter;

pub type HttpResponse = Response<Full<Bytes>>;

/// Connection settings.
#[derive(Clone, Debug)]
pub struct Options {
    /// Close a connection (after its current request) once it is this old, so that clients behind
    /// an L4 balancer reconnect and spread over new replicas.
    pub max_connection_age: Option<Duration>,
    /// Close a connection whose request headers take longer than this to arrive, so idle or
    /// trickling clients cannot hold connections open forever.
    pub header_read_timeout: Duration,
    /// After `max_connection_age`, how long in-flight requests get before the connection is
    /// closed anyway (gRPC's `max_connection_age_grace`). Default: as long as they need.
    pub max_connection_age_grace: Option<Duration>,
    /// Serve HTTP/2 with prior knowledge (gRPC) instead of HTTP/1.1.
    pub http2: bool,
    /// Close a connection that has had no request in flight for this long (counted from the
    /// accept, so an HTTP/2 preface that never completes is closed too).
    pub idle_timeout: Option<Duration>,
    /// Connections this listener serves at once; more are accepted and closed at once, so they
    /// neither queue in the backlog nor hold a descriptor.
    pub max_connections: usize,
    /// A data listener also draws on the process-wide [`connection_budget`], which leaves file
    /// descriptors for health, metrics, exporters and files however many clients connect.
    pub data: bool,
    /// HTTP/2: ping a connection after this long without frames (gRPC's keepalive `time`), and
    /// close it if the ping is not answered within `keepalive_timeout`.
    pub keepalive_time: Option<Duration>,
    pub keepalive_timeout: Duration,
    /// HTTP/2: streams a client may have open at once on one connection.
    pub max_concurrent_streams: Option<u32>,
    /// Counts connections closed at once because a limit was reached.
    pub refused_connections: Option<Counter>,
    /// TLS on every connection; failed and timed-out handshakes count in `tls_failures`.
    pub tls: Option<Arc<ServerTls>>,
    pub tls_failures: Option<Counter>,
    /// Every request's credentials checked before its handler runs.
    pub guard: Option<Arc<Guard>>,
}

impl Default for Options {
    /// A control listener (health, metrics): few connections, outside the data budget.
    fn default() -> Self {
        Options {
            max_connection_age: None,
            header_read_timeout: Duration::from_secs(30),
            max_connection_age_grace: None,
            http2: false,
            idle_timeout: Some(Duration::from_secs(60)),
            max_connections: CONTROL_MAX_CONNECTIONS,
            data: false,
            keepalive_time: None,
            keepalive_timeout: Duration::from_secs(20),
            max_concurrent_streams: None,
            refused_connections: None,
            tls: None,
            tls_failures: None,
            guard: None,
        }
    }
}

/// Connections a health or metrics listener serves at once: probes and scrapes need few, and
/// these come out of the descriptors [`connection_budget`] keeps back.
pub const CONTROL_MAX_CONNECTIONS: usize = 32;

/// File descriptors the data listeners together leave unused, for control listeners, exporter
/// connections, dead-letter and checkpoint files, and the process's own.
pub const RESERVED_DESCRIPTORS: usize = 128;

/// How many connections all data listeners together may hold: the open-files limit less
/// [`RESERVED_DESCRIPTORS`] (at least 16). Once reached, new clients are accepted and closed
/// at once, so `accept` never fails for want of descriptors and health and metrics stay
/// reachable.
pub fn connection_budget() -> &'static Arc<Semaphore> {
    static BUDGET: OnceLock<Arc<Semaphore>> = OnceLock::new();
    BUDGET.get_or_init(|| {
        let limit = crate::rlimit::open_files().unwrap_or(1024);
        let n = limit.saturating_sub(RESERVED_DESCRIPTORS as u64).max(16);
        Arc::new(Semaphore::new(n.min(Semaphore::MAX_PERMITS as u64) as usize))
    })
}

/// Binds `endpoint` (`host:port`, resolved now) for `component` (its YAML path), so a port in
/// use fails start-up with a message that says which component wanted it.
pub async fn bind(component: String, endpoint: &str) -> Result<TcpListener, StartError> {
    TcpListener::bind(endpoint).await.map_err(|e| StartError {
        component,
        message: format!("cannot listen on {endpoint}: {e}"),
    })
}

/// A plain-text response.
pub fn text(status: u16, body: &'static str) -> HttpResponse {
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// Serves connections from `listener` until `shutdown` fires, then waits for open connections to
/// finish their in-flight request. `make_handler` is called once per connection, so each
/// connection can own state (such as its pipeline worker) without sharing it.
pub async fn serve<M, H, Fut, B>(
    listener: TcpListener,
    shutdown: Shutdown,
    opts: Options,
    make_handler: M,
) where
    M: Fn() -> H,
    H: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<B>> + Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let own = Arc::new(Semaphore::new(opts.max_connections.max(1)));
    let global = opts.data.then(connection_budget);
    let mut conns = JoinSet::new();
    let mut stop = shutdown.clone();
    let mut backoff = ACCEPT_BACKOFF_MIN;
    loop {
        tokio::select! {
            _ = stop.wait() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    backoff = ACCEPT_BACKOFF_MIN;
                    let Some(permits) = admit(&own, global) else {
                        // Closed at once: the descriptor is free again and the client sees the
                        // connection end rather than one that never answers.
                        drop(stream);
                        if let Some(c) = &opts.refused_connections {
                            c.add(1);
                        }
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    let handler = make_handler();
                    let conn_shutdown = shutdown.clone();
                    let conn_opts = opts.clone();
                    conns.spawn(async move {
                        match conn_opts.tls.clone() {
                            None => serve_connection(stream, peer, handler, conn_shutdown, conn_opts).await,
                            Some(tls) => {
                                if let Some(s) = handshake(&tls, stream, &conn_shutdown, &conn_opts).await {
                                    serve_connection(s, peer, handler, conn_shutdown, conn_opts).await;
                                }
                            }
                        }
                        drop(permits);
                    });
                }
                Err(e) => {
                    // Out of descriptors and the like: back off (up to a second) instead of
                    // spinning, and say so at most once per backoff step.
                    tracing::warn!(error = %e, retry_in = ?backoff, "accept failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    while conns.join_next().await.is_some() {}
}

/// The TLS handshake, within [`HANDSHAKE_TIMEOUT`] and abandoned at shutdown; `None` (and
/// counted) when it fails.
async fn handshake(
    tls: &ServerTls,
    stream: tokio::net::TcpStream,
    shutdown: &Shutdown,
    opts: &Options,
) -> Option<tokio_rustls::server::TlsStream<tokio::net::TcpStream>> {
    let mut stop = shutdown.clone();
    let accept = tls.acceptor().accept(stream);
    let failed = |why: &dyn std::fmt::Display| {
        tracing::debug!(error = %why, "TLS handshake failed");
        if let Some(c) = &opts.tls_failures {
            c.add(1);
        }
    };
    tokio::select! {
        r = tokio::time::timeout(HANDSHAKE_TIMEOUT, accept) => match r {
            Ok(Ok(s)) => Some(s),
            Ok(Err(e)) => {
                failed(&e);
                None
            }
            Err(_) => {
                failed(&"timed out");
                None
            }
        },
        _ = stop.wait() => None,
    }
}

const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// A connection's places in its listener's limit and in the process-wide budget.
/// Held, never read: dropping it gives both places back.
struct Permits {
    _listener: OwnedSemaphorePermit,
    _budget: Option<OwnedSemaphorePermit>,
}

fn admit(own: &Arc<Semaphore>, global: Option<&Arc<Semaphore>>) -> Option<Permits> {
    let mine = Arc::clone(own).try_acquire_owned().ok()?;
    let theirs = match global {
        Some(g) => Some(Arc::clone(g).try_acquire_owned().ok()?),
        None => None,
    };
    Some(Permits {
        _listener: mine,
        _budget: theirs,
    })
}

/// The address of the client that sent a request, in its extensions.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// The IP address of the client that sent `req` (IPv4-mapped IPv6 addresses as IPv4).
pub fn peer_ip<T>(req: &Request<T>) -> Option<std::net::IpAddr> {
    req.extensions()
        .get::<Peer>()
        .map(|p| p.0.ip().to_canonical())
}

/// How long a connection closed for being idle gets to finish what raced with the close.
const IDLE_CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Runs one connection until it ends, or until shutdown, its maximum age or its idle timeout,
/// when it is closed gracefully (HTTP/1.1: after the current request; HTTP/2: GOAWAY, then
/// in-flight streams finish, within `max_connection_age_grace` if set).
async fn serve_connection<S, H, Fut, B>(
    stream: S,
    peer: SocketAddr,
    handler: H,
    mut shutdown: Shutdown,
    opts: Options,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<B>> + Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let activity = Arc::new(Activity::default());
    // The receiver's handler, behind the layers every listener shares: in-flight tracking for
    // the idle timeout (outermost, so a refused request counts too), then the credentials check.
    let handler = Arc::new(handler);
    let service = tower::ServiceBuilder::new()
        .layer(TrackLayer(Arc::clone(&activity)))
        .layer(AuthLayer(opts.guard.clone()))
        .service(tower::service_fn(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(Peer(peer));
            // A combinator, not `async move { Ok(response.await) }`: an async block keeps the
            // future it awaits twice (as captured and as awaited), doubling what every layer
            // above copies per request (see `layers::Authenticated::call`).
            handler(req).map(Ok::<_, Infallible>)
        }));
    let service = hyper_util::service::TowerToHyperService::new(service);
    let io = TokioIo::new(stream);
    let age = async {
        match opts.max_connection_age {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    let idle = async {
        match opts.idle_timeout {
            Some(d) => activity.idle_for(d).await,
            None => std::future::pending().await,
        }
    };
    macro_rules! drive {
        ($conn:expr) => {{
            let conn = $conn;
            tokio::pin!(conn);
            let grace = tokio::select! {
                _ = conn.as_mut() => return,
                _ = shutdown.wait() => opts.max_connection_age_grace,
                _ = age => opts.max_connection_age_grace,
                _ = idle => Some(IDLE_CLOSE_GRACE),
            };
            conn.as_mut().graceful_shutdown();
            let grace = async {
                match grace {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = conn => {}
                _ = grace => {}
            }
        }};
    }
    if opts.http2 {
        let mut builder = http2::Builder::new(hyper_util::rt::TokioExecutor::new());
        builder
            .timer(hyper_util::rt::TokioTimer::new())
            .keep_alive_interval(opts.keepalive_time)
            .keep_alive_timeout(opts.keepalive_timeout)
            .max_concurrent_streams(opts.max_concurrent_streams);
        drive!(builder.serve_connection(io, service));
    } else {
        drive!(
            http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(opts.header_read_timeout)
                .keep_alive(true)
                .serve_connection(io, service)
        );
    }
}
