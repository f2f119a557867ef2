-- rostersync schema, version 21: the change feed's capture, cheaper (issue 10).
--
-- Migration 0017's triggers found a change's school and class with change_school() and
-- change_class() over the row's jsonb: two SQL-function calls per row that were half of the
-- capture's cost (users' upsert into an empty table: 12 µs a row without the feed, 46 with it,
-- 21 with the columns read directly; benchmarks/change_capture.py). The same values, read from
-- the columns each table has: a trigger gets the names of its table's place columns as
-- arguments (made below from the catalog), and the capture builds its statement with them.
-- The values are those of 0017: the first of school_internal_id, org_internal_id,
-- primary_org_internal_id the table has and is set, then (orgs) the org itself; the class from
-- class_internal_id, then (classes) the class itself. 0017's functions stay (0017 is applied
-- and checksummed) but are no longer called by the triggers.

-- The place expression over the row alias ``a``: coalesce of the listed columns (comma list),
-- then the row's own id when ``own`` (an org is its own school, a class its own class).
CREATE FUNCTION change_place(a text, columns text, own_id text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN columns = '' AND own_id = '' THEN 'NULL::uuid'
        ELSE 'coalesce(' || concat_ws(', ',
            nullif((SELECT string_agg(quote_ident(a) || '.' || quote_ident(c), ', ')
                    FROM unnest(string_to_array(columns, ',')) AS c), ''),
            nullif(CASE WHEN own_id = '' THEN '' ELSE quote_ident(a) || '.' || quote_ident(own_id) END, ''),
            'NULL::uuid') || ')'
    END
$$;

-- TG_ARGV: entity, school columns, own school id column, class column, own class id column.
CREATE OR REPLACE FUNCTION capture_inserts() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    run uuid := nullif(current_setting('rostersync.run_id', true), '')::uuid;
BEGIN
    IF run IS NULL THEN RETURN NULL; END IF;
    EXECUTE format(
        'INSERT INTO change_pending (tenant_id, run_id, entity, internal_id, sourced_id,'
        ' operation, record, school_id, class_id)'
        ' SELECT n.tenant_id, n.last_seen_run, $1, n.internal_id, n.sourced_id, ''insert'','
        ' change_record(to_jsonb(n)), %s, %s FROM new_rows n',
        change_place('n', TG_ARGV[1], TG_ARGV[2]), change_place('n', TG_ARGV[3], TG_ARGV[4])
    ) USING TG_ARGV[0];
    RETURN NULL;
END $$;

-- As 0017's: updates that change content, archive or restore (an archive is described by the
-- row before it, so is its place).
CREATE OR REPLACE FUNCTION capture_updates() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    run uuid := nullif(current_setting('rostersync.run_id', true), '')::uuid;
BEGIN
    IF run IS NULL THEN RETURN NULL; END IF;
    -- Dynamic, so it is planned for this statement's row counts: a plan cached from a small
    -- statement (a nested loop over the transition tables) is quadratic on a large one.
    EXECUTE format($q$
    INSERT INTO change_pending (tenant_id, run_id, entity, internal_id, sourced_id, operation,
                            fields, record, school_id, class_id)
    SELECT c.tenant_id, c.run_id, $2, c.internal_id, c.sourced_id, c.op,
           CASE WHEN c.op = 'archive' THEN NULL ELSE c.fields END, c.rec, c.school, c.class
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
                                  ELSE to_jsonb(n) END) AS rec,
               CASE WHEN n.archived_at IS NOT NULL THEN %s ELSE %s END AS school,
               CASE WHEN n.archived_at IS NOT NULL THEN %s ELSE %s END AS class
        FROM old_rows o JOIN new_rows n ON n.internal_id = o.internal_id
        WHERE o.content_hash IS DISTINCT FROM n.content_hash
           OR (o.archived_at IS NULL) <> (n.archived_at IS NULL)
           OR o.sourced_id <> n.sourced_id
    ) c
    WHERE c.op <> 'update' OR c.fields IS NOT NULL
    $q$,
        change_place('o', TG_ARGV[1], TG_ARGV[2]), change_place('n', TG_ARGV[1], TG_ARGV[2]),
        change_place('o', TG_ARGV[3], TG_ARGV[4]), change_place('n', TG_ARGV[3], TG_ARGV[4])
    ) USING run, TG_ARGV[0];
    RETURN NULL;
END $$;

-- Links: TG_ARGV entity, owner column, owners' table, school columns, class columns (a link row
-- has no id of its own).
CREATE OR REPLACE FUNCTION capture_links() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    run uuid := nullif(current_setting('rostersync.run_id', true), '')::uuid;
BEGIN
    IF run IS NULL THEN RETURN NULL; END IF;
    EXECUTE format(
        'INSERT INTO change_pending (tenant_id, run_id, entity, internal_id, sourced_id, operation,'
        ' record, school_id, class_id)'
        ' SELECT l.tenant_id, $1, %L, l.%I, o.sourced_id, %L, to_jsonb(l) - ''tenant_id'', %s, %s'
        ' FROM %I l LEFT JOIN %I o ON o.internal_id = l.%I',
        TG_ARGV[0], TG_ARGV[1], CASE WHEN TG_OP = 'INSERT' THEN 'insert' ELSE 'archive' END,
        change_place('l', TG_ARGV[3], ''), change_place('l', TG_ARGV[4], ''),
        CASE WHEN TG_OP = 'INSERT' THEN 'new_rows' ELSE 'old_rows' END, TG_ARGV[2], TG_ARGV[1]
    ) USING run;
    RETURN NULL;
END $$;

-- The triggers again, with their tables' place columns (in 0017's order of preference).
DO $$
DECLARE
    t record;
    school text;
    class text;
BEGIN
    FOR t IN SELECT * FROM (VALUES ('orgs', 'orgs'), ('academic_sessions', 'academicSessions'),
            ('courses', 'courses'), ('classes', 'classes'), ('users', 'users'),
            ('enrollments', 'enrollments'), ('demographics', 'demographics'),
            ('user_roles', 'roles'), ('user_profiles', 'userProfiles')) AS v(tab, entity)
    LOOP
        SELECT coalesce(string_agg(c, ',' ORDER BY o), '') INTO school
        FROM unnest(ARRAY['school_internal_id', 'org_internal_id', 'primary_org_internal_id'])
             WITH ORDINALITY AS x(c, o)
        WHERE EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()
                      AND table_name = t.tab AND column_name = x.c);
        SELECT coalesce(max(column_name), '') INTO class FROM information_schema.columns
        WHERE table_schema = current_schema() AND table_name = t.tab
          AND column_name = 'class_internal_id';
        EXECUTE format('DROP TRIGGER %I ON %I', t.tab || '_changes_in', t.tab);
        EXECUTE format('DROP TRIGGER %I ON %I', t.tab || '_changes_up', t.tab);
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %I REFERENCING NEW TABLE AS new_rows'
                       ' FOR EACH STATEMENT EXECUTE FUNCTION capture_inserts(%L, %L, %L, %L, %L)',
                       t.tab || '_changes_in', t.tab, t.entity, school,
                       CASE WHEN t.entity = 'orgs' THEN 'internal_id' ELSE '' END, class,
                       CASE WHEN t.entity = 'classes' THEN 'internal_id' ELSE '' END);
        EXECUTE format('CREATE TRIGGER %I AFTER UPDATE ON %I REFERENCING OLD TABLE AS old_rows'
                       ' NEW TABLE AS new_rows FOR EACH STATEMENT'
                       ' EXECUTE FUNCTION capture_updates(%L, %L, %L, %L, %L)',
                       t.tab || '_changes_up', t.tab, t.entity, school,
                       CASE WHEN t.entity = 'orgs' THEN 'internal_id' ELSE '' END, class,
                       CASE WHEN t.entity = 'classes' THEN 'internal_id' ELSE '' END);
    END LOOP;
    FOR t IN SELECT * FROM (VALUES ('user_orgs', 'userOrgs', 'user_internal_id', 'users'),
            ('guardian_links', 'guardianLinks', 'user_internal_id', 'users'),
            ('class_terms', 'classTerms', 'class_internal_id', 'classes')) AS v(tab, entity, owner, owners)
    LOOP
        SELECT coalesce(string_agg(c, ',' ORDER BY o), '') INTO school
        FROM unnest(ARRAY['school_internal_id', 'org_internal_id', 'primary_org_internal_id'])
             WITH ORDINALITY AS x(c, o)
        WHERE EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()
                      AND table_name = t.tab AND column_name = x.c);
        SELECT coalesce(max(column_name), '') INTO class FROM information_schema.columns
        WHERE table_schema = current_schema() AND table_name = t.tab
          AND column_name = 'class_internal_id';
        EXECUTE format('DROP TRIGGER %I ON %I', t.tab || '_changes_in', t.tab);
        EXECUTE format('DROP TRIGGER %I ON %I', t.tab || '_changes_out', t.tab);
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %I REFERENCING NEW TABLE AS new_rows'
                       ' FOR EACH STATEMENT EXECUTE FUNCTION capture_links(%L, %L, %L, %L, %L)',
                       t.tab || '_changes_in', t.tab, t.entity, t.owner, t.owners, school, class);
        EXECUTE format('CREATE TRIGGER %I AFTER DELETE ON %I REFERENCING OLD TABLE AS old_rows'
                       ' FOR EACH STATEMENT EXECUTE FUNCTION capture_links(%L, %L, %L, %L, %L)',
                       t.tab || '_changes_out', t.tab, t.entity, t.owner, t.owners, school, class);
    END LOOP;
END $$;
