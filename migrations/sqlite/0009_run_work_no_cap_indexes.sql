-- One process uses an SQLite file, so its claims count no caps (see `Store::claim_work`): the
-- indexes of live claims by run and by endpoint served only those counts, and every claim and
-- every stored result paid for keeping them (each claimed item entered both, each finished one
-- left both). The claims of one owner (`run_work_by_owner`) are still renewed and released.
DROP INDEX run_work_claimed_by_run;
DROP INDEX run_work_claimed_by_endpoint;
