-- The items of a RUNNING run that have no result yet (a test of the set, or a result of the source
-- run, by position), and which replica works on each until when (Unix milliseconds). A row is
-- deleted by the transaction that stores its result, so a run is done when it has no rows left.
CREATE TABLE run_work (
    run_id      TEXT NOT NULL REFERENCES test_runs (id) ON DELETE CASCADE,
    position    BIGINT NOT NULL,
    -- The endpoint the item calls, so its max_concurrency can hold across runs and replicas.
    endpoint_id TEXT,
    owner       TEXT,
    lease_until BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, position)
) WITHOUT ROWID;
CREATE INDEX run_work_claimed_by_endpoint ON run_work (endpoint_id, lease_until)
    WHERE owner IS NOT NULL;
CREATE INDEX run_work_by_owner ON run_work (owner) WHERE owner IS NOT NULL;

-- When the next call of each rate-limited endpoint may start (Unix microseconds): replicas
-- sharing the database keep an endpoint's rate together by each taking the next moment.
CREATE TABLE endpoint_pace (
    endpoint_id TEXT PRIMARY KEY,
    next_us     BIGINT NOT NULL
);
