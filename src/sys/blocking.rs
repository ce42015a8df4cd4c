//! Blocking reads (statvfs, sysfs, NVML) off the runtime, one in flight at a time.

/// Runs blocking reads on tokio's blocking pool with at most one in flight: when a read
/// hangs (a dead NFS mount, a stuck I²C sensor) and the caller's timeout gives up on it, the
/// next call waits for that same read instead of starting another thread.
pub struct Blocking<T> {
    inflight: Option<tokio::task::JoinHandle<T>>,
}

impl<T: Send + 'static> Default for Blocking<T> {
    fn default() -> Self {
        Blocking { inflight: None }
    }
}

impl<T: Send + 'static> Blocking<T> {
    /// Runs `f` on the blocking pool, or keeps waiting for the read still in flight.
    pub async fn run(&mut self, f: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
        let handle = self
            .inflight
            .get_or_insert_with(|| tokio::task::spawn_blocking(f));
        let result = handle.await;
        self.inflight = None;
        result.map_err(|e| format!("probe thread failed: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn a_hung_read_keeps_one_thread_not_one_per_tick() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let started = Arc::new(AtomicUsize::new(0));
        let mut slot = Blocking::<u32>::default();
        for _ in 0..5 {
            let s = started.clone();
            let r = tokio::time::timeout(
                std::time::Duration::from_millis(20),
                slot.run(move || {
                    s.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(300));
                    7
                }),
            )
            .await;
            assert!(r.is_err(), "the read is still hanging");
        }
        assert_eq!(started.load(Ordering::SeqCst), 1);
        // When it finally returns, its answer is used and the next call starts afresh.
        assert_eq!(slot.run(|| 8).await, Ok(7));
        assert_eq!(slot.run(|| 8).await, Ok(8));
    }
}
