-- rostersync schema, version 18: how far each stage is with a running run
-- (libs/rostersync_libs/stage_progress.py). The validator and mapper add what they passed and
-- rejected, per input partition, at most about once a second; the fetcher keeps its total
-- published so far (partition -1). Approximate while the run runs (at-least-once: a flush whose
-- input offsets were counted before adds nothing, one that straddles them adds its share past
-- them); a run's final counts are the writer's. Not a control table, never needed by a replay.
CREATE TABLE run_stage_progress (
    tenant_id    text        NOT NULL,
    run_id       uuid        NOT NULL,
    stage        text        NOT NULL,
    partition    int         NOT NULL,  -- the stage's input partition; -1: the fetcher's total
    passed       bigint      NOT NULL DEFAULT 0,
    rejected     bigint      NOT NULL DEFAULT 0,
    first_offset bigint      NOT NULL,  -- the lowest and highest input offsets counted
    last_offset  bigint      NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, run_id, stage, partition)
);
