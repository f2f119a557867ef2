"""Fakes for unit tests of the middle stage's loop (pure logic: no Kafka, no database).

``FakeProducer`` records what the stage sends (and refuses a message over the limit, as Kafka
would); ``FakeConsumer`` records commits; ``message`` and ``batch_message`` build input messages
of the v2 record topics; ``process`` runs one poll through ``Stage._process``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, cast
from uuid import UUID, uuid4

import asyncpg
from aiokafka import TopicPartition
from rostersync_libs import events
from rostersync_libs.data_keys import DataKeys
from rostersync_libs.dlq import DeadLetter
from rostersync_libs.events import EntityType, RecordBatch, RecordEvent, record_event
from rostersync_libs.settings import ServiceSettings
from rostersync_libs.stage import MAX_MESSAGE_BYTES, Stage, StageHandler

SETTINGS = ServiceSettings()
TOPICS = SETTINGS.topics

Headers = list[tuple[str, bytes]]


@dataclass(frozen=True)
class Sent:
    topic: str
    key: bytes | None
    value: bytes | None
    partition: int | None
    headers: Headers


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[Sent] = []

    async def send(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        partition: int | None = None,
        headers: Any = None,
    ) -> asyncio.Future[None]:
        size = len(value or b"") + len(key or b"") + sum(len(k) + len(v) for k, v in headers or [])
        assert size <= MAX_MESSAGE_BYTES, f"a message of {size} bytes was sent"
        self.sent.append(Sent(topic, key, value, partition, list(headers or [])))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    def on(self, topic: str) -> list[Sent]:
        return [s for s in self.sent if s.topic == topic]

    def batches(self, topic: str = TOPICS.validated) -> list[tuple[int | None, RecordBatch]]:
        """The record batches sent to ``topic``, with their partitions, in order."""
        out = []
        for s in self.on(topic):
            event = events.decode(s.value or b"")
            if isinstance(event, RecordBatch):
                out.append((s.partition, event))
        return out

    def records(self, topic: str = TOPICS.validated) -> list[RecordEvent]:
        """Every record sent to ``topic`` (forwarded or seen), in order."""
        return [r for _, b in self.batches(topic) for r in events.records_of(b)]

    def letters(self, topic: str = TOPICS.validator_dlq) -> list[DeadLetter]:
        return [DeadLetter.from_headers(s.headers) for s in self.on(topic)]


class FakeConsumer:
    def __init__(self, partitions: int = 3) -> None:
        self.committed: dict[TopicPartition, int] = {}
        self._partitions = partitions
        self.revoked: set[int] = set()  # input partitions a rebalance has taken away
        self.commit_error: Exception | None = None  # what the broker answers a commit with

    def partitions_for_topic(self, topic: str) -> set[int]:
        return set(range(self._partitions))

    def assignment(self) -> set[TopicPartition]:
        return {
            TopicPartition(TOPICS.fetched, p)
            for p in range(self._partitions)
            if p not in self.revoked
        }

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        if self.commit_error is not None:
            raise self.commit_error
        self.committed.update(offsets)


def record(
    sourced_id: str,
    payload: dict[str, Any] | None = None,
    *,
    run_id: UUID | None = None,
    tenant: str = "d1",
) -> RecordEvent:
    return record_event(
        tenant=tenant, source="csv", run_id=run_id or uuid4(), entity=EntityType.USER,
        sourced_id=sourced_id, payload=payload or {"sourcedId": sourced_id},
    )  # fmt: skip


def batch_of(records: list[RecordEvent]) -> RecordBatch:
    (batch,) = events.batches_of(records)
    return batch


def message(
    offset: int,
    value: bytes | None,
    key: bytes | None = b"d1:run:x:records:0",
    *,
    partition: int = 0,
    topic: str = TOPICS.fetched,
) -> Any:
    return SimpleNamespace(
        topic=topic, partition=partition, offset=offset, key=key, value=value, headers=[]
    )


def batch_message(offset: int, records: list[RecordEvent], partition: int = 0) -> Any:
    """One input message holding ``records`` as a record batch."""
    batch = batch_of(records)
    return message(offset, events.encode(batch), batch.key(partition), partition=partition)


def make_stage(
    handler: StageHandler, *, out_partitions: int = 3, in_partitions: int = 3, **kwargs: Any
) -> Stage:
    """A stage as ``run()`` leaves it once it knows its topics' partitions."""
    stage = Stage(
        name="validator",
        settings=SETTINGS,
        input_topic=TOPICS.fetched,
        output_topic=TOPICS.validated,
        dlq_topic=TOPICS.validator_dlq,
        keys=DataKeys(cast(asyncpg.Pool, None), SETTINGS),  # used only by run(), not here
        handler=handler,
        **kwargs,
    )
    stage._out_partitions = list(range(out_partitions))
    stage._same_partitions = in_partitions == out_partitions
    return stage


async def process(
    stage: Stage, messages: list[Any], consumer: FakeConsumer | None = None
) -> FakeProducer:
    """One poll of ``messages`` (by their partitions, in order); checks the stage went on."""
    producer, consumer = FakeProducer(), consumer or FakeConsumer()
    polled: dict[TopicPartition, list[Any]] = {}
    for m in messages:
        polled.setdefault(TopicPartition(m.topic, m.partition), []).append(m)
    await stage._process(cast(Any, consumer), cast(Any, producer), polled)
    for tp, ms in polled.items():  # committed past them (no run pending on a marker)
        if tp.partition not in consumer.revoked and consumer.commit_error is None:
            assert consumer.committed[tp] <= ms[-1].offset + 1
    return producer
