"""In-memory stand-ins for unit tests of pure logic (never the only proof services work together)."""

from __future__ import annotations

import asyncio
from typing import Any

from rostersync_libs.events import Event, RecordBatch, RecordEvent, decode, records_of
from rostersync_validator.known import Key, KnownKeys


class RecordingProducer:
    """Collects what a producer was asked to send (the subset of AIOKafkaProducer CsvRun uses)."""

    def __init__(self, partitions: int = 3) -> None:
        self.sent: list[tuple[str, bytes, int | None]] = []
        self._partitions = partitions

    async def send(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        partition: int | None = None,
        **_: Any,
    ) -> asyncio.Future[None]:
        self.sent.append((topic, value, partition))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def send_and_wait(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        self.sent.append((topic, value, None))

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(self._partitions))

    def events(self, topic: str) -> list[Event]:
        """Every event sent to ``topic``, in order (a record batch as one event)."""
        return [decode(v) for t, v, _ in self.sent if t == topic]

    def records(self, topic: str) -> list[RecordEvent]:
        """The records of every batch sent to ``topic``, in order."""
        return [r for e in self.events(topic) if isinstance(e, RecordBatch) for r in records_of(e)]


class FakeKnown(KnownKeys):
    """The tenant's existing records, without a database."""

    def __init__(self, keys: set[Key] | None = None) -> None:
        self.keys = keys or set()

    async def known(self, wanted: set[Key]) -> set[Key]:
        return wanted & self.keys
