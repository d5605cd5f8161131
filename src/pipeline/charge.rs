//! What one request in flight holds of the memory budget: reserved from every gate (the memory
//! limiter) before its bytes are read, grown as its body arrives, is decompressed and decoded,
//! and given back once its records are in the exporter queues (where the live heap counts
//! them) or it was refused.
//!
//! Checking the heap only when a request is admitted lets a burst of concurrent requests all
//! in before any of them has allocated: eight 4 MiB OTLP requests took a 300 MiB limiter's
//! process to 1.3 GiB. With charges, the limiter sees what admitted requests are about to cost
//! as well as what the heap holds.

use std::sync::Arc;

use super::{Admission, ConsumeError};

/// A request's share of the memory budget; given back when dropped.
pub struct Charge {
    gates: Arc<[Arc<dyn Admission>]>,
    held: u64,
}

impl Charge {
    /// A charge holding nothing yet, against `gates` (none: every growth is granted).
    pub fn new(gates: Arc<[Arc<dyn Admission>]>) -> Charge {
        Charge { gates, held: 0 }
    }

    /// A charge against no gate, for data that no limiter governs.
    pub fn unlimited() -> Charge {
        Charge::new(Arc::new([]))
    }

    /// What is held now.
    pub fn held(&self) -> u64 {
        self.held
    }

    /// Holds `total` bytes in all (nothing changes if as much is held already). Refused
    /// (`OverLimit`, retryable) when some gate cannot grant the difference; what was held
    /// stays held.
    pub fn grow_to(&mut self, total: u64) -> Result<(), ConsumeError> {
        let more = total.saturating_sub(self.held);
        if more == 0 {
            return Ok(());
        }
        for (i, gate) in self.gates.iter().enumerate() {
            if !gate.reserve(more, self.held) {
                for granted in &self.gates[..i] {
                    granted.release(more);
                }
                return Err(ConsumeError::OverLimit);
            }
        }
        self.held = total;
        Ok(())
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        if self.held > 0 {
            for gate in self.gates.iter() {
                gate.release(self.held);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A budget of `0` bytes in all, counting what is reserved.
    struct Budget(u64, AtomicU64);

    impl Admission for Budget {
        fn admit(&self) -> bool {
            true
        }
        fn reserve(&self, bytes: u64, _held: u64) -> bool {
            let now = self.1.fetch_add(bytes, Ordering::SeqCst) + bytes;
            if now > self.0 {
                self.1.fetch_sub(bytes, Ordering::SeqCst);
                return false;
            }
            true
        }
        fn release(&self, bytes: u64) {
            self.1.fetch_sub(bytes, Ordering::SeqCst);
        }
    }

    #[test]
    fn growth_is_reserved_from_every_gate_and_all_of_it_given_back() {
        let a = Arc::new(Budget(100, AtomicU64::new(0)));
        let b = Arc::new(Budget(50, AtomicU64::new(0)));
        let gates: Arc<[Arc<dyn Admission>]> = Arc::new([
            Arc::clone(&a) as Arc<dyn Admission>,
            Arc::clone(&b) as Arc<dyn Admission>,
        ]);
        let mut one = Charge::new(Arc::clone(&gates));
        one.grow_to(30).unwrap();
        one.grow_to(20).unwrap();
        assert_eq!(one.held(), 30, "never shrinks");
        let mut two = Charge::new(Arc::clone(&gates));
        assert_eq!(two.grow_to(30), Err(ConsumeError::OverLimit), "b is full");
        assert_eq!(a.1.load(Ordering::SeqCst), 30, "a's grant taken back");
        assert_eq!(two.held(), 0);
        two.grow_to(20).unwrap();
        drop(one);
        drop(two);
        assert_eq!(a.1.load(Ordering::SeqCst), 0);
        assert_eq!(b.1.load(Ordering::SeqCst), 0);
        let mut free = Charge::unlimited();
        free.grow_to(u64::MAX).unwrap();
    }
}
