-- rostersync schema, version 16: notifications of failed, held and rejection-heavy runs, and
-- their delivery log (services/api/rostersync_api/notify/). One row per run, event and target
-- (a webhook URL or mailto:address): made once, delivered once, retried with a growing pause.
CREATE TABLE notifications (
    tenant_id       text        NOT NULL,
    run_id          uuid        NOT NULL,
    event           text        NOT NULL CHECK (event IN ('failed', 'held', 'rejections')),
    target          text        NOT NULL,
    detail          jsonb       NOT NULL,
    attempts        int         NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, run_id, event, target)
);
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE delivered_at IS NULL;
