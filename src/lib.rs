//! sluice: a telemetry gateway in the style of the OpenTelemetry Collector, built for CPU per
//! event. See README.md for the components and `service` for how they are wired.

pub mod alloc;
pub mod auth;
pub mod codec;
pub mod component;
pub mod config;
pub mod exporters;
pub mod extensions;
pub mod k8s;
pub mod layers;
pub mod model;
pub mod otlp;
pub mod pipeline;
pub mod processors;
pub mod receivers;
pub mod registry;
pub mod rlimit;
pub mod server;
pub mod service;
pub mod shutdown;
pub mod simd;
pub mod telemetry;
pub mod watched;
