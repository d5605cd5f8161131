//! Reading a request body the way every HTTP receiver must: a size limit checked against
//! `Content-Length` first, then while reading, and again while decompressing, so neither a
//! large upload nor a decompression bomb can exhaust memory; a deadline, so a body sent a byte
//! at a time is cut off (408); and shutdown, so such a body cannot hold up a SIGTERM either.
//! Every buffer is charged to the request's [`Charge`] before it grows, so that the memory
//! limiter counts bodies still arriving as well as the heap (429 when it cannot grant them).

use std::io::Read;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::Request;
use hyper::body::Incoming;
use hyper::header::{CONTENT_ENCODING, CONTENT_LENGTH, HeaderValue};
use tokio::time::Instant;

use crate::pipeline::Charge;
use crate::shutdown::Shutdown;

/// Why a body was not read; each maps to a 4xx answer (or 503 while shutting down).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    TooLarge,
    DecompressedTooLarge,
    Corrupt,
    UnknownEncoding,
    Unreadable,
    /// The body did not arrive within `read_timeout`.
    TimedOut,
    /// Shutdown began while the body was still arriving; it was not accepted, so the client
    /// may send it again elsewhere.
    ShuttingDown,
    /// The memory limiter could not grant the body's buffers: retry later.
    OverLimit,
}

impl Refusal {
    pub fn status(self) -> u16 {
        match self {
            Refusal::TooLarge | Refusal::DecompressedTooLarge => 413,
            Refusal::Corrupt | Refusal::Unreadable => 400,
            Refusal::UnknownEncoding => 415,
            Refusal::TimedOut => 408,
            Refusal::ShuttingDown => 503,
            Refusal::OverLimit => 429,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Refusal::TooLarge => "request body is larger than max_request_body_size\n",
            Refusal::DecompressedTooLarge => {
                "decompressed body is larger than max_request_body_size\n"
            }
            Refusal::Corrupt => "the body does not match its Content-Encoding\n",
            Refusal::UnknownEncoding => {
                "unsupported Content-Encoding: use gzip, deflate, zstd or none\n"
            }
            Refusal::Unreadable => "could not read the request body\n",
            Refusal::TimedOut => "the request body did not arrive within read_timeout\n",
            Refusal::ShuttingDown => "sluice is shutting down; retry\n",
            Refusal::OverLimit => "sluice is over its memory limit; retry later\n",
        }
    }
}

/// How much of a body a receiver takes, how long it waits for it, and what cuts it short.
#[derive(Clone)]
pub struct Bounds {
    /// Largest body, before and after decompression.
    pub limit: usize,
    /// The whole body must have arrived this long after its headers did.
    pub timeout: Duration,
    pub shutdown: Shutdown,
}

/// Reads and decompresses the body of `req` within `bounds`, growing `charge` to cover its
/// buffers. Returns the decoded body and the number of bytes received on the wire.
pub async fn read(
    req: Request<Incoming>,
    bounds: &Bounds,
    charge: &mut Charge,
) -> Result<(Bytes, u64), Refusal> {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > bounds.limit as u64) {
        return Err(Refusal::TooLarge);
    }
    let encoding = Encoding::from_header(req.headers().get(CONTENT_ENCODING))?;
    let hint = declared.map(|n| n as usize);
    let raw = collect(req.into_body(), bounds, |_| hint, charge).await?;
    let wire = raw.len() as u64;
    Ok((encoding.decode(raw, bounds.limit, charge)?, wire))
}

/// The next frame of `body`, or why none will come in time.
async fn next_frame(
    body: &mut Incoming,
    deadline: Instant,
    stop: &mut Shutdown,
) -> Result<Option<Result<hyper::body::Frame<Bytes>, hyper::Error>>, Refusal> {
    tokio::select! {
        biased;
        frame = body.frame() => Ok(frame),
        _ = tokio::time::sleep_until(deadline) => Err(Refusal::TimedOut),
        _ = stop.wait() => Err(Refusal::ShuttingDown),
    }
}

/// Reads a whole body of at most `bounds.limit` bytes. A body that came in one frame is
/// returned as that frame, without a copy; otherwise the frames are copied into one buffer.
///
/// The buffer grows with the bytes that have arrived (see [`grow`]: doubling, then the whole
/// `size_hint` once a quarter of it is in; the hint comes from the first frame: `Content-Length`,
/// or a gRPC message's length prefix). It is never sized from the declared length alone: a client
/// that declares 20 MiB and sends 4 bytes costs a few bytes, not a 20 MiB reservation that the
/// memory limiter would count against everyone.
pub async fn collect(
    mut body: Incoming,
    bounds: &Bounds,
    size_hint: impl Fn(&[u8]) -> Option<usize>,
    charge: &mut Charge,
) -> Result<Bytes, Refusal> {
    let deadline = Instant::now() + bounds.timeout;
    let mut stop = bounds.shutdown.clone();
    let limit = bounds.limit;
    let mut first: Option<Bytes> = None;
    let mut hint = 0usize;
    let mut buf: Vec<u8> = Vec::new();
    let mut total = 0usize;
    let mut refused = false;
    // Holds `data`: as the first frame alone, or copied into `buf`, each charged first.
    let mut add = |first: &mut Option<Bytes>,
                   buf: &mut Vec<u8>,
                   hint: &mut usize,
                   data: Bytes|
     -> Result<(), Refusal> {
        if buf.is_empty() && first.is_none() {
            *hint = size_hint(&data).unwrap_or(0).min(limit);
            charge
                .grow_to(data.len() as u64)
                .map_err(|_| Refusal::OverLimit)?;
            *first = Some(data);
            return Ok(());
        }
        if let Some(f) = first.take() {
            grow(buf, f.len(), *hint, charge)?;
            buf.extend_from_slice(&f);
        }
        grow(buf, data.len(), *hint, charge)?;
        buf.extend_from_slice(&data);
        Ok(())
    };
    while let Some(frame) = next_frame(&mut body, deadline, &mut stop).await? {
        let Ok(data) = frame.map_err(|_| Refusal::Unreadable)?.into_data() else {
            continue; // trailers
        };
        total += data.len();
        if total > limit {
            return Err(Refusal::TooLarge);
        }
        if refused {
            continue;
        }
        if add(&mut first, &mut buf, &mut hint, data).is_err() {
            // Refused by the memory limiter: what was held goes now, and the rest of the
            // body is read and dropped, so the client reads its 429 rather than a reset.
            refused = true;
            first = None;
            buf = Vec::new();
        }
    }
    if refused {
        return Err(Refusal::OverLimit);
    }
    Ok(first.unwrap_or_else(|| Bytes::from(buf)))
}

/// Makes room for `more` bytes: twice what is held (at least 64 KiB), capped at `hint` when
/// the body will fit in it; the whole `hint` once a quarter of it has arrived, so a large body
/// is moved once rather than at every doubling, and a client is never charged more than four
/// times what it sent. The new size is charged first, with the frame being added.
fn grow(buf: &mut Vec<u8>, more: usize, hint: usize, charge: &mut Charge) -> Result<(), Refusal> {
    let need = buf.len() + more;
    if need <= buf.capacity() {
        return Ok(());
    }
    let doubled = need.max(buf.len() * 2).max(64 << 10);
    let target = if hint < need {
        doubled
    } else if need.saturating_mul(4) >= hint {
        hint
    } else {
        doubled.min(hint)
    };
    // The old buffer and the frame are held while the new one is filled.
    let during = (buf.capacity() + target + more) as u64;
    charge.grow_to(during).map_err(|_| Refusal::OverLimit)?;
    buf.reserve_exact(target - buf.len());
    Ok(())
}

/// Reads and discards a body of up to `bounds.limit` bytes without holding it, so a request
/// refused before it was read (memory limiter) costs no memory and an HTTP/1.1 connection stays
/// usable. A longer, slower or unfinished body is abandoned, and hyper closes the connection.
pub async fn drain(mut body: Incoming, bounds: &Bounds) {
    let deadline = Instant::now() + bounds.timeout;
    let mut stop = bounds.shutdown.clone();
    let mut total = 0usize;
    while let Ok(Some(Ok(frame))) = next_frame(&mut body, deadline, &mut stop).await {
        if let Some(data) = frame.data_ref() {
            total += data.len();
            if total > bounds.limit {
                return;
            }
        }
    }
}

/// Decompresses `raw` by its encoding name (`gzip`, `deflate`, `zstd`, `identity`) with the same
/// bound, and no memory budget: what the fuzz checks drive.
pub fn decompress(encoding: &str, raw: Bytes, limit: usize) -> Result<Bytes, Refusal> {
    let value = HeaderValue::from_str(encoding).map_err(|_| Refusal::UnknownEncoding)?;
    Encoding::from_header(Some(&value))?.decode(raw, limit, &mut Charge::unlimited())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Identity,
    Gzip,
    Deflate,
    Zstd,
}

impl Encoding {
    fn from_header(v: Option<&HeaderValue>) -> Result<Encoding, Refusal> {
        let Some(v) = v else {
            return Ok(Encoding::Identity);
        };
        let v = v.to_str().unwrap_or("").trim();
        if v.is_empty() || v.eq_ignore_ascii_case("identity") {
            Ok(Encoding::Identity)
        } else if v.eq_ignore_ascii_case("gzip") || v.eq_ignore_ascii_case("x-gzip") {
            Ok(Encoding::Gzip)
        } else if v.eq_ignore_ascii_case("deflate") {
            Ok(Encoding::Deflate)
        } else if v.eq_ignore_ascii_case("zstd") {
            Ok(Encoding::Zstd)
        } else {
            Err(Refusal::UnknownEncoding)
        }
    }

    fn decode(self, raw: Bytes, limit: usize, charge: &mut Charge) -> Result<Bytes, Refusal> {
        let held = raw.len();
        match self {
            Encoding::Identity => Ok(raw),
            Encoding::Gzip => bounded_read(
                flate2::read::MultiGzDecoder::new(&raw[..]),
                held,
                limit,
                charge,
            ),
            Encoding::Deflate => bounded_read(
                flate2::read::ZlibDecoder::new(&raw[..]),
                held,
                limit,
                charge,
            ),
            Encoding::Zstd => {
                let dec =
                    zstd::stream::read::Decoder::new(&raw[..]).map_err(|_| Refusal::Corrupt)?;
                bounded_read(dec, held, limit, charge)
            }
        }
    }
}

/// Decompresses at most `limit` bytes; one byte more means the body is over the limit. The
/// output grows by doubling, each size charged (beside the `compressed` input still held)
/// before it is taken.
fn bounded_read(
    reader: impl Read,
    compressed: usize,
    limit: usize,
    charge: &mut Charge,
) -> Result<Bytes, Refusal> {
    let mut reader = reader.take(limit as u64 + 1);
    let mut out: Vec<u8> = Vec::new();
    let mut size = compressed.saturating_mul(4).max(64 << 10).min(limit + 1);
    loop {
        // The old buffer and the new are both held while it moves.
        let during = compressed + out.capacity() + size;
        charge
            .grow_to(during as u64)
            .map_err(|_| Refusal::OverLimit)?;
        out.reserve_exact(size - out.len());
        let room = (out.capacity() - out.len()) as u64;
        match (&mut reader).take(room).read_to_end(&mut out) {
            Ok(n) if (n as u64) < room => break,
            Ok(_) if out.len() > limit => break,
            Ok(_) => size = size.saturating_mul(2).min(limit + 1).max(out.len() + 1),
            Err(_) => return Err(Refusal::Corrupt),
        }
    }
    if out.len() > limit {
        return Err(Refusal::DecompressedTooLarge);
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn gzip_bomb_is_refused_at_the_limit() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&vec![b'a'; 5 << 20]).unwrap();
        let gz = Bytes::from(enc.finish().unwrap());
        assert!(gz.len() < 64 << 10);
        let mut charge = Charge::unlimited();
        assert_eq!(
            Encoding::Gzip.decode(gz.clone(), 1 << 20, &mut charge),
            Err(Refusal::DecompressedTooLarge)
        );
        assert_eq!(
            Encoding::Gzip
                .decode(gz, 5 << 20, &mut charge)
                .unwrap()
                .len(),
            5 << 20
        );
    }

    #[test]
    fn buffers_grow_with_what_arrived_not_with_what_was_declared() {
        let declared = 20 << 20;
        let mut buf = Vec::new();
        let charge = &mut Charge::unlimited();
        grow(&mut buf, 4, declared, charge).unwrap();
        assert!(buf.capacity() <= 128 << 10, "{}", buf.capacity());
        let mut received = 0;
        while received < declared {
            grow(&mut buf, 16 << 10, declared, charge).unwrap();
            buf.extend_from_slice(&[0; 16 << 10]);
            received += 16 << 10;
            assert!(buf.capacity() <= (4 * received).max(64 << 10).min(declared));
        }
        // Ends at exactly the declared size: no slack to copy away, no second copy.
        assert_eq!(buf.capacity(), declared);
    }

    #[test]
    fn corrupt_compressed_body_is_an_error() {
        let junk = Bytes::from_static(b"definitely not zstd");
        let charge = &mut Charge::unlimited();
        assert_eq!(
            Encoding::Zstd.decode(junk.clone(), 1024, charge),
            Err(Refusal::Corrupt)
        );
        assert_eq!(
            Encoding::Gzip.decode(junk, 1024, charge),
            Err(Refusal::Corrupt)
        );
    }
}
