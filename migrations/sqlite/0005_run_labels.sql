-- Labels of runs (`branch`, `commit`, `pr`, ...), also kept in the run's body: one row per label
-- so that lists and LastRun find the runs carrying given labels through an index.
CREATE TABLE run_labels (
    run_id TEXT NOT NULL REFERENCES test_runs (id) ON DELETE CASCADE,
    key    TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;
CREATE INDEX run_labels_by_label ON run_labels (key, value);
