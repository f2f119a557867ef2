-- rostersync schema, version 10: tenants' data keys, which seal every event on the topics
-- (libs/rostersync_libs/data_keys.py, docs/security.md "Erasure").
--
-- A control table: services read it in the deployment's control schema (settings.control), and
-- a replay into a fresh schema reads the live one's. Purge sets key_material to NULL and keeps
-- the row: the tenant stays purged (its id is retired) and its events stay unreadable.
CREATE TABLE tenant_data_keys (
    tenant_id    text        PRIMARY KEY,
    key_material bytea,                    -- the AES-256 key, wrapped by the master key if set
    wrapped      boolean     NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    purged_at    timestamptz,
    purged_by    text,                     -- the database login that purged (session_user)
    CHECK ((key_material IS NULL) = (purged_at IS NOT NULL))
);
