-- The live claims of one run, for the cap on a run's items in flight (`max_concurrency`): every
-- claim under a run cap counts them, and without this index that count read every item of the
-- run (a 100,000-test run claimed at 3.7 ms a claim; see BENCHMARKS.md).
CREATE INDEX run_work_claimed_by_run ON run_work (run_id, lease_until) WHERE owner IS NOT NULL;
