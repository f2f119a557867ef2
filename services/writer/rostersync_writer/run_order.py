"""A batch's records, markers and run completions, run by run (run ids are time-ordered).

Live, a run usually completes before the next run's records arrive. A replay reads the retained
topics in large batches that hold several runs of a tenant: applying every record first and
completing runs afterwards would sweep an earlier run against rows a later run had already seen
(fewer removals, no archive/restore pair in the history). So each run's records land, its
markers are stored and, if it is complete, it is settled and its removals applied, before the
records of the next run. (Across batches a replay can still read a later run's records before an
earlier run's last marker: docs/change-feed.md, "Replay".)
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from uuid import UUID

import asyncpg
from rostersync_libs.envelope import Envelope

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
    records: list[Envelope],
    markers: list[tuple[int, Envelope]],
    ending: set[tuple[str, UUID]],
    limits: SafetyLimits,
) -> Completed:
    by_run: dict[UUID, list[Envelope]] = defaultdict(list)
    for event in records:
        by_run[event.run_id].append(event)
    markers_of: dict[UUID, list[tuple[int, Envelope]]] = defaultdict(list)
    for partition, event in markers:
        markers_of[event.run_id].append((partition, event))
    done = Completed()
    for run_id in sorted(set(by_run) | set(markers_of) | {r for _, r in ending}):
        if run_id in by_run:
            done.changed += await apply_records(conn, by_run[run_id])
        await record_markers(conn, markers_of.get(run_id, []))
        ends = await complete_ready(conn, {(t, r) for t, r in ending if r == run_id})
        for end in ends:
            await attribute(conn, end.run_id)  # what it changes now is its change (changes.py)
            done.changed += await settle_run(conn, end.tenant, end.run_id)  # parked, for good
        for end in ends:
            await attribute(conn, end.run_id)
            done.outcomes.append(await complete_run(conn, end, limits))
        done.ends += ends
    return done
