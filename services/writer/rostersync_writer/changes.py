"""The change feed's outbox: which run a change belongs to, and its sequence number.

The rows themselves are written by the triggers of migration 0017 (to ``change_pending``), in
the batch's transaction, only while a run is named here (``attribute``). A run's changes get
their tenant's sequence numbers when the run completes (``number_runs`` moves them to
``change_log``), in a canonical order (entity, record, capture
order), not the order batches happened to bring them: a replay reads the topics in other batches
but rebuilds each run's changes, and so numbers them the same way. Numbers of one tenant commit
in order (the ``change_sequences`` row lock), so a reader after ``n`` never skips one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from uuid import UUID

import asyncpg

from rostersync_writer.references import APPLY_ORDER
from rostersync_writer.references import LINKS as LINK_TABLES

# Targets before what points at them (the writer's apply order), links after their owners.
LINKS = [link.entity for link in LINK_TABLES]  # classTerms, userOrgs, guardianLinks
ENTITY_ORDER = [*(e.value for e in APPLY_ORDER), *LINKS]

PENDING_SQL = "SELECT count(*) FROM change_pending WHERE tenant_id = $1 AND run_id = $2"
RESERVE_SQL = (
    "INSERT INTO change_sequences AS s (tenant_id, last_seq) VALUES ($1, $2)"
    " ON CONFLICT (tenant_id) DO UPDATE SET last_seq = s.last_seq + excluded.last_seq"
    " RETURNING last_seq"
)
NUMBER_SQL = """
INSERT INTO change_log (tenant_id, seq, run_id, effective_at, entity, internal_id, sourced_id,
                        operation, fields, record, school_id, class_id)
SELECT tenant_id, $3 + row_number() OVER (
           -- a record's changes in capture order; an owner's links by what they link
           ORDER BY array_position($5::text[], entity), internal_id,
                    CASE WHEN entity = ANY($6::text[]) THEN record::text END, id),
       run_id, $4, entity, internal_id, sourced_id, operation, fields, record, school_id, class_id
FROM change_pending WHERE tenant_id = $1 AND run_id = $2
"""
# When the run read its source: the fetcher's run events (on a retained topic, so a replay finds
# the same time); the run id's own time (UUIDv7) for a run without them.
RUN_TIME_SQL = (
    "SELECT coalesce(fetched_at, fetch_started_at) FROM sync_runs"
    " WHERE tenant_id = $1 AND run_id = $2"
)


async def attribute(conn: asyncpg.Connection, run_id: UUID) -> None:
    """Changes made from now on in this transaction belong to ``run_id``."""
    await conn.execute("SELECT set_config('rostersync.run_id', $1, true)", str(run_id))


@asynccontextmanager
async def uncaptured(conn: asyncpg.Connection, run_id: UUID) -> AsyncIterator[None]:
    """Inside, writes belong to no run, so the triggers return at once; then ``run_id`` again.

    For statements that only note that rows were seen again (``last_seen_run``): the update
    trigger would drop them after joining the transition tables, which costs about 40% of such
    an update (``benchmarks.change_capture``), and an unchanged re-sync is almost only these.
    """
    await conn.execute("SELECT set_config('rostersync.run_id', '', true)")
    try:
        yield
    finally:
        await attribute(conn, run_id)


async def number_runs(conn: asyncpg.Connection, runs: list[tuple[str, UUID]]) -> int:
    """Give these runs' changes not yet numbered their tenants' next sequence numbers; returns
    how many were numbered."""
    numbered = 0
    for tenant, run_id in sorted(set(runs), key=lambda r: r[1]):  # run ids are time-ordered
        count = await conn.fetchval(PENDING_SQL, tenant, run_id)
        if not count:
            continue
        last = await conn.fetchval(RESERVE_SQL, tenant, count)
        at = await conn.fetchval(RUN_TIME_SQL, tenant, run_id) or run_time(run_id)
        await conn.execute(NUMBER_SQL, tenant, run_id, last - count, at, ENTITY_ORDER, LINKS)
        await conn.execute(
            "DELETE FROM change_pending WHERE tenant_id = $1 AND run_id = $2", tenant, run_id
        )
        numbered += count
    return numbered


def run_time(run_id: UUID) -> datetime:
    """The instant a UUIDv7 run id was made (its first 48 bits: Unix milliseconds)."""
    return datetime.fromtimestamp((run_id.int >> 80) / 1000, UTC)
