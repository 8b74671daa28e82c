-- One result per test of a run, whatever happens: a run resumed after a crash or a stop skips
-- the tests that have a result, and this index makes a second one impossible even if it did not.
-- On the test id inside `body`, so that rows and inserts stay as they are.
CREATE UNIQUE INDEX test_results_one_per_test
    ON test_results (run_id, json_extract(body, '$.test_id'));
