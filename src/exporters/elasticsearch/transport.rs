//! The HTTP side of `_bulk`: reqwest (rustls) over the configured endpoints in turn, with the
//! exporter's headers and credentials on every request, and the answer read a chunk at a time
//! up to what the request can legitimately get.
//!
//! The `elasticsearch` crate's transport did this before, but it reads an answer only whole:
//! a broken or hostile server answering a 5 MB request with 500 MB of chunked body cost 1 GB
//! per request in flight. Its `Transport` keeps the reqwest client to itself, so the bound
//! cannot be put under it; the request it sent is rebuilt here with the same settings.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use hyper::header::HeaderMap;
use url::Url;

use crate::exporters::client::with_causes;

/// Sends `_bulk` requests to the endpoints in turn.
pub struct Transport {
    client: reqwest::Client,
    urls: Vec<Url>,
    next: AtomicUsize,
}

/// TLS and credentials for [`Transport::new`].
pub struct Settings {
    /// Endpoints, each ending in `/` so that `_bulk` is joined below any path prefix.
    pub urls: Vec<Url>,
    /// Sent with every request (`headers`, `Authorization`).
    pub headers: HeaderMap,
    pub timeout: Duration,
    pub insecure_skip_verify: bool,
    /// PEM CA certificates to trust instead of the system's.
    pub ca: Option<Vec<u8>>,
    /// PEM certificate chain and key, for mutual TLS.
    pub client_pem: Option<Vec<u8>>,
}

/// Why no answer was read.
#[derive(Debug, thiserror::Error)]
pub enum Failed {
    #[error("{0}")]
    Timeout(String),
    #[error("{0}")]
    Transport(String),
    #[error("the _bulk answer is over {bound} bytes, more than the documents sent can get")]
    TooLarge { bound: u64 },
}

impl Transport {
    pub fn new(s: Settings) -> Result<Transport, String> {
        let mut builder = reqwest::Client::builder()
            .timeout(s.timeout)
            .default_headers(s.headers)
            .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")));
        if s.insecure_skip_verify {
            builder = builder.danger_accept_invalid_certs(true);
        } else if let Some(ca) = &s.ca {
            for cert in reqwest::Certificate::from_pem_bundle(ca)
                .map_err(|e| format!("tls.ca_file: {e}"))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        if let Some(pem) = &s.client_pem {
            let identity =
                reqwest::Identity::from_pem(pem).map_err(|e| format!("tls.cert_file: {e}"))?;
            builder = builder.identity(identity);
        }
        let client = builder.build().map_err(|e| with_causes(&e))?;
        if s.urls.is_empty() {
            return Err("no endpoint".into());
        }
        Ok(Transport {
            client,
            urls: s.urls,
            next: AtomicUsize::new(0),
        })
    }

    /// POSTs `body` to the next endpoint's `_bulk` with `headers` and `query`; returns the
    /// status and the answer, read only up to `bound` bytes.
    pub async fn bulk(
        &self,
        headers: HeaderMap,
        query: &[(&str, &str)],
        body: Bytes,
        bound: u64,
    ) -> Result<(u16, Bytes), Failed> {
        let at = self.next.fetch_add(1, Ordering::Relaxed) % self.urls.len();
        let url = self.urls[at]
            .join("_bulk")
            .map_err(|e| Failed::Transport(e.to_string()))?;
        let sent = self
            .client
            .post(url)
            .headers(headers)
            .query(query)
            .body(body)
            .send()
            .await;
        let failed = |e: reqwest::Error| {
            if e.is_timeout() {
                Failed::Timeout(with_causes(&e))
            } else {
                Failed::Transport(with_causes(&e))
            }
        };
        let mut resp = sent.map_err(failed)?;
        if resp.content_length().is_some_and(|n| n > bound) {
            // Dropped unread: the connection goes with it.
            return Err(Failed::TooLarge { bound });
        }
        let status = resp.status().as_u16();
        let mut answer = BytesMut::new();
        while let Some(chunk) = resp.chunk().await.map_err(failed)? {
            if (answer.len() + chunk.len()) as u64 > bound {
                return Err(Failed::TooLarge { bound });
            }
            answer.extend_from_slice(&chunk);
        }
        Ok((status, answer.freeze()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server on a free port that answers every connection with `head` and then `chunk`,
    /// again and again, until the client goes away.
    async fn endless(head: &'static str, chunk: Vec<u8>) -> Url {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let chunk = chunk.clone();
                tokio::spawn(async move {
                    let mut request = vec![0u8; 64 << 10];
                    let _ = conn.read(&mut request).await;
                    if conn.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    while conn.write_all(&chunk).await.is_ok() {}
                });
            }
        });
        url
    }

    fn transport(url: Url) -> Transport {
        Transport::new(Settings {
            urls: vec![url],
            headers: HeaderMap::new(),
            timeout: Duration::from_secs(30),
            insecure_skip_verify: false,
            ca: None,
            client_pem: None,
        })
        .unwrap()
    }

    #[tokio::test]
    async fn an_endless_chunked_answer_is_cut_off_at_the_bound() {
        // One HTTP chunk of 64 KiB of spaces (valid JSON padding), sent without end.
        let mut chunk = format!("{:x}\r\n", 64 << 10).into_bytes();
        chunk.extend(std::iter::repeat_n(b' ', 64 << 10));
        chunk.extend_from_slice(b"\r\n");
        let url = endless(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
            chunk,
        )
        .await;
        let t = transport(url);
        let got = t
            .bulk(HeaderMap::new(), &[], Bytes::from_static(b"{}\n"), 1 << 20)
            .await;
        assert!(
            matches!(got, Err(Failed::TooLarge { bound }) if bound == 1 << 20),
            "{got:?}"
        );
    }

    #[tokio::test]
    async fn an_answer_declaring_more_than_the_bound_is_not_read() {
        let url = endless(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500000000\r\n\r\n",
            vec![b' '; 64 << 10],
        )
        .await;
        let got = transport(url)
            .bulk(HeaderMap::new(), &[], Bytes::from_static(b"{}\n"), 1 << 20)
            .await;
        assert!(matches!(got, Err(Failed::TooLarge { .. })), "{got:?}");
    }
}
