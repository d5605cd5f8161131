//! [`Batch`]: what flows through a pipeline, and how batches are merged and cut. Logs are the
//! data model (processors work on them); traces and metrics are validated OTLP bytes.

use std::collections::VecDeque;

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

    /// Makes room for `additional` more items, so that appends up to it move nothing twice.
    fn reserve(&mut self, additional: usize) {
        match self {
            Batch::Logs(b) => b.records.reserve_exact(additional),
            // Entries are one per resource, not per item: how many is not known here.
            Batch::Raw(_) => {}
        }
    }
}

/// Batches of one signal waiting to be sent together, kept apart until they are taken.
///
/// Appending each request's records to one growing `Vec` moved every record again at each
/// doubling (a batch of 8,192 200-byte records moved 2.5 MB more than it held, and took fresh
/// pages from the allocator each time): 6% of a decoded OTLP pipeline's time. Kept apart, the
/// parts are joined once, into room reserved for exactly what is taken.
#[derive(Debug)]
pub struct Pending {
    signal: Signal,
    parts: VecDeque<Batch>,
    len: usize,
}

impl Pending {
    pub fn new(signal: Signal) -> Pending {
        Pending {
            signal,
            parts: VecDeque::new(),
            len: 0,
        }
    }

    /// Items held, over all parts.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds `batch` after the others; a batch of another signal is handed back untouched.
    pub fn push(&mut self, batch: Batch) -> Result<(), Batch> {
        if batch.signal() != self.signal {
            return Err(batch);
        }
        if !batch.is_empty() {
            self.len += batch.len();
            self.parts.push_back(batch);
        }
        Ok(())
    }

    /// Takes the first `n` items (all, if fewer are held) as one batch, cut as
    /// [`Batch::split_to`] cuts: traces and metrics between resources or scopes, so the part
    /// taken can hold a few more or fewer than `n`.
    pub fn take(&mut self, n: usize) -> Batch {
        let Some(mut out) = self.parts.pop_front() else {
            return Batch::empty(self.signal);
        };
        if out.len() > n {
            let head = out.split_to(n);
            // A metrics scope larger than `n` leaves as a whole: keep no empty part behind,
            // as `push` keeps none.
            if !out.is_empty() {
                self.parts.push_front(out);
            }
            self.len -= head.len();
            return head;
        }
        // The first part's buffer is kept and grown once, to all that is taken.
        out.reserve(n.min(self.len) - out.len());
        while out.len() < n {
            let Some(mut part) = self.parts.pop_front() else {
                break;
            };
            let head = if out.len() + part.len() <= n {
                part
            } else {
                let head = part.split_to(n - out.len());
                if !part.is_empty() {
                    self.parts.push_front(part);
                }
                head
            };
            let appended = out.append(head);
            debug_assert!(
                appended.is_ok(),
                "every part was checked to be of this signal"
            );
        }
        self.len -= out.len();
        out
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::{LogRecord, Origin, Value};

    /// Logs whose bodies number them `from`, `from + 1`, ...: the batcher's tests use these too.
    pub(crate) fn logs(from: i64, n: usize) -> Batch {
        Batch::Logs(LogBatch {
            origins: vec![Origin::default()],
            records: (from..from + n as i64)
                .map(|i| LogRecord {
                    body: Value::Int(i),
                    ..Default::default()
                })
                .collect(),
        })
    }

    pub(crate) fn bodies(b: &Batch) -> Vec<i64> {
        let Batch::Logs(b) = b else { return vec![] };
        b.records
            .iter()
            .map(|r| match r.body {
                Value::Int(i) => i,
                _ => -1,
            })
            .collect()
    }

    #[test]
    fn parts_are_taken_in_order_and_cut_where_asked() {
        let mut p = Pending::new(Signal::Logs);
        for (from, n) in [(0, 3), (3, 4), (7, 2)] {
            p.push(logs(from, n)).unwrap();
        }
        assert_eq!(p.len(), 9);
        let first = p.take(5);
        assert_eq!(bodies(&first), [0, 1, 2, 3, 4]);
        assert_eq!(p.len(), 4);
        let second = p.take(2);
        assert_eq!(bodies(&second), [5, 6]);
        let rest = p.take(100);
        assert_eq!(bodies(&rest), [7, 8]);
        assert!(p.is_empty());
        assert!(p.take(1).is_empty());
    }

    #[test]
    fn a_take_allocates_once_for_exactly_what_it_holds() {
        let mut p = Pending::new(Signal::Logs);
        for i in 0..10 {
            p.push(logs(i * 100, 100)).unwrap();
        }
        let Batch::Logs(taken) = p.take(750) else {
            panic!("logs in, logs out")
        };
        assert_eq!(taken.records.len(), 750);
        assert_eq!(
            taken.records.capacity(),
            750,
            "no doubling past what is taken"
        );
        assert_eq!(taken.origins.len(), 8, "each part's origin comes along");
        assert!(
            taken
                .records
                .iter()
                .all(|r| (r.origin as usize) < taken.origins.len())
        );
        assert_eq!(p.len(), 250);
    }

    #[test]
    fn another_signal_is_handed_back_and_empty_batches_are_not_kept() {
        let mut p = Pending::new(Signal::Logs);
        let spans = Batch::empty(Signal::Traces);
        assert_eq!(p.push(spans.clone()), Err(spans));
        p.push(logs(0, 0)).unwrap();
        assert!(p.is_empty());
        assert_eq!(p.parts.len(), 0);
    }
}
