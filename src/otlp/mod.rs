//! OTLP: the protobuf wire format and the mapping of its log messages to the data model.

pub mod grpc;
pub mod json;
pub mod logs;
pub mod wire;
