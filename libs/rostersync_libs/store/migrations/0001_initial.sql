-- rostersync schema, version 1: the thin path (orgs and users), runs, rejections, positions.
-- Every row carries its tenant; every key starts with it.

CREATE TABLE sync_runs (
    tenant_id        text        NOT NULL,
    run_id           uuid        NOT NULL,
    source           text        NOT NULL,
    status           text        NOT NULL DEFAULT 'running',
    first_event_at   timestamptz NOT NULL DEFAULT now(),
    completed_at     timestamptz,
    published_counts jsonb       NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY (tenant_id, run_id)
);

-- End-of-run markers received per partition of the mapped topic (see docs/architecture.md).
CREATE TABLE run_markers (
    tenant_id        text NOT NULL,
    run_id           uuid NOT NULL,
    partition        int  NOT NULL,
    origin_partition int  NOT NULL,
    origin_count     int  NOT NULL,
    fanout           int  NOT NULL,
    PRIMARY KEY (tenant_id, run_id, partition, origin_partition)
);

-- The writer's Kafka positions, committed in the same transaction as the rows they produced.
CREATE TABLE consumer_positions (
    consumer_group text   NOT NULL,
    topic          text   NOT NULL,
    partition      int    NOT NULL,
    next_offset    bigint NOT NULL,
    PRIMARY KEY (consumer_group, topic, partition)
);

CREATE TABLE orgs (
    tenant_id                 text        NOT NULL,
    sourced_id                text        NOT NULL,
    internal_id               uuid        NOT NULL UNIQUE,
    source                    text        NOT NULL,
    name                      text        NOT NULL,
    org_type                  text        NOT NULL,
    identifier                text,
    parent_internal_id        uuid,
    source_date_last_modified timestamptz,
    content_hash              text        NOT NULL,
    first_seen_run            uuid        NOT NULL,
    last_seen_run             uuid        NOT NULL,
    archived_at               timestamptz,
    payload                   jsonb       NOT NULL,
    updated_at                timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, sourced_id)
);

CREATE TABLE users (
    tenant_id                 text        NOT NULL,
    sourced_id                text        NOT NULL,
    internal_id               uuid        NOT NULL UNIQUE,
    source                    text        NOT NULL,
    enabled                   boolean     NOT NULL,
    role                      text        NOT NULL,
    username                  text        NOT NULL,
    given_name                text        NOT NULL,
    family_name               text        NOT NULL,
    middle_name               text,
    identifier                text,
    email                     text,
    grades                    text[]      NOT NULL DEFAULT '{}',
    source_date_last_modified timestamptz,
    content_hash              text        NOT NULL,
    first_seen_run            uuid        NOT NULL,
    last_seen_run             uuid        NOT NULL,
    archived_at               timestamptz,
    payload                   jsonb       NOT NULL,
    updated_at                timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, sourced_id)
);

-- A user's role in each of their orgs (1.1 users.role + orgSourcedIds).
CREATE TABLE user_orgs (
    tenant_id        text NOT NULL,
    user_internal_id uuid NOT NULL,
    org_internal_id  uuid NOT NULL,
    role             text NOT NULL,
    PRIMARY KEY (tenant_id, user_internal_id, org_internal_id, role)
);
CREATE INDEX user_orgs_by_org ON user_orgs (tenant_id, org_internal_id);

-- Records a stage rejected, with every reason, where an operator can read and replay them.
CREATE TABLE rejected_records (
    id               bigserial   PRIMARY KEY,
    tenant_id        text        NOT NULL,
    run_id           uuid,
    stage            text        NOT NULL,
    entity           text,
    sourced_id       text,
    origin_file      text,
    origin_row       int,
    findings         jsonb       NOT NULL,
    event            jsonb,
    source_topic     text        NOT NULL,
    source_partition int         NOT NULL,
    source_offset    bigint      NOT NULL,
    received_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source_topic, source_partition, source_offset)
);
CREATE INDEX rejected_records_by_run ON rejected_records (tenant_id, run_id);
