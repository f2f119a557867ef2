"""The relay's messages (pure logic): every change once, in the partition of its record's key, in
sequence order within each partition, framed by count and size, each a valid ``ChangeBatch``."""

from __future__ import annotations

from typing import Any

import pytest
from rostersync_libs.change_events import ChangeBatch, event_of
from rostersync_libs.partitioning import key_partition
from rostersync_writer import relay
from rostersync_writer.relay import framed

from tests.unit.libs.test_change_event_json import ROWS

PARTITIONS = [0, 1, 2]


def changes(count: int) -> list[dict[str, Any]]:
    """``count`` changes numbered 1…count, of a few records each changed several times."""
    records = [dict(r) for r in ROWS]
    return [records[n % len(records)] | {"seq": n + 1} for n in range(count)]


def published(messages: list[tuple[int, bytes]]) -> list[tuple[int, Any]]:
    found = []
    for partition, message in messages:
        batch = ChangeBatch.model_validate_json(message)
        assert batch.tenant == "d1"
        assert batch.changes, "an empty message"
        found += [(partition, event) for event in batch.changes]
    return found


def test_every_change_once_in_its_records_partition_in_order() -> None:
    rows = changes(40)
    events = published(framed("d1", rows, PARTITIONS))
    assert sorted(e.sequence for _, e in events) == list(range(1, 41))
    by_number = {r["seq"]: r for r in rows}
    for partition, event in events:
        key = f"d1:{event.internal_id}".encode()
        assert partition == key_partition(key, PARTITIONS, PARTITIONS)
        assert event == event_of(by_number[event.sequence])
    for p in PARTITIONS:
        numbers = [e.sequence for q, e in events if q == p]
        assert numbers == sorted(numbers)


def test_messages_are_bounded_by_count_and_by_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(relay, "FRAME_EVENTS", 3)
    messages = framed("d1", changes(40), PARTITIONS)
    assert max(len(ChangeBatch.model_validate_json(m).changes) for _, m in messages) == 3
    assert len(published(messages)) == 40

    monkeypatch.setattr(relay, "FRAME_EVENTS", 1000)
    monkeypatch.setattr(relay, "FRAME_BYTES", 1200)
    messages = framed("d1", changes(40), PARTITIONS)
    sizes = [len(m) for _, m in messages]
    assert len(messages) > len(PARTITIONS)
    assert max(sizes) <= 1200 + 100  # the frame's own wrapping aside
    assert len(published(messages)) == 40


def test_nothing_to_publish_is_no_message() -> None:
    assert framed("d1", [], PARTITIONS) == []
