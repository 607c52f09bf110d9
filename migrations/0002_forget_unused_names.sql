-- Retention forgets names no stored row uses any more: each name records
-- the last Unix day (ms / 86400000) a row used it. Names already stored
-- count as seen on the newest day with rows, kept until that day ages out.
ALTER TABLE domains ADD COLUMN last_seen INTEGER NOT NULL DEFAULT 0;
UPDATE domains SET last_seen =
    coalesce((SELECT max(hour) FROM hour_counts) / 24, 0);
CREATE INDEX domains_last_seen ON domains (last_seen);
