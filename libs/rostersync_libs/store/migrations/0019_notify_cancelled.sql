-- rostersync schema, version 19: a cancelled run is an event tenants can be notified of
-- (libs/rostersync_libs/notify_config.py; services/api/rostersync_api/notify/).
ALTER TABLE notifications DROP CONSTRAINT notifications_event_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_event_check
    CHECK (event IN ('failed', 'held', 'rejections', 'cancelled'));
