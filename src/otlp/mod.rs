//! OTLP: the protobuf wire format, the mapping of its log messages to the data model, and
//! traces and metrics kept as validated bytes.

pub mod codec;
pub mod cut;
#[cfg(test)]
pub mod damage;
pub mod grpc;
pub mod json;
pub mod logs;
pub mod raw;
pub mod resource;
pub mod transcode;
pub mod wire;
