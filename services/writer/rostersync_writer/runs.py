"""Sync runs as the writer sees them: started on their first event, complete when their markers
are in *and* the fetcher's run event says publishing ended (run_ends.py says why both)."""

from __future__ import annotations

from uuid import UUID

import asyncpg
import msgspec
import orjson
from rostersync_libs import events
from rostersync_libs.events import EntityType, RunMarker

from rostersync_writer.run_ends import (
    MarkerSlot,
    RunEnd,
    all_markers_in,
    publishing_ended,
    sweepable,
)

START_SQL = (
    "INSERT INTO sync_runs (tenant_id, run_id, source) VALUES ($1, $2, $3)"
    " ON CONFLICT (tenant_id, run_id) DO NOTHING"
)
MARKER_SQL = (
    "INSERT INTO run_markers"
    " (tenant_id, run_id, partition, origin_partition, origin_count, fanout, marker, counts)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb) ON CONFLICT DO NOTHING"
)
RUN_SQL = """
SELECT source, fetch_status, declared_bulk, declared_fanout, file_counts
FROM sync_runs r
WHERE tenant_id = $1 AND run_id = $2 AND status IN ('running', 'failed', 'cancelled')
  AND NOT EXISTS (SELECT 1 FROM run_outcomes o WHERE o.tenant_id = $1 AND o.run_id = $2)
"""
SLOTS_SQL = (
    "SELECT partition, origin_partition, origin_count, fanout, marker FROM run_markers"
    " WHERE tenant_id = $1 AND run_id = $2 AND ($3 OR counts = $4::jsonb)"
    " ORDER BY partition, origin_partition"
)
COMPLETE_SQL = """
UPDATE sync_runs SET status = CASE WHEN status IN ('failed', 'cancelled') THEN status
        WHEN $3 THEN 'failed' ELSE 'completed' END,
    completed_at = coalesce(completed_at, now()), published_counts = $4::jsonb
WHERE tenant_id = $1 AND run_id = $2
"""


async def note_runs(conn: asyncpg.Connection, seen: set[tuple[str, UUID, str]]) -> None:
    """Make sure every run seen in the batch (tenant, run, source) has its row."""
    if seen:
        await conn.executemany(START_SQL, sorted(seen, key=lambda r: (r[0], str(r[1]), r[2])))


async def lock_runs(conn: asyncpg.Connection, runs: set[tuple[str, UUID]]) -> None:
    """Serialise, per run, the transactions that may complete it (writer instances sharing the
    partitions): the one that waits then sees the other's markers and run event. In one order, so
    two instances never wait for each other."""
    for tenant, run_id in sorted(runs, key=lambda r: (r[0], str(r[1]))):
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"run:{tenant}:{run_id}"
        )


async def record_markers(
    conn: asyncpg.Connection, markers: list[tuple[int, events.RunEnd]]
) -> None:
    """Store markers, with the partition they arrived on and what they carry."""
    rows = []
    for partition, event in markers:
        m = event.marker
        rows.append((event.tenant, event.run_id, partition, m.origin_partition, m.origin_count,
                     m.fanout, msgspec.json.encode(m).decode(), orjson.dumps(m.counts).decode()))  # fmt: skip
    if rows:
        await conn.executemany(MARKER_SQL, rows)


async def complete_ready(conn: asyncpg.Connection, runs: set[tuple[str, UUID]]) -> list[RunEnd]:
    """The runs among these that are complete now (marked so in ``sync_runs``)."""
    ended: list[RunEnd] = []
    for tenant, run_id in sorted(runs, key=lambda r: (r[0], str(r[1]))):
        run = await conn.fetchrow(RUN_SQL, tenant, run_id)
        if run is None or not publishing_ended(run["fetch_status"]):
            continue  # unknown to the fetcher (never acted on), or still publishing
        # A published run counts the markers that carry its published counts; an aborted one
        # (nothing swept) every marker: the fetcher that ends a lapsed run counted nothing.
        aborted = run["fetch_status"] != "fetched"
        stored = await conn.fetch(SLOTS_SQL, tenant, run_id, aborted, run["file_counts"] or "{}")
        slots = [MarkerSlot(r["partition"], r["origin_partition"], r["origin_count"], r["fanout"])
                 for r in stored]  # fmt: skip
        if not all_markers_in(slots, run["declared_fanout"]):
            continue
        marker = _marker(stored)
        declared = run["declared_bulk"]
        bulk = sweepable(
            run["fetch_status"],
            None if declared is None else [EntityType(e) for e in orjson.loads(declared)],
            marker,
        )
        await conn.execute(COMPLETE_SQL, tenant, run_id, aborted,
                           orjson.dumps(marker.counts).decode())  # fmt: skip
        ended.append(RunEnd(tenant, run_id, run["source"], bulk, aborted, marker))
    return ended


def _marker(stored: list[asyncpg.Record]) -> RunMarker:
    """The first marker's facts (one stored before they were kept: its slot, default holds)."""
    for row in stored:
        if row["marker"] is not None:
            return msgspec.json.decode(row["marker"], type=RunMarker)
    first = stored[0]
    return RunMarker(origin_partition=first["origin_partition"],
                     origin_count=first["origin_count"], fanout=first["fanout"])  # fmt: skip
