//! Where the CPU-heavy part of a large request runs.
//!
//! Decoding a request and running its processors are synchronous and happen in the receiver's
//! task, which is cheapest for the usual small request. A large one (megabytes of records)
//! takes long enough there to starve every other task on that runtime thread: accept loops,
//! health checks, metrics scrapes. Such work runs inside `block_in_place`, which first hands
//! the thread's other tasks to another thread.

/// Requests (decoded or wire bytes) from this size on are processed off the async threads.
/// Below it the hand-off (a few microseconds) would cost more than the work.
pub const OFFLOAD_BYTES: usize = 1 << 20;

/// Runs `work` for a request of `bytes`: in place when small, else where it cannot hold up other
/// tasks. Outside a multi-threaded runtime (unit tests) it always runs in place.
pub fn run<R>(bytes: usize, work: impl FnOnce() -> R) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    // The size first: the usual small request never looks up the runtime.
    let offload = bytes >= OFFLOAD_BYTES
        && Handle::try_current().is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread);
    if offload {
        tokio::task::block_in_place(work)
    } else {
        work()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_in_place_outside_a_runtime_and_for_small_requests() {
        assert_eq!(run(usize::MAX, || 7), 7);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(rt.block_on(async { run(usize::MAX, || 8) }), 8);
    }

    #[test]
    fn large_requests_leave_the_runtime_thread_to_other_tasks() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            // One worker thread: while `run` blocks it for 300 ms, the ticker still ticks,
            // because the other tasks were handed to a new thread.
            let ticks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let t = std::sync::Arc::clone(&ticks);
            let ticker = tokio::spawn(async move {
                loop {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    t.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            });
            tokio::task::yield_now().await;
            tokio::spawn(async {
                run(OFFLOAD_BYTES, || {
                    std::thread::sleep(std::time::Duration::from_millis(300))
                })
            })
            .await
            .unwrap();
            assert!(ticks.load(std::sync::atomic::Ordering::Relaxed) > 0);
            ticker.abort();
        });
    }
}
