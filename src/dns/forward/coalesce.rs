//! One upstream exchange for identical queries in flight at the same time.
//!
//! The first caller for a key starts the exchange on its own task, so the
//! exchange (and the health bookkeeping) finishes even if that caller gives
//! up; every caller, the first included, waits for its result on a channel.

use super::{Answer, ForwardError, Inner, Question};
use crate::wire::WireName;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// Queries are identical when these match: lower-cased name, type, class,
/// DO and CD (the last two change what an upstream sends back).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    name: WireName,
    qtype: u16,
    qclass: u16,
    do_bit: bool,
    cd: bool,
}

type Waiters = Vec<oneshot::Sender<Result<Answer, ForwardError>>>;

#[derive(Default)]
pub(crate) struct InFlight {
    waiting: Mutex<HashMap<Key, Waiters>>,
    coalesced: AtomicU64,
}

impl Key {
    pub fn of(q: &Question) -> Key {
        Key {
            name: q.name.clone(),
            qtype: q.qtype,
            qclass: q.qclass,
            do_bit: q.do_bit,
            cd: q.cd,
        }
    }
}

impl InFlight {
    pub fn coalesced(&self) -> u64 {
        self.coalesced.load(Ordering::Relaxed)
    }

    /// A query answered by an exchange another query started.
    pub fn count_coalesced(&self) {
        self.coalesced.fetch_add(1, Ordering::Relaxed);
    }

    /// Joins the exchange for `msg`'s question, starting it if none runs.
    pub async fn join(inner: &Arc<Inner>, msg: &[u8], q: Question) -> Result<Answer, ForwardError> {
        let key = Key::of(&q);
        let (tx, rx) = oneshot::channel();
        // Taken before joining, so a refused caller leaves no waiter behind.
        let mut permit = None;
        let first = {
            let mut map = inner.inflight.waiting.lock().unwrap();
            match map.entry(key.clone()) {
                Entry::Occupied(mut e) => {
                    e.get_mut().push(tx);
                    false
                }
                Entry::Vacant(e) => {
                    permit = Some(
                        inner
                            .capacity
                            .clone()
                            .try_acquire_owned()
                            .map_err(|_| ForwardError::Busy(super::MAX_IN_FLIGHT))?,
                    );
                    e.insert(vec![tx]);
                    true
                }
            }
        };
        if first {
            let flight = Flight {
                inner: inner.clone(),
                key,
                result: None,
            };
            let msg = msg.to_vec();
            tokio::spawn(async move {
                let mut flight = flight;
                let result = flight.inner.resolve(msg, &q).await;
                // Free the slot before anyone hears back, so a caller
                // that asks again at once finds it free.
                drop(permit);
                flight.result = Some(result);
            });
        } else {
            inner.inflight.count_coalesced();
        }
        rx.await.map_err(|_| ForwardError::Abandoned)?
    }
}

/// Hands the result to every waiter when the exchange ends, however it
/// ends: a panicking exchange drops the senders, and waiters see
/// `Abandoned` instead of hanging.
struct Flight {
    inner: Arc<Inner>,
    key: Key,
    result: Option<Result<Answer, ForwardError>>,
}

impl Drop for Flight {
    fn drop(&mut self) {
        let waiters = self
            .inner
            .inflight
            .waiting
            .lock()
            .map(|mut m| m.remove(&self.key))
            .ok()
            .flatten()
            .unwrap_or_default();
        if let Some(result) = self.result.take() {
            for w in waiters {
                let _ = w.send(result.clone());
            }
        }
    }
}
