//! [`Batch`]: what flows through a pipeline, and how batches are merged and cut. Logs are the
//! data model (processors work on them); traces and metrics are validated OTLP bytes.

use crate::model::{LogBatch, Signal};

/// What flows through a pipeline: logs as the data model (processors work on them), traces
/// and metrics as validated OTLP bytes (the gateway only forwards them).
#[derive(Clone, Debug, PartialEq)]
pub enum Batch {
    Logs(LogBatch),
    Raw(crate::otlp::raw::RawBatch),
}

impl Default for Batch {
    fn default() -> Self {
        Batch::Logs(LogBatch::default())
    }
}

impl Batch {
    /// An empty batch of `signal`.
    pub fn empty(signal: Signal) -> Batch {
        match signal {
            Signal::Logs => Batch::Logs(LogBatch::default()),
            s => Batch::Raw(crate::otlp::raw::RawBatch::new(s)),
        }
    }

    pub fn signal(&self) -> Signal {
        match self {
            Batch::Logs(_) => Signal::Logs,
            Batch::Raw(r) => r.signal,
        }
    }

    /// Log records, spans or data points.
    pub fn len(&self) -> usize {
        match self {
            Batch::Logs(b) => b.len(),
            Batch::Raw(r) => r.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        match self {
            Batch::Logs(b) => b.is_empty(),
            Batch::Raw(r) => r.is_empty(),
        }
    }

    /// Appends `other`; a batch of another signal is handed back untouched. Decoded and
    /// encoded logs (two receivers feeding one pipeline that forwards logs encoded) meet as
    /// encoded: the decoded ones are encoded once, as the exporter would have.
    pub fn append(&mut self, other: Batch) -> Result<(), Batch> {
        use crate::otlp::raw::RawBatch;
        match (&mut *self, other) {
            (Batch::Logs(a), Batch::Logs(b)) => a.append(b),
            (Batch::Raw(a), Batch::Raw(b)) if a.signal == b.signal => a.append(b),
            (Batch::Raw(a), Batch::Logs(b)) if a.signal == Signal::Logs => {
                a.append(RawBatch::from_logs(&b))
            }
            (Batch::Logs(a), Batch::Raw(b)) if b.signal == Signal::Logs => {
                let mut raw = RawBatch::from_logs(a);
                raw.append(b);
                *self = Batch::Raw(raw);
            }
            (_, other) => return Err(other),
        }
        Ok(())
    }

    /// Splits off the first `n` items; traces and metrics are cut between resources only.
    pub fn split_to(&mut self, n: usize) -> Batch {
        match self {
            Batch::Logs(b) => Batch::Logs(b.split_to(n)),
            Batch::Raw(r) => Batch::Raw(r.split_to(n)),
        }
    }
}
