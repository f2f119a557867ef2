-- rostersync schema, version 12: a run's end is verified against the fetcher's run events.

-- What the fetcher's run event declared (runs topic): the entities its complete bulk snapshots
-- cover, the only ones the run may sweep (NULL: an event of an older fetcher, which declared
-- none; the markers' word then, as before), and the partitions its markers went to.
ALTER TABLE sync_runs ADD COLUMN declared_bulk jsonb, ADD COLUMN declared_fanout int;

-- The marker as it arrived (hold values): a run may complete in a later batch than its markers,
-- when the fetcher's run event arrives after them. Its counts are part of the key: a marker
-- counts only when its counts are the ones the fetcher's run event published, so markers sent
-- ahead for a run (forged, without its counts) neither count nor keep the real ones out.
ALTER TABLE run_markers ADD COLUMN marker jsonb, ADD COLUMN counts jsonb NOT NULL DEFAULT '{}';
ALTER TABLE run_markers DROP CONSTRAINT run_markers_pkey;
ALTER TABLE run_markers ADD PRIMARY KEY (tenant_id, run_id, partition, origin_partition, counts);
