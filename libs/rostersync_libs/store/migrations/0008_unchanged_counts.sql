-- Per entity, how many records of a run the application already held unchanged: the fetcher
-- sent them as compact lists instead of whole records (rostersync_fetcher/unchanged.py).
ALTER TABLE sync_runs ADD COLUMN unchanged_counts jsonb;
