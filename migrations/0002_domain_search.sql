-- Substring search over domain names ("show me everything with 'tiktok'")
-- through a trigram index instead of scanning every name. External content:
-- the names are stored once, in domains.
CREATE VIRTUAL TABLE domain_trigrams USING fts5 (
    name,
    content = 'domains',
    content_rowid = 'id',
    tokenize = 'trigram',
    detail = 'none'
);
-- Backfill the names a version-1 database already holds.
INSERT INTO domain_trigrams (domain_trigrams) VALUES ('rebuild');
