-- Assay schema, PostgreSQL flavour: the same tables, columns and indexes as the SQLite flavour
-- (migrations/sqlite, all three steps), so that the queries of src/store/sql.rs serve both.
-- Every table keeps the whole domain value as JSON text in `body`; the other columns exist only
-- for lookups, uniqueness, filters and ordering, and are written together with `body`. `seq` is
-- the creation order and the paging cursor; identity values are never reused, so a cursor stays
-- valid across deletes.

-- ---- catalogue
CREATE TABLE metrics (
    seq  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id   TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL
);

CREATE TABLE behaviors (
    seq  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id   TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL
);

CREATE TABLE endpoints (
    seq  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id   TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL
);

CREATE TABLE test_sets (
    seq  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id   TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL
);

-- Tests belong to their test set and go with it; test-set order is insertion order (`seq`).
CREATE TABLE tests (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    test_set_id TEXT NOT NULL REFERENCES test_sets (id) ON DELETE CASCADE,
    behavior_id TEXT,
    body        TEXT NOT NULL
);
CREATE INDEX tests_by_test_set ON tests (test_set_id, seq);
CREATE INDEX tests_by_behavior ON tests (behavior_id) WHERE behavior_id IS NOT NULL;

-- ---- runs and results
-- No foreign keys to test_sets or endpoints: runs outlive the test sets and endpoints they used.
CREATE TABLE test_runs (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    test_set_id TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    status      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    finished_at BIGINT, -- microseconds since the Unix epoch, so it orders numerically
    body        TEXT NOT NULL
);
CREATE INDEX test_runs_by_test_set ON test_runs (test_set_id, seq);
CREATE INDEX test_runs_by_endpoint ON test_runs (endpoint_id, seq);
CREATE INDEX test_runs_latest ON test_runs (test_set_id, endpoint_id, status, finished_at);
CREATE INDEX test_runs_by_status ON test_runs (status);

CREATE TABLE test_results (
    seq     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id      TEXT NOT NULL UNIQUE,
    run_id  TEXT NOT NULL REFERENCES test_runs (id) ON DELETE CASCADE,
    test_id TEXT NOT NULL,
    body    TEXT NOT NULL
);
CREATE INDEX test_results_by_run ON test_results (run_id, seq);
-- One result per test of a run, whatever happens (a resumed run skips the tests that have one).
CREATE UNIQUE INDEX test_results_one_per_test ON test_results (run_id, test_id);
