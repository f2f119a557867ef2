"""Shared building blocks of rostersync's services.

Modules:
    envelope  -- the event every topic carries, and its Kafka key
    topics    -- every topic name, in one place
    settings  -- the settings base class shared by all services
    ids       -- deterministic internal ids
    kafka     -- producer/consumer helpers (manual commits) and topic creation
    stage     -- the consume-transform-produce loop of the middle stages
    markers   -- end-of-run markers: knowing when a run is complete
    db        -- the PostgreSQL pool helper
    tenants   -- the tenants configuration file
    oneroster -- OneRoster file and column definitions
"""
