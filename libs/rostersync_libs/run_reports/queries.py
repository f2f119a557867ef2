"""The queries behind what operators read: runs, what landed, why records were rejected, and
the runs the safety threshold held."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

import asyncpg

from rostersync_libs.run_reports.status import STATE_COLUMNS, STATE_JOINS
from rostersync_libs.store.tables import ENTITY_TABLES

RUNS_SQL = f"""
SELECT r.run_id, r.tenant_id, r.source, r.first_event_at, r.completed_at,
       r.published_counts, r.unchanged_counts, {STATE_COLUMNS},
       (SELECT count(*) FROM rejected_records x
         WHERE x.tenant_id = r.tenant_id AND x.run_id = r.run_id) AS rejected
FROM sync_runs r
{STATE_JOINS}
WHERE ($1::text IS NULL OR r.tenant_id = $1)
  AND ($3::uuid IS NULL OR (r.first_event_at, r.run_id) < (
       SELECT b.first_event_at, b.run_id FROM sync_runs b WHERE b.tenant_id = r.tenant_id
       AND b.run_id = $3))
ORDER BY r.first_event_at DESC, r.run_id DESC
LIMIT $2
"""

# Tables with an archived state, then the link tables (no archived state of their own).
ROSTER_TABLES = (*ENTITY_TABLES.values(),)
LINK_TABLES = ("user_orgs", "guardian_links", "class_terms")

REJECTIONS_SQL = """
SELECT stage, entity, sourced_id, origin_file, origin_row, findings
FROM rejected_records WHERE tenant_id = $1 AND run_id = $2
ORDER BY origin_file, origin_row LIMIT $3
"""


async def list_runs(
    conn: asyncpg.Connection, tenant: str | None, limit: int = 20, before: UUID | None = None
) -> list[Any]:
    """Newest first; ``before``: the runs after that one in this order (the next page)."""
    return list(await conn.fetch(RUNS_SQL, tenant, limit, before))


async def landed(conn: asyncpg.Connection, tenant: str) -> list[Any]:
    """Active and archived rows of each table for one tenant."""
    parts = [
        f"SELECT '{t}' AS entity, count(*) FILTER (WHERE archived_at IS NULL) AS active,"
        f" count(*) FILTER (WHERE archived_at IS NOT NULL) AS archived FROM {t} WHERE tenant_id = $1"
        for t in ROSTER_TABLES
    ] + [f"SELECT '{t}', count(*), 0 FROM {t} WHERE tenant_id = $1" for t in LINK_TABLES]
    return list(await conn.fetch(" UNION ALL ".join(parts), tenant))


async def rejections(conn: asyncpg.Connection, tenant: str, run_id: UUID, limit: int) -> list[Any]:
    return list(await conn.fetch(REJECTIONS_SQL, tenant, run_id, limit))


async def wait_for_run(
    conn: asyncpg.Connection,
    tenant: str,
    run_id: UUID,
    timeout: float,
    on_tick: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
) -> str | None:
    """Poll until the run is completed or failed; the final status, or None on time-out.
    ``on_tick`` is called about every 2 s meanwhile (progress, ``sync --wait``)."""
    deadline = time.monotonic() + timeout
    next_tick = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        if on_tick is not None and time.monotonic() >= next_tick:
            await on_tick(conn)
            next_tick = time.monotonic() + 2.0
        try:
            status: str | None = await conn.fetchval(
                "SELECT status FROM sync_runs WHERE tenant_id = $1 AND run_id = $2", tenant, run_id
            )
        except asyncpg.UndefinedTableError:
            status = None  # the writer has not created its schema yet
        if status in ("completed", "failed", "cancelled"):
            return status
        await asyncio.sleep(0.5)
    return None


HOLDS_SQL = """
SELECT tenant_id, run_id, status, numbers, threshold, created_at, decided_at
FROM run_outcomes
WHERE ($1::text IS NULL OR tenant_id = $1) AND ($2 OR status = 'held')
  AND ($4::uuid IS NULL OR (created_at, run_id) < (SELECT b.created_at, b.run_id
       FROM run_outcomes b WHERE b.tenant_id = run_outcomes.tenant_id AND b.run_id = $4))
ORDER BY created_at DESC, run_id DESC LIMIT $3
"""


async def list_holds(
    conn: asyncpg.Connection,
    tenant: str | None,
    everything: bool,
    limit: int = 50,
    before: UUID | None = None,
) -> list[Any]:
    """Held runs (or, ``everything``, every run outcome), newest first."""
    return list(await conn.fetch(HOLDS_SQL, tenant, everything, limit, before))
