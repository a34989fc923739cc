-- 0007: where work came from. `chain` orders a job next to the item it belongs to (each item's lookup
-- starts its own chain, so its publish runs before the next item's lookup); `origin` names the job
-- that started the whole piece of work (the scan or webhook that found the item), so the dashboard can
-- still show a scan with every job it caused. NULL: the job was asked for directly (API, CLI, schedule).
ALTER TABLE job_queue ADD COLUMN origin INTEGER;
UPDATE job_queue SET origin = chain WHERE chain IS NOT NULL;
CREATE INDEX ix_job_origin ON job_queue(origin, type, status) WHERE origin IS NOT NULL;
