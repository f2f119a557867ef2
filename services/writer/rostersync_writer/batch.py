"""Applying one batch of mapped events to Postgres, inside the caller's transaction.

Within a batch only the last event of each record counts (all events of a record share a
partition, so the batch holds them in order); rows go through COPY into a temporary stage and one
``INSERT … SELECT … ON CONFLICT`` per table.
"""

from __future__ import annotations

from collections import defaultdict

import asyncpg
from rostersync_libs.envelope import EntityType, Envelope, Operation

from rostersync_writer.memberships import replace_links
from rostersync_writer.tables import TABLES


def latest_per_record(events: list[Envelope]) -> dict[EntityType, list[Envelope]]:
    """The last event of each (tenant, entity, sourcedId), grouped by entity."""
    latest: dict[tuple[str, EntityType, str], Envelope] = {}
    for event in events:
        assert event.entity is not None
        assert event.sourced_id is not None
        latest[(event.tenant, event.entity, event.sourced_id)] = event
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
        if deletes:
            rows = [(e.tenant, e.sourced_id, e.run_id, e.date_last_modified) for e in deletes]
            await conn.executemany(table.archive_sql(), rows)
            changed += len(deletes)
    return changed
