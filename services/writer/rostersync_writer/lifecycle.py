"""What a run removes: staged deletes, the bulk-absence sweep, cascades, and safety holds.

- A ``tobedeleted`` record is staged in ``pending_archives``; a later upsert of the same record
  cancels it. Nothing is archived while records of the run are still arriving.
- When every record of a run is written (its markers are in), the run's destructive part is
  computed: its staged deletes, and, for each entity whose file was a complete bulk snapshot,
  the rows of that source last seen in an *earlier* run (run ids are time-ordered UUIDv7).
- If that would archive more than the tenant's threshold of an entity's active rows, the run is
  held: nothing is archived until an operator's decision arrives (approve or discard).
- What points at an archived row is archived, cleared or unlinked (cascade.py); a record that
  comes back is restored, with the same internal id, by its next upsert (a user's demographics
  with it). The completed run's outcome records how many rows still point at a missing or
  archived row (``dangling``, expected 0).
"""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

import asyncpg
import orjson
from rostersync_libs.events import EntityType, RecordEvent

from rostersync_writer.cascade import cascade, unlink_rejected
from rostersync_writer.changes import number_runs
from rostersync_writer.dangling import count_dangling_after
from rostersync_writer.run_ends import RunEnd
from rostersync_writer.safety import Hold, SafetyLimits
from rostersync_writer.tables import TABLES

log = logging.getLogger(__name__)

STAGE_DELETE_SQL = (
    "INSERT INTO pending_archives (tenant_id, run_id, entity, sourced_id, source_date_last_modified)"
    " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, entity, sourced_id, run_id)"
    " DO UPDATE SET source_date_last_modified = excluded.source_date_last_modified"
)
CANCEL_SQL = (
    "DELETE FROM pending_archives p USING unnest($1::text[], $2::text[], $3::text[], $4::uuid[])"
    " AS u(tenant, entity, sourced_id, run_id) WHERE p.tenant_id = u.tenant"
    " AND p.entity = u.entity AND p.sourced_id = u.sourced_id AND p.run_id <= u.run_id"
)


async def stage_deletes(conn: asyncpg.Connection, deletes: list[RecordEvent]) -> None:
    rows = [
        (e.tenant, e.run_id, e.entity.value, e.sourced_id, e.date_last_modified) for e in deletes
    ]
    if rows:
        await conn.executemany(STAGE_DELETE_SQL, rows)


async def any_staged(conn: asyncpg.Connection, tenants: set[str]) -> bool:
    """Whether any of these tenants has deletes waiting for their run (most batches: none)."""
    return bool(tenants) and bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM pending_archives WHERE tenant_id = ANY($1::text[]))",
            sorted(tenants),
        )
    )


async def cancel_staged(conn: asyncpg.Connection, upserts: list[RecordEvent]) -> None:
    """An upsert after a delete of the same record (in order, same partition) undoes the delete."""
    if upserts:
        columns = list(
            zip(
                *[(e.tenant, e.entity.value, e.sourced_id, e.run_id) for e in upserts],
                strict=True,
            )
        )
        await conn.execute(CANCEL_SQL, *[list(c) for c in columns])


def sweep_where(table: str) -> str:
    return (
        f"FROM {table} WHERE tenant_id = $1 AND source = $2 AND archived_at IS NULL"
        " AND last_seen_run < $3"
    )


def staged_where(table: str) -> str:
    return (
        f"FROM {table} t, pending_archives p WHERE p.tenant_id = $1 AND p.run_id = $2"
        " AND p.entity = $3 AND t.tenant_id = p.tenant_id AND t.sourced_id = p.sourced_id"
        " AND t.archived_at IS NULL AND (p.source_date_last_modified IS NULL"
        " OR t.source_date_last_modified IS NULL"
        " OR p.source_date_last_modified >= t.source_date_last_modified)"
    )


async def _numbers(
    conn: asyncpg.Connection, tenant: str, run_id: UUID, source: str, bulk: list[EntityType]
) -> dict[str, dict[str, Any]]:
    numbers: dict[str, dict[str, Any]] = {}
    for entity, table in TABLES.items():
        staged = await conn.fetchval(
            f"SELECT count(*) {staged_where(table.name)}", tenant, run_id, entity.value
        )
        swept = 0
        if entity in bulk:
            swept = await conn.fetchval(
                f"SELECT count(*) {sweep_where(table.name)}", tenant, source, run_id
            )
        if staged or swept:
            active = await conn.fetchval(
                f"SELECT count(*) FROM {table.name} WHERE tenant_id = $1 AND archived_at IS NULL",
                tenant,
            )
            numbers[entity.value] = {"active": active, "archive": staged + swept,
                                     "share": round((staged + swept) / active, 4) if active else 1.0}  # fmt: skip
    return numbers


def _over(numbers: dict[str, dict[str, Any]], hold: Hold) -> bool:
    return any(
        n["active"] >= hold.min_records and n["share"] > hold.threshold for n in numbers.values()
    )


async def archive(
    conn: asyncpg.Connection, tenant: str, run_id: UUID, source: str, bulk: list[EntityType]
) -> None:
    archived: dict[EntityType, list[UUID]] = {}
    for entity, table in TABLES.items():
        staged = await conn.fetch(
            f"UPDATE {table.name} AS x SET archived_at = now(), updated_at = now(),"
            " source_date_last_modified = coalesce(p.source_date_last_modified, x.source_date_last_modified)"
            f" FROM pending_archives p WHERE p.tenant_id = $1 AND p.run_id = $2 AND p.entity = $3"
            " AND x.tenant_id = p.tenant_id AND x.sourced_id = p.sourced_id AND x.archived_at IS NULL"
            " AND (p.source_date_last_modified IS NULL OR x.source_date_last_modified IS NULL"
            " OR p.source_date_last_modified >= x.source_date_last_modified) RETURNING x.internal_id",
            tenant, run_id, entity.value,
        )  # fmt: skip
        ids = [r["internal_id"] for r in staged]
        if entity in bulk:
            swept = await conn.fetch(
                f"UPDATE {table.name} SET archived_at = now(), updated_at = now()"
                " WHERE tenant_id = $1 AND source = $2 AND archived_at IS NULL AND last_seen_run < $3"
                " RETURNING internal_id",
                tenant, source, run_id,
            )  # fmt: skip
            ids += [r["internal_id"] for r in swept]
        archived[entity] = ids
    # Cascades last, so a record the run deleted itself keeps the version its delete carried.
    for entity, ids in archived.items():
        await cascade(conn, tenant, entity, ids)
    await conn.execute(
        "DELETE FROM pending_archives WHERE tenant_id = $1 AND run_id = $2", tenant, run_id
    )


LAST_SEQ_SQL = "SELECT last_seq FROM change_sequences WHERE tenant_id = $1"


async def complete_run(conn: asyncpg.Connection, end: RunEnd, limits: SafetyLimits) -> str:
    """Apply or hold a completed run's destructive part; returns the outcome's status.

    ``end.bulk`` is what the fetcher's run event declared (run_ends.py), never a marker's list."""
    tenant, run_id, source, bulk = end.tenant, end.run_id, end.source, end.bulk
    hold = await limits.hold_in(conn, tenant, end.marker)
    numbers = await _numbers(conn, tenant, run_id, source, bulk)
    # Changes numbered after this are the run's (dangling.py finds what the run changed by them).
    numbered_after = await conn.fetchval(LAST_SEQ_SQL, tenant) or 0
    decision = await conn.fetchrow(
        "SELECT approve FROM hold_decisions WHERE tenant_id = $1 AND run_id = $2", tenant, run_id
    )
    if end.aborted:
        # A failed run's snapshot is incomplete: none of its removals are applied.
        status = "aborted"
        await conn.execute(
            "DELETE FROM pending_archives WHERE tenant_id = $1 AND run_id = $2", tenant, run_id
        )
    elif _over(numbers, hold) and decision is None:
        status = "held"
    elif _over(numbers, hold) and decision is not None and not decision["approve"]:
        status = "discarded"
        await conn.execute(
            "DELETE FROM pending_archives WHERE tenant_id = $1 AND run_id = $2", tenant, run_id
        )
    else:
        status = "approved" if _over(numbers, hold) else "applied"
        # What the run's records did is numbered before what its end removes, as when a hold
        # is decided later: a replay that reads the decision first numbers them the same.
        await number_runs(conn, [(tenant, run_id)])
        await archive(conn, tenant, run_id, source, bulk)
    await unlink_rejected(conn, tenant, run_id)
    dangling = await count_dangling_after(conn, tenant, run_id, numbered_after)
    if dangling:
        log.error("tenant %s run %s: rows point at missing or archived rows: %s",
                  tenant, run_id, dangling)  # fmt: skip
    await conn.execute(
        "INSERT INTO run_outcomes (tenant_id, run_id, source, status, bulk_entities, numbers,"
        " threshold, dangling) VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7, $8)"
        " ON CONFLICT (tenant_id, run_id) DO NOTHING",
        tenant, run_id, source, status, orjson.dumps([e.value for e in bulk]).decode(),
        orjson.dumps(numbers).decode(), hold.threshold, sum(dangling.values()),
    )  # fmt: skip
    return status
