//! The writer thread: the only connection that writes. It turns query
//! events into rows in batched transactions, keeps the roll-ups and the RAM
//! ring, deletes old rows in small steps, and keeps going when the disk
//! fills up or the file turns out to be damaged.
//!
//! Its RAM is fixed whatever the traffic: names and clients are looked up
//! through small caches in front of the tables' unique indexes, an open
//! hour's top domains are a space-saving summary (`sketch::TopCounter`),
//! and rows wait in an open block of at most `BLOCK_ROWS`, written into the
//! open transaction when full, instead of in a queue of events.
//!
//! Rows are stored in blocks (`block.rs`) that never overlap: a row whose
//! key lands among stored ones is merged into place (`merge_rows`). Rows an
//! older build left in the version-1 `queries` table are moved into blocks
//! at start (`migrate_step`).
//!
//! Not for: answering questions (`stats.rs`).

use super::block::{self, Row};
use super::live::{self, Batch};
use super::schema::{self, OpenError};
use super::sketch::{IdMap, Sketch, TopCounter};
use super::{Command, RetentionReport, RuleRef, Shared, lock, stats};
use crate::config::QueryLogConfig;
use crate::events::{EventReceiver, QueryEvent, Source, now_ms};
use rusqlite::{Connection, ErrorCode, OptionalExtension, params};
use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};
use std::time::{Duration, Instant};

/// A transaction is committed once it holds this many rows (or the flush
/// interval has passed): the per-commit work (roll-ups, WAL frames of the
/// pages every batch touches) is shared by more rows.
pub const BATCH_ROWS: usize = 16_384;
/// Events stored together: received events wait in RAM for at most this
/// many (or until the channel is empty).
const GROUP: usize = 128;
/// Rows per stored block, at most; a block also ends at an hour boundary
/// and at each commit, so at a household's rate a block holds one flush
/// interval's queries. 1 024 rows (8 to 12 KiB) makes SQLite's work per
/// query (one blob insert, one side row per client of the block) about a
/// thousandth of a row insert, while a reader that wants one row decodes
/// at most 1 024 (a few microseconds) and retention, which deletes whole
/// blocks, keeps its steps small.
pub const BLOCK_ROWS: usize = 1024;
/// Rows an older build left in `queries` moved into blocks per
/// transaction (one short step, like a retention step).
const MIGRATE_ROWS: i64 = 4096;
/// Rows deleted per retention step at first; the step size then adapts so
/// a step takes about `RETENTION_STEP_TARGET` (an insert waits at most one
/// step).
pub const RETENTION_STEP_ROWS: i64 = 1000;
const RETENTION_STEP_TARGET: Duration = Duration::from_millis(10);
const RETENTION_STEP_MIN: i64 = 50;
const RETENTION_STEP_MAX: i64 = 4000;
/// Pages returned to the file system per incremental-vacuum step.
const VACUUM_STEP_PAGES: i64 = 32;
/// Unused names forgotten per retention step.
const NAMES_STEP: i64 = 500;
/// How often retention checks age and size on its own.
const RETENTION_EVERY: Duration = Duration::from_secs(60);
/// Clients remembered in RAM; more distinct clients than this start the
/// map over (a household has tens).
const CLIENT_CACHE: usize = 1024;
/// Distinct domains an hour's top-domain summary holds, all queries and
/// blocked ones: enough that the top `stats::TOP_PER_HOUR` are exact for
/// any domain queried more than 1/`TOP_CAP` of the hour's queries.
const TOP_CAP: [usize; 2] = [1024, 512];
/// A transaction touching more hours than this is committed early, so
/// events with scattered times cannot grow the per-hour state.
const MAX_HOURS: usize = 4;
/// `domains.last_seen` is written this many days ahead of the day a name
/// is used, so a name busy every day costs one UPDATE a week, not one a
/// day. The column stays an upper bound of the last day a row used the
/// name, which is all retention (of any version) needs to be safe.
const LAST_SEEN_AHEAD_DAYS: i64 = 7;
/// How far behind the newest key an event's time may be and still get the
/// next key (see `Writer::next_key`).
const KEY_SLACK_MS: i64 = 600_000;
/// WAL pages (4 KiB) that make the writer checkpoint after a batch.
const CHECKPOINT_FRAMES: i64 = 4000;
/// How long the writer sleeps when the event channel is empty.
const POLL: Duration = Duration::from_millis(10);
/// The longest the loop sleeps before looking at commands again.
const TICK: Duration = Duration::from_millis(20);

pub(super) struct Writer {
    cfg: QueryLogConfig,
    shared: Arc<Shared>,
    conn: Option<Connection>,
    /// Rows in the open transaction (0: none open).
    tx_rows: usize,
    /// Events received, stored together (one statement lookup, one ring
    /// lock per group).
    inbox: Batch,
    /// Per event of the group being stored: its name's hash and what the
    /// name cache held for it.
    looked: Vec<Looked>,
    roll: Rollup,
    names: NameCache,
    clients: IdMap<ClientKey, i64>,
    /// The last client looked up, and its id (cleared with `clients`).
    last_client: Option<(ClientKey, i64)>,
    last_key: i64,
    newest_hour: i64,
    /// The hours the open transaction counts into, with their summaries.
    hours: BTreeMap<i64, HourState>,
    /// Hours a previous run left holding more than their top domains.
    untrimmed: Vec<i64>,
    last_flush: Instant,
    /// Set while the disk is full: retry at this instant.
    paused_until: Option<Instant>,
    page_limit: Option<u64>,
    retention: Option<Pass>,
    last_retention: Instant,
    /// Rows the next retention step deletes (adapts to the step's time).
    step_rows: i64,
    /// Frames in the WAL after the last commit (set by SQLite's WAL hook).
    wal_frames: Arc<AtomicI64>,
    /// The newest day whose day roll-ups are written.
    closed_day: Option<i64>,
    /// Rows of the open transaction not yet written as a block.
    open: OpenBlock,
    blocks: BlockWriter,
    /// The table `queries` still holds rows (an older build's).
    legacy_left: bool,
    /// Counts of the current minute and hour, added to `roll` when the
    /// time moves on: most rows fall in the same minute as the one before.
    acc: Acc,
    /// The keys of the current minute, so a row's minute, hour and day
    /// take two comparisons instead of three divisions.
    minute: MinuteKeys,
}

#[derive(Clone, Copy)]
struct MinuteKeys {
    /// Keys `lo..hi` are in this minute.
    lo: i64,
    hi: i64,
    /// Unix minute, hour and day.
    minute: i64,
    hour: i64,
    day: i64,
}

impl MinuteKeys {
    const NONE: MinuteKeys = MinuteKeys {
        lo: 0,
        hi: 0,
        minute: 0,
        hour: 0,
        day: 0,
    };

    fn of(key: i64) -> MinuteKeys {
        let minute = super::ms_of(key).div_euclid(60_000);
        MinuteKeys {
            lo: super::key_of(minute * 60_000),
            hi: super::key_of((minute + 1) * 60_000),
            minute,
            hour: minute.div_euclid(60),
            day: minute.div_euclid(1440),
        }
    }
}

/// Rows staged but not yet in a block.
#[derive(Default)]
struct OpenBlock {
    /// Keys above every stored key, increasing, all of one hour.
    rows: Vec<Row>,
    hour: i64,
    /// Rows whose key lands among stored ones (the clock was set back):
    /// merged into place when the block is written.
    past: Vec<Row>,
}

impl OpenBlock {
    fn len(&self) -> usize {
        self.rows.len() + self.past.len()
    }
    fn clear(&mut self) {
        self.rows.clear();
        self.past.clear();
    }
}

/// Per-row counters for one minute and its hour, in arrays instead of
/// hash maps.
struct Acc {
    minute: i64,
    hour: i64,
    by_minute: [i64; 8],
    by_hour: [i64; 8],
    /// (queries, blocked) by client id, for clients with small ids.
    clients: Vec<(i64, i64)>,
    /// By query type, for types below 256.
    qtypes: [i64; 256],
    /// The slots in use, so folding visits only those.
    touched_clients: Vec<i64>,
    touched_qtypes: Vec<u16>,
}

/// Client ids below this are counted in `Acc::clients`, others in the map.
const ACC_CLIENTS: usize = 4096;

impl Acc {
    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        roll: &mut Rollup,
        minute: i64,
        hour: i64,
        status: usize,
        latency_us: u32,
        client: i64,
        qtype: u16,
        blocked: bool,
    ) {
        if minute != self.minute {
            self.fold_minute(roll);
            self.minute = minute;
        }
        if hour != self.hour {
            self.fold_hour(roll);
            self.hour = hour;
        }
        for c in [&mut self.by_minute, &mut self.by_hour] {
            c[status] += 1;
            c[7] += i64::from(latency_us);
        }
        match usize::try_from(client).ok().filter(|&c| c < ACC_CLIENTS) {
            Some(i) => {
                if self.clients.len() <= i {
                    self.clients.resize(i + 1, (0, 0));
                }
                let slot = &mut self.clients[i];
                if slot.0 == 0 {
                    self.touched_clients.push(client);
                }
                slot.0 += 1;
                slot.1 += i64::from(blocked);
            }
            None => {
                let c = roll.clients.entry((hour, client)).or_default();
                c.0 += 1;
                c.1 += i64::from(blocked);
            }
        }
        match self.qtypes.get_mut(usize::from(qtype)) {
            Some(n) => {
                if *n == 0 {
                    self.touched_qtypes.push(qtype);
                }
                *n += 1;
            }
            None => *roll.qtypes.entry((hour, qtype)).or_default() += 1,
        }
    }

    fn fold_minute(&mut self, roll: &mut Rollup) {
        if self.by_minute[..7].iter().any(|&n| n != 0) {
            let m = roll.minutes.entry(self.minute).or_default();
            for (a, b) in m.iter_mut().zip(&self.by_minute) {
                *a += b;
            }
        }
        self.by_minute = [0; 8];
    }

    fn fold_hour(&mut self, roll: &mut Rollup) {
        let hour = self.hour;
        if self.by_hour[..7].iter().any(|&n| n != 0) {
            let h = roll.hours.entry(hour).or_default();
            for (a, b) in h.iter_mut().zip(&self.by_hour) {
                *a += b;
            }
        }
        self.by_hour = [0; 8];
        for client in self.touched_clients.drain(..) {
            let slot = &mut self.clients[client as usize];
            let c = roll.clients.entry((hour, client)).or_default();
            c.0 += slot.0;
            c.1 += slot.1;
            *slot = (0, 0);
        }
        for qtype in self.touched_qtypes.drain(..) {
            let n = &mut self.qtypes[usize::from(qtype)];
            *roll.qtypes.entry((hour, qtype)).or_default() += *n;
            *n = 0;
        }
    }

    /// Everything counted so far into `roll` (before a commit).
    fn fold(&mut self, roll: &mut Rollup) {
        self.fold_minute(roll);
        self.fold_hour(roll);
        self.minute = i64::MIN;
        self.hour = i64::MIN;
    }

    /// Forgets the counts (the transaction was rolled back).
    fn reset(&mut self) {
        self.by_minute = [0; 8];
        self.by_hour = [0; 8];
        for client in self.touched_clients.drain(..) {
            self.clients[client as usize] = (0, 0);
        }
        for qtype in self.touched_qtypes.drain(..) {
            self.qtypes[usize::from(qtype)] = 0;
        }
        self.minute = i64::MIN;
        self.hour = i64::MIN;
    }

    fn bytes(&self) -> usize {
        self.clients.capacity() * 16
            + std::mem::size_of_val(&self.qtypes)
            + self.touched_clients.capacity() * 8
            + self.touched_qtypes.capacity() * 2
    }
}

impl Default for Acc {
    fn default() -> Acc {
        Acc {
            minute: i64::MIN,
            hour: i64::MIN,
            by_minute: [0; 8],
            by_hour: [0; 8],
            clients: Vec::new(),
            qtypes: [0; 256],
            touched_clients: Vec::new(),
            touched_qtypes: Vec::new(),
        }
    }
}

/// What the writer keeps for an hour it is counting into: the distinct
/// domains sketch and the top domains (all, blocked), with what of them
/// the database already holds.
struct HourState {
    sketch: Sketch,
    sketch_dirty: bool,
    top: [TopCounter; 2],
    written: [IdMap<i64, u64>; 2],
}

/// What the name cache held for an event's name when its group was
/// looked up (`Writer::store_on`).
struct Looked {
    /// The name's hash.
    tag: u64,
    /// Its id and `last_seen`.
    found: Option<(i64, i64)>,
    /// The slot that held it (valid when `found` is).
    slot: usize,
}

/// A client address as the client cache's key: plain numbers, hashed
/// without first copying the address enum about (a stall on every row).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct ClientKey {
    bits: u128,
    v4: bool,
}

impl ClientKey {
    fn of(ip: IpAddr) -> ClientKey {
        match ip {
            IpAddr::V4(a) => ClientKey {
                bits: a.to_bits().into(),
                v4: true,
            },
            IpAddr::V6(a) => ClientKey {
                bits: a.to_bits(),
                v4: false,
            },
        }
    }
}

/// Bytes per name-cache slot (its tag, kept apart, included); names
/// longer than fit are not cached.
const NAME_SLOT: usize = 80;
const NAME_MAX: usize = NAME_SLOT - 24;
/// Slots in the name cache (4-way sets): 8192 x 80 bytes = 640 KiB.
const NAME_SETS: usize = 2048;
const NAME_WAYS: usize = 4;

#[derive(Clone, Copy)]
struct NameSlot {
    id: i64,
    /// The `last_seen` the database holds for the name.
    seen: i32,
    /// Where the name's id was last counted in its hour's top domains
    /// (`TopCounter::add_at`; checked there, so it may be stale).
    top_at: u16,
    len: u8,
    /// Recently used (second-chance replacement within the set).
    used: bool,
    name: [u8; NAME_MAX],
}

const EMPTY_SLOT: NameSlot = NameSlot {
    id: 0,
    seen: 0,
    top_at: u16::MAX,
    len: 0,
    used: false,
    name: [0; NAME_MAX],
};

/// A set's tags (the names' hashes, 0: slot unused) in one cache line: a
/// look-up compares them before it touches a slot, so a hit reads two
/// lines and a miss one, instead of a line per way.
#[derive(Clone, Copy)]
#[repr(align(32))]
struct SetTags([u64; NAME_WAYS]);

/// Domain name -> (id, last_seen), a fixed-size set-associative cache in
/// front of the `domains` table's unique index: the hot names of a
/// household stay in it, a flood of distinct names only churns it.
pub(super) struct NameCache {
    tags: Box<[SetTags]>,
    slots: Box<[NameSlot]>,
}

/// Asks the CPU to start loading `p`'s cache line and go on: a group's
/// look-ups issue their loads first, so their misses overlap instead of
/// each stalling its own row. A hint only: it never faults.
#[inline(always)]
pub(super) fn prefetch<T>(p: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 only reads, and `p` is a valid reference.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>((p as *const T).cast());
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: PRFM only reads, and `p` is a valid reference.
    unsafe {
        std::arch::asm!("prfm pldl1keep, [{0}]", in(reg) p as *const T, options(nostack, readonly, preserves_flags));
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let _ = p;
}

/// The name's bytes as little-endian words, the last one zero-padded.
/// Words are read whole (the tail as the last eight bytes, shifted),
/// never copied byte by byte: this runs once per logged query.
fn name_hash(name: &[u8]) -> u64 {
    let round = |h: u64, w: u64| {
        let h = (h ^ w).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        h ^ (h >> 29)
    };
    let mut h = 0xCBF2_9CE4_8422_2325u64 ^ name.len() as u64;
    let mut words = name.chunks_exact(8);
    for w in &mut words {
        h = round(h, u64::from_le_bytes(w.try_into().expect("8 bytes")));
    }
    let tail = words.remainder().len();
    if tail > 0 {
        let w = match name.len().checked_sub(8) {
            Some(at) => {
                let last: [u8; 8] = name[at..].try_into().expect("8 bytes");
                u64::from_le_bytes(last) >> (8 * (8 - tail))
            }
            None => name
                .iter()
                .rev()
                .fold(0u64, |w, &b| (w << 8) | u64::from(b)),
        };
        h = round(h, w);
    }
    h | 1
}

impl NameCache {
    pub(super) fn new() -> NameCache {
        NameCache {
            tags: vec![SetTags([0; NAME_WAYS]); NAME_SETS].into_boxed_slice(),
            slots: vec![EMPTY_SLOT; NAME_SETS * NAME_WAYS].into_boxed_slice(),
        }
    }

    /// RAM the cache holds: fixed.
    pub(super) fn bytes(&self) -> usize {
        std::mem::size_of_val(&*self.tags) + std::mem::size_of_val(&*self.slots)
    }

    /// The set `tag` falls in: its tags and its slots.
    fn set(&mut self, tag: u64) -> (&mut [u64; NAME_WAYS], &mut [NameSlot]) {
        let set = (tag >> 32) as usize % NAME_SETS;
        let i = set * NAME_WAYS;
        (&mut self.tags[set].0, &mut self.slots[i..i + NAME_WAYS])
    }

    /// The way of the set holding `b`.
    fn way(tags: &[u64; NAME_WAYS], slots: &[NameSlot], b: &[u8], tag: u64) -> Option<usize> {
        (0..NAME_WAYS).find(|&w| tags[w] == tag && &slots[w].name[..usize::from(slots[w].len)] == b)
    }

    #[cfg(test)]
    fn get(&mut self, name: &str) -> Option<(i64, i64)> {
        let b = name.as_bytes();
        self.find(b, name_hash(b))
    }

    /// Starts loading the lines a look-up of `tag` reads: its set's tags
    /// and, if a tag matches, that slot.
    fn prefetch_tags(&self, tag: u64) {
        prefetch(&self.tags[(tag >> 32) as usize % NAME_SETS]);
    }

    fn prefetch_slot(&self, tag: u64) {
        let set = (tag >> 32) as usize % NAME_SETS;
        if let Some(w) = self.tags[set].0.iter().position(|&t| t == tag) {
            let slot = &self.slots[set * NAME_WAYS + w];
            prefetch(slot);
            // A slot spans two lines; the name ends in the second.
            prefetch(slot.name.last().expect("NAME_MAX > 0"));
        }
    }

    /// `get` with the name's hash already computed.
    fn find(&mut self, b: &[u8], tag: u64) -> Option<(i64, i64)> {
        self.find_slot(b, tag).map(|(found, _)| found)
    }

    /// `find`, and the slot holding the name (for `top_at`).
    fn find_slot(&mut self, b: &[u8], tag: u64) -> Option<((i64, i64), usize)> {
        let (tags, slots) = self.set(tag);
        let way = Self::way(tags, slots, b, tag)?;
        let s = &mut slots[way];
        if !s.used {
            s.used = true;
        }
        let slot = (tag >> 32) as usize % NAME_SETS * NAME_WAYS + way;
        Some(((s.id, i64::from(s.seen)), slot))
    }

    fn top_at(&self, slot: usize) -> usize {
        usize::from(self.slots[slot].top_at)
    }

    /// Notes where the name in `slot` was counted. The slot may hold
    /// another name by now: `TopCounter::add_at` checks what it is given.
    fn set_top_at(&mut self, slot: usize, at: usize) {
        self.slots[slot].top_at = u16::try_from(at).unwrap_or(u16::MAX);
    }

    #[cfg(test)]
    fn insert(&mut self, name: &str, id: i64, seen: i64) {
        let b = name.as_bytes();
        self.insert_hashed(b, name_hash(b), id, seen);
    }

    fn insert_hashed(&mut self, b: &[u8], tag: u64, id: i64, seen: i64) {
        if b.len() > NAME_MAX {
            return;
        }
        let (tags, set) = self.set(tag);
        let way = match Self::way(tags, set, b, tag).or_else(|| tags.iter().position(|&t| t == 0)) {
            Some(w) => w,
            None => {
                // Second chance: the first slot not used since the last sweep.
                let mut w = None;
                for (i, s) in set.iter_mut().enumerate() {
                    if !s.used {
                        w = Some(i);
                        break;
                    }
                    s.used = false;
                }
                w.unwrap_or(0)
            }
        };
        tags[way] = tag;
        let slot = &mut set[way];
        slot.id = id;
        slot.seen = seen.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
        slot.top_at = u16::MAX;
        slot.len = b.len() as u8;
        slot.used = false;
        slot.name[..b.len()].copy_from_slice(b);
    }

    #[cfg(test)]
    fn remove(&mut self, name: &str) {
        let b = name.as_bytes();
        self.remove_hashed(b, name_hash(b));
    }

    fn remove_hashed(&mut self, b: &[u8], tag: u64) {
        let (tags, set) = self.set(tag);
        if let Some(w) = Self::way(tags, set, b, tag) {
            tags[w] = 0;
        }
    }

    fn clear(&mut self) {
        self.tags.fill(SetTags([0; NAME_WAYS]));
        self.slots.fill(EMPTY_SLOT);
    }
}

enum Step {
    Delete,
    Vacuum,
}

/// A retention pass in progress.
struct Pass {
    started: Instant,
    report: RetentionReport,
    waiting: Vec<SyncSender<RetentionReport>>,
}

/// CPU time of the calling thread, in ms: step costs that a busy machine's
/// scheduling does not inflate.
fn thread_cpu_ms() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 * 1000.0 + ts.tv_nsec as f64 / 1e6
}

fn is_code(e: &rusqlite::Error, code: ErrorCode) -> bool {
    e.sqlite_error_code() == Some(code)
}

/// `path` with `suffix` appended to its file name (`-wal`, `-shm`).
pub(super) fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Moves a damaged database (and its WAL) out of the way; returns where.
fn move_aside(path: &Path) -> std::io::Result<PathBuf> {
    let aside = sibling(path, &format!(".corrupt-{}", now_ms()));
    std::fs::rename(path, &aside)?;
    for suffix in ["-wal", "-shm"] {
        let from = sibling(path, suffix);
        if from.exists() {
            let _ = std::fs::rename(&from, sibling(&aside, suffix));
        }
    }
    Ok(aside)
}

/// Roll-up deltas of the open transaction.
#[derive(Default)]
struct Rollup {
    /// By minute / hour: one count per `Source`, then the latency sum.
    minutes: IdMap<i64, [i64; 8]>,
    hours: IdMap<i64, [i64; 8]>,
    clients: IdMap<(i64, i64), (i64, i64)>,
    qtypes: IdMap<(i64, u16), i64>,
}

impl Rollup {
    fn clear(&mut self) {
        self.minutes.clear();
        self.hours.clear();
        self.clients.clear();
        self.qtypes.clear();
    }
}

impl Writer {
    pub(super) fn open(cfg: QueryLogConfig, shared: Arc<Shared>) -> anyhow::Result<Writer> {
        let mut w = Writer {
            cfg,
            shared,
            conn: None,
            tx_rows: 0,
            inbox: Batch::with_capacity(GROUP),
            looked: Vec::with_capacity(GROUP),
            roll: Rollup::default(),
            names: NameCache::new(),
            clients: IdMap::default(),
            last_client: None,
            last_key: i64::MIN,
            newest_hour: i64::MIN,
            hours: BTreeMap::new(),
            untrimmed: Vec::new(),
            last_flush: Instant::now(),
            paused_until: None,
            page_limit: None,
            retention: None,
            last_retention: Instant::now(),
            step_rows: RETENTION_STEP_ROWS,
            wal_frames: Arc::default(),
            closed_day: None,
            open: OpenBlock::default(),
            blocks: BlockWriter::default(),
            legacy_left: false,
            acc: Acc::default(),
            minute: MinuteKeys::NONE,
        };
        if w.cfg.enabled {
            w.open_db()?;
        }
        Ok(w)
    }

    /// Opens the database, moving a damaged one aside.
    fn open_db(&mut self) -> anyhow::Result<()> {
        let path = self.shared.path.clone();
        let conn = match schema::open_writer(&path).and_then(|c| self.sanity(c)) {
            Ok(c) => c,
            Err(OpenError::Corrupt { detail, .. }) => {
                let aside = move_aside(&path).map_err(|e| {
                    anyhow::anyhow!(
                        "query log {}: damaged ({detail}) and cannot be moved aside: {e}",
                        path.display()
                    )
                })?;
                let note = format!(
                    "the query log database was damaged ({detail}); it was moved to {} and a new one started",
                    aside.display()
                );
                tracing::warn!("{note}");
                lock(&self.shared.status).warning = Some(note);
                self.shared.generation.fetch_add(1, Ordering::AcqRel);
                schema::open_writer(&path)?
            }
            Err(e) => return Err(e.into()),
        };
        self.last_key = conn
            .query_row(
                "SELECT max(coalesce((SELECT max(id) FROM queries), -9223372036854775808),
                            coalesce((SELECT max(last) FROM query_blocks), -9223372036854775808))",
                [],
                |r| r.get::<_, Option<i64>>(0),
            )?
            .unwrap_or(i64::MIN);
        self.legacy_left = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM queries WHERE NOT (client = 0 AND domain = 0))",
            [],
            |r| r.get(0),
        )?;
        let rows: i64 = conn.query_row("SELECT value FROM meta WHERE key = 'rows'", [], |r| {
            r.get(0)
        })?;
        {
            let mut st = lock(&self.shared.status);
            st.rows = rows.max(0) as u64;
            st.schema_version = schema::current_version(&conn)?;
        }
        self.forget_cached();
        self.untrimmed.clear();
        // Hours and days the previous run left open close as new events come.
        self.newest_hour = conn
            .query_row("SELECT max(hour) FROM hour_counts", [], |r| {
                r.get::<_, Option<i64>>(0)
            })?
            .unwrap_or(i64::MIN);
        if self.newest_hour != i64::MIN {
            let mut st = conn.prepare("SELECT hour FROM hour_counts WHERE hour >= ?1")?;
            let hours = st.query_map([self.newest_hour - 2], |r| r.get::<_, i64>(0))?;
            for h in hours {
                self.untrimmed.push(h?);
            }
        }
        self.closed_day = conn.query_row("SELECT max(day) FROM day_sketches", [], |r| r.get(0))?;
        let mut conn = conn;
        // Checkpoints run where the writer chooses (after a batch commit),
        // never inside a retention step: SQLite only reports the WAL size.
        let frames = self.wal_frames.clone();
        conn.wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, pages: i32| {
            frames.store(i64::from(pages), Ordering::Relaxed);
            Ok(())
        }))?;
        self.conn = Some(conn);
        if let Some(pages) = self.page_limit {
            self.apply_page_limit(Some(pages));
        }
        Ok(())
    }

    /// Touches the pages a writer needs first, so a damaged file is found at
    /// startup rather than on the first batch.
    fn sanity(&self, conn: Connection) -> Result<Connection, OpenError> {
        let check = conn
            .query_row("SELECT max(id) FROM queries", [], |_| Ok(()))
            .and_then(|_| conn.query_row("SELECT max(id) FROM query_blocks", [], |_| Ok(())))
            .and_then(|_| conn.query_row("SELECT count(*) FROM meta", [], |_| Ok(())));
        match check {
            Ok(()) => Ok(conn),
            Err(e)
                if is_code(&e, ErrorCode::DatabaseCorrupt)
                    || is_code(&e, ErrorCode::NotADatabase) =>
            {
                Err(OpenError::Corrupt {
                    path: self.shared.path.clone(),
                    detail: e.to_string(),
                })
            }
            Err(e) => Err(OpenError::Other {
                path: self.shared.path.clone(),
                source: e.into(),
            }),
        }
    }

    pub(super) fn run(mut self, events: EventReceiver, commands: Receiver<Command>) {
        let mut events_open = true;
        loop {
            loop {
                match commands.try_recv() {
                    Ok(Command::Shutdown) | Err(TryRecvError::Disconnected) => {
                        events.try_iter().for_each(|e| self.accept(e));
                        self.flush();
                        return;
                    }
                    Ok(Command::Flush(ack)) => {
                        // Everything sent before the flush call is stored by it
                        // (bounded, should the channel never run dry).
                        for _ in 0..64 {
                            let mut took = 0;
                            while let Ok(n @ 1..) = self.receive(&events) {
                                took += n;
                            }
                            self.flush();
                            if took == 0 {
                                break;
                            }
                        }
                        while self.legacy_left {
                            self.migrate_now();
                        }
                        let _ = ack.send(());
                    }
                    Ok(c) => self.command(c),
                    Err(TryRecvError::Empty) => break,
                }
            }
            // Until the next flush is due, at most a tick; with nothing to
            // flush (or no database: querylog.enabled = false) a tick. Never
            // zero: an overdue flush with no rows must not make this a spin.
            let wait = if self.tx_rows > 0 {
                self.flush_interval()
                    .saturating_sub(self.last_flush.elapsed())
                    .clamp(Duration::from_millis(1), TICK)
            } else {
                TICK
            };
            let busy = self.retention.is_some();
            if events_open {
                match self.receive(&events) {
                    Ok(0) => {
                        // Poll, never park on the channel: a parked receiver
                        // makes every DNS worker's send a futex wake-up and a
                        // context switch, which costs more than the answer.
                        if !busy && self.tx_rows + self.inbox.len() < BATCH_ROWS {
                            std::thread::sleep(wait.min(POLL));
                        }
                    }
                    Ok(_) => while let Ok(1..) = self.receive(&events) {},
                    Err(_) => events_open = false,
                }
                self.store_inbox();
            } else if !busy {
                std::thread::sleep(wait);
            }
            if self.tx_rows >= BATCH_ROWS
                || (self.tx_rows > 0 && self.last_flush.elapsed() >= self.flush_interval())
            {
                self.flush();
            }
            if self.legacy_left && self.retention.is_none() {
                self.migrate_now();
            }
            if self.retention.is_none() && self.last_retention.elapsed() >= RETENTION_EVERY {
                self.start_retention(None);
            }
            if self.retention.is_some() {
                // A step is its own short transaction: rows received so far
                // are committed first.
                if self.tx_rows > 0 {
                    self.flush();
                }
                // A long pass with no batches in between still checkpoints.
                self.checkpoint_if(2 * CHECKPOINT_FRAMES);
                self.retention_step();
            }
        }
    }

    fn flush_interval(&self) -> Duration {
        self.cfg.flush_interval.0.max(Duration::from_millis(10))
    }

    fn command(&mut self, c: Command) {
        match c {
            Command::Flush(ack) => {
                self.flush();
                let _ = ack.send(());
            }
            Command::Config(cfg, ack) => {
                lock(&self.shared.ring).cap = cfg.ring_size;
                if cfg.anonymize_clients != self.cfg.anonymize_clients {
                    self.clients.clear();
                    self.last_client = None;
                }
                self.cfg = *cfg;
                let _ = ack.send(());
            }
            Command::Retain(ack) => self.start_retention(Some(ack)),
            Command::PageLimit(pages, ack) => {
                self.page_limit = pages;
                self.apply_page_limit(pages);
                // Let a paused writer try again at once.
                self.paused_until = self.paused_until.map(|_| Instant::now());
                let _ = ack.send(());
            }
            Command::Shutdown => {}
        }
    }

    fn apply_page_limit(&self, pages: Option<u64>) {
        if let Some(conn) = &self.conn {
            // 2^32 - 2 pages is SQLite's own ceiling.
            let pages = pages.unwrap_or(4_294_967_294);
            let _ = conn.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()));
        }
    }

    /// Takes the queued events, a group at most, up to the batch size;
    /// returns how many (`Err`: every sink is gone).
    fn receive(&mut self, events: &EventReceiver) -> Result<usize, TryRecvError> {
        let room = BATCH_ROWS
            .saturating_sub(self.tx_rows + self.inbox.len())
            .min(GROUP.saturating_sub(self.inbox.len()));
        let (anonymize, hide) = (self.cfg.anonymize_clients, self.cfg.hide_domains);
        let inbox = &mut self.inbox;
        let n = events.try_recv_with(room, |e| inbox.push(e, anonymize, hide))?;
        if self.inbox.len() >= GROUP {
            self.store_inbox();
        }
        Ok(n)
    }

    fn accept(&mut self, e: QueryEvent) {
        // Privacy settings apply before anything is kept, the RAM ring included.
        self.inbox
            .push(&e, self.cfg.anonymize_clients, self.cfg.hide_domains);
        if self.inbox.len() >= GROUP {
            self.store_inbox();
        }
    }

    /// Adds the received events to the open transaction (opening one if
    /// needed), then moves them into the RAM ring.
    fn store_inbox(&mut self) {
        if self.inbox.is_empty() {
            return;
        }
        let mut events = std::mem::take(&mut self.inbox);
        self.store_group(&events);
        lock(&self.shared.ring).extend(&events);
        events.clear();
        self.inbox = events;
    }

    fn store_group(&mut self, events: &Batch) {
        if self.conn.is_none() {
            return;
        }
        if let Some(until) = self.paused_until {
            if Instant::now() < until {
                lock(&self.shared.status).dropped_rows += events.len() as u64;
                return;
            }
            self.paused_until = None;
        }
        let before = self.tx_rows;
        let conn = self.conn.take().expect("checked above");
        let result = self.store_on(&conn, events);
        self.conn = Some(conn);
        if let Err(err) = result {
            self.write_failed(err, before + events.len());
        } else if self.hours.len() > MAX_HOURS {
            self.flush();
        }
    }

    fn store_on(&mut self, conn: &Connection, events: &Batch) -> rusqlite::Result<()> {
        if self.tx_rows == 0 {
            conn.execute_batch("BEGIN")?;
        }
        // The group's names are looked up in the name cache first, in
        // passes (the sets' tags, then the matching slots, then the
        // look-ups) that each start their loads before the next needs them:
        // after a sleep the cache is cold, and a row stalled on each miss.
        let mut looked = std::mem::take(&mut self.looked);
        looked.clear();
        looked.extend(events.iter().map(|(_, name)| {
            let tag = name_hash(name.as_bytes());
            self.names.prefetch_tags(tag);
            Looked {
                tag,
                found: None,
                slot: usize::MAX,
            }
        }));
        for l in &looked {
            self.names.prefetch_slot(l.tag);
        }
        for (l, (_, name)) in looked.iter_mut().zip(events.iter()) {
            if let Some((found, slot)) = self.names.find_slot(name.as_bytes(), l.tag) {
                (l.found, l.slot) = (Some(found), slot);
            }
        }
        // Likewise the top-domain counts of the hour the last row fell in
        // (most of a group falls in it too).
        if let Some(h) = self.hours.get(&self.minute.hour) {
            for l in looked.iter().filter(|l| l.found.is_some()) {
                h.top[0].prefetch(self.names.top_at(l.slot));
            }
        }
        let result = events.iter().zip(&looked).try_for_each(|((e, name), l)| {
            let (row, past, hour) = self.stage(conn, e, name, l)?;
            self.tx_rows += 1;
            self.push_row(conn, row, past, hour)
        });
        self.looked = looked;
        result
    }

    /// Resolves an event's names to ids and counts it in the roll-ups.
    /// Returns the row and whether its key lands among stored rows.
    fn stage(
        &mut self,
        conn: &Connection,
        e: &live::Entry,
        name: &str,
        looked: &Looked,
    ) -> rusqlite::Result<(Row, bool, i64)> {
        let (key, past) = self.next_key(e.time_ms);
        if !past {
            self.last_key = key;
        }
        if !(self.minute.lo..self.minute.hi).contains(&key) {
            self.minute = MinuteKeys::of(key);
        }
        let MinuteKeys {
            minute, hour, day, ..
        } = self.minute;
        let domain = self.domain_id(conn, name, day, (looked.tag, looked.found))?;
        let client = self.client_id(conn, e.client)?;
        let row = Row {
            key,
            domain,
            client,
            qtype: e.qtype,
            rcode: e.rcode,
            status: e.source as u8,
            upstream: (e.upstream != u8::MAX).then_some(e.upstream),
            latency_us: e.latency_us,
            reason: (e.reason.kind != 0).then(|| {
                RuleRef {
                    kind: e.reason.kind,
                    id: e.reason.id,
                    cname_depth: e.reason.cname_depth,
                }
                .pack()
            }),
        };

        let blocked = e.source == Source::Blocked;
        self.acc.add(
            &mut self.roll,
            minute,
            hour,
            e.source as usize,
            e.latency_us,
            client,
            e.qtype,
            blocked,
        );
        self.newest_hour = self.newest_hour.max(hour);
        let h = match self.hours.entry(hour) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => v.insert(load_hour(conn, hour)?),
        };
        h.sketch.insert(domain);
        h.sketch_dirty = true;
        if looked.found.is_some() {
            let at = h.top[0].add_at(self.names.top_at(looked.slot), domain, 1);
            self.names.set_top_at(looked.slot, at);
        } else {
            h.top[0].add(domain, 1);
        }
        if blocked {
            h.top[1].add(domain, 1);
        }
        Ok((row, past, hour))
    }

    /// Adds a staged row to the open block, writing the block (inside the
    /// open transaction) once it is full or the hour changes.
    fn push_row(
        &mut self,
        conn: &Connection,
        row: Row,
        past: bool,
        hour: i64,
    ) -> rusqlite::Result<()> {
        if past {
            self.open.past.push(row);
        } else {
            if !self.open.rows.is_empty() && hour != self.open.hour {
                self.write_open(conn)?;
            }
            self.open.hour = hour;
            self.open.rows.push(row);
        }
        if self.open.len() >= BLOCK_ROWS {
            self.write_open(conn)?;
        }
        Ok(())
    }

    /// Writes the open block's rows: appended after every stored block,
    /// or merged into place when some rows land among stored ones.
    fn write_open(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        let newest = if self.open.past.is_empty() {
            write_sorted(conn, &self.open.rows, &mut self.blocks)?;
            self.open.rows.last().map(|r| r.key)
        } else {
            let mut past = std::mem::take(&mut self.open.past);
            let newest = merge_rows(conn, &mut past, &self.open.rows, &mut self.blocks)?;
            past.clear();
            self.open.past = past;
            newest
        };
        if let Some(k) = newest {
            self.last_key = self.last_key.max(k);
        }
        self.open.clear();
        Ok(())
    }

    /// Commits the open transaction.
    fn flush(&mut self) {
        self.last_flush = Instant::now();
        self.store_inbox();
        if self.tx_rows == 0 || self.conn.is_none() {
            return;
        }
        let rows = self.tx_rows;
        let t = Instant::now();
        let conn = self.conn.take().expect("checked above");
        let result = self.commit_on(&conn);
        self.conn = Some(conn);
        if let Some(pass) = self.retention.as_mut() {
            pass.report.max_batch_ms = pass
                .report
                .max_batch_ms
                .max(t.elapsed().as_secs_f64() * 1000.0);
        }
        match result {
            Ok(()) => {
                let mut st = lock(&self.shared.status);
                st.rows += rows as u64;
                st.last_flush_ms = Some(now_ms());
                st.writer_ram_bytes = st.writer_ram_bytes.max(self.ram_bytes() as u64);
                if st.paused {
                    st.paused = false;
                    st.warning = None;
                }
            }
            Err(e) => self.write_failed(e, rows),
        }
        self.checkpoint_if(CHECKPOINT_FRAMES);
    }

    /// Copies the WAL back into the database file once it holds `frames`
    /// pages: fewer, larger checkpoints write a page changed by many
    /// batches once instead of once per checkpoint.
    fn checkpoint_if(&mut self, frames: i64) {
        if self.wal_frames.load(Ordering::Relaxed) < frames {
            return;
        }
        if let Some(conn) = &self.conn {
            match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                Ok(()) => self.wal_frames.store(0, Ordering::Relaxed),
                Err(e) => tracing::warn!("query log checkpoint: {e}"),
            }
        }
    }

    /// RAM held by the writer's caches and summaries (the SQLite page
    /// cache is bounded separately by `cache_size`).
    pub(super) fn ram_bytes(&self) -> usize {
        let hours: usize = self
            .hours
            .values()
            .map(|h| {
                super::sketch::REGISTERS
                    + h.top.iter().map(TopCounter::bytes).sum::<usize>()
                    + h.written.iter().map(|w| w.capacity() * 24).sum::<usize>()
            })
            .sum();
        self.names.bytes()
            + self.clients.capacity() * 40
            + hours
            + (self.roll.minutes.capacity() + self.roll.hours.capacity()) * 80
            + self.roll.clients.capacity() * 40
            + self.roll.qtypes.capacity() * 32
            + self.inbox.bytes()
            + self.looked.capacity() * std::mem::size_of::<Looked>()
            + self.acc.bytes()
            + (self.open.rows.capacity() + self.open.past.capacity()) * std::mem::size_of::<Row>()
            + self.blocks.blob.capacity()
            + self.blocks.side_clients.capacity() * 16
    }

    fn commit_on(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        if self.tx_rows == 0 {
            return Ok(());
        }
        self.write_open(conn)?;
        self.blocks.write_side_clients(conn)?;
        self.acc.fold(&mut self.roll);
        write_rollup(conn, &self.roll)?;
        for (&hour, h) in self.hours.iter_mut() {
            if h.sketch_dirty {
                conn.prepare_cached(
                    "INSERT INTO hour_sketches (hour, domains) VALUES (?1, ?2)
                     ON CONFLICT (hour) DO UPDATE SET domains = excluded.domains",
                )?
                .execute(params![hour, h.sketch.as_bytes()])?;
                h.sketch_dirty = false;
            }
            for kind in 0..2 {
                write_top(conn, hour, kind, &h.top[kind], &mut h.written[kind])?;
            }
        }
        // Hours a previous run left open keep only their top entries once
        // a newer hour has begun.
        let newest = self.newest_hour;
        for h in self.untrimmed.iter().filter(|&&h| h < newest - 1) {
            for blocked in [false, true] {
                conn.prepare_cached(
                    "DELETE FROM hour_domains WHERE blocked = ?1 AND hour = ?2 AND domain NOT IN
                     (SELECT domain FROM hour_domains WHERE blocked = ?1 AND hour = ?2 ORDER BY n DESC LIMIT ?3)",
                )?
                .execute(params![blocked, h, stats::TOP_PER_HOUR])?;
            }
        }
        self.close_days(conn)?;
        conn.prepare_cached("UPDATE meta SET value = value + ?1 WHERE key = 'rows'")?
            .execute([self.tx_rows as i64])?;
        conn.execute_batch("COMMIT")?;
        self.tx_rows = 0;
        self.roll.clear();
        self.untrimmed.retain(|&h| h >= newest - 1);
        // Older hours are complete: their top entries are stored.
        self.hours.retain(|&h, _| h >= newest - 1);
        Ok(())
    }

    /// Forgets what the rolled-back transaction had handed out or counted.
    fn forget_cached(&mut self) {
        self.names.clear();
        self.clients.clear();
        self.last_client = None;
        self.hours.clear();
        self.roll.clear();
        self.acc.reset();
        self.open.clear();
        self.blocks.marked = None;
        self.blocks.side_clients.clear();
        self.tx_rows = 0;
    }

    /// A failed transaction is dropped and counted; what happens next
    /// depends on why it failed.
    fn write_failed(&mut self, e: rusqlite::Error, rows: usize) {
        if let Some(conn) = &self.conn {
            // SQLite may have rolled back already (a full disk): then this fails.
            let _ = conn.execute_batch("ROLLBACK");
        }
        // Ids handed out inside the rolled-back transaction are gone, and
        // days it closed are open again (closing is idempotent).
        self.closed_day = None;
        self.forget_cached();
        let mut st = lock(&self.shared.status);
        st.dropped_rows += rows as u64;
        if is_code(&e, ErrorCode::DiskFull) {
            let retry = self.flush_interval().min(Duration::from_secs(5));
            self.paused_until = Some(Instant::now() + retry);
            if !st.paused {
                tracing::warn!("query log: disk full, logging paused");
            }
            st.paused = true;
            st.warning = Some(format!(
                "disk full: query logging is paused and retried every {}s ({} queries not stored); DNS keeps answering",
                retry.as_secs_f64(),
                st.dropped_rows
            ));
        } else if is_code(&e, ErrorCode::DatabaseCorrupt) || is_code(&e, ErrorCode::NotADatabase) {
            drop(st);
            self.replace_corrupt(&e.to_string());
        } else {
            tracing::warn!("query log: batch of {rows} not stored: {e}");
            st.warning = Some(format!("query log write failed: {e}"));
        }
    }

    fn replace_corrupt(&mut self, detail: &str) {
        self.conn = None;
        let path = self.shared.path.clone();
        let result = move_aside(&path).map_err(anyhow::Error::from).and_then(|aside| {
            let note = format!(
                "the query log database was damaged ({detail}); it was moved to {} and a new one started",
                aside.display()
            );
            tracing::warn!("{note}");
            lock(&self.shared.status).warning = Some(note);
            self.shared.generation.fetch_add(1, Ordering::AcqRel);
            self.open_db()
        });
        if let Err(e) = result {
            lock(&self.shared.status).warning = Some(format!(
                "query log stopped: the database is damaged and could not be replaced: {e:#}"
            ));
        }
    }

    /// The key for a row at `ms`, and whether it lands among stored rows.
    /// Small clock steps backwards (events from different workers) and
    /// keys run ahead of the clock (more than 256 rows in a millisecond,
    /// sustained) keep the order of arrival; a big step (the clock was set
    /// back) lands at its true time, on the first free key from there
    /// (found when the block is written, see `merge_rows`).
    fn next_key(&self, ms: i64) -> (i64, bool) {
        let k = super::key_of(ms);
        if k > self.last_key {
            (k, false)
        } else if self.last_key - k < super::key_of(super::EPOCH_MS + KEY_SLACK_MS) {
            (self.last_key + 1, false)
        } else {
            (k, true)
        }
    }

    /// Writes the day roll-ups of days whose hours are all closed, a few
    /// days per batch (an upgraded database catches up over some batches).
    fn close_days(&mut self, tx: &Connection) -> rusqlite::Result<()> {
        if self.newest_hour == i64::MIN {
            return Ok(());
        }
        let last_full = (self.newest_hour - 24).div_euclid(24);
        let first = match self.closed_day {
            Some(d) => d + 1,
            None => match tx.query_row("SELECT min(hour) FROM hour_counts", [], |r| {
                r.get::<_, Option<i64>>(0)
            })? {
                Some(h) => h.div_euclid(24),
                None => return Ok(()),
            },
        };
        for day in (first..=last_full).take(8) {
            let (h_lo, h_hi) = (day * 24, day * 24 + 23);
            for blocked in [false, true] {
                tx.prepare_cached("DELETE FROM day_domains WHERE blocked = ?1 AND day = ?2")?
                    .execute(params![blocked, day])?;
                tx.prepare_cached(
                    "INSERT INTO day_domains (blocked, day, domain, n)
                     SELECT ?1, ?2, domain, sum(n) FROM hour_domains
                     WHERE blocked = ?1 AND hour BETWEEN ?3 AND ?4
                     GROUP BY domain ORDER BY sum(n) DESC LIMIT ?5",
                )?
                .execute(params![blocked, day, h_lo, h_hi, stats::TOP_PER_DAY])?;
            }
            tx.prepare_cached("DELETE FROM day_clients WHERE day = ?1")?
                .execute([day])?;
            tx.prepare_cached(
                "INSERT INTO day_clients (day, client, n, blocked)
                 SELECT ?1, client, sum(n), sum(blocked) FROM hour_clients
                 WHERE hour BETWEEN ?2 AND ?3 GROUP BY client",
            )?
            .execute(params![day, h_lo, h_hi])?;
            let mut sketch = Sketch::default();
            {
                let mut st = tx.prepare_cached(
                    "SELECT domains FROM hour_sketches WHERE hour BETWEEN ?1 AND ?2",
                )?;
                let mut rows = st.query([h_lo, h_hi])?;
                while let Some(r) = rows.next()? {
                    sketch.merge_bytes(r.get_ref(0)?.as_blob()?);
                }
            }
            tx.prepare_cached(
                "INSERT OR REPLACE INTO day_sketches (day, domains) VALUES (?1, ?2)",
            )?
            .execute(params![day, sketch.as_bytes()])?;
            self.closed_day = Some(day);
        }
        Ok(())
    }

    /// The name's id, `day` noted as a day it was used. `found` is the
    /// name's hash and what the name cache held for it when its group was
    /// looked up (`store_on`).
    fn domain_id(
        &mut self,
        conn: &Connection,
        name: &str,
        day: i64,
        (tag, found): (u64, Option<(i64, i64)>),
    ) -> rusqlite::Result<i64> {
        // Ids do not change within a transaction and `last_seen` only
        // grows, so an earlier look-up that was recent enough still holds.
        if let Some((id, seen)) = found
            && seen >= day
        {
            return Ok(id);
        }
        let b = name.as_bytes();
        let ahead = day + LAST_SEEN_AHEAD_DAYS;
        if let Some((id, seen)) = self.names.find(b, tag) {
            if seen >= day {
                return Ok(id);
            }
            let updated = conn
                .prepare_cached("UPDATE domains SET last_seen = max(last_seen, ?2) WHERE id = ?1")?
                .execute(params![id, ahead])?;
            if updated == 1 {
                self.names.insert_hashed(b, tag, id, ahead);
                return Ok(id);
            }
            // Retention forgot the name since it was cached.
            self.names.remove_hashed(b, tag);
        }
        let found: Option<(i64, i64)> = conn
            .prepare_cached("SELECT id, last_seen FROM domains WHERE name = ?1")?
            .query_row([name], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let (id, seen) = match found {
            Some((id, seen)) if seen >= day => (id, seen),
            Some((id, _)) => {
                conn.prepare_cached("UPDATE domains SET last_seen = ?2 WHERE id = ?1")?
                    .execute(params![id, ahead])?;
                (id, ahead)
            }
            None => {
                conn.prepare_cached("INSERT INTO domains (name, last_seen) VALUES (?1, ?2)")?
                    .execute(params![name, ahead])?;
                (conn.last_insert_rowid(), ahead)
            }
        };
        self.names.insert_hashed(b, tag, id, seen);
        Ok(id)
    }

    fn client_id(&mut self, conn: &Connection, ip: IpAddr) -> rusqlite::Result<i64> {
        let key = ClientKey::of(ip);
        // Queries come in runs from one client (a page load, a device's
        // burst): the last one is compared before the map is hashed.
        if let Some((last, id)) = self.last_client
            && last == key
        {
            return Ok(id);
        }
        if let Some(&id) = self.clients.get(&key) {
            self.last_client = Some((key, id));
            return Ok(id);
        }
        let addr = ip.to_string();
        let found: Option<i64> = conn
            .prepare_cached("SELECT id FROM clients WHERE addr = ?1")?
            .query_row([&addr], |r| r.get(0))
            .optional()?;
        let id = match found {
            Some(id) => id,
            None => {
                conn.prepare_cached("INSERT INTO clients (addr) VALUES (?1)")?
                    .execute([&addr])?;
                conn.last_insert_rowid()
            }
        };
        if self.clients.len() >= CLIENT_CACHE {
            self.clients.clear();
        }
        self.clients.insert(key, id);
        self.last_client = Some((key, id));
        Ok(id)
    }

    fn start_retention(&mut self, ack: Option<SyncSender<RetentionReport>>) {
        self.last_retention = Instant::now();
        if self.conn.is_none() {
            if let Some(ack) = ack {
                let _ = ack.send(RetentionReport::default());
            }
            return;
        }
        let pass = self.retention.get_or_insert_with(|| Pass {
            started: Instant::now(),
            report: RetentionReport::default(),
            waiting: Vec::new(),
        });
        pass.waiting.extend(ack);
    }

    /// One short transaction of retention work; the pass ends when nothing
    /// is too old, the file fits and the free pages are returned.
    fn retention_step(&mut self) {
        let Some(conn) = self.conn.take() else {
            self.finish_retention();
            return;
        };
        let t = Instant::now();
        let cpu = thread_cpu_ms();
        let result = self.retention_step_on(&conn);
        self.conn = Some(conn);
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        let pass = self.retention.as_mut().expect("a pass is running");
        pass.report.max_step_ms = pass.report.max_step_ms.max(ms);
        pass.report.max_step_cpu_ms = pass.report.max_step_cpu_ms.max(thread_cpu_ms() - cpu);
        {
            let mut st = lock(&self.shared.status);
            st.max_retention_step_ms = st.max_retention_step_ms.max(ms);
        }
        match result {
            Ok(Some(Step::Delete)) => {
                pass.report.steps += 1;
                pass.report.max_delete_step_ms = pass.report.max_delete_step_ms.max(ms);
                // Keep steps near the target whatever the machine's speed or
                // load: an insert waits for at most one step.
                let target = RETENTION_STEP_TARGET.as_secs_f64() * 1000.0;
                self.step_rows = if ms > target * 2.0 {
                    self.step_rows / 2
                } else if ms < target / 2.0 {
                    self.step_rows + self.step_rows / 2
                } else {
                    self.step_rows
                }
                .clamp(RETENTION_STEP_MIN, RETENTION_STEP_MAX);
            }
            Ok(Some(Step::Vacuum)) => {
                pass.report.steps += 1;
                pass.report.max_vacuum_step_ms = pass.report.max_vacuum_step_ms.max(ms);
            }
            Ok(None) => self.finish_retention(),
            Err(e) => {
                tracing::warn!("query log retention: {e}");
                let full = is_code(&e, ErrorCode::DiskFull);
                self.finish_retention();
                if !full {
                    lock(&self.shared.status).warning =
                        Some(format!("query log retention failed: {e}"));
                }
            }
        }
    }

    /// Moves the newest `MIGRATE_ROWS` rows an older build left in
    /// `queries` into blocks and deletes them there, in one transaction.
    fn migrate_step(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        let tx = conn.unchecked_transaction()?;
        let mut rows = Vec::new();
        {
            let mut st = tx.prepare_cached(
                "SELECT id, domain, client, qtype, rcode, status, upstream, latency_us, reason
                 FROM queries WHERE NOT (client = 0 AND domain = 0) ORDER BY id DESC LIMIT ?1",
            )?;
            let mut q = st.query([MIGRATE_ROWS])?;
            while let Some(r) = q.next()? {
                rows.push(legacy_row(r)?);
            }
        }
        let Some(oldest) = rows.last().map(|r| r.key) else {
            self.legacy_left = false;
            return tx.commit();
        };
        // Deleted first: a day marker may take a moved row's key.
        tx.prepare_cached(
            "DELETE FROM queries WHERE id >= ?1 AND NOT (client = 0 AND domain = 0)",
        )?
        .execute([oldest])?;
        // The merge's side rows go in before this transaction commits.
        let newest = merge_rows(&tx, &mut rows, &[], &mut self.blocks)
            .and_then(|newest| self.blocks.write_side_clients(&tx).map(|()| newest))
            .inspect_err(|_| {
                // Rolled back with the transaction.
                self.blocks.side_clients.clear();
            })?;
        tx.commit()?;
        if let Some(k) = newest {
            self.last_key = self.last_key.max(k);
        }
        Ok(())
    }

    /// One migration step outside a retention pass; the open transaction
    /// is committed first.
    fn migrate_now(&mut self) {
        if self.tx_rows > 0 {
            self.flush();
        }
        let Some(conn) = self.conn.take() else {
            self.legacy_left = false;
            return;
        };
        let result = self.migrate_step(&conn);
        self.conn = Some(conn);
        if let Err(e) = result {
            // Tried again at the next start; until then those rows are
            // missing from the log page (the roll-ups still count them).
            self.legacy_left = false;
            tracing::warn!("query log: moving rows of an older version into blocks: {e}");
            lock(&self.shared.status).warning = Some(format!(
                "query log: rows of an older version not moved into blocks: {e}"
            ));
        }
        self.checkpoint_if(CHECKPOINT_FRAMES);
    }

    fn finish_retention(&mut self) {
        self.checkpoint_if(1);
        if let Some(mut pass) = self.retention.take() {
            pass.report.total_ms = pass.started.elapsed().as_secs_f64() * 1000.0;
            for w in pass.waiting {
                let _ = w.send(pass.report.clone());
            }
        }
    }

    /// Returns what kind of work was done, `None` when nothing was left.
    fn retention_step_on(&mut self, conn: &Connection) -> rusqlite::Result<Option<Step>> {
        if self.legacy_left {
            // Rows an older build left are moved first: retention then
            // sees every row in blocks.
            self.migrate_step(conn)?;
            return Ok(Some(Step::Delete));
        }
        let oldest: Option<(i64, i64)> = conn
            .query_row(
                "SELECT id, last FROM query_blocks ORDER BY id LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let cutoff_ms = (self.cfg.retention_days > 0)
            .then(|| now_ms() - i64::from(self.cfg.retention_days) * 86_400_000);
        let cutoff_key = cutoff_ms.map_or(i64::MIN, super::key_of);
        // A block goes once its newest row is too old.
        let too_old = matches!(oldest, Some((_, last)) if last < cutoff_key);
        let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        let page_count: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
        let max_bytes = i64::from(self.cfg.max_size_mib) << 20;
        let too_big = self.cfg.max_size_mib > 0 && (page_count - free) * page_size > max_bytes;

        let tx = conn.unchecked_transaction()?;
        let mut deleted = 0i64;
        if too_old || too_big {
            // Whole blocks, oldest first, about `step_rows` rows per step:
            // a walk along the primary key, no scan.
            let mut upto = None;
            let mut clients: Vec<i64> = Vec::new();
            {
                let mut st =
                    tx.prepare_cached("SELECT id, last, rows, data FROM query_blocks ORDER BY id")?;
                let mut rows = st.query([])?;
                while let Some(r) = rows.next()? {
                    let (id, last, n): (i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
                    if (!too_big && last >= cutoff_key)
                        || (upto.is_some() && deleted >= self.step_rows)
                    {
                        break;
                    }
                    match block::decode(r.get_ref(3)?.as_blob()?) {
                        Ok(v) => clients.extend(v.iter().map(|r| r.client)),
                        Err(e) => tracing::warn!(
                            "query log: block {id} is damaged ({e}); deleted by retention"
                        ),
                    }
                    deleted += n;
                    upto = Some(id + 1);
                }
            }
            if let Some(upto) = upto {
                delete_blocks(&tx, Blocks::Before(upto), clients)?;
                tx.execute(
                    "UPDATE meta SET value = value - ?1 WHERE key = 'rows'",
                    [deleted],
                )?;
                // The day markers go with their blocks; the oldest day left
                // keeps one.
                tx.prepare_cached(DELETE_MARKERS_BEFORE_SQL)?
                    .execute([upto])?;
                self.blocks.marked = None;
                let first: Option<i64> =
                    tx.query_row("SELECT min(id) FROM query_blocks", [], |r| r.get(0))?;
                if let Some(first) = first {
                    self.blocks.mark_day(&tx, first)?;
                }
            }
        }
        // Roll-ups and names go with the rows they describe.
        let left = tx
            .query_row("SELECT min(id) FROM query_blocks", [], |r| {
                r.get::<_, Option<i64>>(0)
            })?
            .map(super::ms_of)
            .unwrap_or(i64::MAX);
        let cut_ms = match cutoff_ms {
            Some(c) => c.max(left),
            None => left,
        }
        .min(now_ms());
        let (minute, hour) = (cut_ms.div_euclid(60_000), cut_ms.div_euclid(3_600_000));
        let mut rollups = 0;
        rollups += tx.execute("DELETE FROM minute_counts WHERE minute < ?1", [minute])?;
        rollups += tx.execute("DELETE FROM hour_counts WHERE hour < ?1", [hour])?;
        rollups += tx.execute(
            "DELETE FROM hour_domains WHERE blocked = 0 AND hour < ?1",
            [hour],
        )?;
        rollups += tx.execute(
            "DELETE FROM hour_domains WHERE blocked = 1 AND hour < ?1",
            [hour],
        )?;
        rollups += tx.execute("DELETE FROM hour_clients WHERE hour < ?1", [hour])?;
        rollups += tx.execute("DELETE FROM hour_qtypes WHERE hour < ?1", [hour])?;
        rollups += tx.execute("DELETE FROM hour_sketches WHERE hour < ?1", [hour])?;
        let day = hour.div_euclid(24);
        rollups += tx.execute(
            "DELETE FROM day_domains WHERE blocked = 0 AND day < ?1",
            [day],
        )?;
        rollups += tx.execute(
            "DELETE FROM day_domains WHERE blocked = 1 AND day < ?1",
            [day],
        )?;
        rollups += tx.execute("DELETE FROM day_clients WHERE day < ?1", [day])?;
        rollups += tx.execute("DELETE FROM day_sketches WHERE day < ?1", [day])?;
        let names = tx
            .prepare_cached(
                "DELETE FROM domains WHERE id IN
                 (SELECT id FROM domains WHERE last_seen < ?1 ORDER BY last_seen LIMIT ?2)",
            )?
            .execute(params![day, NAMES_STEP])?;
        tx.commit()?;
        let pass = self.retention.as_mut().expect("a pass is running");
        pass.report.deleted_rows += deleted as u64;
        if deleted > 0 {
            let mut st = lock(&self.shared.status);
            st.rows = st.rows.saturating_sub(deleted as u64);
        }
        if deleted > 0 || rollups > 0 || names > 0 {
            return Ok(Some(Step::Delete));
        }
        if free > 0 {
            conn.execute_batch(&format!("PRAGMA incremental_vacuum({VACUUM_STEP_PAGES})"))?;
            let after: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
            pass.report.vacuumed_pages += (free - after).max(0) as u64;
            return Ok(Some(Step::Vacuum));
        }
        Ok(None)
    }
}

// Statements on blocks, listed for the plan test (`block_statements`).
const BLOCK_AT_SQL: &str =
    "SELECT id, last FROM query_blocks WHERE id <= ?1 ORDER BY id DESC LIMIT 1";
const BLOCKS_BETWEEN_SQL: &str =
    "SELECT id, data FROM query_blocks WHERE id BETWEEN ?1 AND ?2 ORDER BY id";
const BLOCK_AFTER_SQL: &str = "SELECT id FROM query_blocks WHERE id > ?1 ORDER BY id LIMIT 1";
const DELETE_BLOCK_SQL: &str = "DELETE FROM query_blocks WHERE id = ?1";
const DELETE_BLOCK_CLIENT_SQL: &str = "DELETE FROM block_clients WHERE client = ?1 AND block = ?2";
const DELETE_BLOCK_STATUS_SQL: &str = "DELETE FROM block_statuses WHERE status = ?1 AND block = ?2";
const DELETE_BLOCKS_BEFORE_SQL: &str = "DELETE FROM query_blocks WHERE id < ?1";
const DELETE_CLIENT_BLOCKS_BEFORE_SQL: &str =
    "DELETE FROM block_clients WHERE client = ?1 AND block < ?2";
const DELETE_STATUS_BLOCKS_BEFORE_SQL: &str =
    "DELETE FROM block_statuses WHERE status = ?1 AND block < ?2";

/// The writer's statements on blocks and their side tables, for the
/// `EXPLAIN QUERY PLAN` test: each finds its rows through a key.
pub(super) fn block_statements() -> Vec<(String, String)> {
    [
        ("block at", BLOCK_AT_SQL),
        ("blocks between", BLOCKS_BETWEEN_SQL),
        ("block after", BLOCK_AFTER_SQL),
        ("delete block", DELETE_BLOCK_SQL),
        ("delete block client", DELETE_BLOCK_CLIENT_SQL),
        ("delete block status", DELETE_BLOCK_STATUS_SQL),
        ("delete blocks before", DELETE_BLOCKS_BEFORE_SQL),
        (
            "delete client blocks before",
            DELETE_CLIENT_BLOCKS_BEFORE_SQL,
        ),
        (
            "delete status blocks before",
            DELETE_STATUS_BLOCKS_BEFORE_SQL,
        ),
        ("day markers", MARKERS_SQL),
        ("delete day markers before", DELETE_MARKERS_BEFORE_SQL),
    ]
    .into_iter()
    .map(|(n, s)| (format!("writer: {n}"), s.to_string()))
    .collect()
}

/// Marks a day that has blocks with a row in `queries` (domain and
/// client 0, ids no name has, so an older build's pages never show it)
/// at the key of the day's first block. Version 4 keeps its rows out of
/// that table, but an older build running after a firmware rollback reads
/// `min(id) FROM queries` as the oldest stored row and trims roll-ups and
/// names older than it: the markers keep that the oldest day with blocks.
const MARK_DAY_SQL: &str = "INSERT OR IGNORE INTO queries
    (id, domain, client, qtype, rcode, status, latency_us) VALUES (?1, 0, 0, 0, 0, 0, 0)";
const MOVE_MARKER_SQL: &str = "UPDATE OR IGNORE queries SET id = ?1 WHERE id = ?2";
const MARKERS_SQL: &str = "SELECT id FROM queries WHERE client = 0 AND domain = 0";
const DELETE_MARKERS_BEFORE_SQL: &str =
    "DELETE FROM queries WHERE client = 0 AND domain = 0 AND id < ?1";

/// The distinct clients of `rows` into `out`. Small ids (a household's)
/// are marked in `seen` (left clear afterwards) instead of sorting; the
/// rest, if any, are sorted.
fn distinct_clients(rows: &[Row], seen: &mut Vec<bool>, out: &mut Vec<i64>) {
    out.clear();
    let mut large = Vec::new();
    for r in rows {
        match usize::try_from(r.client).ok().filter(|&c| c < ACC_CLIENTS) {
            Some(c) => {
                if seen.len() <= c {
                    seen.resize(c + 1, false);
                }
                if !seen[c] {
                    seen[c] = true;
                    out.push(r.client);
                }
            }
            None => large.push(r.client),
        }
    }
    for &c in out.iter() {
        seen[c as usize] = false;
    }
    large.sort_unstable();
    large.dedup();
    out.extend(large);
}

/// What writing blocks needs besides the connection.
#[derive(Default)]
struct BlockWriter {
    /// The encoding buffer.
    blob: Vec<u8>,
    /// Scratch for `distinct_clients`.
    seen: Vec<bool>,
    clients: Vec<i64>,
    /// Unix day -> the key of its marker; `None`: read them again.
    marked: Option<BTreeMap<i64, i64>>,
    /// `(client, block)` rows of blocks written in the open transaction,
    /// not yet in `block_clients`: written together, in index order, so a
    /// client's rows of a whole batch share one visit to its index page
    /// (one per block thrashed the writer's small page cache with many
    /// clients).
    side_clients: Vec<(i64, i64)>,
}

/// Side rows held back at most (16 bytes each).
const SIDE_CLIENTS_MAX: usize = 4096;

impl BlockWriter {
    /// Writes the held-back `block_clients` rows. Before a commit, and
    /// before blocks of the transaction may be deleted (`merge_rows`).
    fn write_side_clients(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        if self.side_clients.is_empty() {
            return Ok(());
        }
        self.side_clients.sort_unstable();
        let mut st = conn.prepare_cached(
            "INSERT OR IGNORE INTO block_clients (client, block) VALUES (?1, ?2)",
        )?;
        for &(c, block) in &self.side_clients {
            st.execute([c, block])?;
        }
        self.side_clients.clear();
        Ok(())
    }

    /// Keeps the day of `key` marked at or before `key`.
    fn mark_day(&mut self, conn: &Connection, key: i64) -> rusqlite::Result<()> {
        let day = |k: i64| super::ms_of(k).div_euclid(86_400_000);
        let marked = match &mut self.marked {
            Some(m) => m,
            None => {
                let mut st = conn.prepare_cached(MARKERS_SQL)?;
                let keys = st.query_map([], |r| r.get::<_, i64>(0))?;
                let mut map = BTreeMap::new();
                for k in keys {
                    let k = k?;
                    let at = map.entry(day(k)).or_insert(k);
                    *at = (*at).min(k);
                }
                self.marked.insert(map)
            }
        };
        match marked.entry(day(key)) {
            Entry::Vacant(v) => {
                conn.prepare_cached(MARK_DAY_SQL)?.execute([key])?;
                v.insert(key);
            }
            Entry::Occupied(mut o) if *o.get() > key => {
                conn.prepare_cached(MOVE_MARKER_SQL)?
                    .execute([key, *o.get()])?;
                o.insert(key);
            }
            Entry::Occupied(_) => {}
        }
        Ok(())
    }
}

/// Writes rows in key order (above every stored key, or with the
/// blocks they overlap already deleted) as blocks of at most `BLOCK_ROWS`
/// rows, each within one hour.
fn write_sorted(conn: &Connection, rows: &[Row], bw: &mut BlockWriter) -> rusqlite::Result<()> {
    let mut rest = rows;
    while let Some(first) = rest.first() {
        // Rows are in key order: the hour ends at the first key past it.
        let hour = super::ms_of(first.key).div_euclid(3_600_000);
        let end = super::key_of((hour + 1) * 3_600_000);
        let n = rest
            .iter()
            .take(BLOCK_ROWS)
            .position(|r| r.key >= end)
            .unwrap_or(rest.len().min(BLOCK_ROWS));
        write_block(conn, &rest[..n], bw)?;
        rest = &rest[n..];
    }
    Ok(())
}

/// One block and its side rows (one per client, one per uncommon status).
fn write_block(conn: &Connection, rows: &[Row], bw: &mut BlockWriter) -> rusqlite::Result<()> {
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
        return Ok(());
    };
    let blob = &mut bw.blob;
    blob.clear();
    block::encode(rows, blob);
    conn.prepare_cached("INSERT INTO query_blocks (id, last, rows, data) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![first.key, last.key, rows.len() as i64, &blob[..]])?;
    distinct_clients(rows, &mut bw.seen, &mut bw.clients);
    bw.side_clients
        .extend(bw.clients.iter().map(|&c| (c, first.key)));
    if bw.side_clients.len() >= SIDE_CLIENTS_MAX {
        bw.write_side_clients(conn)?;
    }
    let statuses = rows
        .iter()
        .filter(|r| r.status >= 2)
        .fold(0u8, |m, r| m | 1 << (r.status & 7));
    let mut st = conn
        .prepare_cached("INSERT OR IGNORE INTO block_statuses (status, block) VALUES (?1, ?2)")?;
    for s in (2..8).filter(|s| statuses & (1 << s) != 0) {
        st.execute([s, first.key])?;
    }
    bw.mark_day(conn, first.key)
}

/// Which blocks [`delete_blocks`] takes.
enum Blocks {
    /// The block with this key.
    One(i64),
    /// Every block with a key below this one.
    Before(i64),
}

/// Deletes blocks and their side rows: `clients` are the clients of
/// their rows (any order, repeats allowed); every uncommon status is
/// tried (`block_statuses` is keyed by status first).
fn delete_blocks(conn: &Connection, which: Blocks, mut clients: Vec<i64>) -> rusqlite::Result<()> {
    let (blocks_sql, clients_sql, statuses_sql, key) = match which {
        Blocks::One(id) => (
            DELETE_BLOCK_SQL,
            DELETE_BLOCK_CLIENT_SQL,
            DELETE_BLOCK_STATUS_SQL,
            id,
        ),
        Blocks::Before(upto) => (
            DELETE_BLOCKS_BEFORE_SQL,
            DELETE_CLIENT_BLOCKS_BEFORE_SQL,
            DELETE_STATUS_BLOCKS_BEFORE_SQL,
            upto,
        ),
    };
    conn.prepare_cached(blocks_sql)?.execute([key])?;
    clients.sort_unstable();
    clients.dedup();
    let mut st = conn.prepare_cached(clients_sql)?;
    for c in clients {
        st.execute([c, key])?;
    }
    let mut st = conn.prepare_cached(statuses_sql)?;
    for status in 2..8 {
        st.execute([status, key])?;
    }
    Ok(())
}

/// Stores `past` (rows whose keys may fall among stored ones) together
/// with `open` (rows above every stored key, in order): the stored blocks
/// the past rows reach into are read, merged and written again. A past
/// row whose key is taken moves to the first free key after it, as the
/// row table did. Returns the newest key written.
fn merge_rows(
    conn: &Connection,
    past: &mut [Row],
    open: &[Row],
    bw: &mut BlockWriter,
) -> rusqlite::Result<Option<i64>> {
    // Blocks of the open transaction may be deleted below: their side
    // rows must be in the table first.
    bw.write_side_clients(conn)?;
    past.sort_by_key(|r| r.key);
    let Some(lo) = past.first().map(|r| r.key) else {
        write_sorted(conn, open, bw)?;
        return Ok(open.last().map(|r| r.key));
    };
    let wanted: Vec<i64> = past.iter().map(|r| r.key).collect();
    // The block that may hold `lo`, and every block up to `hi`.
    let start = conn
        .prepare_cached(BLOCK_AT_SQL)?
        .query_row([lo], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
        .optional()?
        .filter(|&(_, last)| last >= lo)
        .map_or(lo, |(id, _)| id);
    let mut hi = wanted[wanted.len() - 1];
    let mut loaded: Vec<(i64, Vec<Row>)>;
    loop {
        loaded = Vec::new();
        {
            let mut st = conn.prepare_cached(BLOCKS_BETWEEN_SQL)?;
            let mut rows = st.query([start, hi])?;
            while let Some(r) = rows.next()? {
                let id: i64 = r.get(0)?;
                match block::decode(r.get_ref(1)?.as_blob()?) {
                    Ok(v) => loaded.push((id, v)),
                    // Left in place: its rows cannot be merged.
                    Err(e) => {
                        tracing::warn!("query log: block {id} is damaged ({e}); left as it is")
                    }
                }
            }
        }
        // Keys taken, in order: stored rows, then the open ones above them.
        let mut taken = loaded
            .iter()
            .flat_map(|(_, v)| v.iter().map(|r| r.key))
            .chain(open.iter().map(|r| r.key))
            .peekable();
        let mut prev = i64::MIN;
        for (r, &want) in past.iter_mut().zip(&wanted) {
            let mut k = want.max(prev.saturating_add(1));
            while let Some(&t) = taken.peek() {
                if t < k {
                    taken.next();
                } else if t == k {
                    k += 1;
                    taken.next();
                } else {
                    break;
                }
            }
            r.key = k;
            prev = k;
        }
        // A key moved past `hi` may reach into the next stored block: then
        // that block is merged too.
        let next: Option<i64> = conn
            .prepare_cached(BLOCK_AFTER_SQL)?
            .query_row([hi], |r| r.get(0))
            .optional()?;
        match next {
            Some(n) if prev >= n => hi = prev,
            _ => break,
        }
    }
    let mut merged: Vec<Row> = Vec::with_capacity(
        loaded.iter().map(|(_, v)| v.len()).sum::<usize>() + past.len() + open.len(),
    );
    for (id, rows) in &loaded {
        delete_blocks(
            conn,
            Blocks::One(*id),
            rows.iter().map(|r| r.client).collect(),
        )?;
    }
    merged.extend(loaded.into_iter().flat_map(|(_, v)| v));
    merged.extend_from_slice(past);
    merged.extend_from_slice(open);
    merged.sort_unstable_by_key(|r| r.key);
    write_sorted(conn, &merged, bw)?;
    Ok(merged.last().map(|r| r.key))
}

/// A row of the version-1 `queries` table, its values clamped into what
/// a block holds (a damaged or hand-edited row must not stop the move).
fn legacy_row(r: &rusqlite::Row) -> rusqlite::Result<Row> {
    let int = |i: usize| -> rusqlite::Result<i64> { Ok(r.get::<_, Option<i64>>(i)?.unwrap_or(0)) };
    Ok(Row {
        key: r.get(0)?,
        domain: int(1)?,
        client: int(2)?,
        qtype: int(3)?.clamp(0, i64::from(u16::MAX)) as u16,
        rcode: int(4)?.clamp(0, 255) as u8,
        status: int(5)?.clamp(0, Source::Failed as i64) as u8,
        upstream: r.get::<_, Option<i64>>(6)?.map(|u| u.clamp(0, 255) as u8),
        latency_us: int(7)?.clamp(0, i64::from(u32::MAX)) as u32,
        reason: r.get(8)?,
    })
}

/// An hour's state as the database holds it (a previous run, an earlier
/// transaction), so counting goes on where it stopped.
fn load_hour(conn: &Connection, hour: i64) -> rusqlite::Result<HourState> {
    let stored: Option<Vec<u8>> = conn
        .prepare_cached("SELECT domains FROM hour_sketches WHERE hour = ?1")?
        .query_row([hour], |r| r.get(0))
        .optional()?;
    let mut h = HourState {
        sketch: stored.map(|b| Sketch::from_bytes(&b)).unwrap_or_default(),
        sketch_dirty: false,
        top: [TopCounter::new(TOP_CAP[0]), TopCounter::new(TOP_CAP[1])],
        written: [IdMap::default(), IdMap::default()],
    };
    for kind in 0..2 {
        let mut st = conn.prepare_cached(
            "SELECT domain, n FROM hour_domains WHERE blocked = ?1 AND hour = ?2",
        )?;
        let mut rows = st.query(params![kind as i64, hour])?;
        while let Some(r) = rows.next()? {
            let (domain, n): (i64, i64) = (r.get(0)?, r.get(1)?);
            h.top[kind].add(domain, n.max(0) as u64);
            h.written[kind].insert(domain, n.max(0) as u64);
        }
    }
    Ok(h)
}

/// Makes the hour's rows in `hour_domains` its current top entries,
/// writing only what changed.
fn write_top(
    conn: &Connection,
    hour: i64,
    kind: usize,
    top: &TopCounter,
    written: &mut IdMap<i64, u64>,
) -> rusqlite::Result<()> {
    let best = top.top(stats::TOP_PER_HOUR as usize);
    let mut upsert = conn.prepare_cached(
        "INSERT INTO hour_domains (blocked, hour, domain, n) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (blocked, hour, domain) DO UPDATE SET n = excluded.n",
    )?;
    let mut keep = IdMap::<i64, u64>::default();
    for c in &best {
        if written.get(&c.id) != Some(&c.count) {
            upsert.execute(params![kind as i64, hour, c.id, c.count as i64])?;
        }
        keep.insert(c.id, c.count);
    }
    let mut delete = conn.prepare_cached(
        "DELETE FROM hour_domains WHERE blocked = ?1 AND hour = ?2 AND domain = ?3",
    )?;
    for id in written.keys().filter(|id| !keep.contains_key(id)) {
        delete.execute(params![kind as i64, hour, id])?;
    }
    *written = keep;
    Ok(())
}

fn write_rollup(tx: &Connection, roll: &Rollup) -> rusqlite::Result<()> {
    for (table, key, map) in [
        ("minute_counts", "minute", &roll.minutes),
        ("hour_counts", "hour", &roll.hours),
    ] {
        let mut st = tx.prepare_cached(&format!(
            "INSERT INTO {table} ({key}, cache, upstream, local, blocked, stale, refused, failed, latency_us)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT ({key}) DO UPDATE SET
               cache = cache + excluded.cache, upstream = upstream + excluded.upstream,
               local = local + excluded.local, blocked = blocked + excluded.blocked,
               stale = stale + excluded.stale, refused = refused + excluded.refused,
               failed = failed + excluded.failed, latency_us = latency_us + excluded.latency_us"
        ))?;
        for (k, c) in map {
            st.execute(params![k, c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])?;
        }
    }
    let mut st = tx.prepare_cached(
        "INSERT INTO hour_clients (hour, client, n, blocked) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (hour, client) DO UPDATE SET n = n + excluded.n, blocked = blocked + excluded.blocked",
    )?;
    for ((hour, client), (n, blocked)) in &roll.clients {
        st.execute(params![hour, client, n, blocked])?;
    }
    let mut st = tx.prepare_cached(
        "INSERT INTO hour_qtypes (hour, qtype, n) VALUES (?1, ?2, ?3)
         ON CONFLICT (hour, qtype) DO UPDATE SET n = n + excluded.n",
    )?;
    for ((hour, qtype), n) in &roll.qtypes {
        st.execute(params![hour, qtype, n])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_cache_stays_its_size_and_keeps_hot_names() {
        let mut cache = NameCache::new();
        let bytes = cache.bytes();
        cache.insert("hot.example", 1, 10);
        for i in 0..100_000i64 {
            cache.insert(&format!("flood{i}.example"), i + 2, 10);
            // The hot name is asked for all along, as a household's are.
            if i % 8 == 0 {
                assert_eq!(cache.get("hot.example"), Some((1, 10)), "after {i}");
            }
        }
        assert_eq!(cache.bytes(), bytes, "fixed size, whatever came through");
        assert_eq!(cache.get("flood99999.example"), Some((100_001, 10)));
        // Names too long for a slot are looked up in the table instead.
        let long = "x".repeat(NAME_MAX + 1);
        cache.insert(&long, 7, 10);
        assert_eq!(cache.get(&long), None);
        cache.remove("hot.example");
        assert_eq!(cache.get("hot.example"), None);
    }

    #[test]
    fn the_name_hash_reads_the_tail_as_a_zero_padded_word() {
        // Each 8-byte chunk copied into a zeroed word, byte by byte.
        fn reference(name: &[u8]) -> u64 {
            let mut h = 0xCBF2_9CE4_8422_2325u64 ^ name.len() as u64;
            for chunk in name.chunks(8) {
                let mut w = [0u8; 8];
                w[..chunk.len()].copy_from_slice(chunk);
                h = (h ^ u64::from_le_bytes(w)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                h ^= h >> 29;
            }
            h | 1
        }
        let text: Vec<u8> = (0..64).map(|i| b'a' + (i * 7 % 26) as u8).collect();
        for len in 0..=text.len() {
            let name = &text[..len];
            assert_eq!(name_hash(name), reference(name), "{len} bytes");
        }
    }

    #[test]
    fn a_block_lists_each_client_once() {
        let row = |client| Row {
            key: 0,
            domain: 1,
            client,
            qtype: 1,
            rcode: 0,
            status: 0,
            upstream: None,
            latency_us: 0,
            reason: None,
        };
        let rows: Vec<Row> = [3, 1, 3, i64::MAX, 0, -4, 1, i64::MAX, 5000, 3]
            .into_iter()
            .map(row)
            .collect();
        let (mut seen, mut out) = (Vec::new(), Vec::new());
        distinct_clients(&rows, &mut seen, &mut out);
        out.sort_unstable();
        assert_eq!(out, [-4, 0, 1, 3, 5000, i64::MAX]);
        assert!(seen.iter().all(|&s| !s), "left clear for the next block");
        distinct_clients(&rows[..2], &mut seen, &mut out);
        assert_eq!(out, [3, 1]);
    }
}
