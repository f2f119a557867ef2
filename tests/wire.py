"""Putting v2 events on a record topic as the services do, for tests that forge or inject them.

Records go to the partition their key picks (Kafka's default partitioner), in batches of one run,
framed as the producers frame them (``rostersync_libs.events``).
"""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from rostersync_libs.events import (
    FileEvent,
    RecordEvent,
    RunEnd,
    UnchangedList,
    batches_of,
    encode,
    framed,
    partitioned,
)
from rostersync_libs.partitioning import key_partition


async def send_records(
    producer: AIOKafkaProducer,
    topic: str,
    records: Sequence[RecordEvent],
    *,
    partition: int | None = None,
) -> int:
    """The records as batches on the partitions their keys pick (or all on ``partition``),
    acknowledged; the number of messages sent."""
    if partition is None:
        partitions = sorted(await producer.partitions_for(topic))
        parts = partitioned(records, partitions, key_partition)
    else:
        parts = {partition: list(records)}
    sent = 0
    for p, part in parts.items():
        for batch in batches_of(part):
            for frame, data in framed(batch):
                await producer.send_and_wait(topic, data, key=frame.key(p), partition=p)
                sent += 1
    return sent


async def broadcast(
    producer: AIOKafkaProducer, topic: str, event: FileEvent | RunEnd | UnchangedList
) -> None:
    """A run-scoped event on every partition of ``topic``, acknowledged."""
    for p in sorted(await producer.partitions_for(topic)):
        await producer.send_and_wait(topic, encode(event), key=event.key(), partition=p)


def message_of(records: Sequence[RecordEvent], partition: int) -> tuple[bytes, bytes]:
    """One batch message holding ``records`` (of one run): its Kafka key and value."""
    (batch,) = batches_of(records)
    ((frame, data),) = framed(batch)
    return frame.key(partition), data
