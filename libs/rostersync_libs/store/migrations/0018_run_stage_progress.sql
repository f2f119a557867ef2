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

-- API tokens may expire (rostersync api token create --expires-in 30d): past it, the API answers
-- 401 token_expired. NULL: no expiry (every token made before). In this migration rather than a
-- version of its own: both came with the same change (issue 11), and 0017 is another's.
ALTER TABLE api_tokens ADD COLUMN expires_at timestamptz;
