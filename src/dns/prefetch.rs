//! Prefetch of popular names (unbound's `prefetch`): a cached answer asked
//! for again in the last tenth of its TTL is refreshed from upstream in the
//! background, so a name asked often never misses. This module is the
//! hand-off from the UDP readers to the tokio side:
//!
//! ```text
//! UDP reader: cache hit, first in the last tenth (Lookup::HitRefresh)
//!   → answer from the cache as always
//!   → Prefetch::ask: try_send into a bounded queue (full: dropped, counted)
//! tokio: serve() takes refreshes off the queue, at most REFRESHING at once
//!   → the pipeline's refresh (forward, inspect, Cache::insert_prefetched)
//! ```
//!
//! The reader never waits: the hand-off is one non-blocking `try_send`,
//! made once per entry per TTL (the cache marks the entry).
//!
//! Not for: deciding when an entry is due (the cache does, on the hit that
//! finds it) or what a refresh does (`dns::pipeline`'s `refresh`).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use tokio::sync::{Semaphore, mpsc};

/// Refreshes waiting for the tokio side. Only popular names in their last
/// tenth get here, once per TTL each: a household's hot names fit, and a
/// burst past it is dropped (counted) rather than queued.
const QUEUE: usize = 256;

/// Refreshes in flight at once, so a slow upstream cannot pile them up.
const REFRESHING: usize = 16;

/// The queue from the readers to the tokio side, and its counters.
pub struct Prefetch<T> {
    tx: mpsc::Sender<T>,
    rx: Mutex<Option<mpsc::Receiver<T>>>,
    /// Refreshes sent upstream (counted by the refresh).
    pub sent: AtomicU64,
    /// Refreshes dropped because the queue was full.
    pub dropped: AtomicU64,
}

impl<T> Default for Prefetch<T> {
    fn default() -> Prefetch<T> {
        let (tx, rx) = mpsc::channel(QUEUE);
        Prefetch {
            tx,
            rx: Mutex::new(Some(rx)),
            sent: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }
    }
}

impl<T> Prefetch<T> {
    /// Hands a refresh to the tokio side without waiting; a full queue
    /// drops it.
    pub fn ask(&self, refresh: T) {
        if self.tx.try_send(refresh).is_err() {
            self.dropped.fetch_add(1, Relaxed);
        }
    }

    /// The queue's receiving end, for the one task that serves it (None
    /// after the first call).
    pub fn take_queue(&self) -> Option<mpsc::Receiver<T>> {
        self.rx.lock().ok()?.take()
    }
}

/// Runs `refresh` on each refresh the readers ask for, at most
/// [`REFRESHING`] at once, until the queue closes. Spawn it once.
pub async fn serve<T, F, Fut>(mut queue: mpsc::Receiver<T>, refresh: F)
where
    F: Fn(T) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let slots = std::sync::Arc::new(Semaphore::new(REFRESHING));
    while let Some(r) = queue.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let work = refresh(r);
        tokio::spawn(async move {
            work.await;
            drop(slot);
        });
    }
}
