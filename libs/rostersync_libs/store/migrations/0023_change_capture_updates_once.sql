-- rostersync schema, version 23: capturing an update, at less than half the cost (issue 10).
--
-- 0021's capture_updates computed each row's changed fields twice: the subquery that names them
-- is pulled up into the join, so the expression ran once in the join's filter and again in the
-- select list; each was a call of change_fields(), an SQL function with an aggregate that
-- PostgreSQL cannot inline, over a UNION of both rows' keys; to_jsonb() of each row ran up to
-- three times. The row's two jsonb forms are now made once (a LATERAL subquery that OFFSET 0
-- keeps from being pulled up), the fields once (OFFSET 0 on the outer subquery), and the diff is
-- inline: the typed record's keys are those of its table's row type, the same on both sides, so
-- one side's keys are enough; a payload's keys may differ, so its two sides are joined in full.
-- The result is the same, key by key (tests/integration/test_change_capture.py).
--
-- The transition tables have no statistics, so the join was estimated at rows² / 200: at 3,334
-- rows 229,000 cost units, past jit_above_cost, and JIT compiled 26 functions (≈ 0.4 s) for a
-- statement that ran in 0.2 s. The capture functions now run with JIT off.
--
-- Measured (one UPDATE of users' content, PostgreSQL 15, this machine): 3,334 rows 639 → 232 ms,
-- 20,000 rows 3,020 → ≈ 1,400 ms; without capture 13 and 81 ms.

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
                   (SELECT jsonb_object_agg(k.key, jsonb_build_object('before', r.before -> k.key,
                                                                      'after', k.value))
                    FROM jsonb_each(r.after) k WHERE r.before -> k.key IS DISTINCT FROM k.value),
                   -- content only in the payload (a column without a typed one)
                   (SELECT jsonb_object_agg('payload.' || coalesce(b.key, a.key),
                                            jsonb_build_object('before', b.value, 'after', a.value))
                    FROM jsonb_each(o.payload - ARRAY['dateLastModified', 'status']) b
                    FULL JOIN jsonb_each(n.payload - ARRAY['dateLastModified', 'status']) a
                        ON a.key = b.key
                    WHERE b.value IS DISTINCT FROM a.value)
               ) AS fields,
               CASE WHEN n.archived_at IS NOT NULL THEN r.before ELSE r.after END AS rec,
               CASE WHEN n.archived_at IS NOT NULL THEN %s ELSE %s END AS school,
               CASE WHEN n.archived_at IS NOT NULL THEN %s ELSE %s END AS class
        FROM old_rows o JOIN new_rows n ON n.internal_id = o.internal_id
        CROSS JOIN LATERAL (SELECT change_record(to_jsonb(o)) AS before,
                                   change_record(to_jsonb(n)) AS after OFFSET 0) r
        WHERE o.content_hash IS DISTINCT FROM n.content_hash
           OR (o.archived_at IS NULL) <> (n.archived_at IS NULL)
           OR o.sourced_id <> n.sourced_id
        OFFSET 0
    ) c
    WHERE c.op <> 'update' OR c.fields IS NOT NULL
    $q$,
        change_place('o', TG_ARGV[1], TG_ARGV[2]), change_place('n', TG_ARGV[1], TG_ARGV[2]),
        change_place('o', TG_ARGV[3], TG_ARGV[4]), change_place('n', TG_ARGV[3], TG_ARGV[4])
    ) USING run, TG_ARGV[0];
    RETURN NULL;
END $$;

ALTER FUNCTION capture_updates() SET jit = off;
ALTER FUNCTION capture_inserts() SET jit = off;
ALTER FUNCTION capture_links() SET jit = off;
