-- rostersync schema, version 17: the change feed's outbox (docs/change-feed.md).
--
-- Every row the writer changes (insert, content update, archive, restore) and every membership
-- link added or removed gets one change row, written by the statement-level triggers below
-- in the same transaction as the rows and the writer's positions: a rolled-back batch leaves no
-- change, a committed one cannot lose its changes. Triggers rather than code at each call site
-- because rows change in many places (upserts, rekeys, cascades, sweeps, restores): one owner.
--
-- Changes are captured only in a transaction that names its run (``rostersync.run_id``, set by
-- rostersync_writer/changes.py): anything else touching the tables (a tenant purge) leaves none.
-- An upsert's change belongs to the run of its event (the row's new last_seen_run: a record
-- parked in one run may land in a batch of the next); what the writer does to rows it is not
-- upserting (archives, cascades, rekeys) belongs to the run named.
-- A change gets its tenant's sequence number when its run completes (changes.py moves a run's
-- changes from change_pending to change_log in a canonical order), so a replay numbers them the
-- same way.
-- Changes of runs still in progress: the triggers' target, one index (cheap to write); when
-- the run completes they move to change_log, numbered (written once there, never updated).
CREATE TABLE change_pending (
    id           bigserial   PRIMARY KEY,  -- capture order: orders one record's changes
    tenant_id    text        NOT NULL,
    run_id       uuid        NOT NULL,
    entity       text        NOT NULL,
    internal_id  uuid        NOT NULL,     -- links: the owner's (a user's, a class's)
    sourced_id   text,
    operation    text        NOT NULL CHECK (operation IN ('insert', 'update', 'archive', 'restore')),
    fields       jsonb,                    -- updates: {column: {before, after}}
    record       jsonb       NOT NULL,     -- the row after the change (before it, for archives)
    school_id    uuid,                     -- for the feed's filters
    class_id     uuid
);
CREATE INDEX change_pending_by_run ON change_pending (tenant_id, run_id);

-- The feed: every change of a completed run, numbered per tenant.
CREATE TABLE change_log (
    tenant_id    text        NOT NULL,
    seq          bigint      NOT NULL,
    run_id       uuid        NOT NULL,
    effective_at timestamptz NOT NULL,     -- the run's fetch time (sync_runs)
    entity       text        NOT NULL,
    internal_id  uuid        NOT NULL,
    sourced_id   text,
    operation    text        NOT NULL,
    fields       jsonb,
    record       jsonb       NOT NULL,
    school_id    uuid,
    class_id     uuid,
    PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX change_log_by_class ON change_log (tenant_id, class_id) WHERE class_id IS NOT NULL;
CREATE INDEX change_log_by_record ON change_log (tenant_id, internal_id);

-- Each tenant's last sequence number (updated in the numbering transaction: its row lock makes
-- numbers commit in order, so a reader never sees n+1 before n).
CREATE TABLE change_sequences (
    tenant_id text   PRIMARY KEY,
    last_seq  bigint NOT NULL
);

-- How far the relay has published each tenant's changes to Kafka (changes.v1).
CREATE TABLE change_relay (
    tenant_id   text   PRIMARY KEY,
    relayed_seq bigint NOT NULL DEFAULT 0
);

-- A row's content as the feed shows it: without the writer's bookkeeping and wall-clock times
-- (a replay must rebuild the same records), nor the raw payload (the typed columns say it).
CREATE FUNCTION change_record(r jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT r - ARRAY['tenant_id', 'internal_id', 'source', 'content_hash', 'first_seen_run',
                     'last_seen_run', 'archived_at', 'payload', 'updated_at',
                     'source_date_last_modified']
$$;

-- {key: {before, after}} for the keys whose values differ; NULL when none does.
CREATE FUNCTION change_fields(before jsonb, after jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_object_agg(k, jsonb_build_object('before', before -> k, 'after', after -> k))
    FROM (SELECT jsonb_object_keys(before) AS k UNION SELECT jsonb_object_keys(after)) keys
    WHERE before -> k IS DISTINCT FROM after -> k
$$;

CREATE FUNCTION change_school(entity text, id uuid, r jsonb) RETURNS uuid LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(r ->> 'school_internal_id', r ->> 'org_internal_id',
                    r ->> 'primary_org_internal_id',
                    CASE WHEN entity = 'orgs' THEN id::text END)::uuid
$$;

CREATE FUNCTION change_class(entity text, id uuid, r jsonb) RETURNS uuid LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(r ->> 'class_internal_id', CASE WHEN entity = 'classes' THEN id::text END)::uuid
$$;

CREATE FUNCTION capture_inserts() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    run uuid := nullif(current_setting('rostersync.run_id', true), '')::uuid;
BEGIN
    IF run IS NULL THEN RETURN NULL; END IF;
    INSERT INTO change_pending (tenant_id, run_id, entity, internal_id, sourced_id, operation,
                            record, school_id, class_id)
    SELECT n.tenant_id, n.last_seen_run, TG_ARGV[0], n.internal_id, n.sourced_id, 'insert', r.rec,
           change_school(TG_ARGV[0], n.internal_id, r.rec),
           change_class(TG_ARGV[0], n.internal_id, r.rec)
    FROM new_rows n CROSS JOIN LATERAL (SELECT change_record(to_jsonb(n)) AS rec) r;
    RETURN NULL;
END $$;

-- Updates that change content, archive or restore; a row only seen again (last_seen_run), or
-- whose hash alone was cleared (cascade.py, unchanged.py), is no change.
CREATE FUNCTION capture_updates() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    run uuid := nullif(current_setting('rostersync.run_id', true), '')::uuid;
BEGIN
    IF run IS NULL THEN RETURN NULL; END IF;
    -- Dynamic, so it is planned for this statement's row counts: a plan cached from a small
    -- statement (a nested loop over the transition tables) is quadratic on a large one.
    EXECUTE $q$
    INSERT INTO change_pending (tenant_id, run_id, entity, internal_id, sourced_id, operation,
                            fields, record, school_id, class_id)
    SELECT c.tenant_id, c.run_id, $2, c.internal_id, c.sourced_id, c.op,
           CASE WHEN c.op = 'archive' THEN NULL ELSE c.fields END, c.rec,
           change_school($2, c.internal_id, c.rec),
           change_class($2, c.internal_id, c.rec)
    FROM (
        SELECT n.tenant_id, n.internal_id, n.sourced_id,
               CASE WHEN n.last_seen_run <> o.last_seen_run THEN n.last_seen_run ELSE $1 END
                   AS run_id,
               CASE WHEN o.archived_at IS NULL AND n.archived_at IS NOT NULL THEN 'archive'
                    WHEN o.archived_at IS NOT NULL AND n.archived_at IS NULL THEN 'restore'
                    ELSE 'update' END AS op,
               coalesce(
                   change_fields(change_record(to_jsonb(o)), change_record(to_jsonb(n))),
                   -- content only in the payload (a column without a typed one)
                   (SELECT jsonb_object_agg('payload.' || key, value) FROM jsonb_each(
                       change_fields(o.payload - ARRAY['dateLastModified', 'status'],
                                     n.payload - ARRAY['dateLastModified', 'status'])))
               ) AS fields,
               change_record(CASE WHEN n.archived_at IS NOT NULL THEN to_jsonb(o)
                                  ELSE to_jsonb(n) END) AS rec
        FROM old_rows o JOIN new_rows n ON n.internal_id = o.internal_id
        WHERE o.content_hash IS DISTINCT FROM n.content_hash
           OR (o.archived_at IS NULL) <> (n.archived_at IS NULL)
           OR o.sourced_id <> n.sourced_id
    ) c
    WHERE c.op <> 'update' OR c.fields IS NOT NULL
    $q$ USING run, TG_ARGV[0];
    RETURN NULL;
END $$;

-- Membership links (a user's orgs and guardians, a class's terms): added is 'insert', removed
-- is 'archive' (a link row has no archived state). The owner's ids name the change.
CREATE FUNCTION capture_links() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    run uuid := nullif(current_setting('rostersync.run_id', true), '')::uuid;
BEGIN
    IF run IS NULL THEN RETURN NULL; END IF;
    EXECUTE format(
        'INSERT INTO change_pending (tenant_id, run_id, entity, internal_id, sourced_id, operation,'
        ' record, school_id, class_id)'
        ' SELECT l.tenant_id, $1, %L, l.%I, o.sourced_id, %L, to_jsonb(l) - ''tenant_id'','
        ' change_school(%L, l.%I, to_jsonb(l)), change_class(%L, l.%I, to_jsonb(l))'
        ' FROM %I l LEFT JOIN %I o ON o.internal_id = l.%I',
        TG_ARGV[0], TG_ARGV[1], CASE WHEN TG_OP = 'INSERT' THEN 'insert' ELSE 'archive' END,
        TG_ARGV[0], TG_ARGV[1], TG_ARGV[0], TG_ARGV[1],
        CASE WHEN TG_OP = 'INSERT' THEN 'new_rows' ELSE 'old_rows' END, TG_ARGV[2], TG_ARGV[1]
    ) USING run;
    RETURN NULL;
END $$;

DO $$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT * FROM (VALUES ('orgs', 'orgs'), ('academic_sessions', 'academicSessions'),
            ('courses', 'courses'), ('classes', 'classes'), ('users', 'users'),
            ('enrollments', 'enrollments'), ('demographics', 'demographics'),
            ('user_roles', 'roles'), ('user_profiles', 'userProfiles')) AS v(tab, entity)
    LOOP
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %I REFERENCING NEW TABLE AS new_rows'
                       ' FOR EACH STATEMENT EXECUTE FUNCTION capture_inserts(%L)',
                       t.tab || '_changes_in', t.tab, t.entity);
        EXECUTE format('CREATE TRIGGER %I AFTER UPDATE ON %I REFERENCING OLD TABLE AS old_rows'
                       ' NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION capture_updates(%L)',
                       t.tab || '_changes_up', t.tab, t.entity);
    END LOOP;
    FOR t IN SELECT * FROM (VALUES ('user_orgs', 'userOrgs', 'user_internal_id', 'users'),
            ('guardian_links', 'guardianLinks', 'user_internal_id', 'users'),
            ('class_terms', 'classTerms', 'class_internal_id', 'classes')) AS v(tab, entity, owner, owners)
    LOOP
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %I REFERENCING NEW TABLE AS new_rows'
                       ' FOR EACH STATEMENT EXECUTE FUNCTION capture_links(%L, %L, %L)',
                       t.tab || '_changes_in', t.tab, t.entity, t.owner, t.owners);
        EXECUTE format('CREATE TRIGGER %I AFTER DELETE ON %I REFERENCING OLD TABLE AS old_rows'
                       ' FOR EACH STATEMENT EXECUTE FUNCTION capture_links(%L, %L, %L)',
                       t.tab || '_changes_out', t.tab, t.entity, t.owner, t.owners);
    END LOOP;
END $$;

-- Webhook subscriptions to a tenant's changes (the admin API's: services/api/rostersync_api/
-- subscriptions/). Each is delivered in order from its cursor (the last sequence number its
-- receiver acknowledged); the secret signing the deliveries is sealed with the tenant's data key
-- (like source secrets), so a purge destroys it with the key.
CREATE TABLE change_subscriptions (
    tenant_id       text        NOT NULL,
    id              uuid        NOT NULL,
    url             text        NOT NULL,
    entities        text[],                 -- NULL: every entity
    sealed_secret   bytea       NOT NULL,
    cursor          bigint      NOT NULL DEFAULT 0,
    attempts        int         NOT NULL DEFAULT 0,  -- failures in a row
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    delivered_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
