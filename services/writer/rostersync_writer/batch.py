"""Applying one batch of mapped events to Postgres, inside the caller's transaction.

Upserts are applied at once; deletes are staged until their run completes (lifecycle.py);
records a stage rejected (``seen``) only mark that the run saw them.

Within a batch only the last event of each record counts (all events of a record share a
partition, so the batch holds them in order); rows go through COPY into a temporary stage and one
``INSERT … SELECT … ON CONFLICT`` per table.
"""

from __future__ import annotations

from collections import defaultdict

import asyncpg
from rostersync_libs.envelope import EntityType, Envelope, Operation

from rostersync_writer.lifecycle import cancel_staged, mark_seen, stage_deletes
from rostersync_writer.memberships import replace_links
from rostersync_writer.tables import TABLES


def latest_per_record(events: list[Envelope]) -> dict[EntityType, list[Envelope]]:
    """The last event of each (tenant, entity, sourcedId), grouped by entity."""
    latest: dict[tuple[str, EntityType, str], Envelope] = {}
    for event in events:
        assert event.entity is not None
        assert event.sourced_id is not None
        key = (event.tenant, event.entity, event.sourced_id)
        if event.operation is Operation.SEEN and key in latest:
            continue  # a rejected duplicate must not undo the record's earlier upsert
        latest[key] = event
    grouped: dict[EntityType, list[Envelope]] = defaultdict(list)
    for (_, entity, _), event in latest.items():
        grouped[entity].append(event)
    return grouped


async def apply_records(conn: asyncpg.Connection, events: list[Envelope]) -> int:
    """Upsert or archive every record; returns how many rows changed."""
    changed = 0
    for entity, group in latest_per_record(events).items():
        table = TABLES[entity]
        upserts = [e for e in group if e.operation is Operation.UPSERT]
        deletes = [e for e in group if e.operation is Operation.DELETE]
        await mark_seen(conn, entity, [e for e in group if e.operation is Operation.SEEN])
        if upserts:
            stage = f"stage_{table.name}"
            await conn.execute(
                f"CREATE TEMP TABLE {stage} (LIKE {table.name} INCLUDING DEFAULTS) ON COMMIT DROP"
            )
            await conn.copy_records_to_table(
                stage, records=[table.full_row(e) for e in upserts], columns=table.all_columns
            )
            applied = {r["internal_id"] for r in await conn.fetch(table.upsert_sql(stage))}
            await conn.execute(f"DROP TABLE {stage}")
            changed += len(applied)
            await replace_links(conn, entity, [e for e in upserts if e.internal_id in applied])
            await cancel_staged(conn, upserts)
        # Deletes wait for the end of their run (and its safety check): see lifecycle.py.
        await stage_deletes(conn, deletes)
    return changed
