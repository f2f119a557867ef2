-- rostersync schema, version 9: nothing lands that points at a rejected or missing record
-- (docs/architecture.md, "Referential integrity").

-- Records a stage (or the writer itself) rejected in a run, as their `seen` events said: what
-- points at them in the same run is rejected too, with a finding that names this row.
CREATE TABLE run_rejections (
    tenant_id   text   NOT NULL,
    run_id      uuid   NOT NULL,
    entity      text   NOT NULL,
    sourced_id  text   NOT NULL,
    internal_id uuid,
    origin_file text,
    origin_row  int,
    codes       text[] NOT NULL,
    PRIMARY KEY (tenant_id, run_id, entity, sourced_id)
);
CREATE INDEX run_rejections_by_id ON run_rejections (tenant_id, run_id, internal_id);

-- Records whose required references have no verdict yet in their run (the record they point at
-- is in the run but has not reached the writer): applied or rejected once it has, at the latest
-- when the run completes.
CREATE TABLE parked_records (
    tenant_id      text  NOT NULL,
    run_id         uuid  NOT NULL,
    entity         text  NOT NULL,
    sourced_id     text  NOT NULL,
    first_seen_run uuid  NOT NULL,
    -- a later run saw the record (unchanged, rejected or deleted) while this version waited
    -- (a replay reads runs together): its row gets that run as last seen when it lands
    seen_run       uuid,
    event          bytea NOT NULL,
    PRIMARY KEY (tenant_id, entity, sourced_id, run_id)
);
CREATE INDEX parked_records_by_run ON parked_records (tenant_id, run_id);

-- What each parked record waits for (one row per referenced record without a verdict).
CREATE TABLE parked_waits (
    tenant_id          text NOT NULL,
    run_id             uuid NOT NULL,
    entity             text NOT NULL,
    sourced_id         text NOT NULL,
    target_internal_id uuid NOT NULL,
    PRIMARY KEY (tenant_id, entity, sourced_id, run_id, target_internal_id)
);
CREATE INDEX parked_waits_by_target ON parked_waits (tenant_id, target_internal_id);

-- The writer's own rejections (a reference to a rejected or missing record) have no Kafka
-- offset of their own: one per record and run.
CREATE UNIQUE INDEX rejected_records_writer_once
    ON rejected_records (tenant_id, run_id, entity, sourced_id) WHERE stage = 'writer';

-- Active rows that still point at a missing or archived row after a run completed (the last
-- line of the guarantee; expected 0, logged as an error otherwise).
ALTER TABLE run_outcomes ADD COLUMN dangling int;

-- A run that failed after it began publishing ends with aborted markers: its outcome says so
-- (none of its removals applied).
ALTER TABLE run_outcomes DROP CONSTRAINT run_outcomes_status_check;
ALTER TABLE run_outcomes ADD CONSTRAINT run_outcomes_status_check
    CHECK (status IN ('applied', 'held', 'approved', 'discarded', 'aborted'));

-- The fetcher's leases on the runs it publishes (owned by the fetcher: rostersync_fetcher/
-- leases.py): a lease not renewed in time means its fetcher died, and another ends the run.
CREATE TABLE fetch_leases (
    tenant_id  text        NOT NULL,
    run_id     uuid        NOT NULL,
    source     text        NOT NULL,
    owner      text        NOT NULL,
    attempt    int         NOT NULL DEFAULT 1,
    full_sync  boolean     NOT NULL DEFAULT false,
    renewed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, run_id)
);

-- A run an operator cancelled ends with its own fetch status.
ALTER TABLE sync_runs DROP CONSTRAINT sync_runs_fetch_status_check;
ALTER TABLE sync_runs ADD CONSTRAINT sync_runs_fetch_status_check
    CHECK (fetch_status IN ('started', 'fetched', 'failed', 'cancelled'));
