"""Shared building blocks of rostersync's services (docs/architecture.md, "Where things live").

Events and topics:
    events (the record topics: typed batch events), topics, commands, runs, markers, dlq, identities, ids, partitioning,
    change_events (the change feed's event)
Findings:
    findings (the model, bounded lists), finding_codes (every code and its severities)
The stage loop and the service process:
    stage (with stage_handler, stage_reading, stage_records, stage_letters, stage_counts),
    stage_progress, service, health, health_server, metrics, logs, lag, outages
Kafka, sealing and access:
    kafka, sealed_clients, sealing, data_keys, kafka_acls
PostgreSQL:
    store (the schema: migrations, table list, typed reads, roster history), db (pools), db_roles (grants),
    audit (the operator audit), source_secrets, tenant_registry
Configuration:
    settings (the only reader of the environment), tenants, minimisation, notify_config,
    oneroster (file and column definitions), timestamps
Operators' reports:
    run_reports (run status, queries and documents for the CLI and the API)
"""
