//! gRPC statuses the OTLP receiver answers with, through tonic: retryable ones carry
//! `google.rpc.RetryInfo` in their details (tonic-types), since OTel SDKs and collectors drop
//! data on RESOURCE_EXHAUSTED without it.

use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::pipeline::ConsumeError;

/// A status that tells the client to come back after `delay`.
pub fn retryable(code: Code, message: &str, delay: Duration) -> Status {
    Status::with_error_details(code, message, ErrorDetails::with_retry_info(Some(delay)))
}

/// The memory limiter refuses: retryable, with the hint.
pub fn over_limit(retry_after: Duration) -> Status {
    retryable(
        Code::ResourceExhausted,
        "sluice is over its memory limit; retry later",
        retry_after,
    )
}

/// What the pipeline's refusal means to a gRPC client.
pub fn from_consume(e: ConsumeError, retry_after: Duration) -> Status {
    match e {
        ConsumeError::Full => retryable(
            Code::ResourceExhausted,
            "the pipeline is full; retry later",
            retry_after,
        ),
        ConsumeError::OverLimit => over_limit(retry_after),
        ConsumeError::Closed => retryable(
            Code::Unavailable,
            "sluice is shutting down; retry",
            retry_after,
        ),
        ConsumeError::NotDelivered => retryable(
            Code::Unavailable,
            "the records could not be delivered; retry",
            retry_after,
        ),
        // The same request would never fit: no retry hint.
        ConsumeError::TooLarge { .. } | ConsumeError::TooManyBytes { .. } => {
            Status::resource_exhausted(e.to_string())
        }
    }
}
