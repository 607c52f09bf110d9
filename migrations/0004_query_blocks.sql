-- Rows stored in blocks: one row here holds up to a thousand queries in
-- key order (src/querylog/block.rs), so SQLite does its b-tree work once
-- per block instead of once per query. The writer moves rows an older
-- build left in `queries` into blocks and empties that table; the table
-- stays, for a rolled-back build to write into (README.md).

-- id is the first row's key and last the last row's; blocks never
-- overlap, so key order of blocks is key order of rows.
CREATE TABLE query_blocks (
    id   INTEGER PRIMARY KEY,
    last INTEGER NOT NULL,
    rows INTEGER NOT NULL,
    data BLOB NOT NULL
);
-- Which clients have rows in which block (one row per client and block,
-- not per query): a log page for one device reads only its blocks.
CREATE TABLE block_clients (
    client INTEGER NOT NULL,
    block  INTEGER NOT NULL,
    PRIMARY KEY (client, block)
) WITHOUT ROWID;
-- Which uncommon outcomes (status >= 2: local, blocked, stale, refused,
-- failed) appear in which block.
CREATE TABLE block_statuses (
    status INTEGER NOT NULL,
    block  INTEGER NOT NULL,
    PRIMARY KEY (status, block)
) WITHOUT ROWID;
