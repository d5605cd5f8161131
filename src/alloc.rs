//! A global allocator wrapper that counts live heap bytes, so `memory_limiter` can measure
//! what sluice holds the way the OTel Collector reads Go's heap statistics.
//!
//! Resident memory (RSS) is the wrong signal for refusing and re-admitting data: after a spike
//! the allocator keeps freed pages mapped for reuse, so RSS stays near its peak while sluice
//! holds almost nothing, and a limiter on RSS would refuse forever. Live heap bytes fall as
//! soon as the data is delivered.
//!
//! Counting must not become a shared hot spot: every allocation adds to a per-thread delta and
//! only a delta beyond [`FLUSH_BYTES`] reaches the one shared atomic. The reading is therefore
//! off by at most `FLUSH_BYTES` per thread, a few MiB in all, which is well inside any
//! `spike_limit_mib`.
//!
//! ```ignore
//! #[global_allocator]
//! static GLOBAL: sluice::alloc::Counting<mimalloc::MiMalloc> =
//!     sluice::alloc::Counting::new(mimalloc::MiMalloc);
//! ```

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};

/// How far a thread's own count may drift before it is added to the shared total.
pub const FLUSH_BYTES: isize = 256 << 10;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);
static INSTALLED: AtomicBool = AtomicBool::new(false);

thread_local! {
    // `const` and without `Drop`, so it needs no lazy initialisation or destructor
    // registration, either of which could allocate from inside the allocator.
    static DELTA: Cell<isize> = const { Cell::new(0) };
}

/// Wraps an allocator and counts the bytes it has handed out and not had back.
pub struct Counting<A>(A);

impl<A> Counting<A> {
    pub const fn new(inner: A) -> Self {
        Counting(inner)
    }
}

#[inline]
fn account(bytes: isize) {
    // `try_with` fails only while this thread's locals are being torn down; those bytes go
    // straight to the shared total.
    let flushed = DELTA.try_with(|d| {
        let v = d.get() + bytes;
        if v.abs() >= FLUSH_BYTES {
            d.set(0);
            let now = LIVE.fetch_add(v, Ordering::Relaxed) + v;
            if v > 0 {
                PEAK.fetch_max(now, Ordering::Relaxed);
            }
        } else {
            d.set(v);
        }
    });
    if flushed.is_err() {
        LIVE.fetch_add(bytes, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to the wrapped allocator; counting only touches a
// const thread-local `Cell` and an atomic, neither of which allocates.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Counting<A> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { self.0.alloc(layout) };
        if !p.is_null() {
            account(layout.size() as isize);
        }
        p
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { self.0.alloc_zeroed(layout) };
        if !p.is_null() {
            account(layout.size() as isize);
        }
        p
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { self.0.dealloc(ptr, layout) };
        account(-(layout.size() as isize));
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { self.0.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            account(new_size as isize - layout.size() as isize);
        }
        p
    }
}

/// Marks the counting allocator as the process's global allocator. The binary calls it first
/// thing in `main`; until then (and in a library user without the wrapper) [`live_bytes`] is
/// `None` and the memory limiter falls back to RSS.
pub fn mark_installed() {
    INSTALLED.store(true, Ordering::Relaxed);
}

/// Live heap bytes, within `FLUSH_BYTES` per thread, if the counting allocator is installed.
pub fn live_bytes() -> Option<u64> {
    INSTALLED
        .load(Ordering::Relaxed)
        .then(|| LIVE.load(Ordering::Relaxed).max(0) as u64)
}

static RELEASE: OnceLock<fn()> = OnceLock::new();

/// Registers how to make the allocator return freed memory to the OS now (mimalloc:
/// `mi_collect(true)`); the memory limiter calls it while it refuses data.
pub fn set_release(release: fn()) {
    let _ = RELEASE.set(release);
}

/// Asks the allocator to return the memory it keeps cached, if the binary said how.
pub fn release_free_memory() {
    if let Some(release) = RELEASE.get() {
        release();
    }
}

/// The highest [`live_bytes`] seen since the process started.
pub fn peak_bytes() -> Option<u64> {
    INSTALLED
        .load(Ordering::Relaxed)
        .then(|| PEAK.load(Ordering::Relaxed).max(0) as u64)
}

/// Starts [`peak_bytes`] over from the live heap now, to measure the peak of one piece of work.
pub fn reset_peak() {
    PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_allocations_and_frees_beyond_the_flush_threshold() {
        // The test binary does not install the wrapper; drive it directly over the system
        // allocator on one thread so the shared total moves by exactly what this thread did.
        let a = Counting::new(std::alloc::System);
        let layout = Layout::from_size_align(4 << 20, 8).unwrap();
        let before = LIVE.load(Ordering::Relaxed);
        let p = unsafe { a.alloc(layout) };
        assert!(!p.is_null());
        let during = LIVE.load(Ordering::Relaxed);
        assert!(
            (during - before - (4 << 20)).abs() < FLUSH_BYTES,
            "4 MiB counted"
        );
        let q = unsafe { a.realloc(p, layout, 8 << 20) };
        assert!(!q.is_null());
        let grown = LIVE.load(Ordering::Relaxed);
        assert!(
            (grown - before - (8 << 20)).abs() < FLUSH_BYTES,
            "realloc counted"
        );
        unsafe { a.dealloc(q, Layout::from_size_align(8 << 20, 8).unwrap()) };
        let after = LIVE.load(Ordering::Relaxed);
        assert!((after - before).abs() < FLUSH_BYTES, "freed again");
    }
}
