"""Which upserts land now, which wait, which are refused (see integrity.py for the rule).

- ``land``: judge records of one entity; write the accepted ones, park those waiting for a
  target's verdict, refuse those pointing at a rejected record.
- ``release``: after a batch, judge again the parked records that waited for a record that got
  its verdict in the batch (and what those free in turn).
- ``settle_run``: when a run completes, judge its parked records for good, targets first.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import TypeAlias
from uuid import UUID

import asyncpg
from rostersync_libs.events import EntityType, RecordEvent

from rostersync_writer.integrity import judge_records
from rostersync_writer.lifecycle import any_staged
from rostersync_writer.parking import (
    Parked,
    SeenLater,
    park,
    parked_of_run,
    unpark,
    waiting_on,
)
from rostersync_writer.references import APPLY_ORDER
from rostersync_writer.run_rejections import mark_seen_in, refuse
from rostersync_writer.tables import TABLES
from rostersync_writer.upserts import upsert_rows

# Rows changed, per table (the writer's metrics count them once the transaction commits).
Changes: TypeAlias = Counter[str]


async def land(
    conn: asyncpg.Connection,
    entity: EntityType,
    upserts: list[Parked],
    verdicts: set[UUID],
    *,
    staged: bool,
    final: bool = False,
    later: SeenLater | None = None,
) -> Changes:
    """Judge and write, park or refuse these upserts; adds the ids that got a verdict to
    ``verdicts``; returns the rows changed."""
    judged = await judge_records(conn, [e for e, _ in upserts], final=final)
    accepted: list[Parked] = []
    waiting: list[tuple[RecordEvent, UUID, list[UUID]]] = []
    refused = []
    for (event, first), verdict in zip(upserts, judged, strict=True):
        if verdict.findings:
            refused.append((event, verdict.findings))
        elif verdict.waits:
            waiting.append((event, first, verdict.waits))
        else:
            accepted.append((event, first))
    changed = await upsert_rows(conn, entity, accepted, staged=staged)
    await refuse(conn, entity, refused)
    await park(conn, waiting, later)
    verdicts.update(e.internal_id for e, _ in accepted if e.internal_id is not None)
    verdicts.update(e.internal_id for e, _ in refused if e.internal_id is not None)
    return Changes({TABLES[entity].name: changed}) if changed else Changes()


def _by_entity(parked: list[Parked]) -> dict[EntityType, list[Parked]]:
    grouped: dict[EntityType, list[Parked]] = defaultdict(list)
    for event, first in parked:
        grouped[event.entity].append((event, first))
    return grouped


async def _judge_again(
    conn: asyncpg.Connection,
    parked: list[Parked],
    later: SeenLater,
    verdicts: set[UUID],
    *,
    final: bool,
) -> Changes:
    await unpark(conn, [e for e, _ in parked])
    staged = await any_staged(conn, {e.tenant for e, _ in parked})
    grouped = _by_entity(parked)
    changed = Changes()
    for entity in APPLY_ORDER:
        if entity in grouped:
            changed += await land(
                conn, entity, grouped[entity], verdicts, staged=staged, final=final, later=later
            )
            await _seen_later(conn, entity, grouped[entity], later)
    return changed


async def _seen_later(
    conn: asyncpg.Connection, entity: EntityType, records: list[Parked], later: SeenLater
) -> None:
    """Rows of records a later run saw while they waited: seen in that run (see parking.py)."""
    rows = [
        (e.tenant, e.sourced_id, later[(e.tenant, e.sourced_id)])
        for e, _ in records
        if (e.tenant, e.sourced_id) in later
    ]
    await mark_seen_in(conn, entity, rows)


async def release(conn: asyncpg.Connection, tenants: set[str], verdicts: set[UUID]) -> Changes:
    """Judge again what waited for these records; returns the rows changed."""
    changed = Changes()
    while verdicts:
        freed: list[Parked] = []
        later: SeenLater = {}
        for tenant in sorted(tenants):
            found, seen = await waiting_on(conn, tenant, verdicts)
            freed += found
            later |= seen
        if not freed:
            break
        verdicts = set()
        changed += await _judge_again(conn, freed, later, verdicts, final=False)
    return changed


async def settle_run(conn: asyncpg.Connection, tenant: str, run_id: UUID) -> Changes:
    """The run is complete: every parked record of it lands or is refused now."""
    parked, later = await parked_of_run(conn, tenant, run_id)
    if not parked:
        return Changes()
    return await _judge_again(conn, parked, later, set(), final=True)
