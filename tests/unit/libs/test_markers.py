from __future__ import annotations

from uuid import uuid4

from rostersync_libs.events import RunEnd
from rostersync_libs.markers import MarkerTracker, marker_event, run_end_event


def _marker(run: object, origin: int, count: int) -> RunEnd:
    base = run_end_event(tenant="t", source="s", run_id=run, fanout=2, counts={})  # type: ignore[arg-type]
    return marker_event(base, origin_partition=origin, origin_count=count, fanout=2)


def test_partition_completes_only_when_every_origin_has_sent_its_marker() -> None:
    tracker = MarkerTracker()
    run = uuid4()
    assert tracker.observe(0, 10, _marker(run, 0, 3)) is False
    assert tracker.observe(0, 11, _marker(run, 2, 3)) is False
    assert tracker.observe(0, 12, _marker(run, 2, 3)) is False  # a duplicate counts once
    assert tracker.observe(0, 13, _marker(run, 1, 3)) is True


def test_commits_never_pass_a_pending_marker() -> None:
    tracker = MarkerTracker()
    run = uuid4()
    tracker.observe(1, 40, _marker(run, 0, 2))
    assert tracker.commit_offset(1, 100) == 40
    assert tracker.commit_offset(0, 100) == 100
    tracker.observe(1, 60, _marker(run, 1, 2))
    assert tracker.commit_offset(1, 100) == 100


def test_revoked_partitions_are_forgotten() -> None:
    tracker = MarkerTracker()
    tracker.observe(1, 40, _marker(uuid4(), 0, 2))
    tracker.forget([1])
    assert tracker.commit_offset(1, 100) == 100
