-- 0002: chain ordering. A follow-up job carries the id of the job that started its chain, and
-- equal-priority jobs run by (chain, id): a webhook's scan -> enrich -> publish -> notify finish
-- together instead of every enrich of a 1,000-movie burst running before the first publish.
-- NULL means the job starts its own chain (ordered by its own id, as before).
ALTER TABLE job_queue ADD COLUMN chain INTEGER;
DROP INDEX ix_job_claim;
-- Matches the claim's ORDER BY exactly (an expression index), so no claim sorts the pending set.
CREATE INDEX ix_job_claim ON job_queue(priority, coalesce(chain, id), id) WHERE status = 'pending';
