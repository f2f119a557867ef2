-- The partial "sweep" indexes of version 4 cost more than they save: every upsert maintains them,
-- while a sweep runs once per completed run. Measured with benchmarks/writer_throughput.py
-- (200k enrollments, 2 cores): 15.3k rows/s with the index, 16.6k without; the gap grows with the
-- table. A sweep without them scans the tenant's rows once per run.
DROP INDEX IF EXISTS orgs_sweep;
DROP INDEX IF EXISTS users_sweep;
DROP INDEX IF EXISTS enrollments_sweep;
DROP INDEX IF EXISTS classes_sweep;
