"""The one list of the deployment's tables (tests/unit/libs/test_store.py checks it against the
migrations). Who may read and write each is db_roles.py; how a record becomes a row is the
writer's tables.py, which takes each entity's table name from here."""

from __future__ import annotations

from rostersync_libs.events import EntityType

# The roster: one table per entity, written by the writer only.
ROSTER_TABLES: dict[EntityType, str] = {
    EntityType.ORG: "orgs",
    EntityType.ACADEMIC_SESSION: "academic_sessions",
    EntityType.COURSE: "courses",
    EntityType.CLASS: "classes",
    EntityType.USER: "users",
    EntityType.ENROLLMENT: "enrollments",
    EntityType.DEMOGRAPHIC: "demographics",
    EntityType.ROLE: "user_roles",
    EntityType.USER_PROFILE: "user_profiles",
}
# The same, keyed by the entity's name as events and findings carry it.
ENTITY_TABLES: dict[str, str] = {entity.value: table for entity, table in ROSTER_TABLES.items()}
# Links between roster rows (no archived state of their own), written by the writer.
LINK_TABLES = ("user_orgs", "guardian_links", "class_terms")

# The writer's account of runs: their state, findings and rejections, what it holds back.
RUN_TABLES = (
    "sync_runs",
    "run_markers",
    "run_outcomes",
    "run_rejections",
    "findings",
    "rejected_records",
    "parked_records",
    "parked_waits",
    "pending_archives",
    "hold_decisions",
    "refused_commands",
    "consumer_positions",
)
# The change feed (docs/change-feed.md): a run's captured changes, numbered per tenant when it
# completes, the relay's cursor, and the API's webhook subscriptions.
CHANGE_TABLES = (
    "change_pending",
    "change_log",
    "change_sequences",
    "change_relay",
    "change_subscriptions",
)
# Identity: the directory the CLI imports and the claims the mapper makes (docs/identity.md).
IDENTITY_TABLES = ("app_directory", "identity_claims")
# The fetcher's leases on the runs it publishes.
FETCH_TABLES = ("fetch_leases",)
# How far the fetcher, validator and mapper are with a running run (stage_progress.py).
PROGRESS_TABLES = ("run_stage_progress",)
# Control tables: in the control schema (settings.control), shared by a replay's fresh schema.
CONTROL_TABLES = (
    "tenant_data_keys",
    "operator_audit",
    "tenant_configs",
    "api_tokens",
    "api_audit",
    "source_secrets",
)
# The admin API's notifier's delivery log.
API_TABLES = ("notifications",)
# The migrations' own bookkeeping (migrate.py).
MIGRATIONS_TABLE = "schema_migrations"

ALL_TABLES: tuple[str, ...] = (
    *ROSTER_TABLES.values(),
    *LINK_TABLES,
    *RUN_TABLES,
    *IDENTITY_TABLES,
    *CHANGE_TABLES,
    *FETCH_TABLES,
    *PROGRESS_TABLES,
    *CONTROL_TABLES,
    *API_TABLES,
)
