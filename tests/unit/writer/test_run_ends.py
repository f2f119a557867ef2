"""When the writer may complete a run, and what it may sweep (rostersync_writer/run_ends.py):
the fetcher's run events decide, never an end-of-run marker alone."""

from __future__ import annotations

from rostersync_libs.events import EntityType, RunMarker
from rostersync_writer.run_ends import MarkerSlot, all_markers_in, publishing_ended, sweepable

USERS, ORGS, ENROLLMENTS = EntityType.USER, EntityType.ORG, EntityType.ENROLLMENT


def slots(partitions: int, origins: int, *, fanout: int | None = None) -> list[MarkerSlot]:
    """Every (partition, origin) slot of a run on ``partitions`` partitions."""
    return [
        MarkerSlot(p, o, origins, partitions if fanout is None else fanout)
        for p in range(partitions)
        for o in range(origins)
    ]


def marker(bulk: list[EntityType]) -> RunMarker:
    return RunMarker(origin_partition=0, origin_count=1, fanout=1, bulk_entities=bulk)


def test_every_slot_in_completes_the_run() -> None:
    assert all_markers_in(slots(3, 3), 3)
    assert all_markers_in(slots(3, 3), None)  # an older fetcher declared no fan-out


def test_a_missing_slot_keeps_the_run_waiting() -> None:
    assert not all_markers_in(slots(3, 3)[:-1], 3)
    assert not all_markers_in([], 3)


def test_a_marker_claiming_a_smaller_fan_out_cannot_end_the_run_early() -> None:
    # One forged marker: fan-out 1, one origin. Alone it would complete a 3-partition run.
    forged = [MarkerSlot(0, 0, 1, 1)]
    assert all_markers_in(forged, None)  # what trusting the marker did
    assert not all_markers_in(forged, 3)  # the fetcher published to three partitions
    # With the real markers of partition 0 only, still waiting for partitions 1 and 2.
    assert not all_markers_in(forged + slots(3, 3)[:3], 3)


def test_each_partition_waits_for_the_origins_its_markers_name() -> None:
    one_short = [s for s in slots(3, 3) if (s.partition, s.origin_partition) != (2, 1)]
    assert not all_markers_in(one_short, 3)
    assert all_markers_in(slots(3, 1), 3)  # one upstream instance fed every partition


def test_a_marker_can_make_the_writer_wait_for_more_never_for_fewer() -> None:
    assert not all_markers_in(slots(3, 3, fanout=4), 3)


def test_only_the_fetchers_run_event_ends_publishing() -> None:
    assert not publishing_ended(None)  # no run event: a run nobody fetched
    assert not publishing_ended("started")
    assert all(publishing_ended(s) for s in ("fetched", "failed", "cancelled"))


def test_the_sweep_covers_what_the_fetcher_declared_not_what_the_marker_claims() -> None:
    claims = marker([USERS, ENROLLMENTS, ORGS])
    assert sweepable("fetched", [ORGS], claims) == [ORGS]
    assert sweepable("fetched", [], claims) == []
    # An aborted run sweeps nothing, whatever was declared.
    assert sweepable("failed", [ORGS], claims) == []
    assert sweepable("cancelled", None, claims) == []


def test_an_older_fetchers_run_event_keeps_the_markers_list() -> None:
    # Run events on the topics from before the declaration: a replay decides as live did.
    assert sweepable("fetched", None, marker([USERS])) == [USERS]
