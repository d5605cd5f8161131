//! What every network exporter's client shares (`otlp`, `otlphttp`, `elasticsearch`): request
//! compression, the configured `headers` and an auth extension's credential, and error text
//! that names every cause.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use hyper::HeaderMap;
use hyper::header::{HeaderName, HeaderValue};
use serde::Deserialize;

use crate::auth::{AuthConfig, ClientAuth};
use crate::component::Context;
use crate::config::ConfigError;

#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    #[default]
    Gzip,
    Zstd,
    None,
}

impl Compression {
    /// The name used in `Content-Encoding` / `grpc-encoding`, if any.
    pub fn name(self) -> Option<&'static str> {
        match self {
            Compression::Gzip => Some("gzip"),
            Compression::Zstd => Some("zstd"),
            Compression::None => None,
        }
    }

    pub fn compress(self, body: &[u8]) -> Bytes {
        match self {
            Compression::None => Bytes::copy_from_slice(body),
            Compression::Gzip => {
                use std::io::Write;
                let mut enc =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                // Writing to a Vec cannot fail.
                let _ = enc.write_all(body);
                Bytes::from(enc.finish().unwrap_or_default())
            }
            Compression::Zstd => Bytes::from(zstd::encode_all(body, 1).unwrap_or_default()),
        }
    }
}

/// The most `headers` an exporter sends, and their size in all.
pub const MAX_HEADERS: usize = 64;
pub const MAX_HEADER_BYTES: usize = 16 << 10;

/// The configured `headers` (HTTP headers or gRPC metadata), each checked; a bad one is
/// reported as `<path>.headers.<name>: <problem>`.
/// What an exporter adds to every request: its configured `headers` and, with `auth`, the
/// credential its authenticator gives (asked per request, so a rotated token is sent at once).
pub struct ExtraHeaders {
    pub fixed: HeaderMap,
    pub auth: Option<Arc<dyn ClientAuth>>,
}

impl ExtraHeaders {
    /// `headers` and `auth` from an exporter's config at `path`; errors go to `errors`.
    pub fn build(
        ctx: &Context,
        configured: &BTreeMap<String, String>,
        auth: Option<&AuthConfig>,
        problem: &str,
        errors: &mut Vec<ConfigError>,
    ) -> Self {
        let fixed = headers(ctx.path, configured, problem, errors);
        let auth = auth.and_then(|a| {
            ctx.auth
                .client(ctx.path, a)
                .map_err(|e| errors.push(e))
                .ok()
        });
        ExtraHeaders { fixed, auth }
    }

    pub fn apply(&self, to: &mut HeaderMap) {
        for (k, v) in &self.fixed {
            to.insert(k.clone(), v.clone());
        }
        if let Some(a) = &self.auth {
            let (k, v) = a.header();
            to.insert(k, v);
        }
    }
}

pub fn headers(
    path: &str,
    configured: &BTreeMap<String, String>,
    problem: &str,
    errors: &mut Vec<ConfigError>,
) -> HeaderMap {
    let mut out = HeaderMap::new();
    // Beyond these a peer refuses the request anyway (HTTP/2's usual header list limit is
    // 16 KiB), and a header map holds at most 32768 entries before it panics.
    let total: usize = configured.iter().map(|(k, v)| k.len() + v.len()).sum();
    if configured.len() > MAX_HEADERS || total > MAX_HEADER_BYTES {
        errors.push(ConfigError::new(
            format!("{path}.headers"),
            format!(
                "at most {MAX_HEADERS} headers of {} KiB in all (got {} of {} bytes)",
                MAX_HEADER_BYTES >> 10,
                configured.len(),
                total
            ),
        ));
        return out;
    }
    for (k, v) in configured {
        match (
            HeaderName::try_from(k.as_str()),
            HeaderValue::try_from(v.as_str()),
        ) {
            (Ok(k), Ok(mut v)) => {
                // Values often carry tenants' keys: never shown in logs or Debug output.
                v.set_sensitive(true);
                out.insert(k, v);
            }
            _ => errors.push(ConfigError::new(format!("{path}.headers.{k}"), problem)),
        }
    }
    out
}

/// An error with every cause after it (`client error (Connect): invalid peer certificate:
/// UnknownIssuer`): hyper's own message names only the stage that failed.
pub fn with_causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}
