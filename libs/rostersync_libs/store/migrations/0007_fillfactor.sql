-- Leave room in each page so re-writing an unchanged row (a re-sync bumps last_seen_run) can be a
-- HOT update: no index entry is touched when no indexed column changes.
-- Measured (benchmarks/writer_throughput.py, 200k enrollments, 2 runs each, noisy machine):
-- without: first load 9.4-10.7k rows/s, unchanged re-sync 8.5-9.7k; with: 9.9-11.4k and 9.8-11.4k.
ALTER TABLE orgs SET (fillfactor = 70);
ALTER TABLE academic_sessions SET (fillfactor = 70);
ALTER TABLE courses SET (fillfactor = 70);
ALTER TABLE classes SET (fillfactor = 70);
ALTER TABLE users SET (fillfactor = 70);
ALTER TABLE enrollments SET (fillfactor = 70);
ALTER TABLE demographics SET (fillfactor = 70);
ALTER TABLE user_roles SET (fillfactor = 70);
ALTER TABLE user_profiles SET (fillfactor = 70);
