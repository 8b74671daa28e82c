-- One row that the health check rewrites every second: a database that cannot be written (a
-- read-only file or folder, a full disk) is found before a run's results are lost to it.
CREATE TABLE health_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    checked_at BIGINT NOT NULL
);
