"""The consume-transform-produce loop shared by the middle stages (validator, mapper).

A stage reads events in batches (v2, :mod:`rostersync_libs.events`) and hands the records of
every record batch of one poll to its handler, which decides, per record, what goes on and what
it found. The stage sends what goes on downstream as record batches (:mod:`.stage_records`),
rejected records to its dead-letter topic, every finding to the findings topic, forwards
end-of-run markers (see :mod:`rostersync_libs.markers`), waits until Kafka has acknowledged all
of it, and only then commits its input offsets.

Poison never loops: a message the stage cannot read (no value, not an event, an event without a
part its kind needs: :mod:`.stage_reading`) is dead-lettered whole, a record its handler cannot
handle is dead-lettered alone, each with its reason, and the stage goes on. Nothing it sends is
over Kafka's size limit: findings are bounded, a record whose output would be too large is
rejected instead, and a dead letter too large to carry its original says where to read it
(:mod:`.stage_letters`).

Order: the records of one input batch go out in their order, and everything an input partition
carried before an end-of-run marker is sent before the stage forwards that marker (markers go
last in each poll).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TypeAlias

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, IllegalStateError

from rostersync_libs import events
from rostersync_libs.data_keys import DataKeys
from rostersync_libs.events import FileEvent, RecordBatch, RecordEvent, RunEnd, UnchangedList
from rostersync_libs.finding_codes import APPLY_FAILED, Code
from rostersync_libs.findings import Finding
from rostersync_libs.kafka import make_consumer, make_producer, partitions_of
from rostersync_libs.lag import LagSampler
from rostersync_libs.logs import log_context
from rostersync_libs.markers import MarkerTracker, marker_event
from rostersync_libs.metrics import BATCH_MESSAGES, BATCH_SECONDS
from rostersync_libs.outages import working
from rostersync_libs.sealing import UNREADABLE
from rostersync_libs.settings import ServiceSettings
from rostersync_libs.stage_counts import Tally, count
from rostersync_libs.stage_handler import (
    DATA_ERRORS,
    Outcome,
    PerRecord,
    StageHandler,
    failure,
    handled,
)
from rostersync_libs.stage_letters import MAX_MESSAGE_BYTES, Letters, Sent, Where, message_size
from rostersync_libs.stage_progress import StageProgress
from rostersync_libs.stage_reading import read
from rostersync_libs.stage_records import RecordOutput

__all__ = [
    "DATA_ERRORS",
    "MAX_MESSAGE_BYTES",
    "Outcome",
    "PerRecord",
    "Stage",
    "StageHandler",
    "failure",
    "message_size",
]

log = logging.getLogger(__name__)

Message: TypeAlias = ConsumerRecord[bytes, bytes]
# What a poll read that goes on in its place: a record batch (with its records) or a list.
Read: TypeAlias = tuple[TopicPartition, Message, RecordBatch | UnchangedList, list[RecordEvent]]


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
        handler: StageHandler,
        keys: DataKeys,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        progress: StageProgress | None = None,
    ) -> None:
        self.name = name
        self._progress = progress  # records passed and rejected per run, for the run's view
        self._keys = keys
        self.max_message_bytes = max_message_bytes
        self._settings = settings
        self._input = input_topic
        self._output = output_topic
        self._handler = handler
        self._tracker = MarkerTracker()
        self._letters = Letters(name, settings.topics.findings, dlq_topic, max_message_bytes)
        self._records = RecordOutput(stage=name, topic=output_topic, letters=self._letters)
        self._batch_messages = BATCH_MESSAGES.labels(name)
        self._batch_seconds = BATCH_SECONDS.labels(name)

    @property
    def _out_partitions(self) -> list[int]:
        return self._records.partitions

    @_out_partitions.setter
    def _out_partitions(self, partitions: list[int]) -> None:
        self._records.partitions = partitions

    @property
    def _same_partitions(self) -> bool:
        """Records go on to the partition they came from when both topics have the same
        partitions: their keys choose it on every record topic (no need to hash them again)."""
        return self._records.same_partitions

    @_same_partitions.setter
    def _same_partitions(self, same: bool) -> None:
        self._records.same_partitions = same

    async def run(self, stop: asyncio.Event) -> None:
        with log_context(stage=self.name):
            await self._run(stop)

    async def _run(self, stop: asyncio.Event) -> None:
        consumer = make_consumer(
            self._settings, self._settings.consumer_group(self.name), keys=self._keys
        )
        consumer.subscribe([self._input], listener=_ForgetRevoked(self._tracker))
        producer = make_producer(self._settings, f"rostersync-{self.name}", self._keys)
        try:
            await producer.start()
            await consumer.start()
            self._out_partitions = await partitions_of(producer, self._output)
            in_partitions = await partitions_of(producer, self._input)
            self._same_partitions = in_partitions == self._out_partitions
            working()
            log.info("%s: reading %s, writing %s", self.name, self._input, self._output)
            lag = LagSampler(self.name, consumer)
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=500)
                if batches:
                    began = time.perf_counter()
                    await self._process(consumer, producer, batches)
                    self._batch_seconds.observe(time.perf_counter() - began)
                    self._batch_messages.observe(sum(len(m) for m in batches.values()))
                await lag.sample()
                if self._progress is not None:
                    self._progress.tick()
        finally:
            if self._progress is not None:
                await self._progress.close()
            await consumer.stop()
            await producer.stop()

    async def _process(
        self,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        batches: dict[TopicPartition, list[Message]],
    ) -> None:
        in_count = len(consumer.partitions_for_topic(self._input) or ())
        sent: list[Sent] = []
        reads: list[Read] = []  # in their order
        markers: list[tuple[TopicPartition, Message, RunEnd]] = []
        received: list[RecordEvent] = []  # the records of every batch, for one handler call
        for tp, messages in batches.items():
            for message in messages:
                if message.value is UNREADABLE:
                    continue  # a purged tenant's event, or one not sealed with its key
                event = read(message.value, message.key)
                match event:
                    case Finding():
                        sent.append(await self._reject_message(producer, tp, message, event))
                    case RecordBatch():
                        records = events.records_of(event)
                        reads.append((tp, message, event, records))
                        received.extend(records)
                    case UnchangedList():
                        reads.append((tp, message, event, []))  # passes through, in its place
                    case FileEvent():
                        self._tracker.hold(tp.partition, message.offset, event.run_id)
                        sent.extend(await self._on_file(producer, tp, message, event))
                    case RunEnd():
                        markers.append((tp, message, event))
        outcomes = await self._handle(received)
        if len(outcomes) != len(received):
            raise RuntimeError(f"{self.name}: {len(outcomes)} outcomes for {len(received)} records")
        tallies = await self._send_reads(producer, reads, outcomes, sent)
        for tp, message, marker in markers:
            sent.extend(await self._forward_marker(producer, tp, message, marker, in_count))
        await asyncio.gather(*sent)
        await self._commit(consumer, batches)
        count(self.name, tallies, self._progress)

    async def _commit(
        self, consumer: AIOKafkaConsumer, batches: dict[TopicPartition, list[Message]]
    ) -> None:
        """Commit what the poll handled, on the partitions this instance still owns. A rebalance
        during the poll (an instance joining or leaving) moves partitions away: their new owner
        reads them again from the last commit, and what this one sent of them is a harmless
        duplicate (docs/architecture.md); committing them would fail (IllegalStateError) and
        used to stop the stage."""
        assigned = consumer.assignment()
        offsets = {
            tp: self._tracker.commit_offset(tp.partition, messages[-1].offset + 1)
            for tp, messages in batches.items()
            if tp in assigned
        }
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            log.warning("%s: offsets not committed (%s): partitions moved in a rebalance; their"
                        " new owner reads them again", self.name, type(exc).__name__)  # fmt: skip

    async def _send_reads(
        self,
        producer: AIOKafkaProducer,
        reads: list[Read],
        outcomes: list[Outcome],
        sent: list[Sent],
    ) -> list[Tally]:
        """Each batch's outcomes and each list, in order; what each held."""
        tallies: list[Tally] = []
        start = 0
        for tp, message, event, records in reads:
            if type(event) is UnchangedList:
                sent.extend(
                    await self._records.send_unchanged(
                        producer, tp.partition, message.key, message.value, event
                    )
                )
                tallies.append(Tally(event.tenant, event.run_id, tp.partition, message.offset,
                                     0, len(event.listed), 0))  # fmt: skip
                continue
            end = start + len(records)
            at = Where(tp.topic, tp.partition, message.offset)
            out, rejected = await self._records.send_batch(
                producer, at, message.key, records, outcomes[start:end]
            )
            start = end
            sent.extend(out)
            tallies.append(Tally(event.tenant, event.run_id, tp.partition, message.offset,
                                 len(records), len(records) - rejected, rejected))  # fmt: skip
        return tallies

    @property
    def _apply_failed(self) -> Code:
        return APPLY_FAILED.get(self.name, Code.VALIDATOR_APPLY_FAILED)

    async def _handle(self, records: list[RecordEvent]) -> list[Outcome]:
        return await handled(self._handler, records, self.name, self._apply_failed)

    async def _on_file(
        self, producer: AIOKafkaProducer, tp: TopicPartition, message: Message, event: FileEvent
    ) -> list[Sent]:
        try:
            found = self._handler.on_file(event, tp.partition)
        except DATA_ERRORS as exc:
            log.warning(
                "%s: could not judge a file event at %s[%d]@%d (%s): dead-lettered",
                self.name,
                tp.topic,
                tp.partition,
                message.offset,
                type(exc).__name__,
            )
            finding = failure(self._apply_failed, exc)
            return [await self._reject_message(producer, tp, message, finding, quiet=True)]
        if not found:
            return []
        report = await self._letters.findings(
            producer, tenant=event.tenant, run_id=event.run_id, entity=event.entity.value,
            sourced_id=None, found=found, rejected=False,
        )  # fmt: skip
        return [report]

    async def _reject_message(
        self,
        producer: AIOKafkaProducer,
        tp: TopicPartition,
        message: Message,
        finding: Finding,
        *,
        quiet: bool = False,
    ) -> Sent:
        """A whole message dead-lettered, as it came."""
        if not quiet:
            log.warning(
                "%s: dead-lettered %s[%d]@%d (%s)",
                self.name,
                tp.topic,
                tp.partition,
                message.offset,
                finding.code,
            )
        where = Where(tp.topic, tp.partition, message.offset)
        return await self._letters.dead_letter(
            producer, where, message.value, message.key, [finding]
        )

    async def _forward_marker(
        self,
        producer: AIOKafkaProducer,
        tp: TopicPartition,
        message: Message,
        event: RunEnd,
        in_count: int,
    ) -> list[Sent]:
        if not self._tracker.observe(tp.partition, message.offset, event):
            return []
        self._handler.on_run_end(event.run_id)
        if self._progress is not None:
            self._progress.soon()  # the run's last counts on this partition, without waiting
        marker = marker_event(
            event,
            origin_partition=tp.partition,
            origin_count=in_count,
            fanout=len(self._out_partitions),
        )
        value, key = events.encode(marker), marker.key()
        return [
            await producer.send(self._output, value, key=key, partition=p)
            for p in self._out_partitions
        ]
