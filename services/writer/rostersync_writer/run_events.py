"""The fetcher's run lifecycle (runs topic) on ``sync_runs``.

A run event may arrive before or after the run's first record, and may be redelivered: every
event is an upsert, and a ``started`` never undoes a ``fetched`` or ``failed``. A ``failed``
event marks the run ``failed`` at once; its aborted end-of-run markers (the fetcher sends them
when the run had begun publishing) then end it for good: parked records judged, staged deletes
dropped, outcome ``aborted``.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
import orjson
from aiokafka import ConsumerRecord
from pydantic import TypeAdapter
from rostersync_libs.runs import RunEvent, RunPhase

from rostersync_writer.decoding import decode_or_skip

RUN_EVENT = TypeAdapter(RunEvent)


_INSERT = (
    "INSERT INTO sync_runs AS r (tenant_id, run_id, source, fetch_status, oneroster_version,"
    " manifest, file_counts, skipped_files, fetch_error, fetch_started_at, fetched_at,"
    " unchanged_counts, declared_bulk, declared_fanout, skipped_by_selection,"
    " trimmed_by_selection)"
    " VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8::jsonb, $9, $10, $11, $12::jsonb,"
    " $13::jsonb, $14, $15::jsonb, $16::jsonb)"
    " ON CONFLICT (tenant_id, run_id) DO UPDATE SET "
)
# The source is the fetcher's word: a marker (note_runs) may have made the row first.
STARTED_SQL = _INSERT + (
    "source = excluded.source,"
    " fetch_status = coalesce(r.fetch_status, excluded.fetch_status),"
    " oneroster_version = coalesce(r.oneroster_version, excluded.oneroster_version),"
    " manifest = coalesce(r.manifest, excluded.manifest),"
    " fetch_started_at = coalesce(r.fetch_started_at, excluded.fetch_started_at)"
)
ENDED_SQL = _INSERT + (
    "source = excluded.source,"
    " fetch_status = excluded.fetch_status,"
    " oneroster_version = coalesce(excluded.oneroster_version, r.oneroster_version),"
    " manifest = coalesce(excluded.manifest, r.manifest),"
    " file_counts = excluded.file_counts, skipped_files = excluded.skipped_files,"
    " fetch_error = excluded.fetch_error, fetched_at = excluded.fetched_at,"
    " unchanged_counts = excluded.unchanged_counts,"
    " declared_bulk = excluded.declared_bulk,"
    " declared_fanout = coalesce(excluded.declared_fanout, r.declared_fanout),"
    " skipped_by_selection = excluded.skipped_by_selection,"
    " trimmed_by_selection = excluded.trimmed_by_selection"
)
# ``failed`` or ``cancelled``: the run's status, as its phase says. The aborted markers the
# fetcher sent first may have ended the run ``failed`` already; a cancellation still says so.
ENDED_EARLY_SQL = (
    "UPDATE sync_runs SET status = $4, completed_at = coalesce(completed_at, $3)"
    " WHERE tenant_id = $1 AND run_id = $2"
    " AND (status = 'running' OR (status = 'failed' AND $4 = 'cancelled'))"
)
ENDED_EARLY = (RunPhase.FAILED, RunPhase.CANCELLED)


def _json(value: dict[str, Any]) -> str | None:
    """Empty maps are "not known yet" (a started event has no counts), stored as NULL."""
    return orjson.dumps(value).decode() if value else None


def run_event_row(event: RunEvent) -> tuple[Any, ...]:
    """The arguments of STARTED_SQL / ENDED_SQL for one event."""
    started = event.phase is RunPhase.STARTED
    return (
        event.tenant,
        event.run_id,
        event.source,
        event.phase.value,
        event.oneroster_version,
        _json(event.manifest),
        None if started else orjson.dumps(event.file_counts).decode(),
        None if started else orjson.dumps(event.skipped_files).decode(),
        event.reason if event.phase in ENDED_EARLY else None,
        event.at if started else None,
        None if started else event.at,
        None if started else orjson.dumps(event.unchanged_counts).decode(),
        None if event.bulk_entities is None else orjson.dumps(event.bulk_entities).decode(),
        event.fanout,
        None if started else _json(event.skipped_by_selection),
        None if started else _json(event.trimmed_by_selection),
    )


def decode_run_events(messages: list[ConsumerRecord[bytes, bytes]]) -> list[RunEvent]:
    events = (decode_or_skip(RUN_EVENT, m, "run event") for m in messages)
    return [e for e in events if e is not None]


def publishing_ends(events: list[RunEvent]) -> set[tuple[str, UUID]]:
    """The runs whose publishing these events end: they may complete now (run_ends.py)."""
    return {(e.tenant, e.run_id) for e in events if e.phase is not RunPhase.STARTED}


async def apply_run_events(conn: asyncpg.Connection, events: list[RunEvent]) -> None:
    """Apply run events in the order they arrived (one run's events share a partition)."""
    for event in events:
        sql = STARTED_SQL if event.phase is RunPhase.STARTED else ENDED_SQL
        await conn.execute(sql, *run_event_row(event))
        if event.phase in ENDED_EARLY:
            await conn.execute(
                ENDED_EARLY_SQL, event.tenant, event.run_id, event.at, event.phase.value
            )
