"""End-of-run markers: how a stage knows it has seen every record of a run.

The fetcher ends a run by sending one marker to every partition of its output topic. A stage that
has received, on one input partition, the markers of *all* upstream partitions has processed every
record of the run on that partition; it then sends its own marker (``origin_partition`` = that
input partition) to every output partition. The writer declares a run complete once each output
partition is complete. This works with any number of partitions and of stage instances.

A middle stage keeps the markers it has seen in memory only, so it must never commit an input
offset past a marker whose run is still incomplete: after a restart it re-reads from that marker
(re-processed records are harmless duplicates, see docs/architecture.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

import msgspec

from rostersync_libs.events import EntityType, RunEnd, RunMarker


@dataclass
class _PendingRun:
    first_offset: int
    expected: int
    origins: set[int] = field(default_factory=set)


class MarkerTracker:
    """Per input partition: the runs whose markers have begun to arrive."""

    def __init__(self) -> None:
        self._pending: dict[int, dict[UUID, _PendingRun]] = {}

    def hold(self, partition: int, offset: int, run_id: UUID) -> None:
        """Keep commits of a partition at or before ``offset`` until the run ends there.

        Used for run-scoped facts (file events) that a restarted stage must read again.
        """
        runs = self._pending.setdefault(partition, {})
        pending = runs.get(run_id)
        if pending is None:
            runs[run_id] = _PendingRun(first_offset=offset, expected=0)
        elif offset < pending.first_offset:
            pending.first_offset = offset

    def observe(self, partition: int, offset: int, event: RunEnd) -> bool:
        """Record a marker; True when the partition now holds every record of the run."""
        runs = self._pending.setdefault(partition, {})
        pending = runs.setdefault(
            event.run_id, _PendingRun(first_offset=offset, expected=event.marker.origin_count)
        )
        pending.expected = event.marker.origin_count
        pending.origins.add(event.marker.origin_partition)
        if len(pending.origins) < pending.expected:
            return False
        del runs[event.run_id]
        return True

    def commit_offset(self, partition: int, next_offset: int) -> int:
        """The highest offset that is safe to commit for a partition."""
        runs = self._pending.get(partition, {})
        return min([next_offset, *(run.first_offset for run in runs.values())])

    def forget(self, partitions: list[int]) -> None:
        """Drop state of partitions this instance no longer owns (after a rebalance)."""
        for partition in partitions:
            self._pending.pop(partition, None)


def marker_event(
    upstream: RunEnd, *, origin_partition: int, origin_count: int, fanout: int
) -> RunEnd:
    """The marker a stage sends downstream once one of its input partitions is complete."""
    marker = msgspec.structs.replace(
        upstream.marker,
        origin_partition=origin_partition,
        origin_count=origin_count,
        fanout=fanout,
    )
    return msgspec.structs.replace(upstream, marker=marker)


def run_end_event(
    *,
    tenant: str,
    source: str,
    run_id: UUID,
    fanout: int,
    counts: dict[str, int],
    bulk_entities: list[EntityType] | None = None,
    hold_threshold: float = 0.10,
    hold_min_records: int = 20,
    aborted: bool = False,
) -> RunEnd:
    """The fetcher's end-of-run marker for one partition of its output topic."""
    return RunEnd(
        tenant=tenant,
        source=source,
        run_id=run_id,
        marker=RunMarker(
            origin_partition=0,
            origin_count=1,
            fanout=fanout,
            counts=counts,
            bulk_entities=bulk_entities or [],
            hold_threshold=hold_threshold,
            hold_min_records=hold_min_records,
            aborted=aborted,
        ),
    )
