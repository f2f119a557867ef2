-- Per file (or REST collection), the records a source's selection skipped (not published, not
-- rejected) and the references to records outside it trimmed from kept records
-- (rostersync_fetcher/selection.py).
ALTER TABLE sync_runs ADD COLUMN skipped_by_selection jsonb;
ALTER TABLE sync_runs ADD COLUMN trimmed_by_selection jsonb;
