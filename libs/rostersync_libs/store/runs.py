"""Reads of the runs' state (``sync_runs``, written by the writer from the runs topic), for the
fetcher and the CLI."""

from __future__ import annotations

from uuid import UUID

from rostersync_libs.store.roster import Db

# A run whose predecessor is settled may trust the tables (the fetcher's unchanged records).
SETTLED = ("completed", "held")

PREVIOUS_RUN_SQL = (
    "SELECT status FROM sync_runs WHERE tenant_id = $1 AND run_id < $2"
    " AND fetch_status IS DISTINCT FROM 'failed' ORDER BY run_id DESC LIMIT 1"
)
# What the writer recorded of the run's publishing (from the fetcher's run events).
PUBLISHING_ENDED_SQL = (
    "SELECT fetch_status IN ('fetched', 'failed', 'cancelled') FROM sync_runs"
    " WHERE tenant_id = $1 AND run_id = $2"
)
RUN_EXISTS_SQL = "SELECT EXISTS (SELECT 1 FROM sync_runs WHERE tenant_id = $1 AND run_id = $2)"
TENANT_HAS_RUNS_SQL = "SELECT EXISTS (SELECT 1 FROM sync_runs WHERE tenant_id = $1)"


async def previous_run_status(db: Db, tenant: str, run_id: UUID) -> str | None:
    """The status of the tenant's run before ``run_id`` whose fetch did not fail (None: none)."""
    status: str | None = await db.fetchval(PREVIOUS_RUN_SQL, tenant, run_id)
    return status


async def previous_run_settled(db: Db, tenant: str, run_id: UUID) -> bool:
    return await previous_run_status(db, tenant, run_id) in SETTLED


async def publishing_ended(db: Db, tenant: str, run_id: UUID) -> bool:
    """Whether the run's fetcher said its publishing ended (fetched, failed or cancelled)."""
    return bool(await db.fetchval(PUBLISHING_ENDED_SQL, tenant, run_id))


async def run_exists(db: Db, tenant: str, run_id: UUID) -> bool:
    """Whether the writer has heard of the run (its fetcher took the command)."""
    return bool(await db.fetchval(RUN_EXISTS_SQL, tenant, run_id))


async def tenant_has_runs(db: Db, tenant: str) -> bool:
    return bool(await db.fetchval(TENANT_HAS_RUNS_SQL, tenant))
