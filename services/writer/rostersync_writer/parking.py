"""Records waiting for a verdict on what they point at (integrity.py), kept in PostgreSQL.

A parked record is the mapped record itself (``RecordEvent.to_bytes``: with its run's context),
with the run that first saw it and the targets it
waits for. It leaves the lot when one of those targets gets its verdict (released and judged
again), when a later upsert of the same record supersedes it (which keeps its first seen run), or
when its run completes (judged for good). A later run that only sees the record (unchanged,
rejected, deleted) while it waits — a replay reads several runs at once — is noted with it, so
its row lands marked as seen in that run, as it would have live. Everything happens in the writer's batch transaction, so a crash loses nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

import asyncpg
from rostersync_libs.events import RecordEvent

Parked = tuple[RecordEvent, UUID]  # the event and the run that first saw the record
SeenLater = dict[tuple[str, str], UUID]  # (tenant, sourcedId) → a later run that saw it

PARK_SQL = (
    "INSERT INTO parked_records"
    " (tenant_id, run_id, entity, sourced_id, first_seen_run, seen_run, event)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant_id, entity, sourced_id, run_id)"
    " DO UPDATE SET first_seen_run = excluded.first_seen_run, event = excluded.event,"
    " seen_run = greatest(parked_records.seen_run, excluded.seen_run)"
)
WAIT_SQL = (
    "INSERT INTO parked_waits (tenant_id, run_id, entity, sourced_id, target_internal_id)"
    " SELECT $1, $2, $3, $4, unnest($5::uuid[]) ON CONFLICT DO NOTHING"
)
# Keys as four arrays: tenant, entity, sourcedId, run.
_KEYS = "unnest($1::text[], $2::text[], $3::text[], $4::uuid[]) AS k(tenant, entity, sid, run)"
_MATCH = "{t}.tenant_id = k.tenant AND {t}.entity = k.entity AND {t}.sourced_id = k.sid"


def _key_arrays(events: Iterable[RecordEvent]) -> list[list[object]]:
    keys = {(e.tenant, e.entity.value, e.sourced_id, e.run_id) for e in events}
    return [list(column) for column in zip(*keys, strict=True)] if keys else [[], [], [], []]


async def any_parked(conn: asyncpg.Connection, tenants: set[str]) -> bool:
    return bool(tenants) and bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM parked_records WHERE tenant_id = ANY($1::text[]))",
            sorted(tenants),
        )
    )


async def park(
    conn: asyncpg.Connection,
    parked: list[tuple[RecordEvent, UUID, list[UUID]]],
    later: SeenLater | None = None,
) -> None:
    """Keep these records (event, first seen run, targets waited for) until a verdict; ``later``:
    what a later run saw of those parked before (kept when a record is parked again)."""
    if not parked:
        return
    later = later or {}
    await conn.executemany(
        PARK_SQL,
        [
            (e.tenant, e.run_id, e.entity.value, e.sourced_id, first,
             later.get((e.tenant, e.sourced_id)), e.to_bytes())
            for e, first, _ in parked
        ],
    )  # fmt: skip
    await conn.executemany(
        WAIT_SQL,
        [(e.tenant, e.run_id, e.entity.value, e.sourced_id, waits) for e, _, waits in parked],
    )


async def drop_superseded(
    conn: asyncpg.Connection, upserts: list[RecordEvent]
) -> dict[tuple[str, str], UUID]:
    """A later upsert of a record replaces what was parked for it (any run up to its own);
    returns the first run that saw each replaced record, which the later version keeps."""
    arrays = _key_arrays(upserts)
    if not arrays[0]:
        return {}
    await conn.execute(
        f"DELETE FROM parked_waits AS p USING {_KEYS} WHERE {_MATCH.format(t='p')}"
        " AND p.run_id <= k.run",
        *arrays,
    )
    rows = await conn.fetch(
        f"DELETE FROM parked_records AS p USING {_KEYS} WHERE {_MATCH.format(t='p')}"
        " AND p.run_id <= k.run RETURNING p.tenant_id, p.sourced_id, p.first_seen_run",
        *arrays,
    )
    firsts: dict[tuple[str, str], UUID] = {}
    for r in rows:
        key = (r["tenant_id"], r["sourced_id"])
        firsts[key] = min(r["first_seen_run"], firsts.get(key, r["first_seen_run"]))
    return firsts


async def note_later(
    conn: asyncpg.Connection, entity: str, seen: list[tuple[str, str, UUID]]
) -> None:
    """A later run saw these records (tenant, sourcedId, run) while an older version waits: when
    it lands, its row is marked seen in that run (so that run's sweep does not archive it)."""
    if seen:
        tenants, sids, runs = (list(c) for c in zip(*seen, strict=True))
        await conn.execute(
            "UPDATE parked_records AS p SET seen_run = greatest(p.seen_run, k.run)"
            " FROM unnest($1::text[], $2::text[], $3::uuid[]) AS k(tenant, sid, run)"
            " WHERE p.tenant_id = k.tenant AND p.entity = $4 AND p.sourced_id = k.sid"
            " AND p.run_id < k.run",
            tenants, sids, runs, entity,
        )  # fmt: skip


async def unpark(conn: asyncpg.Connection, events: list[RecordEvent]) -> None:
    """Take these records (their own run) out of the lot: they are being judged again."""
    arrays = _key_arrays(events)
    if arrays[0]:
        for table in ("parked_waits", "parked_records"):
            await conn.execute(
                f"DELETE FROM {table} AS p USING {_KEYS} WHERE {_MATCH.format(t='p')}"
                " AND p.run_id = k.run",
                *arrays,
            )


def _decoded(rows: list[asyncpg.Record]) -> tuple[list[Parked], SeenLater]:
    parked = [(RecordEvent.from_bytes(bytes(r["event"])), r["first_seen_run"]) for r in rows]
    later = {(r["tenant_id"], r["sourced_id"]): r["seen_run"] for r in rows if r["seen_run"]}
    return parked, later


_COLUMNS = "p.tenant_id, p.sourced_id, p.event, p.first_seen_run, p.seen_run"


async def waiting_on(
    conn: asyncpg.Connection, tenant: str, targets: set[UUID]
) -> tuple[list[Parked], SeenLater]:
    """Parked records of the tenant that wait for any of these targets."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM parked_records p WHERE p.tenant_id = $1"
        " AND EXISTS (SELECT 1 FROM parked_waits w WHERE w.tenant_id = p.tenant_id"
        " AND w.run_id = p.run_id AND w.entity = p.entity AND w.sourced_id = p.sourced_id"
        " AND w.target_internal_id = ANY($2::uuid[]))",
        tenant,
        list(targets),
    )
    return _decoded(rows)


async def parked_of_run(
    conn: asyncpg.Connection, tenant: str, run_id: UUID
) -> tuple[list[Parked], SeenLater]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM parked_records p WHERE p.tenant_id = $1 AND p.run_id = $2",
        tenant,
        run_id,
    )
    return _decoded(rows)
