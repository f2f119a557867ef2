-- rostersync schema, version 13: the admin API's control tables (services/api).
--
-- Control tables (settings.control): what operators configure, never rebuilt by a replay.

-- API tokens: only a hash of each is kept (tokens are 32 random bytes: a plain SHA-256 suffices,
-- nothing to guess). A token has one role and sees every tenant, or only those listed.
CREATE TABLE api_tokens (
    token_id    uuid        PRIMARY KEY,
    name        text        NOT NULL,
    token_hash  bytea       NOT NULL UNIQUE,
    role        text        NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    tenants     text[],                     -- NULL: every tenant
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text        NOT NULL DEFAULT session_user,
    revoked_at  timestamptz
);

-- Tenants (districts) and their sources created through the API: the same model as a tenants
-- file's [[tenants]] entry (libs/rostersync_libs/tenants.py), validated before it is stored.
-- The services read them beside the tenants file's (tenant_registry.py).
CREATE TABLE tenant_configs (
    tenant_id   text        PRIMARY KEY,
    config      jsonb       NOT NULL,
    paused      boolean     NOT NULL DEFAULT false,  -- scheduled and inbox syncs stop
    version     int         NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Every change made through the API (who: the token; what: before and after), append-only.
CREATE TABLE api_audit (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_id    uuid        NOT NULL,
    token_name  text        NOT NULL,
    tenant_id   text,
    action      text        NOT NULL,
    target      text        NOT NULL,
    before      jsonb,
    after       jsonb,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX api_audit_by_tenant ON api_audit (tenant_id, id);

CREATE FUNCTION api_audit_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'api_audit is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER api_audit_append_only BEFORE UPDATE OR DELETE ON api_audit
    FOR EACH ROW EXECUTE FUNCTION api_audit_refuse();
CREATE TRIGGER api_audit_no_truncate BEFORE TRUNCATE ON api_audit
    FOR EACH STATEMENT EXECUTE FUNCTION api_audit_refuse();
