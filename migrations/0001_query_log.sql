-- The query log: one row per answered query, strings interned, plus the
-- roll-ups the dashboard reads. See README.md for the rules.

-- Counters kept exact by the writer in the same transaction as the rows
-- (COUNT(*) over millions of rows is too slow for a status page).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO meta (key, value) VALUES ('rows', 0);

CREATE TABLE domains (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);

CREATE TABLE clients (
    id   INTEGER PRIMARY KEY,
    addr TEXT NOT NULL UNIQUE
);

-- id is the time key: (Unix ms - 2024-01-01) * 256 + a sequence number, so
-- key order is time order and a time range is a rowid range (no time index).
-- Small integers and NULLs cost no bytes in SQLite's record format, which
-- keeps a row near 25 bytes.
CREATE TABLE queries (
    id         INTEGER PRIMARY KEY,
    domain     INTEGER NOT NULL,
    client     INTEGER NOT NULL,
    qtype      INTEGER NOT NULL,
    rcode      INTEGER NOT NULL,
    -- events::Source as u8: 0 cache, 1 upstream, 2 local, 3 blocked,
    -- 4 stale, 5 refused, 6 failed
    status     INTEGER NOT NULL,
    -- index into the configured upstream list; NULL: none
    upstream   INTEGER,
    latency_us INTEGER NOT NULL,
    -- events::Reason packed as id << 16 | kind << 8 | cname_depth; NULL: none
    reason     INTEGER
);
-- "What is this device talking to?": one client's queries, newest first.
CREATE INDEX queries_client ON queries (client, id);
-- The uncommon outcomes (everything but cache and upstream answers), so a
-- log filtered on blocked/failed/... never walks the common rows.
CREATE INDEX queries_uncommon_status ON queries (status, id) WHERE status >= 2;

-- Roll-ups. minute and hour are Unix minutes / hours (ms / 60000, ms / 3600000).
CREATE TABLE minute_counts (
    minute     INTEGER PRIMARY KEY,
    cache      INTEGER NOT NULL,
    upstream   INTEGER NOT NULL,
    local      INTEGER NOT NULL,
    blocked    INTEGER NOT NULL,
    stale      INTEGER NOT NULL,
    refused    INTEGER NOT NULL,
    failed     INTEGER NOT NULL,
    latency_us INTEGER NOT NULL
);
CREATE TABLE hour_counts (
    hour       INTEGER PRIMARY KEY,
    cache      INTEGER NOT NULL,
    upstream   INTEGER NOT NULL,
    local      INTEGER NOT NULL,
    blocked    INTEGER NOT NULL,
    stale      INTEGER NOT NULL,
    refused    INTEGER NOT NULL,
    failed     INTEGER NOT NULL,
    latency_us INTEGER NOT NULL
);
-- Per hour, the most queried domains (blocked = 0: all queries; 1: blocked
-- only). The writer keeps every domain while the hour is open and trims a
-- closed hour to its top entries.
CREATE TABLE hour_domains (
    blocked INTEGER NOT NULL,
    hour    INTEGER NOT NULL,
    domain  INTEGER NOT NULL,
    n       INTEGER NOT NULL,
    PRIMARY KEY (blocked, hour, domain)
) WITHOUT ROWID;
-- Per hour, every client (a household has tens, not thousands).
CREATE TABLE hour_clients (
    hour    INTEGER NOT NULL,
    client  INTEGER NOT NULL,
    n       INTEGER NOT NULL,
    blocked INTEGER NOT NULL,
    PRIMARY KEY (hour, client)
) WITHOUT ROWID;
CREATE TABLE hour_qtypes (
    hour  INTEGER NOT NULL,
    qtype INTEGER NOT NULL,
    n     INTEGER NOT NULL,
    PRIMARY KEY (hour, qtype)
) WITHOUT ROWID;
-- Per hour, a HyperLogLog sketch of the distinct domains, so "unique domains"
-- over any range is a merge of a few sketches.
CREATE TABLE hour_sketches (
    hour    INTEGER PRIMARY KEY,
    domains BLOB NOT NULL
);
