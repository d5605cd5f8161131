//! gRPC over HTTP/2, just what unary OTLP calls need, on hyper directly: the 5-byte message
//! framing, status trailers, and `google.rpc.Status` details with `RetryInfo`.
//!
//! Not tonic: its generated services decode with prost (an owned `String` per attribute), while
//! here the request body goes straight to the zero-copy decoder; and the pieces that matter to
//! a gateway (RetryInfo on RESOURCE_EXHAUSTED, connection age) are a few lines each.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine;
use bytes::{BufMut, Bytes, BytesMut};
use hyper::HeaderMap;
use hyper::body::{Body, Frame};
use hyper::header::HeaderValue;

use super::wire::{Fields, Wire, put_bytes_field, put_key, put_len, put_varint, varint_len};

pub const LOGS_EXPORT: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
pub const TRACES_EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
pub const METRICS_EXPORT: &str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";

/// gRPC status codes.
pub mod code {
    pub const OK: u32 = 0;
    pub const CANCELLED: u32 = 1;
    pub const INVALID_ARGUMENT: u32 = 3;
    pub const DEADLINE_EXCEEDED: u32 = 4;
    pub const RESOURCE_EXHAUSTED: u32 = 8;
    pub const ABORTED: u32 = 10;
    pub const OUT_OF_RANGE: u32 = 11;
    pub const UNIMPLEMENTED: u32 = 12;
    pub const INTERNAL: u32 = 13;
    pub const UNAVAILABLE: u32 = 14;
    pub const UNAUTHENTICATED: u32 = 16;
    pub const DATA_LOSS: u32 = 15;
}

/// One length-prefixed message.
pub fn frame(payload: &[u8], compressed: bool) -> Bytes {
    let mut out = BytesMut::with_capacity(5 + payload.len());
    out.put_u8(u8::from(compressed));
    out.put_u32(payload.len() as u32);
    out.put_slice(payload);
    out.freeze()
}

/// Why a request body is not one well-formed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The declared length is over the limit (RESOURCE_EXHAUSTED, as gRPC servers answer).
    TooLarge(usize),
    Malformed(&'static str),
}

/// The single message of a unary call: (compressed flag, message bytes).
pub fn unframe(body: &Bytes, limit: usize) -> Result<(bool, Bytes), FrameError> {
    if body.len() < 5 {
        return Err(FrameError::Malformed(
            "the body is shorter than a message header",
        ));
    }
    let compressed = match body[0] {
        0 => false,
        1 => true,
        _ => return Err(FrameError::Malformed("invalid compressed-flag byte")),
    };
    let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
    if len > limit {
        return Err(FrameError::TooLarge(len));
    }
    if body.len() != 5 + len {
        return Err(FrameError::Malformed(
            "the body is not exactly one length-prefixed message",
        ));
    }
    Ok((compressed, body.slice(5..)))
}

/// A `google.rpc.Status`, with a `RetryInfo` detail when `retry` is set: the hint without which
/// OTel exporters treat RESOURCE_EXHAUSTED as permanent and drop the data.
pub fn status_details(code: u32, message: &str, retry: Option<Duration>) -> Vec<u8> {
    let mut out = Vec::new();
    put_key(&mut out, 1, 0);
    put_varint(&mut out, u64::from(code));
    if !message.is_empty() {
        put_bytes_field(&mut out, 2, message.as_bytes());
    }
    if let Some(d) = retry {
        let mut duration = Vec::new();
        if d.as_secs() > 0 {
            put_key(&mut duration, 1, 0);
            put_varint(&mut duration, d.as_secs());
        }
        if d.subsec_nanos() > 0 {
            put_key(&mut duration, 2, 0);
            put_varint(&mut duration, u64::from(d.subsec_nanos()));
        }
        let mut retry_info = Vec::new();
        put_bytes_field(&mut retry_info, 1, &duration);
        let type_url = b"type.googleapis.com/google.rpc.RetryInfo";
        let any_len = 1
            + varint_len(type_url.len() as u64)
            + type_url.len()
            + 1
            + varint_len(retry_info.len() as u64)
            + retry_info.len();
        put_len(&mut out, 3, any_len);
        put_bytes_field(&mut out, 1, type_url);
        put_bytes_field(&mut out, 2, &retry_info);
    }
    out
}

/// The `RetryInfo.retry_delay` in an encoded `google.rpc.Status`, if there is one.
pub fn retry_delay(status: &[u8]) -> Option<Duration> {
    let mut f = Fields::new(status, 0, status.len());
    while let Ok(Some((field, wire))) = f.next_field() {
        let (3, Wire::Len(s, e)) = (field, wire) else {
            continue;
        };
        let (mut url, mut value) = (None, None);
        let mut any = Fields::new(status, s, e);
        while let Ok(Some((field, wire))) = any.next_field() {
            match (field, wire) {
                (1, Wire::Len(s, e)) => url = Some(&status[s..e]),
                (2, Wire::Len(s, e)) => value = Some((s, e)),
                _ => {}
            }
        }
        let (Some(url), Some((s, e))) = (url, value) else {
            continue;
        };
        if !url.ends_with(b"google.rpc.RetryInfo") {
            continue;
        }
        let mut info = Fields::new(status, s, e);
        while let Ok(Some((field, wire))) = info.next_field() {
            if let (1, Wire::Len(s, e)) = (field, wire) {
                let (mut secs, mut nanos) = (0u64, 0u32);
                let mut d = Fields::new(status, s, e);
                while let Ok(Some((field, wire))) = d.next_field() {
                    match (field, wire) {
                        (1, Wire::Varint(v)) => secs = v,
                        (2, Wire::Varint(v)) => nanos = v as u32,
                        _ => {}
                    }
                }
                return Some(Duration::new(secs, nanos.min(999_999_999)));
            }
        }
    }
    None
}

/// `grpc-message` is percent-encoded: bytes outside printable ASCII, and `%` itself.
pub fn percent_encode(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for &b in message.as_bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The trailers (or, for a Trailers-Only answer, headers) that carry a call's status.
pub fn status_headers(code: u32, message: &str, retry: Option<Duration>) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("grpc-status", HeaderValue::from(code));
    if !message.is_empty()
        && let Ok(v) = HeaderValue::from_str(&percent_encode(message))
    {
        h.insert("grpc-message", v);
    }
    if code != code::OK {
        let details = base64::engine::general_purpose::STANDARD_NO_PAD
            .encode(status_details(code, message, retry));
        if let Ok(v) = HeaderValue::from_str(&details) {
            h.insert("grpc-status-details-bin", v);
        }
    }
    h
}

/// A unary answer body: at most one data frame, then trailers.
pub struct UnaryBody {
    data: Option<Bytes>,
    trailers: Option<HeaderMap>,
}

impl UnaryBody {
    pub fn new(data: Option<Bytes>, trailers: Option<HeaderMap>) -> Self {
        UnaryBody { data, trailers }
    }
}

impl Body for UnaryBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(data) = self.data.take() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none() && self.trailers.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_round_trips_and_rejects_bad_bodies() {
        let framed = frame(b"abc", false);
        assert_eq!(&framed[..], b"\0\0\0\0\x03abc");
        assert_eq!(
            unframe(&framed, 10),
            Ok((false, Bytes::from_static(b"abc")))
        );
        assert_eq!(unframe(&framed, 2), Err(FrameError::TooLarge(3)));
        assert!(unframe(&Bytes::from_static(b"\0\0\0"), 10).is_err());
        assert!(unframe(&Bytes::from_static(b"\x02\0\0\0\0"), 10).is_err());
        assert!(unframe(&Bytes::from_static(b"\0\0\0\0\x05ab"), 10).is_err());
    }

    #[test]
    fn retry_info_round_trips_through_a_status() {
        let d = Duration::from_millis(1500);
        let status = status_details(code::RESOURCE_EXHAUSTED, "full", Some(d));
        assert_eq!(retry_delay(&status), Some(d));
        assert_eq!(
            retry_delay(&status_details(code::UNAVAILABLE, "x", None)),
            None
        );
    }

    #[test]
    fn messages_are_percent_encoded_both_ways() {
        let m = "50% full: ünïcode\nnext";
        let e = percent_encode(m);
        assert!(e.is_ascii() && !e.contains('\n'));
        assert_eq!(percent_decode(&e), m);
    }
}
