"""A middle stage sends each record on to the partition it came from when the topics match."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast
from uuid import uuid4

import asyncpg
from aiokafka import TopicPartition
from rostersync_libs.data_keys import DataKeys
from rostersync_libs.envelope import EntityType, Envelope, record_event
from rostersync_libs.findings import Finding, Severity
from rostersync_libs.settings import ServiceSettings
from rostersync_libs.stage import Outcome, PerRecord, Stage

SETTINGS = ServiceSettings()
TOPICS = SETTINGS.topics


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, int | None]] = []
        self.values: list[bytes] = []

    async def send(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        partition: int | None = None,
        headers: Any = None,
    ) -> asyncio.Future[None]:
        self.sent.append((topic, key, partition))
        self.values.append(value or b"")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


class FakeConsumer:
    def __init__(self) -> None:
        self.committed: dict[TopicPartition, int] = {}

    def partitions_for_topic(self, topic: str) -> set[int]:
        return {0, 1, 2}

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.committed.update(offsets)


def _judge(event: Envelope) -> Outcome:
    if event.sourced_id == "bad":
        return Outcome(None, [Finding(code="x", severity=Severity.ERROR, message="m")])
    return Outcome(event)


def _stage() -> Stage:
    return Stage(
        name="test",
        settings=SETTINGS,
        input_topic=TOPICS.fetched,
        output_topic=TOPICS.validated,
        dlq_topic=TOPICS.validator_dlq,
        keys=DataKeys(cast(asyncpg.Pool, None), SETTINGS),  # used only by run(), not here
        handler=PerRecord(_judge),
    )


async def _process(stage: Stage) -> tuple[FakeProducer, FakeConsumer]:
    run_id = uuid4()
    tp = TopicPartition(TOPICS.fetched, 2)
    messages = []
    for offset, sourced_id in enumerate(["good", "bad"]):
        event = record_event(
            tenant="d1",
            source="csv",
            run_id=run_id,
            entity=EntityType.USER,
            sourced_id=sourced_id,
            payload={},
        )
        messages.append(
            SimpleNamespace(
                topic=tp.topic,
                partition=2,
                offset=offset,
                key=event.key(),
                value=event.to_bytes(),
            )
        )
    producer, consumer = FakeProducer(), FakeConsumer()
    await stage._process(cast(Any, consumer), cast(Any, producer), {tp: cast(Any, messages)})
    assert consumer.committed == {tp: 2}
    return producer, consumer


async def test_records_keep_their_partition_when_the_topics_partitions_match() -> None:
    stage = _stage()
    stage._same_partitions = True
    producer, _ = await _process(stage)
    out = [(key, partition) for topic, key, partition in producer.sent if topic == TOPICS.validated]
    # The good record, and the rejected one's "seen" event: both on the partition they came from.
    assert out == [(b"d1:users:good", 2), (b"d1:users:bad", 2)]
    # Dead letters and findings keep the key partitioner.
    others = [partition for topic, _, partition in producer.sent if topic != TOPICS.validated]
    assert others
    assert set(others) == {None}


async def test_records_are_partitioned_by_key_when_the_topics_differ() -> None:
    stage = _stage()  # as before run() has compared the topics
    producer, _ = await _process(stage)
    assert {partition for _, _, partition in producer.sent} == {None}


async def test_unchanged_lists_go_where_their_records_go() -> None:
    from aiokafka.partitioner import DefaultPartitioner
    from rostersync_libs.envelope import unchanged_event

    listed = {f"u{n}": f"h{n}" for n in range(30)}
    event = unchanged_event(tenant="d1", source="csv", run_id=uuid4(), entity=EntityType.USER,
                            listed=listed)  # fmt: skip
    tp = TopicPartition(TOPICS.fetched, 1)
    message = SimpleNamespace(topic=tp.topic, partition=1, offset=0, key=event.key(),
                              value=event.to_bytes())  # fmt: skip
    for same, partitions in ((True, [0, 1, 2]), (False, [0, 1, 2, 3])):
        stage = _stage()
        stage._same_partitions, stage._out_partitions = same, partitions
        producer = FakeProducer()
        sent = await stage._forward_unchanged(cast(Any, producer), tp, cast(Any, message), event)
        await asyncio.gather(*sent)
        if same:  # in place, untouched
            assert producer.sent == [(TOPICS.validated, event.key(), 1)]
            continue
        # Another partition count: split so that each id sits where its record's key goes.
        assert len(producer.sent) > 1
        assert len({key for _, key, _ in producer.sent}) == len(producer.sent)
        assert {p for _, _, p in producer.sent} <= set(partitions)
        expected = {
            sid: DefaultPartitioner()(f"d1:users:{sid}".encode(), partitions, partitions)
            for sid in listed
        }
        placed = {
            sid: partition
            for (_, _, partition), value in zip(producer.sent, producer.values, strict=True)
            for sid in Envelope.from_bytes(value).unchanged or {}
        }
        assert placed == expected
