"""Applying one batch of mapped events to Postgres, inside the caller's transaction.

Upserts land when what they must point at is there (landing.py: else they wait, or are refused);
deletes are staged until their run completes (lifecycle.py); records a stage rejected (``seen``)
and records the fetcher listed as unchanged (unchanged.py) only mark that the run saw them, and
give what waits for them a verdict.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from uuid import UUID

import asyncpg
from rostersync_libs.events import EntityType, Operation, RecordEvent, UnchangedList

from rostersync_writer.changes import attribute, uncaptured
from rostersync_writer.landing import Changes, land, release
from rostersync_writer.lifecycle import any_staged, stage_deletes
from rostersync_writer.parking import any_parked, drop_superseded, note_later
from rostersync_writer.references import APPLY_ORDER
from rostersync_writer.run_rejections import mark_seen, note_rejected
from rostersync_writer.unchanged import Unchanged, mark_unchanged


@dataclass
class EntityBatch:
    """One entity's events of a batch, collapsed per record without losing what a replay needs.

    All events of a record share a partition, so the batch holds them in order. Per record: the
    last upsert (with the run that first saw the record in this batch, so a replay that reads
    several runs in one batch keeps the same ``first_seen_run``), a delete if the record's last
    event is one (applied after that upsert), and whether a stage rejected it (``seen``).
    """

    upserts: dict[tuple[str, str], tuple[RecordEvent, UUID]] = field(default_factory=dict)
    deletes: dict[tuple[str, str], RecordEvent] = field(default_factory=dict)
    seen: dict[tuple[str, str], RecordEvent] = field(default_factory=dict)
    unchanged: Unchanged = field(default_factory=dict)
    first_run: dict[tuple[str, str], UUID] = field(default_factory=dict)

    def add(self, event: RecordEvent | UnchangedList) -> None:
        if isinstance(event, UnchangedList):
            # Checked against the table after this batch's upserts, which come earlier.
            tenant, run_id = event.tenant, event.run_id
            for sourced_id, hash_ in event.listed.items():
                self.first_run.setdefault((tenant, sourced_id), run_id)
                self.unchanged[(tenant, sourced_id)] = (hash_, run_id)
            return
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

    def sightings(self) -> list[tuple[str, str, UUID]]:
        """(tenant, sourcedId, run) of records the batch only sees: deletes, rejected, unchanged."""
        events = [*self.deletes.values(), *self.seen.values()]
        listed = [(tenant, sid, run) for (tenant, sid), (_, run) in self.unchanged.items()]
        return [(e.tenant, e.sourced_id, e.run_id) for e in events] + listed


def collapse(events: list[RecordEvent | UnchangedList]) -> dict[EntityType, EntityBatch]:
    batches: dict[EntityType, EntityBatch] = defaultdict(EntityBatch)
    for event in events:
        batches[event.entity].add(event)
    return batches


async def apply_records(
    conn: asyncpg.Connection, events: Sequence[RecordEvent | UnchangedList]
) -> Changes:
    """Land every upsert (or park or refuse it), stage its deletes, note what was seen; returns
    rows changed per table.

    Run by run (a replay reads several runs of a record in one batch; each version is judged in
    its own run, against that run's verdicts), and within a run targets first, so a record meets
    the verdicts of its batch.
    """
    tenants = {e.tenant for e in events}
    # Deletes staged by earlier batches only: within a batch, collapse() already lets a later
    # upsert of a record drop its earlier delete. One probe, then the join only where needed.
    staged = await any_staged(conn, tenants)
    parked = await any_parked(conn, tenants)
    runs: dict[UUID, list[RecordEvent | UnchangedList]] = defaultdict(list)
    for event in events:
        runs[event.run_id].append(event)
    changed = Changes()
    order = sorted(runs)  # run ids are time-ordered (UUIDv7)
    for run_id in order:
        await attribute(conn, run_id)  # the rows this run changes: its changes (changes.py)
        verdicts: set[UUID] = set()  # records that got their verdict in this batch
        batches = collapse(runs[run_id])
        for entity in APPLY_ORDER:
            batch = batches.get(entity)
            if batch is None:
                continue
            upserts = list(batch.upserts.values())
            if parked:
                firsts = await drop_superseded(conn, [e for e, _ in upserts])
                upserts = [(e, min(f, firsts.get((e.tenant, e.sourced_id), f))) for e, f in upserts]  # fmt: skip
                await note_later(conn, entity.value, batch.sightings())
            changed += await land(conn, entity, upserts, verdicts, staged=staged)
            seen = list(batch.seen.values())
            await note_rejected(conn, seen)
            if seen or batch.unchanged:  # rows only seen again: never a change
                async with uncaptured(conn, run_id):
                    await mark_seen(conn, entity, seen)
                    verdicts.update(await mark_unchanged(conn, entity, batch.unchanged))
            verdicts.update(e.internal_id for e in seen if e.internal_id is not None)
            # Deletes wait for the end of their run (and its safety check): see lifecycle.py.
            await stage_deletes(conn, list(batch.deletes.values()))
        changed += await release(conn, tenants, verdicts)
        if run_id != order[-1]:  # what this run staged or parked, for the runs after it
            staged = staged or any(b.deletes for b in batches.values())
            parked = parked or await any_parked(conn, tenants)
    return changed
