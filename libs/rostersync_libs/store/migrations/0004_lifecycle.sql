-- rostersync schema, version 4: deletes staged until their run completes, bulk-absence sweeps,
-- and safety holds with the operator's decisions.

-- tobedeleted records of a run, applied when the run completes (unless the run is held).
CREATE TABLE pending_archives (
    tenant_id                 text        NOT NULL,
    run_id                    uuid        NOT NULL,
    entity                    text        NOT NULL,
    sourced_id                text        NOT NULL,
    source_date_last_modified timestamptz,
    PRIMARY KEY (tenant_id, entity, sourced_id, run_id)
);
CREATE INDEX pending_archives_by_run ON pending_archives (tenant_id, run_id);

-- A completed run's destructive part: applied at once, or held above the tenant's threshold.
CREATE TABLE run_outcomes (
    tenant_id     text        NOT NULL,
    run_id        uuid        NOT NULL,
    source        text        NOT NULL,
    status        text        NOT NULL CHECK (status IN ('applied', 'held', 'approved', 'discarded')),
    bulk_entities jsonb       NOT NULL,
    numbers       jsonb       NOT NULL,  -- per entity: active rows, to archive, share
    threshold     real        NOT NULL,
    decided_at    timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, run_id)
);

-- Operators' decisions, as read from the command topic (they may precede the run in a replay).
CREATE TABLE hold_decisions (
    tenant_id  text        NOT NULL,
    run_id     uuid        NOT NULL,
    approve    boolean     NOT NULL,
    decided_by text        NOT NULL,
    decided_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, run_id)
);

-- Sweeps look for what a source's earlier runs saw.
CREATE INDEX orgs_sweep ON orgs (tenant_id, source, last_seen_run) WHERE archived_at IS NULL;
CREATE INDEX users_sweep ON users (tenant_id, source, last_seen_run) WHERE archived_at IS NULL;
CREATE INDEX enrollments_sweep ON enrollments (tenant_id, source, last_seen_run) WHERE archived_at IS NULL;
CREATE INDEX classes_sweep ON classes (tenant_id, source, last_seen_run) WHERE archived_at IS NULL;
