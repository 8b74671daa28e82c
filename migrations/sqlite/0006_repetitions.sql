-- Repeats: a test may run several times in one run, each result naming its repetition
-- (0-based; every result stored before repeats existed is repetition 0). One result per
-- repetition of a test, whatever happens: a resumed run skips the repetitions that have one.
ALTER TABLE test_results ADD COLUMN repetition INTEGER NOT NULL DEFAULT 0;
DROP INDEX test_results_one_per_test;
CREATE UNIQUE INDEX test_results_one_per_repetition
    ON test_results (run_id, test_id, repetition);
-- The result's status in a column of its own, so that the end of a repeated run counts each
-- test's passing, failing and errored repetitions with a GROUP BY instead of reading bodies.
ALTER TABLE test_results ADD COLUMN status TEXT NOT NULL DEFAULT '';
UPDATE test_results SET status = json_extract(body, '$.status');
