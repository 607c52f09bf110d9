-- Retention forgets names no stored row uses any more: each name records
-- the last Unix hour a row used it. Names already stored count as seen in
-- the newest hour with rows, so they are kept until that hour ages out.
ALTER TABLE domains ADD COLUMN last_seen INTEGER NOT NULL DEFAULT 0;
UPDATE domains SET last_seen =
    coalesce((SELECT max(hour) FROM hour_counts), 0);
CREATE INDEX domains_last_seen ON domains (last_seen);
