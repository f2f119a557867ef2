"""When a run is complete, and what it may sweep: the fetcher's run events decide, not markers.

End-of-run markers travel on the mapped topic, among records: anyone able to write it could send
one for a run nobody fetched, or claim more bulk entities than the run had, or a smaller fan-out
to end a run before its records are in. So the writer acts on a run's markers only together with
what the fetcher itself said on the runs topic (``sync_runs``, from its run events):

- a run completes only once the fetcher's run event says publishing ended (``fetched``, or
  ``failed``/``cancelled``: then the run is aborted, nothing swept). The two topics are read at
  their own pace, so the markers may be in first: the run waits (its markers are kept), and
  completes when the run event arrives. A forged run (no run event at all) never completes;
- the sweep covers exactly the entities the fetcher's ``fetched`` event declared bulk snapshots;
- only markers carrying the counts the fetcher's run event published count: markers sent ahead
  for a run (forged before its counts exist) neither complete it nor keep the real ones out;
- the run waits for the markers of as many partitions as the fetcher published to: a marker may
  make the writer wait for more, never for fewer.

Run events of a fetcher older than these declarations (a replay of old topics) carry none: the
markers' bulk entities and fan-out are used for them, as they were when they ran.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from uuid import UUID

from rostersync_libs.events import EntityType, RunMarker

# The fetcher's run phases that end its publishing (sync_runs.fetch_status).
PUBLISHED = "fetched"
ENDED_EARLY = ("failed", "cancelled")


@dataclass(frozen=True)
class MarkerSlot:
    """One stored marker: it stands for ``origin_partition``'s records on ``partition``."""

    partition: int
    origin_partition: int
    origin_count: int
    fanout: int


@dataclass(frozen=True)
class RunEnd:
    """A complete run, with what the writer may do about it."""

    tenant: str
    run_id: UUID
    source: str
    # The fetcher's declared bulk entities (what the sweep covers); empty when aborted.
    bulk: list[EntityType]
    aborted: bool
    # One of its markers, for the hold values it carries (safety.py keeps the stricter) and
    # the published counts.
    marker: RunMarker


def all_markers_in(slots: list[MarkerSlot], declared_fanout: int | None) -> bool:
    """Whether every partition holds the markers of all its origins.

    The partitions to wait for are the most of what the markers say and what the fetcher
    declared (record topics share one partition count): a marker cannot shorten the wait. The
    origins per partition are the markers' (how many instances fed a partition is the stages'
    business); markers count only with the run's published counts (runs.py), which a marker sent
    ahead of the run cannot know."""
    if not slots:
        return False
    partitions = max(declared_fanout or 0, *(s.fanout for s in slots))
    origins: dict[int, set[int]] = defaultdict(set)
    needed: dict[int, int] = defaultdict(int)
    for s in slots:
        origins[s.partition].add(s.origin_partition)
        needed[s.partition] = max(needed[s.partition], s.origin_count)
    complete = [p for p, seen in origins.items() if len(seen) >= needed[p]]
    return len(complete) >= partitions


def publishing_ended(fetch_status: str | None) -> bool:
    """Whether the fetcher said the run's publishing is over (no run event: it never started)."""
    return fetch_status == PUBLISHED or fetch_status in ENDED_EARLY


def sweepable(
    fetch_status: str | None, declared: list[EntityType] | None, marker: RunMarker
) -> list[EntityType]:
    """The entities a complete run may sweep: none if aborted; else the fetcher's declaration
    (the marker's list only for a run event that predates declarations)."""
    if fetch_status != PUBLISHED:
        return []
    return list(marker.bulk_entities) if declared is None else list(declared)
