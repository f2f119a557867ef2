-- More room in each page of the largest tables, so that an unchanged re-sync marking every row
-- seen (last_seen_run) is a HOT update for all of them, not for some: with 0007's 70, a page
-- whose rows are all marked in one batch holds new versions for about 40% of them and the rest
-- insert into every index (users: five). Measured (100,000 users, batches of 3,000, the update
-- of rostersync_writer/unchanged.py, without change capture): fillfactor 70: 43-60% HOT,
-- 17-29 µs a row; 45: 100% HOT, 14-19 µs a row. The tables grow on disk by about half; the
-- setting applies to pages written from now on (an existing table keeps its pages until it is
-- rewritten, e.g. by VACUUM FULL).
ALTER TABLE users SET (fillfactor = 45);
ALTER TABLE enrollments SET (fillfactor = 45);
ALTER TABLE demographics SET (fillfactor = 45);
