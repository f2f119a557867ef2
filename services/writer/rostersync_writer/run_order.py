"""A batch's records, then its markers and run completions run by run (run ids are time-ordered).

Every record of the batch lands first (each run's records attributed to their run, in run order),
then each run's markers are stored and, if it is complete, it is settled and its removals applied,
in run order. Settling a run before a later run's records of the same batch (tried first) made a
replay differ from live: with a hold approved live between two runs, the replay archived rows
that the later run had restored live (tests/integration/test_lifecycle.py, the held-then-approved
replay). A replay may therefore lack an archive/restore pair that live has in its change feed
when both runs come in one batch: docs/change-feed.md, "Replay".
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from uuid import UUID

import asyncpg
from rostersync_libs import events
from rostersync_libs.events import RecordEvent, UnchangedList

from rostersync_writer.batch import apply_records
from rostersync_writer.changes import attribute
from rostersync_writer.landing import Changes, settle_run
from rostersync_writer.lifecycle import complete_run
from rostersync_writer.run_ends import RunEnd
from rostersync_writer.runs import complete_ready, record_markers
from rostersync_writer.safety import SafetyLimits


@dataclass
class Completed:
    changed: Changes = field(default_factory=Changes)
    ends: list[RunEnd] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)


async def apply_in_run_order(
    conn: asyncpg.Connection,
    records: list[RecordEvent | UnchangedList],
    markers: list[tuple[int, events.RunEnd]],
    ending: set[tuple[str, UUID]],
    limits: SafetyLimits,
) -> Completed:
    markers_of: dict[UUID, list[tuple[int, events.RunEnd]]] = defaultdict(list)
    for partition, event in markers:
        markers_of[event.run_id].append((partition, event))
    done = Completed()
    done.changed += await apply_records(conn, records)  # run by run itself (batch.py)
    for run_id in sorted(set(markers_of) | {r for _, r in ending}):
        await record_markers(conn, markers_of.get(run_id, []))
        ends = await complete_ready(conn, {(t, r) for t, r in ending if r == run_id})
        for end in ends:
            await attribute(conn, end.run_id)  # what it changes now is its change (changes.py)
            done.changed += await settle_run(conn, end.tenant, end.run_id)  # parked, for good
        for end in ends:  # still attributed to ``run_id`` (the setting lasts the transaction)
            done.outcomes.append(await complete_run(conn, end, limits))
        done.ends += ends
    return done
