-- Exact top domains for every dashboard range (docs/querylog.md, "Which
-- figures are estimates"). See README.md for the rules.

-- Per (day, domain): the day's queries and blocked queries of the domain.
-- NULL in rows an older build wrote; a day's counts are complete only
-- where `day_top_cutoffs` lists the day.
ALTER TABLE domain_days ADD COLUMN n INTEGER;
ALTER TABLE domain_days ADD COLUMN blocked INTEGER;

-- Per hour and kind (blocked = 0: all queries; 1: blocked only): the
-- largest count of a domain the hour's `hour_domains` rows leave out
-- (0: they list every domain). A row here says the hour's list holds
-- exact counts of its rows below `meta`'s `derived_to`.
CREATE TABLE hour_top_cutoffs (
    blocked INTEGER NOT NULL,
    hour    INTEGER NOT NULL,
    cutoff  INTEGER NOT NULL,
    PRIMARY KEY (blocked, hour)
) WITHOUT ROWID;

-- The same per closed day for `day_domains`: a row here says the day's
-- list holds exact counts, taken from `domain_days`, and that the day's
-- `domain_days` counts are complete.
CREATE TABLE day_top_cutoffs (
    blocked INTEGER NOT NULL,
    day     INTEGER NOT NULL,
    cutoff  INTEGER NOT NULL,
    PRIMARY KEY (blocked, day)
) WITHOUT ROWID;
