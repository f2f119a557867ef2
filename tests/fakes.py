"""In-memory stand-ins for unit tests of pure logic (never the only proof services work together)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from rostersync_libs import events
from rostersync_libs.events import FileEvent, RecordEvent, RunEnd, UnchangedList
from rostersync_validator.known import Key, KnownKeys

# What a record topic carries, a record batch read as its records.
Item = RecordEvent | FileEvent | UnchangedList | RunEnd


@dataclass(frozen=True)
class Sent:
    topic: str
    value: bytes
    key: bytes | None
    partition: int | None


class RecordingProducer:
    """What a producer was asked to send (the part of AIOKafkaProducer the fetcher uses), read
    back as v2 events."""

    def __init__(self, partitions: int = 3) -> None:
        self.messages: list[Sent] = []
        self._partitions = partitions

    async def send(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        partition: int | None = None,
        **_: Any,
    ) -> asyncio.Future[None]:
        self.messages.append(Sent(topic, value, key, partition))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def send_and_wait(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        self.messages.append(Sent(topic, value, key, None))

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(self._partitions))

    @property
    def sent(self) -> list[tuple[str, bytes, int | None]]:
        """(topic, value, partition) of every message."""
        return [(m.topic, m.value, m.partition) for m in self.messages]

    def events(self, topic: str) -> list[Item]:
        """Every event sent to ``topic``, in order, each batch's records one by one."""
        return [item for m in self.messages if m.topic == topic for item in flat(m.value)]

    def records(self, topic: str) -> list[RecordEvent]:
        """The records of every batch sent to ``topic``, in order."""
        return records_in(self.events(topic))

    def placed(self, topic: str) -> list[tuple[Item, int | None]]:
        """Every event sent to ``topic`` with the partition it was sent to."""
        return [
            (item, m.partition) for m in self.messages if m.topic == topic for item in flat(m.value)
        ]


def flat(value: bytes) -> list[Item]:
    """The event in one message; a record batch as its records."""
    event = events.decode(value)
    if isinstance(event, events.RecordBatch):
        return list(events.records_of(event))
    return [event]


def records_in(items: list[Item]) -> list[RecordEvent]:
    return [e for e in items if isinstance(e, RecordEvent)]


def files(items: list[Item]) -> list[FileEvent]:
    return [e for e in items if isinstance(e, FileEvent)]


def run_ends(items: list[Item]) -> list[RunEnd]:
    return [e for e in items if isinstance(e, RunEnd)]


def unchanged_lists(items: list[Item]) -> list[UnchangedList]:
    return [e for e in items if isinstance(e, UnchangedList)]


class FakeKnown(KnownKeys):
    """The tenant's existing records, without a database."""

    def __init__(self, keys: set[Key] | None = None) -> None:
        self.keys = keys or set()

    async def known(self, wanted: set[Key]) -> set[Key]:
        return wanted & self.keys
