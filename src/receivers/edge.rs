//! Who may use a receiver's listener: its `tls` and `auth` settings, made at build time (so
//! `sluice validate` reads the certificates and finds the authenticator) into what the server
//! loop applies to every connection and request.

use std::sync::Arc;

use hyper::header::{HeaderValue, WWW_AUTHENTICATE};

use crate::auth::{AuthConfig, Authenticators, Denied};
use crate::component::Context;
use crate::config::{ConfigError, check_endpoint};
use crate::receivers::tls::{ServerTls, TlsSettings};
use crate::server::{self, Guard, HttpResponse};
use crate::telemetry::ReceiverMetrics;

/// The listener's protocol, which decides the ALPN offered and how a refusal is answered.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http1,
    Grpc,
}

#[derive(Default)]
pub struct Edge {
    tls: Option<Arc<ServerTls>>,
    guard: Option<Arc<Guard>>,
}

/// What a listener's config says about who may use it.
pub struct Listener<'a> {
    pub endpoint: &'a str,
    pub tls: Option<&'a TlsSettings>,
    pub auth: Option<&'a AuthConfig>,
    pub protocol: Protocol,
}

impl Edge {
    /// The listener at `path` (e.g. `receivers.otlp.protocols.grpc`): its endpoint checked,
    /// its certificates read and its authenticator found; problems go to `errors` with their
    /// paths.
    pub fn build(
        path: &str,
        listener: &Listener,
        ctx: &Context,
        metrics: &ReceiverMetrics,
        errors: &mut Vec<ConfigError>,
    ) -> Edge {
        if let Err(e) = check_endpoint(listener.endpoint) {
            errors.push(ConfigError::new(format!("{path}.endpoint"), e));
        }
        let (tls, auth, protocol) = (listener.tls, listener.auth, listener.protocol);
        let authenticators: &Authenticators = ctx.auth;
        let alpn: &'static [u8] = match protocol {
            Protocol::Http1 => b"http/1.1",
            Protocol::Grpc => b"h2",
        };
        let tls = tls.and_then(|t| t.server(path, alpn, errors)).map(Arc::new);
        let guard = auth.and_then(|a| match authenticators.server(path, a) {
            Ok(auth) => Some(Arc::new(Guard {
                auth,
                refused: metrics.unauthenticated.clone(),
                answer: match protocol {
                    Protocol::Http1 => http_refusal,
                    Protocol::Grpc => grpc_refusal,
                },
            })),
            Err(e) => {
                errors.push(e);
                None
            }
        });
        Edge { tls, guard }
    }

    /// Puts TLS and the credentials check on a listener's options.
    pub fn apply(&self, opts: &mut server::Options, metrics: &ReceiverMetrics) {
        opts.tls = self.tls.clone();
        opts.tls_failures = Some(metrics.tls_failures.clone());
        opts.guard = self.guard.clone();
    }
}

/// 401 with the scheme to use, as RFC 9110 asks.
fn http_refusal(denied: Denied, challenge: HeaderValue) -> HttpResponse {
    let body = match denied {
        Denied::Missing => "missing credentials\n",
        Denied::Invalid => "invalid credentials\n",
        Denied::Busy => {
            let mut resp = server::text(429, "too many logins are being checked; retry shortly\n");
            let secs = crate::auth::BUSY_RETRY_AFTER.as_secs();
            resp.headers_mut()
                .insert(hyper::header::RETRY_AFTER, HeaderValue::from(secs));
            return resp;
        }
    };
    let mut resp = server::text(401, body);
    resp.headers_mut().insert(WWW_AUTHENTICATE, challenge);
    resp
}

/// UNAUTHENTICATED as a Trailers-Only answer.
fn grpc_refusal(denied: Denied, _challenge: HeaderValue) -> HttpResponse {
    if denied == Denied::Busy {
        let status = crate::receivers::otlp::status::retryable(
            tonic::Code::ResourceExhausted,
            &denied.to_string(),
            crate::auth::BUSY_RETRY_AFTER,
        );
        return status.into_http();
    }
    tonic::Status::unauthenticated(denied.to_string()).into_http()
}
