-- The test id of a result in a column of its own, so that the one-result-per-test index does not
-- evaluate json_extract on the body of every result stored (see BENCHMARKS.md).
ALTER TABLE test_results ADD COLUMN test_id TEXT;
UPDATE test_results SET test_id = json_extract(body, '$.test_id');
DROP INDEX test_results_one_per_test;
CREATE UNIQUE INDEX test_results_one_per_test ON test_results (run_id, test_id);
