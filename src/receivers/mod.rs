//! Receivers: one file per protocol, listed in `RECEIVERS`; the rest are their shared parts.
pub mod body;
pub mod edge;
pub mod limits;
pub mod message;
pub mod step;
pub mod tls;

crate::component::components!(
    RECEIVERS: Box<dyn crate::pipeline::Receiver> = [http_logs, otlp, filelog, kubeletstats, k8s_events]
);
