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
            Compression::Gzip => Bytes::from(gzip(body)),
            Compression::Zstd => Bytes::from(zstd::encode_all(body, 1).unwrap_or_default()),
        }
    }
}

thread_local! {
    /// Each thread's gzip compressor, reset for every body: a fresh one allocates and clears
    /// about 300 KiB of window and hash tables, which costs more than compressing a small
    /// request. Per thread, so that no worker waits on another.
    static GZIP: std::cell::RefCell<Option<flate2::Compress>> = const { std::cell::RefCell::new(None) };
}

/// `body` gzipped at the fastest level, in one call into the compressor. `GzEncoder` would
/// copy the output once more through its own buffer and build a compressor per body; this is
/// about 10% cheaper on 5 MB bulk bodies (see `benches/hot_path.rs`, `gzip_bulk_body`).
pub fn gzip(body: &[u8]) -> Vec<u8> {
    GZIP.with_borrow_mut(|slot| {
        let c =
            slot.get_or_insert_with(|| flate2::Compress::new_gzip(flate2::Compression::fast(), 15));
        c.reset();
        // Log and document bodies compress 5-10 times; the buffer grows if they do not.
        let mut out = Vec::with_capacity(body.len() / 4 + 64);
        let mut input = body;
        loop {
            if out.capacity() - out.len() < 1024 {
                out.reserve(out.capacity());
            }
            let read = c.total_in();
            match c.compress_vec(input, &mut out, flate2::FlushCompress::Finish) {
                Ok(flate2::Status::StreamEnd) => return out,
                // More room is needed: there is more output than the buffer took.
                Ok(_) => input = &input[(c.total_in() - read) as usize..],
                // Only a broken stream state fails, which `reset` rules out; should it ever,
                // a new compressor takes the body whole.
                Err(_) => {
                    *slot = None;
                    return gzip_fresh(body);
                }
            }
        }
    })
}

fn gzip_fresh(body: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing to a Vec cannot fail.
    let _ = enc.write_all(body);
    enc.finish().unwrap_or_default()
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .expect("a whole gzip stream");
        out
    }

    #[test]
    fn gzip_reuses_its_compressor_and_every_body_decodes_whole() {
        // Sizes around the first buffer's (a quarter of the body) and beyond, so that the
        // output outgrows it; random bytes do not compress at all.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut noise = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        };
        let random: Vec<u8> = (0..300_000).map(|_| noise()).collect();
        let text = b"{\"body\":{\"text\":\"order 7 processed\"}}\n".repeat(20_000);
        for body in [&b""[..], b"x", &text, &random, &random[..5], &text[..1000]] {
            let zipped = gzip(body);
            assert_eq!(&zipped[..2], &[0x1f, 0x8b], "a gzip header");
            assert_eq!(gunzip(&zipped), body);
            assert_eq!(Compression::Gzip.compress(body), zipped);
        }
    }

    #[test]
    fn a_reused_compressor_keeps_nothing_from_the_body_before() {
        let text = b"GET /api/orders/17 HTTP/1.1 200 512\n".repeat(4_000);
        let first = gzip(&text);
        // Something else in between, larger than the window, then the same body again.
        let _ = gzip(&b"other lines, other words\n".repeat(10_000));
        assert_eq!(gzip(&text), first);
        assert_eq!(gunzip(&first), text);
    }
}
