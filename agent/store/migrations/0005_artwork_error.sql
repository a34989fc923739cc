-- 0005: why an item's artwork is missing. Enrichment saves fields and publishes at once; artwork is its
-- own retryable job per item. When its retries are spent (an image host refusing connections, fanart.tv
-- down) the reason is kept here, shown by the API and the dashboard, and a later enrich or scan tries
-- again. NULL: the artwork is fine (or was never asked for).
ALTER TABLE movies ADD COLUMN artwork_error TEXT;
ALTER TABLE series ADD COLUMN artwork_error TEXT;
ALTER TABLE episodes ADD COLUMN artwork_error TEXT;
CREATE INDEX ix_movies_artwork_error ON movies(id) WHERE artwork_error IS NOT NULL;
CREATE INDEX ix_series_artwork_error ON series(id) WHERE artwork_error IS NOT NULL;
CREATE INDEX ix_episodes_artwork_error ON episodes(id) WHERE artwork_error IS NOT NULL;
