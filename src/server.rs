//! The HTTP/1.1 server loop shared by the `http_logs` receiver, `/metrics` and `health_check`:
//! keep-alive, an optional maximum connection age, and graceful shutdown that lets in-flight
//! requests finish (so a request accepted before SIGTERM still gets its answer).

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Body;
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::pipeline::StartError;
use crate::shutdown::Shutdown;

pub type HttpResponse = Response<Full<Bytes>>;

/// Connection settings.
#[derive(Clone, Copy, Debug)]
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
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_connection_age: None,
            header_read_timeout: Duration::from_secs(30),
            max_connection_age_grace: None,
            http2: false,
        }
    }
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
    let mut conns = JoinSet::new();
    let mut stop = shutdown.clone();
    loop {
        tokio::select! {
            _ = stop.wait() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let _ = stream.set_nodelay(true);
                    let handler = make_handler();
                    let conn_shutdown = shutdown.clone();
                    conns.spawn(serve_connection(stream, handler, conn_shutdown, opts));
                }
                Err(e) => {
                    // Out of file descriptors and similar: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    while conns.join_next().await.is_some() {}
}

/// Runs one connection until it ends, or until shutdown or its maximum age, when it is closed
/// gracefully (HTTP/1.1: after the current request; HTTP/2: GOAWAY, then in-flight streams
/// finish, within `max_connection_age_grace` if set).
async fn serve_connection<H, Fut, B>(
    stream: tokio::net::TcpStream,
    handler: H,
    mut shutdown: Shutdown,
    opts: Options,
) where
    H: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<B>> + Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let service = hyper::service::service_fn(move |req| {
        let fut = handler(req);
        async move { Ok::<_, Infallible>(fut.await) }
    });
    let io = TokioIo::new(stream);
    let age = async {
        match opts.max_connection_age {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    let grace = async {
        match opts.max_connection_age_grace {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    macro_rules! drive {
        ($conn:expr) => {{
            let conn = $conn;
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => return,
                _ = shutdown.wait() => {}
                _ = age => {}
            }
            conn.as_mut().graceful_shutdown();
            tokio::select! {
                _ = conn => {}
                _ = grace => {}
            }
        }};
    }
    if opts.http2 {
        drive!(
            http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                .timer(hyper_util::rt::TokioTimer::new())
                .serve_connection(io, service)
        );
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
