//! `health_check`: an HTTP endpoint for liveness and readiness probes, like the OTel Collector's.
//!
//! ```yaml
//! extensions:
//!   health_check: { endpoint: "0.0.0.0:13133", path: "/" }
//! service:
//!   extensions: [health_check]
//! ```
//!
//! 200 while running; 503 while starting and while draining after SIGTERM, so a Kubernetes
//! readiness probe takes the pod out of its Service before it stops accepting data.

use hyper::Response;
use serde::Deserialize;

use super::{Extension, Health, State};
use crate::component::{Built, Context, NO_SIGNALS, Spec, Yaml};
use crate::config::{ConfigError, check_endpoint, decode};
use crate::pipeline::{BoxFuture, Running, StartError};
use crate::server;
use crate::shutdown::Shutdown;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `host:port` to listen on. Default `localhost:13133`.
    #[serde(default = "default_endpoint")]
    pub endpoint: String,
    /// The path answered; anything else is 404. Default `/`.
    #[serde(default = "default_path")]
    pub path: String,
}

fn default_endpoint() -> String {
    "localhost:13133".to_string()
}

fn default_path() -> String {
    "/".to_string()
}

pub struct HealthCheck {
    id: String,
    cfg: Config,
}

/// The `health_check` extension type, as the registry lists it.
pub const SPEC: Spec<Box<dyn Extension>> = Spec::new(
    "health_check",
    NO_SIGNALS,
    build,
    "{endpoint: '127.0.0.1:0'}",
);

pub fn build(ctx: &Context, raw: Yaml) -> Built<Box<dyn Extension>> {
    let cfg: Config = decode(ctx.path, raw).map_err(|e| vec![e])?;
    let mut errors = Vec::new();
    if let Err(e) = check_endpoint(&cfg.endpoint) {
        errors.push(ConfigError::new(format!("{}.endpoint", ctx.path), e));
    }
    if !cfg.path.starts_with('/') {
        errors.push(ConfigError::new(
            format!("{}.path", ctx.path),
            "must start with '/'",
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Box::new(HealthCheck {
        id: ctx.id.to_string(),
        cfg,
    }))
}

impl Extension for HealthCheck {
    fn start(
        self: Box<Self>,
        health: Health,
        shutdown: Shutdown,
    ) -> BoxFuture<Result<Running, StartError>> {
        Box::pin(async move {
            let listener =
                server::bind(format!("extensions.{}", self.id), &self.cfg.endpoint).await?;
            let path = self.cfg.path;
            let running: Running = Box::pin(server::serve(
                listener,
                shutdown,
                server::Options::default(),
                move || {
                    let health = health.clone();
                    let path = path.clone();
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let resp = if req.uri().path() != path {
                            server::text(404, "not found\n")
                        } else if health.get() == State::Ready {
                            json(200, r#"{"status":"Server available"}"#)
                        } else {
                            json(503, r#"{"status":"Server not available"}"#)
                        };
                        async move { resp }
                    }
                },
            ));
            Ok(running)
        })
    }
}

fn json(status: u16, body: &'static str) -> server::HttpResponse {
    let mut resp: server::HttpResponse = Response::new(body.as_bytes().to_vec().into());
    *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}
