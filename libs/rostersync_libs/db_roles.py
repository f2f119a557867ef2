"""PostgreSQL least privilege: what each service's role may do in the deployment's schema.

The writer's role owns the schema and its tables: it runs the migrations (every service tries at
start; a role without ``CREATE`` only checks that they ran) and is the only one that writes the
roster. The others read what they look up and write only their own few tables; none needs
``CREATE``. An administrator applies :func:`grant_statements` once the writer has migrated
(and again after an upgrade that adds tables): ``python -m rostersync_libs.db_roles SCHEMA
--fetcher ROLE …`` prints them. docs/security.md explains each line.
"""

from __future__ import annotations

import argparse
import sys
from typing import Literal

from rostersync_libs.store.tables import MIGRATIONS_TABLE, ROSTER_TABLES

Service = Literal["fetcher", "validator", "mapper", "cli", "api"]

# What the application's records are read from (known ids, content hashes, identities).
ROSTER = tuple(sorted(ROSTER_TABLES.values()))

# Tenants' data keys: every service seals what it sends and opens what it reads (sealing.py).
KEYS = "tenant_data_keys"
# The admin API's tenants, read beside the tenants file (tenant_registry.py).
TENANTS = "tenant_configs"
# Which migrations ran: every service checks at start that its schema is up to date (migrate.py).
MIGRATED = MIGRATIONS_TABLE
# How far each stage is with a running run (stage_progress.py): the fetcher, validator and
# mapper upsert their counts; ON CONFLICT … DO UPDATE reads the row it updates (SELECT).
PROGRESS = "run_stage_progress"

READS: dict[Service, tuple[str, ...]] = {
    # unchanged records (content hashes), the previous run's status, its own leases, and the
    # operator audit (a cancel is acted on only when its audit row agrees: audit.py)
    "fetcher": (
        *ROSTER,
        "sync_runs",
        "fetch_leases",
        "operator_audit",
        KEYS,
        TENANTS,
        MIGRATED,
        PROGRESS,
    ),
    # known sourcedIds of references not in the bundle
    "validator": (*ROSTER, KEYS, MIGRATED, PROGRESS),
    # known ids, the application directory and identity claims (matching)
    "mapper": (
        *ROSTER,
        "app_directory",
        "identity_claims",
        KEYS,
        TENANTS,
        MIGRATED,
        PROGRESS,
    ),  # and rules
    # reports read everything but write nothing except crosswalk entries
    "cli": ("ALL",),
    # the admin API reads what the CLI reads (runs, findings, holds, tokens)
    "api": ("ALL",),
}
# A tenant's data key is made by whichever service first sends one of its events (INSERT only:
# no role but the owner's can change or destroy one; purge runs with the owner's login).
WRITES: dict[Service, dict[str, str]] = {
    "fetcher": {
        "fetch_leases": "INSERT, UPDATE, DELETE",  # leases.py
        KEYS: "INSERT",
        PROGRESS: "INSERT, UPDATE",
    },
    "validator": {KEYS: "INSERT", PROGRESS: "INSERT, UPDATE"},
    "mapper": {
        "identity_claims": "INSERT, UPDATE",  # lookups.py
        KEYS: "INSERT",
        PROGRESS: "INSERT, UPDATE",
    },
    # crosswalk imports (identity_commands.py); the audit row of each command it sends (INSERT
    # only: the table is append-only, and who sent it is the server's session_user)
    # tenants import, API tokens (tenant_commands.py, api_commands.py; their audit rows too)
    "cli": {
        "app_directory": "INSERT, UPDATE",
        "operator_audit": "INSERT",
        KEYS: "INSERT",
        TENANTS: "INSERT, UPDATE",
        "api_audit": "INSERT",
        "api_tokens": "INSERT, UPDATE",
    },
    # tenants and sources, commands and their audits (services/api)
    "api": {
        TENANTS: "INSERT, UPDATE, DELETE",
        "api_audit": "INSERT",
        "operator_audit": "INSERT",
        KEYS: "INSERT",
        "notifications": "INSERT, UPDATE",  # its notifier (notify/)
        "change_subscriptions": "INSERT, UPDATE, DELETE",  # webhooks of changes (subscriptions/)
    },
}


def grant_statements(schema: str, roles: dict[Service, str]) -> list[str]:
    """The GRANTs that give each service's role (by name) exactly its rights in ``schema``."""
    statements = []
    for service, role in roles.items():
        statements.append(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"')
        reads = READS[service]
        if reads == ("ALL",):
            statements.append(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{schema}" TO "{role}"')
        else:
            tables = ", ".join(f'"{schema}"."{t}"' for t in reads)
            statements.append(f'GRANT SELECT ON {tables} TO "{role}"')
        for table, rights in WRITES[service].items():
            statements.append(f'GRANT {rights} ON "{schema}"."{table}" TO "{role}"')
    return statements


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="print the GRANTs of each service's role")
    parser.add_argument("schema")
    for service in READS:
        parser.add_argument(f"--{service}", metavar="ROLE")
    args = parser.parse_args(argv)
    roles: dict[Service, str] = {s: getattr(args, s) for s in READS if getattr(args, s)}
    for statement in grant_statements(args.schema, roles):
        sys.stdout.write(statement + ";\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
