"""Applying one batch of mapped events to Postgres, inside the caller's transaction.

Upserts are applied at once; deletes are staged until their run completes (lifecycle.py);
records a stage rejected (``seen``) and records the fetcher listed as unchanged (unchanged.py)
only mark that the run saw them.

Rows go through COPY into a temporary stage and one ``INSERT … SELECT … ON CONFLICT`` per table.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from uuid import UUID

import asyncpg
from rostersync_libs.envelope import EntityType, Envelope, EventKind, Operation

from rostersync_writer.lifecycle import any_staged, cancel_staged, mark_seen, stage_deletes
from rostersync_writer.memberships import replace_links
from rostersync_writer.tables import TABLES
from rostersync_writer.unchanged import Unchanged, mark_unchanged


@dataclass
class EntityBatch:
    """One entity's events of a batch, collapsed per record without losing what a replay needs.

    All events of a record share a partition, so the batch holds them in order. Per record: the
    last upsert (with the run that first saw the record in this batch, so a replay that reads
    several runs in one batch keeps the same ``first_seen_run``), a delete if the record's last
    event is one (applied after that upsert), and whether a stage rejected it (``seen``).
    """

    upserts: dict[tuple[str, str], tuple[Envelope, UUID]] = field(default_factory=dict)
    deletes: dict[tuple[str, str], Envelope] = field(default_factory=dict)
    seen: dict[tuple[str, str], Envelope] = field(default_factory=dict)
    unchanged: Unchanged = field(default_factory=dict)
    first_run: dict[tuple[str, str], UUID] = field(default_factory=dict)

    def add(self, event: Envelope) -> None:
        if event.kind is EventKind.UNCHANGED:
            # Checked against the table after this batch's upserts, which come earlier.
            for sourced_id, hash_ in (event.unchanged or {}).items():
                self.first_run.setdefault((event.tenant, sourced_id), event.run_id)
                self.unchanged[(event.tenant, sourced_id)] = (hash_, event.run_id)
            return
        assert event.sourced_id is not None
        key = (event.tenant, event.sourced_id)
        first = self.first_run.setdefault(key, event.run_id)
        if event.operation is Operation.SEEN:
            self.seen[key] = event
        elif event.operation is Operation.UPSERT:
            self.upserts[key] = (event, first)
            self.deletes.pop(key, None)
            self.unchanged.pop(key, None)  # a later version of the record supersedes the list
        else:
            self.deletes[key] = event


def collapse(events: list[Envelope]) -> dict[EntityType, EntityBatch]:
    batches: dict[EntityType, EntityBatch] = defaultdict(EntityBatch)
    for event in events:
        assert event.entity is not None
        batches[event.entity].add(event)
    return batches


async def apply_records(conn: asyncpg.Connection, events: list[Envelope]) -> int:
    """Upsert every record, stage its deletes, note what was seen; returns rows changed."""
    changed = 0
    # Deletes staged by earlier batches only: within a batch, collapse() already lets a later
    # upsert of a record drop its earlier delete. One probe, then the join only where needed.
    staged = await any_staged(conn, {e.tenant for e in events})
    for entity, batch in collapse(events).items():
        table = TABLES[entity]
        upserts = list(batch.upserts.values())
        if upserts:
            stage = f"stage_{table.name}"
            await conn.execute(
                f"CREATE TEMP TABLE {stage} (LIKE {table.name} INCLUDING DEFAULTS) ON COMMIT DROP"
            )
            await conn.copy_records_to_table(
                stage,
                records=[table.full_row(e, first) for e, first in upserts],
                columns=table.all_columns,
            )
            # The internal id is the person; when the SIS re-issues sourcedIds the mapper keeps
            # the id (``_rekeyedFrom``) and the row follows it to its new sourcedId.
            rekeyed = [
                (e.tenant, e.internal_id, e.sourced_id)
                for e, _ in upserts
                if "_rekeyedFrom" in e.payload
            ]
            if rekeyed:
                await conn.executemany(table.rekey_sql(), rekeyed)
            applied = {r["internal_id"] for r in await conn.fetch(table.upsert_sql(stage))}
            await conn.execute(f"DROP TABLE {stage}")
            changed += len(applied)
            await replace_links(conn, entity, [e for e, _ in upserts if e.internal_id in applied])
            if staged:
                await cancel_staged(conn, [e for e, _ in upserts])
        await mark_seen(conn, entity, list(batch.seen.values()))
        await mark_unchanged(conn, entity, batch.unchanged)
        # Deletes wait for the end of their run (and its safety check): see lifecycle.py.
        await stage_deletes(conn, list(batch.deletes.values()))
    return changed
