-- rostersync schema, version 2: every OneRoster rostering entity (1.1 and 1.2), their link rows,
-- the findings of every stage, and the run lifecycle as the fetcher reports it.
-- Typed columns are nullable: a value the writer cannot type is stored as NULL and the jsonb
-- payload keeps it as it came (the validator, not the database, decides what is required).

-- Users: 1.2 has no users.role (roles.csv carries it) and adds person fields.
ALTER TABLE users
    ALTER COLUMN enabled DROP NOT NULL,
    ALTER COLUMN role DROP NOT NULL,
    ALTER COLUMN username DROP NOT NULL,
    ALTER COLUMN given_name DROP NOT NULL,
    ALTER COLUMN family_name DROP NOT NULL,
    ADD COLUMN user_master_identifier  text,
    ADD COLUMN preferred_given_name    text,
    ADD COLUMN preferred_family_name   text,
    ADD COLUMN primary_org_internal_id uuid;

ALTER TABLE orgs
    ALTER COLUMN name DROP NOT NULL,
    ALTER COLUMN org_type DROP NOT NULL;
CREATE INDEX orgs_by_parent ON orgs (tenant_id, parent_internal_id);

CREATE TABLE academic_sessions (
    tenant_id                 text        NOT NULL,
    sourced_id                text        NOT NULL,
    internal_id               uuid        NOT NULL UNIQUE,
    source                    text        NOT NULL,
    title                     text,
    session_type              text,
    start_date                date,
    end_date                  date,       -- exclusive (OneRoster 1.2)
    parent_internal_id        uuid,
    school_year               int,        -- the ending year: 2014 for 2013–14
    source_date_last_modified timestamptz,
    content_hash              text        NOT NULL,
    first_seen_run            uuid        NOT NULL,
    last_seen_run             uuid        NOT NULL,
    archived_at               timestamptz,
    payload                   jsonb       NOT NULL,
    updated_at                timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, sourced_id)
);

CREATE TABLE courses (
    tenant_id                 text        NOT NULL,
    sourced_id                text        NOT NULL,
    internal_id               uuid        NOT NULL UNIQUE,
    source                    text        NOT NULL,
    title                     text,
    course_code               text,
    grades                    text[]      NOT NULL DEFAULT '{}',
    org_internal_id           uuid,
    school_year_internal_id   uuid,
    subjects                  text[]      NOT NULL DEFAULT '{}',
    source_date_last_modified timestamptz,
    content_hash              text        NOT NULL,
    first_seen_run            uuid        NOT NULL,
    last_seen_run             uuid        NOT NULL,
    archived_at               timestamptz,
    payload                   jsonb       NOT NULL,
    updated_at                timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, sourced_id)
);
CREATE INDEX courses_by_org ON courses (tenant_id, org_internal_id);

CREATE TABLE classes (
    tenant_id                 text        NOT NULL,
    sourced_id                text        NOT NULL,
    internal_id               uuid        NOT NULL UNIQUE,
    source                    text        NOT NULL,
    title                     text,
    class_code                text,
    class_type                text,
    location                  text,
    course_internal_id        uuid,
    school_internal_id        uuid,
    grades                    text[]      NOT NULL DEFAULT '{}',
    subjects                  text[]      NOT NULL DEFAULT '{}',
    periods                   text[]      NOT NULL DEFAULT '{}',
    source_date_last_modified timestamptz,
    content_hash              text        NOT NULL,
    first_seen_run            uuid        NOT NULL,
    last_seen_run             uuid        NOT NULL,
    archived_at               timestamptz,
    payload                   jsonb       NOT NULL,
    updated_at                timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, sourced_id)
);
CREATE INDEX classes_by_school ON classes (tenant_id, school_internal_id);
CREATE INDEX classes_by_course ON classes (tenant_id, course_internal_id);

-- A class's terms (classes.termSourcedIds), replaced whenever the class changes.
CREATE TABLE class_terms (
    tenant_id         text NOT NULL,
    class_internal_id uuid NOT NULL,
    term_internal_id  uuid NOT NULL,
    PRIMARY KEY (tenant_id, class_internal_id, term_internal_id)
);
CREATE INDEX class_terms_by_term ON class_terms (tenant_id, term_internal_id);

CREATE TABLE enrollments (
    tenant_id                 text        NOT NULL,
    sourced_id                text        NOT NULL,
    internal_id               uuid        NOT NULL UNIQUE,
    source                    text        NOT NULL,
    class_internal_id         uuid,
    school_internal_id        uuid,
    user_internal_id          uuid,
    role                      text,
    is_primary                boolean,
    begin_date                date,
    end_date                  date,
    source_date_last_modified timestamptz,
    content_hash              text        NOT NULL,
    first_seen_run            uuid        NOT NULL,
    last_seen_run             uuid        NOT NULL,
    archived_at               timestamptz,
    payload                   jsonb       NOT NULL,
    updated_at                timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, sourced_id)
);
-- Students (and teachers) of a class; classes of a user.
CREATE INDEX enrollments_by_class ON enrollments (tenant_id, class_internal_id);
CREATE INDEX enrollments_by_user ON enrollments (tenant_id, user_internal_id);

-- demographics.sourcedId is the user's sourcedId; the mapper links it to the user's internal id.
CREATE TABLE demographics (
    tenant_id                 text        NOT NULL,
    sourced_id                text        NOT NULL,
    internal_id               uuid        NOT NULL UNIQUE,
    source                    text        NOT NULL,
    user_internal_id          uuid,
    birth_date                date,
    sex                       text,
    source_date_last_modified timestamptz,
    content_hash              text        NOT NULL,
    first_seen_run            uuid        NOT NULL,
    last_seen_run             uuid        NOT NULL,
    archived_at               timestamptz,
    payload                   jsonb       NOT NULL,
    updated_at                timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, sourced_id)
);
CREATE INDEX demographics_by_user ON demographics (tenant_id, user_internal_id);

-- 1.2 userProfiles.csv (the password column never reaches the pipeline).
CREATE TABLE user_profiles (
    tenant_id                 text        NOT NULL,
    sourced_id                text        NOT NULL,
    internal_id               uuid        NOT NULL UNIQUE,
    source                    text        NOT NULL,
    user_internal_id          uuid,
    profile_type              text,
    vendor_id                 text,
    application_id            text,
    credential_type           text,
    username                  text,
    source_date_last_modified timestamptz,
    content_hash              text        NOT NULL,
    first_seen_run            uuid        NOT NULL,
    last_seen_run             uuid        NOT NULL,
    archived_at               timestamptz,
    payload                   jsonb       NOT NULL,
    updated_at                timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, sourced_id)
);
CREATE INDEX user_profiles_by_user ON user_profiles (tenant_id, user_internal_id);

-- 1.2 roles.csv: a user's role in an org, a record with its own sourcedId.
CREATE TABLE user_roles (
    tenant_id                 text        NOT NULL,
    sourced_id                text        NOT NULL,
    internal_id               uuid        NOT NULL UNIQUE,
    source                    text        NOT NULL,
    user_internal_id          uuid,
    org_internal_id           uuid,
    role_type                 text,
    role                      text,
    begin_date                date,
    end_date                  date,       -- exclusive (OneRoster 1.2)
    user_profile_internal_id  uuid,
    source_date_last_modified timestamptz,
    content_hash              text        NOT NULL,
    first_seen_run            uuid        NOT NULL,
    last_seen_run             uuid        NOT NULL,
    archived_at               timestamptz,
    payload                   jsonb       NOT NULL,
    updated_at                timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, sourced_id)
);
-- Users of a school (1.2; 1.1 memberships are in user_orgs), orgs of a user.
CREATE INDEX user_roles_by_org ON user_roles (tenant_id, org_internal_id);
CREATE INDEX user_roles_by_user ON user_roles (tenant_id, user_internal_id);

-- A user's agents (users.agentSourcedIds: parents, guardians…), replaced whenever the user changes.
CREATE TABLE guardian_links (
    tenant_id         text NOT NULL,
    user_internal_id  uuid NOT NULL,
    agent_internal_id uuid NOT NULL,
    PRIMARY KEY (tenant_id, user_internal_id, agent_internal_id)
);
CREATE INDEX guardian_links_by_agent ON guardian_links (tenant_id, agent_internal_id);

-- Every finding of every stage (findings topic), warnings included: the run report reads these.
-- finding_id is a hash of what identifies the finding, so a redelivered event adds nothing.
CREATE TABLE findings (
    finding_id  uuid        PRIMARY KEY,
    tenant_id   text        NOT NULL,
    run_id      uuid,
    stage       text        NOT NULL,
    entity      text,
    sourced_id  text,
    rejected    boolean     NOT NULL,
    code        text        NOT NULL,
    severity    text        NOT NULL,
    file        text,
    row         int,
    column_name text,
    value       text,
    message     text        NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX findings_by_code ON findings (tenant_id, run_id, code);
CREATE INDEX findings_by_file ON findings (tenant_id, run_id, file);

-- The run as the fetcher reports it (runs topic); status stays the writer's own view.
ALTER TABLE sync_runs
    ADD COLUMN oneroster_version text,
    ADD COLUMN manifest          jsonb,
    ADD COLUMN file_counts       jsonb,
    ADD COLUMN skipped_files     jsonb,
    ADD COLUMN fetch_status      text CHECK (fetch_status IN ('started', 'fetched', 'failed')),
    ADD COLUMN fetch_error       text,
    ADD COLUMN fetch_started_at  timestamptz,
    ADD COLUMN fetched_at        timestamptz;  -- when the fetch ended (fetched or failed)
