-- rostersync schema, version 14: source credentials set through the admin API.
--
-- A control table. Each secret is sealed with its tenant's data key (AES-GCM, bound to the tenant
-- and the source: libs/rostersync_libs/source_secrets.py), so it is encrypted at rest wherever
-- the table goes, is wrapped by the master key with the data key, and is destroyed with the
-- tenant's key by a purge. No endpoint, log or topic ever carries it.
CREATE TABLE source_secrets (
    tenant_id   text        NOT NULL,
    source_id   text        NOT NULL,
    sealed      bytea       NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, source_id)
);
