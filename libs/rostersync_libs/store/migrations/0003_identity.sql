-- rostersync schema, version 3: identity resolution (docs/identity.md). The mapper reads these
-- tables; the identity decisions themselves live on the compacted identities topic.

-- The application's own records, as an operator imports them (rostersync directory import): what
-- the tenant's match rules compare a new OneRoster record with.
CREATE TABLE app_directory (
    tenant_id   text        NOT NULL,
    entity      text        NOT NULL,  -- users or orgs (OneRoster file names)
    app_id      uuid        NOT NULL,  -- the application's id: the internal id a match adopts
    email       text,
    username    text,
    identifier  text,
    nces_id     text,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, entity, app_id)
);
CREATE INDEX app_directory_by_email ON app_directory (tenant_id, entity, lower(email));
CREATE INDEX app_directory_by_username ON app_directory (tenant_id, entity, username);
CREATE INDEX app_directory_by_identifier ON app_directory (tenant_id, entity, identifier);
CREATE INDEX app_directory_by_nces ON app_directory (tenant_id, entity, nces_id);

-- Internal ids given by an automatic decision (re-key, match), one record each: the arbiter that
-- keeps two mapper instances from giving one id to two records at the same moment.
CREATE TABLE identity_claims (
    tenant_id   text        NOT NULL,
    entity      text        NOT NULL,
    internal_id uuid        NOT NULL,
    sourced_id  text        NOT NULL,
    reason      text        NOT NULL,
    decided_at  timestamptz NOT NULL,
    rekeyed_from text,                 -- a re-key takes the id over from this record
    PRIMARY KEY (tenant_id, entity, internal_id)
);

-- Re-keying looks a new user's keys up among the tenant's existing users.
CREATE INDEX users_by_master_identifier ON users (tenant_id, user_master_identifier);
CREATE INDEX users_by_username ON users (tenant_id, username);
CREATE INDEX users_by_identifier ON users (tenant_id, identifier);
