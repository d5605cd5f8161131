//! The tonic codec of sluice's OTLP calls: messages are raw `Bytes`, in both directions.
//!
//! tonic does the gRPC protocol (the 5-byte framing, `grpc-encoding` compression with its size
//! limit, status and trailers); the message itself stays the bytes that arrived, handed on
//! without a copy (`DecodeBuf::copy_to_bytes` splits tonic's buffer), so sluice's zero-copy
//! decoder reads it instead of prost building owned strings per attribute. An exporter's
//! request is already encoded protobuf, written out as it is.

use bytes::{BufMut, Bytes};
use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

/// The tonic server every OTLP/gRPC call is read with: `grpc-encoding` gzip and zstd accepted,
/// and the message refused once it would pass `limit` bytes, compressed or decompressed (the
/// `grpc_unary` fuzz target drives this very server with arbitrary bodies).
pub fn server(limit: usize) -> tonic::server::Grpc<RawCodec> {
    use tonic::codec::CompressionEncoding;
    tonic::server::Grpc::new(RawCodec)
        .accept_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Zstd)
        .max_decoding_message_size(limit)
}

#[derive(Debug, Clone, Copy, Default)]
pub struct RawEncoder;

#[derive(Debug, Clone, Copy, Default)]
pub struct RawDecoder;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

/// The buffer a call starts with: most OTLP requests are a few KiB; larger ones grow it once,
/// when their length prefix has arrived.
const START_BUFFER: usize = 8 << 10;

impl Decoder for RawDecoder {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        use bytes::Buf;
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::new(START_BUFFER, 32 << 10)
    }
}
