"""The consume-transform-produce loop shared by the middle stages (validator, mapper).

A stage reads events in batches, hands each record to its handler, sends the result downstream or
to its dead-letter topic, forwards end-of-run markers (see :mod:`rostersync_libs.markers`), waits
until everything sent is acknowledged, and only then commits its input offsets.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from pydantic import ValidationError

from rostersync_libs.dlq import DeadLetter
from rostersync_libs.envelope import Envelope, EventKind
from rostersync_libs.findings import Finding, Severity
from rostersync_libs.kafka import make_consumer, make_producer, partitions_of
from rostersync_libs.markers import MarkerTracker, marker_event
from rostersync_libs.settings import ServiceSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rejected:
    """A handler's verdict that a record must not go on."""

    findings: list[Finding]


Handler = Callable[[Envelope], Envelope | Rejected]


class _ForgetRevoked(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, tracker: MarkerTracker) -> None:
        self._tracker = tracker

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self._tracker.forget([tp.partition for tp in revoked])

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        return None


class Stage:
    """One middle stage: ``input_topic`` → handler → ``output_topic`` (or ``dlq_topic``)."""

    def __init__(
        self,
        *,
        name: str,
        settings: ServiceSettings,
        input_topic: str,
        output_topic: str,
        dlq_topic: str,
        handler: Handler,
    ) -> None:
        self.name = name
        self._settings = settings
        self._input = input_topic
        self._output = output_topic
        self._dlq = dlq_topic
        self._handler = handler
        self._tracker = MarkerTracker()

    async def run(self, stop: asyncio.Event) -> None:
        consumer = make_consumer(self._settings, self._settings.consumer_group(self.name))
        consumer.subscribe([self._input], listener=_ForgetRevoked(self._tracker))
        producer = make_producer(self._settings, f"rostersync-{self.name}")
        await producer.start()
        await consumer.start()
        log.info("%s: reading %s, writing %s", self.name, self._input, self._output)
        try:
            out_partitions = await partitions_of(producer, self._output)
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=500)
                if batches:
                    await self._process(consumer, producer, batches, out_partitions)
        finally:
            await consumer.stop()
            await producer.stop()

    async def _process(
        self,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
        out_partitions: list[int],
    ) -> None:
        in_count = len(consumer.partitions_for_topic(self._input) or ())
        pending: list[asyncio.Future[object]] = []
        for tp, messages in batches.items():
            for message in messages:
                pending.extend(await self._handle(producer, tp, message, in_count, out_partitions))
        await asyncio.gather(*pending)
        await consumer.commit(
            {
                tp: self._tracker.commit_offset(tp.partition, messages[-1].offset + 1)
                for tp, messages in batches.items()
            }
        )

    async def _handle(
        self,
        producer: AIOKafkaProducer,
        tp: TopicPartition,
        message: ConsumerRecord[bytes, bytes],
        in_count: int,
        out_partitions: list[int],
    ) -> list[asyncio.Future[object]]:
        assert message.value is not None
        try:
            event = Envelope.from_bytes(message.value)
        except ValidationError as exc:
            finding = Finding(
                code="envelope.undecodable",
                severity=Severity.ERROR,
                message=f"not a rostersync event: {exc.error_count()} schema error(s)",
            )
            return [await self._dead_letter(producer, tp, message, [finding])]
        if event.kind is EventKind.RUN_END:
            if not self._tracker.observe(tp.partition, message.offset, event):
                return []
            marker = marker_event(
                event,
                origin_partition=tp.partition,
                origin_count=in_count,
                fanout=len(out_partitions),
            )
            return [
                await producer.send(
                    self._output, marker.to_bytes(), key=marker.key(), partition=partition
                )
                for partition in out_partitions
            ]
        result = self._handler(event)
        if isinstance(result, Rejected):
            return [await self._dead_letter(producer, tp, message, result.findings)]
        return [await producer.send(self._output, result.to_bytes(), key=result.key())]

    async def _dead_letter(
        self,
        producer: AIOKafkaProducer,
        tp: TopicPartition,
        message: ConsumerRecord[bytes, bytes],
        findings: list[Finding],
    ) -> asyncio.Future[object]:
        letter = DeadLetter(
            stage=self.name,
            topic=tp.topic,
            partition=tp.partition,
            offset=message.offset,
            findings=findings,
        )
        fut: asyncio.Future[object] = await producer.send(
            self._dlq, message.value, key=message.key, headers=letter.headers()
        )
        return fut
