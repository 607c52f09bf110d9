-- Indexes for the two questions blocks alone answer only by decoding:
-- one domain over weeks, and which domains and upstreams answer slowest.
-- See README.md for the rules.

-- Which domains have rows in which hours: one row per domain and day,
-- `hours` a bit mask of the day's hours (bit h: hour h, UTC). A block never
-- spans two hours, so a search for a domain reads only the blocks of the
-- hours listed here. One row per (domain, day) costs a few bytes per query
-- where one per (domain, block) would cost more than the blocks themselves
-- (docs/querylog.md). Keyed by day first, so retention deletes a day's
-- rows as a range. The writer fills it for every block it writes; `meta`
-- row `domain_index_from` is the key from which every block is covered
-- (older blocks, and blocks an older build wrote after a rollback, are
-- searched by walking them).
CREATE TABLE domain_days (
    day    INTEGER NOT NULL,
    domain INTEGER NOT NULL,
    hours  INTEGER NOT NULL,
    PRIMARY KEY (day, domain)
) WITHOUT ROWID;

-- Per hour and upstream (index into the configured list): answers, the
-- sum and the maximum of their latency.
CREATE TABLE hour_upstreams (
    hour     INTEGER NOT NULL,
    upstream INTEGER NOT NULL,
    n        INTEGER NOT NULL,
    sum_us   INTEGER NOT NULL,
    max_us   INTEGER NOT NULL,
    PRIMARY KEY (hour, upstream)
) WITHOUT ROWID;

-- Per hour, the domains with the slowest single answers (whatever the
-- outcome): the hour's top `SLOW_PER_HOUR` by `max_us`, ties to the lower
-- domain id. The slowest n domains of any range of whole hours (n up to
-- that many) are exactly the top n of these rows' maxima.
CREATE TABLE hour_slow_domains (
    hour     INTEGER NOT NULL,
    domain   INTEGER NOT NULL,
    max_us   INTEGER NOT NULL,
    PRIMARY KEY (hour, domain)
) WITHOUT ROWID;
