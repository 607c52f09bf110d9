//! The writer's own form of received query events: the fixed fields in a
//! 48-byte [`Entry`] and the name's bytes beside it, instead of a
//! ~300-byte `QueryEvent` whose name buffer is 256 bytes whatever the
//! name. An event is turned into it once, straight out of the channel
//! (privacy settings applied on the way); the writer's inbox ([`Batch`])
//! and the RAM ring behind the live view ([`Ring`]) hold it, so keeping an
//! event copies its name's length, not a whole event, and the ring holds
//! the latest queries in a fraction of the RAM.
//!
//! Not for: storing rows (`writer.rs`, `block.rs`).

use super::{LogRow, RuleRef};
use crate::events::{EventFields, Reason, Source};
use std::collections::VecDeque;
use std::net::IpAddr;

/// A received event but its name.
#[derive(Debug, Clone, Copy)]
pub(super) struct Entry {
    pub time_ms: i64,
    pub client: IpAddr,
    pub qtype: u16,
    pub rcode: u8,
    pub source: Source,
    pub upstream: u8,
    pub latency_us: u32,
    pub reason: Reason,
    /// The name's length in bytes (a `QueryEvent` holds up to 256).
    pub name_len: u16,
}

impl Entry {
    fn row(&self, name: String) -> LogRow {
        LogRow {
            time_ms: self.time_ms,
            client: self.client.to_string(),
            domain: name,
            qtype: self.qtype,
            rcode: self.rcode,
            status: self.source,
            upstream: (self.upstream != u8::MAX).then_some(self.upstream),
            latency_us: self.latency_us,
            reason: (self.reason.kind != 0).then_some(RuleRef {
                kind: self.reason.kind,
                id: self.reason.id,
                cname_depth: self.reason.cname_depth,
            }),
        }
    }
}

/// Events received and not yet stored, in arrival order: the entries, and
/// their names one after the other.
#[derive(Default)]
pub(super) struct Batch {
    entries: Vec<Entry>,
    names: String,
}

impl Batch {
    pub(super) fn with_capacity(n: usize) -> Batch {
        Batch {
            entries: Vec::with_capacity(n),
            // Names are ~20-30 bytes; a longer group grows it once.
            names: String::with_capacity(n * 32),
        }
    }

    /// Keeps `e` as stored: with `anonymize`, the client's host part
    /// zeroed; with `hide`, the name replaced (`super::HIDDEN_DOMAIN`).
    pub(super) fn push(&mut self, e: &EventFields, name: &str, anonymize: bool, hide: bool) {
        let name = if hide { super::HIDDEN_DOMAIN } else { name };
        self.names.push_str(name);
        self.entries.push(Entry {
            time_ms: e.time_ms,
            client: super::stored_client(e.client, anonymize),
            qtype: e.qtype,
            rcode: e.rcode,
            source: e.source,
            upstream: e.upstream,
            latency_us: e.latency_us,
            reason: e.reason,
            name_len: name.len() as u16,
        });
    }

    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(super) fn clear(&mut self) {
        self.entries.clear();
        self.names.clear();
    }

    /// Each entry with its name, in arrival order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&Entry, &str)> {
        let mut at = 0;
        self.entries.iter().map(move |e| {
            let end = at + usize::from(e.name_len);
            let name = &self.names[at..end];
            at = end;
            (e, name)
        })
    }

    pub(super) fn bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Entry>() + self.names.capacity()
    }
}

/// The latest events, in RAM, for the live view.
pub(super) struct Ring {
    /// The most entries kept (`querylog.ring_size`).
    pub(super) cap: usize,
    entries: VecDeque<Entry>,
    /// The entries' names, oldest first, back to back.
    names: VecDeque<u8>,
}

impl Ring {
    pub(super) fn new(cap: usize) -> Ring {
        Ring {
            cap,
            entries: VecDeque::with_capacity(cap.min(100_000)),
            names: VecDeque::new(),
        }
    }

    /// Adds `batch` after the latest entries, dropping the oldest beyond
    /// `cap` (and entries of the batch itself that would be dropped at
    /// once are not copied at all).
    pub(super) fn extend(&mut self, batch: &Batch) {
        if self.cap == 0 {
            return;
        }
        let skip = batch.len().saturating_sub(self.cap);
        let over = (self.entries.len() + batch.len() - skip).saturating_sub(self.cap);
        let dropped: usize = self
            .entries
            .drain(..over)
            .map(|e| usize::from(e.name_len))
            .sum();
        self.names.drain(..dropped);
        let skipped: usize = batch.entries[..skip]
            .iter()
            .map(|e| usize::from(e.name_len))
            .sum();
        let names = &batch.names.as_bytes()[skipped..];
        // Grown by doubling, but never past the most `cap` names can take,
        // so the ring never holds more than a ring of whole events would.
        let need = self.names.len() + names.len();
        if need > self.names.capacity() {
            let most = self.cap.saturating_mul(256).max(need);
            let want = (2 * self.names.capacity()).clamp(need, most);
            self.names.reserve_exact(want - self.names.len());
        }
        self.names.extend(names);
        self.entries.extend(&batch.entries[skip..]);
    }

    /// The latest `n` entries as log rows, newest first.
    pub(super) fn recent(&self, n: usize) -> Vec<LogRow> {
        let mut end = self.names.len();
        self.entries
            .iter()
            .rev()
            .take(n)
            .map(|e| {
                let start = end - usize::from(e.name_len);
                let name: Vec<u8> = self.names.range(start..end).copied().collect();
                end = start;
                e.row(String::from_utf8_lossy(&name).into_owned())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::QueryEvent;

    fn event(i: usize, name: &str) -> QueryEvent {
        QueryEvent {
            time_ms: i as i64,
            client: format!("10.0.0.{}", i % 200).parse().unwrap(),
            qname: heapless::String::try_from(name).unwrap(),
            qtype: 28,
            rcode: 3,
            source: Source::Blocked,
            upstream: if i.is_multiple_of(2) { u8::MAX } else { 1 },
            latency_us: i as u32,
            reason: Reason {
                kind: (i % 3) as u8,
                id: i as u32,
                cname_depth: 1,
            },
        }
    }

    /// What the ring of whole events showed: the latest `cap`, newest first.
    fn expected(events: &[QueryEvent], cap: usize, n: usize) -> Vec<LogRow> {
        let mut b = Batch::default();
        events
            .iter()
            .rev()
            .take(cap.min(n))
            .map(|e| {
                b.clear();
                b.push(&e.fields(), &e.qname, false, false);
                let (entry, name) = b.iter().next().unwrap();
                entry.row(name.to_owned())
            })
            .collect()
    }

    #[test]
    fn the_ring_keeps_the_latest_events_whatever_the_batch_sizes() {
        let names = [
            "a.example",
            "",
            "much.longer.name.of.a.tracker.example",
            "x",
        ];
        let long = "l".repeat(253);
        let events: Vec<QueryEvent> = (0..501)
            .map(|i| event(i, if i % 37 == 0 { &long } else { names[i % 4] }))
            .collect();
        let mut ring = Ring::new(50);
        let mut batch = Batch::default();
        let mut at = 0;
        // Batches smaller and larger than the ring, and one of one.
        for size in [1, 7, 49, 50, 51, 130, 3, 200, 9] {
            batch.clear();
            for e in &events[at..at + size] {
                batch.push(&e.fields(), &e.qname, false, false);
            }
            ring.extend(&batch);
            at += size;
            assert_eq!(
                ring.recent(usize::MAX),
                expected(&events[..at], 50, usize::MAX)
            );
            assert_eq!(ring.recent(3), expected(&events[..at], 50, 3));
            assert!(ring.names.capacity() <= 50 * 256);
        }
        ring.cap = 10;
        batch.clear();
        batch.push(&events[at].fields(), &events[at].qname, false, false);
        ring.extend(&batch);
        assert_eq!(ring.recent(100), expected(&events[..=at], 10, 100));
    }

    #[test]
    fn an_entry_is_a_sixth_of_an_event() {
        assert!(std::mem::size_of::<Entry>() <= 48);
        assert!(std::mem::size_of::<QueryEvent>() >= 6 * 48);
    }

    #[test]
    fn privacy_applies_before_an_event_is_kept() {
        let mut b = Batch::default();
        let e = event(7, "secret.example");
        b.push(&e.fields(), &e.qname, true, true);
        let (e, name) = b.iter().next().unwrap();
        assert_eq!(name, super::super::HIDDEN_DOMAIN);
        assert_eq!(e.client.to_string(), "10.0.0.0");
    }
}
