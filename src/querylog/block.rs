//! The stored form of the log's rows: a block of rows in key order packed
//! into one blob (`query_blocks.data`), so SQLite does its b-tree work once
//! per block instead of once per query.
//!
//! Layout: a format byte, the row count and the first key (varints), then
//! per row a flags byte (status, which optional fields follow, the common
//! query types), the key as a delta from the previous row's key, the
//! domain and client ids, the latency, and the optional fields. Ids and the
//! packed rule are zigzag varints, so any `i64` round-trips (a database
//! from an older build may hold anything). A query at a household's rate
//! takes 8 to 12 bytes.
//!
//! Storing blocks as SQLite rows (writing, merging, deleting, the day
//! markers) is `block/store.rs`.
//!
//! Not for: choosing which blocks to read (`stats.rs`) or when to write
//! one (`writer.rs`).

pub(super) mod domain_index;
pub(super) mod store;

/// A row as stored, its names already ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Row {
    pub key: i64,
    pub domain: i64,
    pub client: i64,
    pub qtype: u16,
    pub rcode: u8,
    /// `events::Source` as u8.
    pub status: u8,
    pub upstream: Option<u8>,
    pub latency_us: u32,
    /// `RuleRef::pack`.
    pub reason: Option<i64>,
}

const FORMAT: u8 = 1;

// The flags byte: status in the low three bits, then what follows.
const UPSTREAM: u8 = 1 << 3;
const REASON: u8 = 1 << 4;
const RCODE: u8 = 1 << 5;
/// Bits 6-7: the query type, 0-2 for the three that make up ~95 % of
/// queries, 3 when a varint follows.
const QTYPE_SHIFT: u32 = 6;
const COMMON_QTYPES: [u16; 3] = [1, 28, 65];

/// Why a blob is not a block; the reader skips it with a warning.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error("unknown block format {0}")]
    Format(u8),
    #[error("cut short at byte {0}")]
    Truncated(usize),
    #[error("bad number at byte {0}")]
    BadVarint(usize),
    #[error("row keys out of order at row {0}")]
    Order(usize),
    #[error("{0} bytes after the last row")]
    Trailing(usize),
    #[error("a value out of range at byte {0}")]
    Range(usize),
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    (v >> 1) as i64 ^ -((v & 1) as i64)
}

/// One row's bytes, at most: flags, the key delta, domain, client,
/// latency and reason as varints of up to ten bytes, the qtype varint,
/// rcode and upstream. The block's header (format byte and two varints)
/// fits too.
const ROW_MAX: usize = 1 + 5 * 10 + 3 + 2;

/// A row's bytes (or the block's header), put together on the stack and
/// appended to the block at once (pushing each byte onto the block was
/// most of encoding).
struct RowBytes {
    b: [u8; ROW_MAX],
    n: usize,
}

impl RowBytes {
    fn new() -> RowBytes {
        RowBytes {
            b: [0; ROW_MAX],
            n: 0,
        }
    }

    fn append_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.b[..self.n]);
    }

    fn byte(&mut self, v: u8) {
        self.b[self.n] = v;
        self.n += 1;
    }

    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.byte(v as u8 | 0x80);
            v >>= 7;
        }
        self.byte(v as u8);
    }
}

/// Appends the block of `rows` (keys strictly increasing) to `out`.
pub(super) fn encode(rows: &[Row], out: &mut Vec<u8>) {
    out.reserve(8 + rows.len() * 12);
    let mut prev = rows.first().map_or(0, |r| r.key);
    let mut head = RowBytes::new();
    head.byte(FORMAT);
    head.varint(rows.len() as u64);
    head.varint(zigzag(prev));
    head.append_to(out);
    for r in rows {
        debug_assert!(r.key >= prev, "rows in key order");
        let q = COMMON_QTYPES
            .iter()
            .position(|&t| t == r.qtype)
            .unwrap_or(3) as u8;
        let flags = (r.status & 7)
            | if r.upstream.is_some() { UPSTREAM } else { 0 }
            | if r.reason.is_some() { REASON } else { 0 }
            | if r.rcode != 0 { RCODE } else { 0 }
            | q << QTYPE_SHIFT;
        let mut row = RowBytes::new();
        row.byte(flags);
        row.varint(r.key.wrapping_sub(prev) as u64);
        prev = r.key;
        row.varint(zigzag(r.domain));
        row.varint(zigzag(r.client));
        row.varint(u64::from(r.latency_us));
        if q == 3 {
            row.varint(u64::from(r.qtype));
        }
        if r.rcode != 0 {
            row.byte(r.rcode);
        }
        if let Some(u) = r.upstream {
            row.byte(u);
        }
        if let Some(reason) = r.reason {
            row.varint(zigzag(reason));
        }
        row.append_to(out);
    }
}

/// A checked reader over a blob: every access can fail, none can panic.
struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn byte(&mut self) -> Result<u8, BlockError> {
        let v = *self.b.get(self.at).ok_or(BlockError::Truncated(self.at))?;
        self.at += 1;
        Ok(v)
    }

    fn varint(&mut self) -> Result<u64, BlockError> {
        let start = self.at;
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            if shift == 63 && b > 1 {
                return Err(BlockError::BadVarint(start));
            }
            v |= u64::from(b & 0x7F) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(BlockError::BadVarint(start))
    }

    fn narrow<T: TryFrom<u64>>(&mut self) -> Result<T, BlockError> {
        let at = self.at;
        T::try_from(self.varint()?).map_err(|_| BlockError::Range(at))
    }
}

/// The rows of a block, appended to `out` (left as it was on error).
pub(super) fn decode_into(data: &[u8], out: &mut Vec<Row>) -> Result<(), BlockError> {
    let start_len = out.len();
    let result = decode_rows(data, out);
    if result.is_err() {
        out.truncate(start_len);
    }
    result
}

pub(super) fn decode(data: &[u8]) -> Result<Vec<Row>, BlockError> {
    let mut out = Vec::new();
    decode_into(data, &mut out)?;
    Ok(out)
}

fn decode_rows(data: &[u8], out: &mut Vec<Row>) -> Result<(), BlockError> {
    let mut c = Cursor { b: data, at: 0 };
    let format = c.byte()?;
    if format != FORMAT {
        return Err(BlockError::Format(format));
    }
    let n = c.varint()?;
    // Each row takes at least five bytes: a count larger than that is a
    // damaged blob, not a reason to reserve gigabytes.
    if n > (data.len() as u64) / 5 + 1 {
        return Err(BlockError::Range(1));
    }
    out.reserve(n as usize);
    let mut key = unzigzag(c.varint()?);
    for i in 0..n as usize {
        let flags = c.byte()?;
        let delta = c.varint()?;
        if i > 0 && delta == 0 {
            return Err(BlockError::Order(i));
        }
        key = key
            .checked_add_unsigned(delta)
            .ok_or(BlockError::Order(i))?;
        let domain = unzigzag(c.varint()?);
        let client = unzigzag(c.varint()?);
        let latency_us = c.narrow::<u32>()?;
        let q = flags >> QTYPE_SHIFT;
        let qtype = match COMMON_QTYPES.get(usize::from(q)) {
            Some(&t) => t,
            None => c.narrow::<u16>()?,
        };
        let rcode = if flags & RCODE != 0 { c.byte()? } else { 0 };
        let upstream = if flags & UPSTREAM != 0 {
            Some(c.byte()?)
        } else {
            None
        };
        let reason = if flags & REASON != 0 {
            Some(unzigzag(c.varint()?))
        } else {
            None
        };
        out.push(Row {
            key,
            domain,
            client,
            qtype,
            rcode,
            status: flags & 7,
            upstream,
            latency_us,
            reason,
        });
    }
    if c.at != data.len() {
        return Err(BlockError::Trailing(data.len() - c.at));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Rng;

    fn random_rows(rng: &mut Rng, n: usize) -> Vec<Row> {
        let mut key = rng.pick(&[i64::MIN, -5, 0, 1 << 50, 1_234_567_890_123]);
        let mut rows = Vec::with_capacity(n);
        for i in 0..n {
            if i > 0 {
                // Neighbours, a millisecond apart, hours apart, and gaps
                // as large as the key space allows.
                let gap = rng.pick(&[1u64, 2, 256, 1 << 30, 1 << 62, u64::MAX]);
                match key.checked_add_unsigned(gap) {
                    Some(k) => key = k,
                    None => break,
                }
            }
            let ids = [0i64, 1, 127, 128, 300_000, -1, i64::MIN, i64::MAX];
            rows.push(Row {
                key,
                domain: rng.pick(&ids),
                client: rng.pick(&ids),
                qtype: rng.pick(&[1u16, 28, 65, 0, 16, 255, u16::MAX]),
                rcode: rng.pick(&[0u8, 2, 3, u8::MAX]),
                status: rng.pick(&[0u8, 1, 2, 3, 4, 5, 6]),
                upstream: rng.pick(&[None, Some(0u8), Some(1), Some(u8::MAX)]),
                latency_us: rng.pick(&[0u32, 15, 4_000, 2_000_000, u32::MAX]),
                reason: rng.pick(&[None, Some(0i64), Some(7 << 16 | 1 << 8), Some(i64::MIN)]),
            });
        }
        rows
    }

    #[test]
    fn the_stored_bytes_of_two_rows() {
        let plain = Row {
            key: 1000,
            domain: 5,
            client: 2,
            qtype: 1,
            rcode: 0,
            status: 0,
            upstream: None,
            latency_us: 15,
            reason: None,
        };
        let everything = Row {
            key: 1300,
            domain: -1,
            client: 300,
            qtype: 16,
            rcode: 3,
            status: 3,
            upstream: Some(1),
            latency_us: 200,
            reason: Some(7),
        };
        let mut blob = Vec::new();
        encode(&[plain, everything], &mut blob);
        #[rustfmt::skip]
        let want = [
            FORMAT, 2, 0xD0, 0x0F, // two rows from key 1000 (zigzag 2000)
            0x00, 0x00, 0x0A, 0x04, 0x0F, // flags, +0, domain 5, client 2, 15 µs
            0xFB, 0xAC, 0x02, 0x01, 0xD8, 0x04, 0xC8, 0x01, // flags, +300, -1, 300, 200 µs
            0x10, 0x03, 0x01, 0x0E, // qtype 16, rcode 3, upstream 1, reason 7
        ];
        assert_eq!(blob, want);
        assert_eq!(decode(&blob), Ok(vec![plain, everything]));
    }

    #[test]
    fn random_rows_round_trip() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for round in 0..500 {
            let n = rng.pick(&[0usize, 1, 2, 17, 1024]);
            let rows = random_rows(&mut rng, n);
            let mut blob = Vec::new();
            encode(&rows, &mut blob);
            assert_eq!(decode(&blob), Ok(rows), "round {round}");
        }
    }

    #[test]
    fn a_block_of_household_traffic_is_small() {
        let base = 700_000_000_000i64 << 8;
        let rows: Vec<Row> = (0..1024)
            .map(|i| Row {
                key: base + i * 40 * 256,
                domain: 1000 + i % 300,
                client: i % 20,
                qtype: if i % 3 == 0 { 28 } else { 1 },
                rcode: 0,
                status: (i % 2) as u8,
                upstream: (i % 2 == 1).then_some(0),
                latency_us: 20 + (i % 50) as u32,
                reason: None,
            })
            .collect();
        let mut blob = Vec::new();
        encode(&rows, &mut blob);
        assert!(blob.len() < 1024 * 10, "{} bytes", blob.len());
        assert_eq!(decode(&blob).unwrap(), rows);
    }

    #[test]
    fn truncated_or_damaged_blobs_are_errors_never_panics() {
        let mut rng = Rng(42);
        let rows = random_rows(&mut rng, 200);
        let mut blob = Vec::new();
        encode(&rows, &mut blob);
        for cut in 0..blob.len() {
            assert!(decode(&blob[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = blob.clone();
        longer.push(0);
        assert_eq!(decode(&longer), Err(BlockError::Trailing(1)));
        // Flipped bytes: an error or some rows, but never a panic, and a
        // failed decode leaves what the caller had.
        for i in 0..blob.len() {
            for bit in [0x01u8, 0x80, 0xFF] {
                let mut bad = blob.clone();
                bad[i] ^= bit;
                let mut out = vec![rows[0]];
                if decode_into(&bad, &mut out).is_err() {
                    assert_eq!(out, vec![rows[0]]);
                }
            }
        }
        assert_eq!(decode(&[9, 0, 0]), Err(BlockError::Format(9)));
        assert!(decode(&[FORMAT, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0]).is_err());
        assert!(
            decode(&[
                FORMAT, 1, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01
            ])
            .is_err()
        );
        let zero_delta = [FORMAT, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(decode(&zero_delta), Err(BlockError::Order(1)));
    }
}
