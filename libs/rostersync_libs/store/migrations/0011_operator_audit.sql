-- rostersync schema, version 11: the operator audit, and the commands the writer refused.

-- Every command an operator sends (through the CLI), written in PostgreSQL before the command goes
-- on Kafka, under the command's id. Who sent it is the server's word: ``actor`` is the login the
-- connection authenticated (session_user), set by the trigger below whatever the client sends.
-- ``label`` is only descriptive (the operator's OS login, or --by): nothing trusts it.
-- A control table: a replay into a fresh schema reads the live schema's (settings.control).
CREATE TABLE operator_audit (
    command_id  uuid        PRIMARY KEY,
    tenant_id   text        NOT NULL,
    run_id      uuid        NOT NULL,
    action      text        NOT NULL
        CHECK (action IN ('sync', 'cancel', 'hold_approve', 'hold_discard')),
    actor       text        NOT NULL,
    label       text,
    reason      text,
    recorded_at timestamptz NOT NULL
);
CREATE INDEX operator_audit_by_run ON operator_audit (tenant_id, run_id);

-- The server, not the client, says who and when.
CREATE FUNCTION operator_audit_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.actor := session_user;
    NEW.recorded_at := now();
    RETURN NEW;
END
$$;
CREATE TRIGGER operator_audit_stamp BEFORE INSERT ON operator_audit
    FOR EACH ROW EXECUTE FUNCTION operator_audit_stamp();

-- Append-only, for the table's owner too. Row and TRUNCATE triggers only: DROP SCHEMA … CASCADE
-- (tests, a deployment removed on purpose) and the migration runner are not stopped by them.
CREATE FUNCTION operator_audit_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'operator_audit is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER operator_audit_append_only BEFORE UPDATE OR DELETE ON operator_audit
    FOR EACH ROW EXECUTE FUNCTION operator_audit_refuse();
CREATE TRIGGER operator_audit_no_truncate BEFORE TRUNCATE ON operator_audit
    FOR EACH STATEMENT EXECUTE FUNCTION operator_audit_refuse();

-- Who decided a hold is the audit's actor; the decision names the audit row it was checked with.
ALTER TABLE hold_decisions ADD COLUMN command_id uuid;

-- Commands read from the topic that were not acted on, and why (no audit row, or one that does
-- not agree): what operators see of a forged decision. Rebuilt by a replay like hold_decisions.
CREATE TABLE refused_commands (
    command_id  uuid        NOT NULL,
    tenant_id   text        NOT NULL,
    run_id      uuid        NOT NULL,
    command     text        NOT NULL,
    reason      text        NOT NULL
        CHECK (reason IN ('not_audited', 'tenant_differs', 'run_differs', 'action_differs')),
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, run_id, command_id)
);
