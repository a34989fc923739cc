-- 0009: several agents on one store (PostgreSQL, store.url). Each agent owns the libraries in its config
-- (`libraries.agent`); a job that touches files carries the agent that must run it (`job_queue.agent`,
-- NULL: any agent). A running job holds a lease (`lease_until`) that its agent renews; when an agent dies
-- its jobs go back to pending once the lease has run out. `agents` is what each agent last said of itself
-- (GET /api/agents). On SQLite one agent owns everything: these columns stay NULL.
ALTER TABLE libraries ADD COLUMN agent TEXT;
ALTER TABLE job_queue ADD COLUMN agent TEXT;
ALTER TABLE job_queue ADD COLUMN lease_until REAL;
-- the agent that received a webhook: only it resumes the event if it stopped before queueing its job
ALTER TABLE webhook_events ADD COLUMN agent TEXT;
CREATE INDEX ix_job_lease ON job_queue(lease_until) WHERE status = 'running';
-- one running job per lock key (one scan per library), kept by the database itself: claims by two agents
-- at the same moment cannot both win
DROP INDEX ix_job_lock;
CREATE UNIQUE INDEX ux_job_running_lock ON job_queue(lock_key) WHERE status = 'running' AND lock_key IS NOT NULL;
CREATE TABLE agents (
    name        TEXT PRIMARY KEY,
    libraries   TEXT NOT NULL DEFAULT '[]',
    players     TEXT NOT NULL DEFAULT '[]',
    version     TEXT,
    started_at  REAL NOT NULL,
    last_seen   REAL NOT NULL,
    stopped_at  REAL
);
