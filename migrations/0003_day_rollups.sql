-- Day roll-ups, so month-long dashboard ranges add up 30 rows per item
-- instead of 720. The writer fills a day once all its hours are closed
-- (and catches up on days from before this version the same way).
CREATE TABLE day_domains (
    blocked INTEGER NOT NULL,
    day     INTEGER NOT NULL,
    domain  INTEGER NOT NULL,
    n       INTEGER NOT NULL,
    PRIMARY KEY (blocked, day, domain)
) WITHOUT ROWID;
CREATE TABLE day_clients (
    day     INTEGER NOT NULL,
    client  INTEGER NOT NULL,
    n       INTEGER NOT NULL,
    blocked INTEGER NOT NULL,
    PRIMARY KEY (day, client)
) WITHOUT ROWID;
-- One row per closed day (an empty sketch for a day without queries): the
-- readers use day roll-ups only for days listed here.
CREATE TABLE day_sketches (
    day     INTEGER PRIMARY KEY,
    domains BLOB NOT NULL
);
