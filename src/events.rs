//! Query events: one fixed-size record per answered query, handed from the
//! DNS path to the query log through a bounded channel that never blocks.
//!
//! The DNS path calls [`EventSink::emit`]; when the channel is full the event
//! is dropped and counted. The channel's memory follows what is queued (a
//! list of small blocks, not an array of `capacity` events allocated and
//! touched up front), and a queued event is a [`Queued`] of 112 bytes,
//! the name inline up to [`INLINE_NAME`] bytes, not the ~310-byte
//! `QueryEvent` with its 256-byte name buffer: a flood that outruns the
//! writer fills the queue, and 4,096 whole events were 1.3 MiB of it.
//! Not for: storing or aggregating events (querylog).

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub enum Source {
    Cache = 0,
    Upstream = 1,
    Local = 2,
    Blocked = 3,
    /// Served from an expired cache entry because every upstream failed.
    Stale = 4,
    /// Refused (client not allowed) or malformed (FORMERR).
    Refused = 5,
    /// No upstream answered in time (SERVFAIL).
    Failed = 6,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Cache => "cache",
            Source::Upstream => "upstream",
            Source::Local => "local",
            Source::Blocked => "blocked",
            Source::Stale => "stale",
            Source::Refused => "refused",
            Source::Failed => "failed",
        }
    }
    pub fn from_u8(v: u8) -> Option<Source> {
        Some(match v {
            0 => Source::Cache,
            1 => Source::Upstream,
            2 => Source::Local,
            3 => Source::Blocked,
            4 => Source::Stale,
            5 => Source::Refused,
            6 => Source::Failed,
            _ => return None,
        })
    }
}

/// Why the filter decided what it decided, compactly: the filter snapshot
/// that made the decision turns it back into words (`filter::Filter::describe`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reason {
    /// 0 none, 1 list, 2 user deny, 3 user deny regex, 4 special name
    /// (canary, private relay), 5 rebinding, 6 private name kept local.
    pub kind: u8,
    /// List or rule index within its kind.
    pub id: u32,
    /// 0: the query name itself matched; n: the n-th CNAME target matched.
    pub cname_depth: u8,
}

/// One answered query. `N` is how the name is held: by default inline, in
/// a buffer of fixed size; `()` in [`EventFields`], the event without its
/// name (the channel queues that beside a shorter form of the name).
#[derive(Debug, Clone, Copy)]
pub struct QueryEvent<N = heapless::String<256>> {
    /// Unix time in milliseconds.
    pub time_ms: i64,
    pub client: IpAddr,
    /// Lower-case query name without trailing dot (at most 253 bytes).
    pub qname: N,
    pub qtype: u16,
    pub rcode: u8,
    pub source: Source,
    /// Index into the configured upstream list; `u8::MAX` if none.
    pub upstream: u8,
    pub latency_us: u32,
    pub reason: Reason,
}

/// Every field of a [`QueryEvent`] but its name: what the receiver is
/// shown of a queued event, beside the name.
pub type EventFields = QueryEvent<()>;

impl<N> QueryEvent<N> {
    /// The same event with its name held as `qname`.
    pub fn with_name<M>(&self, qname: M) -> QueryEvent<M> {
        QueryEvent {
            time_ms: self.time_ms,
            client: self.client,
            qname,
            qtype: self.qtype,
            rcode: self.rcode,
            source: self.source,
            upstream: self.upstream,
            latency_us: self.latency_us,
            reason: self.reason,
        }
    }

    /// Its fields but the name.
    pub fn fields(&self) -> EventFields {
        self.with_name(())
    }
}

/// Names up to this many bytes are queued inline; longer ones (rare: most
/// names are 10-40 bytes) in a box of their own length.
pub const INLINE_NAME: usize = 62;

/// A queued event's name.
enum QueuedName {
    Inline(u8, [u8; INLINE_NAME]),
    Boxed(Box<str>),
}

/// An event as the channel holds it.
struct Queued {
    fields: EventFields,
    name: QueuedName,
}

impl Queued {
    fn of(e: &QueryEvent) -> Queued {
        let name = e.qname.as_str();
        let name = match name.len() {
            n if n <= INLINE_NAME => {
                let mut bytes = [0; INLINE_NAME];
                bytes[..n].copy_from_slice(name.as_bytes());
                QueuedName::Inline(n as u8, bytes)
            }
            _ => QueuedName::Boxed(name.into()),
        };
        Queued {
            fields: e.fields(),
            name,
        }
    }

    fn name(&self) -> &str {
        match &self.name {
            // Copied from a `str` whole, at a char boundary: valid UTF-8.
            QueuedName::Inline(n, bytes) => {
                std::str::from_utf8(&bytes[..usize::from(*n)]).unwrap_or_default()
            }
            QueuedName::Boxed(s) => s,
        }
    }

    fn event(&self) -> QueryEvent {
        // At most 253 bytes, as it was a `QueryEvent`'s.
        let name = heapless::String::try_from(self.name()).unwrap_or_default();
        self.fields.with_name(name)
    }
}

/// The sending side, shared by every DNS worker.
#[derive(Clone)]
pub struct EventSink {
    tx: Option<Sender<Queued>>,
    /// Events sent and not yet received.
    queued: Arc<AtomicUsize>,
    capacity: usize,
    dropped: Arc<AtomicU64>,
    sent: Arc<AtomicU64>,
}

/// The receiving side (the query-log writer).
pub struct EventReceiver {
    rx: Rx,
    /// Shared with the [`EventSink`]; None for a plain channel's receiver.
    queued: Option<Arc<AtomicUsize>>,
}

enum Rx {
    Sink(Receiver<Queued>),
    Plain(Receiver<QueryEvent>),
}

/// Tests and tools may feed the query log through a plain channel.
impl From<Receiver<QueryEvent>> for EventReceiver {
    fn from(rx: Receiver<QueryEvent>) -> Self {
        EventReceiver {
            rx: Rx::Plain(rx),
            queued: None,
        }
    }
}

impl EventSink {
    /// A channel holding at most `capacity` events.
    pub fn bounded(capacity: usize) -> (EventSink, EventReceiver) {
        let (tx, rx) = channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let sink = EventSink {
            tx: Some(tx),
            queued: queued.clone(),
            capacity,
            dropped: Arc::default(),
            sent: Arc::default(),
        };
        (
            sink,
            EventReceiver {
                rx: Rx::Sink(rx),
                queued: Some(queued),
            },
        )
    }

    /// A sink that discards everything (query log disabled).
    pub fn disabled() -> EventSink {
        EventSink {
            tx: None,
            queued: Arc::default(),
            capacity: 0,
            dropped: Arc::default(),
            sent: Arc::default(),
        }
    }

    /// Never blocks: a full channel drops the event and counts it.
    pub fn emit(&self, event: QueryEvent) {
        let Some(tx) = &self.tx else { return };
        if self.queued.fetch_add(1, Ordering::Relaxed) >= self.capacity {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        match tx.send(Queued::of(&event)) {
            Ok(()) => {
                self.sent.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                self.queued.fetch_sub(1, Ordering::Relaxed);
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
}

impl EventReceiver {
    /// The next queued event, without waiting.
    pub fn try_recv(&self) -> Result<QueryEvent, TryRecvError> {
        let e = match &self.rx {
            Rx::Sink(rx) => rx.try_recv()?.event(),
            Rx::Plain(rx) => rx.try_recv()?,
        };
        if let Some(q) = &self.queued {
            q.fetch_sub(1, Ordering::Relaxed);
        }
        Ok(e)
    }

    /// Shows up to `max` queued events to `f` (each one's fields and
    /// name) without waiting, so the receiver copies what it keeps of
    /// each instead of moving whole events about; returns how many (0:
    /// none queued), or `Disconnected` once every sink is gone and
    /// nothing is left. The shared count is updated once per call, not
    /// once per event (the DNS workers update it on every send).
    pub fn try_recv_with(
        &self,
        max: usize,
        mut f: impl FnMut(&EventFields, &str),
    ) -> Result<usize, TryRecvError> {
        let (n, end) = match &self.rx {
            Rx::Sink(rx) => show(rx, max, |q| f(&q.fields, q.name())),
            Rx::Plain(rx) => show(rx, max, |e| f(&e.fields(), &e.qname)),
        };
        if n > 0
            && let Some(q) = &self.queued
        {
            q.fetch_sub(n, Ordering::Relaxed);
        }
        match end {
            TryRecvError::Disconnected if n == 0 => Err(TryRecvError::Disconnected),
            _ => Ok(n),
        }
    }

    /// Every event queued now.
    pub fn try_iter(&self) -> impl Iterator<Item = QueryEvent> + '_ {
        std::iter::from_fn(|| self.try_recv().ok())
    }
}

/// Shows up to `max` messages of `rx` to `f` where they were received
/// (moving one out would copy it); how many, and why it stopped.
fn show<T>(rx: &Receiver<T>, max: usize, mut f: impl FnMut(&T)) -> (usize, TryRecvError) {
    let mut n = 0;
    while n < max {
        match &rx.try_recv() {
            Ok(m) => {
                f(m);
                n += 1;
            }
            Err(e) => return (n, *e),
        }
    }
    (n, TryRecvError::Empty)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::now_ms;

    fn ev() -> QueryEvent {
        QueryEvent {
            time_ms: now_ms(),
            client: "127.0.0.1".parse().unwrap(),
            qname: heapless::String::try_from("example.com").unwrap(),
            qtype: 1,
            rcode: 0,
            source: Source::Cache,
            upstream: u8::MAX,
            latency_us: 10,
            reason: Reason::default(),
        }
    }

    #[test]
    fn full_channel_drops_and_counts_without_blocking() {
        let (sink, rx) = EventSink::bounded(2);
        for _ in 0..5 {
            sink.emit(ev());
        }
        assert_eq!(sink.sent(), 2);
        assert_eq!(sink.dropped(), 3);
        assert_eq!(rx.try_iter().count(), 2);
        // Room again once the receiver has taken them.
        sink.emit(ev());
        assert_eq!(sink.sent(), 3);
        assert_eq!(rx.try_recv().unwrap().qname, "example.com");
        assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
        drop(sink);
        assert!(matches!(rx.try_recv(), Err(TryRecvError::Disconnected)));
    }

    #[test]
    fn events_shown_in_place_are_taken_and_make_room() {
        let (sink, rx) = EventSink::bounded(3);
        for _ in 0..3 {
            sink.emit(ev());
        }
        let mut names = Vec::new();
        let took = rx.try_recv_with(2, |_, name| names.push(name.to_string()));
        assert_eq!((took, names.len()), (Ok(2), 2));
        // Two taken: room for two more, not three.
        for _ in 0..3 {
            sink.emit(ev());
        }
        assert_eq!(sink.dropped(), 1);
        assert_eq!(rx.try_recv_with(10, |_, _| {}), Ok(3));
        assert_eq!(rx.try_recv_with(10, |_, _| {}), Ok(0));
        drop(sink);
        assert_eq!(
            rx.try_recv_with(10, |_, _| {}),
            Err(TryRecvError::Disconnected)
        );
    }

    #[test]
    fn names_short_and_long_arrive_whole_with_their_fields() {
        let long = format!("{}.example", "c".repeat(INLINE_NAME));
        let names = [
            String::new(),
            "a.example".to_string(),
            "b".repeat(INLINE_NAME),
            long,
            "d".repeat(253),
        ];
        let (sink, rx) = EventSink::bounded(16);
        for _ in 0..2 {
            for (i, name) in names.iter().enumerate() {
                let mut e = ev();
                e.qname = heapless::String::try_from(name.as_str()).unwrap();
                e.latency_us = i as u32;
                e.client = format!("10.0.0.{i}").parse().unwrap();
                sink.emit(e);
            }
        }
        let mut got = Vec::new();
        let took = rx.try_recv_with(names.len(), |f, name| {
            got.push((f.latency_us, f.client.to_string(), name.to_string()));
        });
        assert_eq!(took, Ok(names.len()));
        let want: Vec<_> = (names.iter().enumerate())
            .map(|(i, n)| (i as u32, format!("10.0.0.{i}"), n.clone()))
            .collect();
        assert_eq!(got, want);
        // The second copy of each, taken one at a time as whole events.
        for (i, name) in names.iter().enumerate() {
            let e = rx.try_recv().unwrap();
            assert_eq!((e.latency_us, e.qname.as_str()), (i as u32, name.as_str()));
        }
        assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
    }

    #[test]
    fn a_queued_event_is_a_third_of_an_event() {
        assert!(std::mem::size_of::<Queued>() <= 112);
        assert!(std::mem::size_of::<QueryEvent>() >= 3 * 100);
    }
}
