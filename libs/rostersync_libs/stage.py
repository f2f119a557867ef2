"""The consume-transform-produce loop shared by the middle stages (validator, mapper).

A stage reads events in batches and hands the records to its handler, which decides, per record,
what goes on and what it found. The stage sends what goes on downstream, rejected records to its
dead-letter topic, every finding to the findings topic, forwards end-of-run markers (see
:mod:`rostersync_libs.markers`), waits until Kafka has acknowledged all of it, and only then
commits its input offsets.

Poison never loops: a message the stage cannot read (no value, not an event, an event without
what its kind needs) or its handler cannot handle goes to the dead-letter topic with its reason,
and the stage goes on. Nothing it sends is over Kafka's size limit: findings are bounded
(:func:`rostersync_libs.findings.bounded`), a record whose output would be too large is rejected
instead, and a dead letter too large to carry its original event says where to read it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeAlias
from uuid import UUID, uuid4

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from pydantic import ValidationError

from rostersync_libs.data_keys import DataKeys
from rostersync_libs.dlq import DeadLetter
from rostersync_libs.envelope import Envelope, EventKind, Operation, record_kafka_key
from rostersync_libs.finding_codes import APPLY_FAILED, Code
from rostersync_libs.findings import Finding, FindingsEvent, Severity, bounded, clip
from rostersync_libs.kafka import make_consumer, make_producer, partitions_of
from rostersync_libs.lag import LagSampler
from rostersync_libs.logs import log_context
from rostersync_libs.markers import MarkerTracker, marker_event
from rostersync_libs.metrics import (
    BATCH_MESSAGES,
    BATCH_SECONDS,
    RECORDS_IN,
    RECORDS_OUT,
    RECORDS_REJECTED,
)
from rostersync_libs.outages import working
from rostersync_libs.partitioning import key_partition
from rostersync_libs.sealing import UNREADABLE, tenant_of_or_none
from rostersync_libs.settings import ServiceSettings
from rostersync_libs.stage_progress import StageProgress, Verdict

log = logging.getLogger(__name__)

Message: TypeAlias = ConsumerRecord[bytes, bytes]
Headers: TypeAlias = list[tuple[str, bytes]]

# The largest message a stage sends: under Kafka's default limit (``message.max.bytes``,
# 1,048,588 bytes with the batch's framing); an output above it is never sent as it is.
MAX_MESSAGE_BYTES = 1_000_000

# What a handler raises on a record it cannot handle (a value of the wrong type, a combination
# its code does not expect, a value the database refuses): that record is dead-lettered. Anything
# else (Kafka, a connection, a timeout) stops the stage, as before.
DATA_ERRORS: tuple[type[BaseException], ...] = (
    ArithmeticError,
    AssertionError,
    AttributeError,
    LookupError,
    RecursionError,
    TypeError,
    ValueError,
    asyncpg.DataError,
    asyncpg.IntegrityConstraintViolationError,
    asyncpg.ProgramLimitExceededError,
)


def message_size(value: bytes | None, key: bytes | None, headers: Headers | None = None) -> int:
    """What a message weighs against the limit (its record framing aside)."""
    size = len(value or b"") + len(key or b"")
    return size + sum(len(k) + len(v) for k, v in headers or ())


# What each kind of event needs (a record's key, a list's records, a file's facts, a marker's
# bookkeeping): every stage reads them without checking again.
NEEDED: dict[EventKind, tuple[str, ...]] = {
    EventKind.RECORD: ("entity", "sourced_id"),
    EventKind.UNCHANGED: ("entity", "unchanged"),
    EventKind.FILE: ("file",),
    EventKind.RUN_END: ("marker",),
}


def missing_parts(event: Envelope) -> list[str]:
    """What an event lacks that its kind needs."""
    missing = [name for name in NEEDED[event.kind] if getattr(event, name) is None]
    if event.file is not None and event.file.entity is None:
        missing.append("file.entity")
    return missing


def failure(code: Code, exc: BaseException) -> Finding:
    """A finding saying what could not be done, with the exception (kept with the dead letter,
    never logged: its text may quote the record)."""
    return Finding(
        code=code,
        severity=Severity.ERROR,
        message=clip(f"{type(exc).__name__}: {exc}", 800),
    )


@dataclass(frozen=True)
class Outcome:
    """A handler's verdict on one record: what goes on (None: rejected) and what it found."""

    forward: Envelope | None
    findings: list[Finding] = field(default_factory=list)


class StageHandler:
    """What a stage does with events; override ``handle`` (and the hooks it needs)."""

    async def handle(self, events: list[Envelope]) -> list[Outcome]:
        """One outcome per record event, in order."""
        raise NotImplementedError

    def on_file(self, event: Envelope, partition: int) -> list[Finding]:
        """Facts about a file of a run, seen once on every partition before its records."""
        return []

    def on_run_end(self, run_id: UUID) -> None:
        """Every record of the run on one of this instance's partitions has been handled."""


class PerRecord(StageHandler):
    """A handler made of a plain function of one record."""

    def __init__(self, function: Callable[[Envelope], Outcome]) -> None:
        self._function = function

    async def handle(self, events: list[Envelope]) -> list[Outcome]:
        return [self._function(event) for event in events]


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
        self._dlq = dlq_topic
        self._findings = settings.topics.findings
        self._handler = handler
        self._tracker = MarkerTracker()
        self._out_partitions: list[int] = []
        # Records go on to the partition they came from when both topics have the same partitions:
        # their keys are the same on every record topic, so the key partitioner would choose it
        # too (and need not hash every key again).
        self._same_partitions = False
        # Tenants of the records this batch rejected (metrics: counted once per batch).
        self._rejected: list[str] = []
        self._batch_messages = BATCH_MESSAGES.labels(name)
        self._batch_seconds = BATCH_SECONDS.labels(name)

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
        sent: list[asyncio.Future[object]] = []
        records: list[tuple[TopicPartition, Message, Envelope]] = []
        markers: list[tuple[TopicPartition, Message, Envelope]] = []
        for tp, messages in batches.items():
            for message in messages:
                if message.value is UNREADABLE:
                    continue  # a purged tenant's event, or one not sealed with its key
                event = await self._decode(producer, tp, message, sent)
                if event is None:
                    continue
                if event.kind is EventKind.RECORD:
                    records.append((tp, message, event))
                elif event.kind is EventKind.UNCHANGED:
                    records.append((tp, message, event))  # passes through, in its place
                elif event.kind is EventKind.FILE:
                    self._tracker.hold(tp.partition, message.offset, event.run_id)
                    sent.extend(await self._on_file(producer, tp, message, event))
                else:
                    markers.append((tp, message, event))
        handled = [e for _, _, e in records if e.kind is EventKind.RECORD]
        outcomes = iter(await self._handle(handled))
        verdicts: list[Verdict] = []  # per record, for the runs' progress
        for tp, message, event in records:
            if event.kind is EventKind.UNCHANGED:
                sent.extend(await self._forward_unchanged(producer, tp, message, event))
                if self._progress is not None:
                    key = (event.tenant, event.run_id, tp.partition)
                    self._progress.add(key, message.offset, message.offset,
                                       passed=len(event.unchanged or ()))  # fmt: skip
                continue
            outcome, rejected_before = next(outcomes), len(self._rejected)
            sent.extend(await self._send_outcome(producer, tp, message, event, outcome))
            rejected = len(self._rejected) > rejected_before  # a too large output counts too
            verdicts.append((event.tenant, event.run_id, tp.partition, rejected))
        for tp, message, event in markers:
            sent.extend(await self._forward_marker(producer, tp, message, event, in_count))
        await asyncio.gather(*sent)
        await consumer.commit(
            {
                tp: self._tracker.commit_offset(tp.partition, messages[-1].offset + 1)
                for tp, messages in batches.items()
            }
        )
        self._count(handled)
        if self._progress is not None and verdicts:
            ranges = {tp.partition: (m[0].offset, m[-1].offset) for tp, m in batches.items()}
            self._progress.add_batch(verdicts, ranges)

    def _count(self, handled: list[Envelope]) -> None:
        """The batch's records in, out and rejected, per tenant: one ``inc`` per tenant."""
        received = Counter(e.tenant for e in handled)
        rejected = Counter(self._rejected)
        self._rejected.clear()
        for tenant, n in received.items():
            RECORDS_IN.labels(self.name, tenant).inc(n)
            RECORDS_OUT.labels(self.name, tenant).inc(n - rejected[tenant])
        for tenant, n in rejected.items():
            RECORDS_REJECTED.labels(self.name, tenant).inc(n)

    @property
    def _apply_failed(self) -> Code:
        return APPLY_FAILED.get(self.name, Code.VALIDATOR_APPLY_FAILED)

    async def _handle(self, events: list[Envelope]) -> list[Outcome]:
        """The handler's outcomes; a record it cannot handle is found by halving the batch
        (the others are handled as if they had come in smaller batches) and rejected."""
        try:
            return await self._handler.handle(events)
        except DATA_ERRORS as exc:
            if len(events) > 1:
                half = len(events) // 2
                return await self._handle(events[:half]) + await self._handle(events[half:])
            if not events:
                raise
            log.warning(
                "%s: could not handle a %s record of tenant %s (%s): rejected",
                self.name,
                events[0].entity,
                events[0].tenant,
                type(exc).__name__,
            )
            return [Outcome(None, [failure(self._apply_failed, exc)])]

    async def _on_file(
        self, producer: AIOKafkaProducer, tp: TopicPartition, message: Message, event: Envelope
    ) -> list[asyncio.Future[object]]:
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
            return [
                await self._dead_letter(producer, tp, message, [failure(self._apply_failed, exc)])
            ]
        if not found:
            return []
        return [await self._send_findings(producer, event, found, False)]

    async def _decode(
        self,
        producer: AIOKafkaProducer,
        tp: TopicPartition,
        message: Message,
        sent: list[asyncio.Future[object]],
    ) -> Envelope | None:
        """The message's event; a message that is not one is dead-lettered (None)."""
        if message.value is None:
            code, text = Code.EMPTY_MESSAGE, "a message without a value (a tombstone), not an event"
        else:
            try:
                event = Envelope.from_bytes(message.value)
            except ValidationError as exc:
                code = Code.ENVELOPE_UNDECODABLE
                text = f"not a rostersync event: {exc.error_count()} schema error(s)"
            else:
                missing = missing_parts(event)
                if not missing and tenant_of_or_none(message.key) == event.tenant:
                    return event
                if missing:
                    code = Code.ENVELOPE_INCOMPLETE
                    text = f"a {event.kind} event without {', '.join(missing)}"
                else:  # sealed with one tenant's key, claiming another tenant
                    code = Code.ENVELOPE_TENANT_MISMATCH
                    text = "the event's tenant is not the tenant of its key"
        log.warning(
            "%s: dead-lettered %s[%d]@%d (%s)",
            self.name,
            tp.topic,
            tp.partition,
            message.offset,
            code,
        )
        finding = Finding(code=code, severity=Severity.ERROR, message=text)
        sent.append(await self._dead_letter(producer, tp, message, [finding]))
        return None

    async def _send_outcome(
        self,
        producer: AIOKafkaProducer,
        tp: TopicPartition,
        message: Message,
        event: Envelope,
        outcome: Outcome,
    ) -> list[asyncio.Future[object]]:
        sent: list[asyncio.Future[object]] = []
        partition = tp.partition if self._same_partitions else None
        if outcome.forward is not None:
            value, key = outcome.forward.to_bytes(), outcome.forward.key()
            if message_size(value, key) <= self.max_message_bytes:
                sent.append(await producer.send(self._output, value, key=key, partition=partition))
            else:
                log.warning(
                    "%s: a %s record of tenant %s would be %d bytes: rejected",
                    self.name,
                    event.entity,
                    event.tenant,
                    len(value) + len(key),
                )
                too_large = Finding(
                    code=Code.MESSAGE_TOO_LARGE,
                    severity=Severity.ERROR,
                    message=f"the {self.name}'s output for this record would be"
                    f" {len(value) + len(key):,} bytes, over the {self.max_message_bytes:,}"
                    " bytes a Kafka message may hold: not sent",
                )
                outcome = Outcome(None, [too_large, *outcome.findings])
        if outcome.forward is None:
            self._rejected.append(event.tenant)
            sent.append(await self._dead_letter(producer, tp, message, outcome.findings))
            # A key with a NUL names no record anyone can hold (PostgreSQL text refuses it).
            if event.sourced_id and "\x00" not in event.sourced_id and event.entity is not None:
                # Rejected, but it was in the run: the writer must not archive it as absent.
                codes = sorted({f.code for f in outcome.findings if f.severity is Severity.ERROR})
                seen = event.model_copy(
                    update={
                        "operation": Operation.SEEN,
                        "payload": {},
                        "facts": None,
                        "rejected_codes": codes,
                    }
                )
                value, key = seen.to_bytes(), seen.key()
                if message_size(value, key) <= self.max_message_bytes:
                    sent.append(
                        await producer.send(self._output, value, key=key, partition=partition)
                    )
                else:  # its key alone is too large: it cannot be a record of anyone's roster
                    log.warning(
                        "%s: a rejected record's seen event is too large: not sent", self.name
                    )
        if outcome.findings:
            rejected = outcome.forward is None
            sent.append(await self._send_findings(producer, event, outcome.findings, rejected))
        return sent

    async def _forward_unchanged(
        self, producer: AIOKafkaProducer, tp: TopicPartition, message: Message, event: Envelope
    ) -> list[asyncio.Future[object]]:
        """A list judged and mapped in an earlier run goes on as it is, where its records go:
        the same partition, or (topics of other sizes) split by the records' key partitions."""
        if self._same_partitions:
            return [
                await producer.send(
                    self._output, message.value, key=message.key, partition=tp.partition
                )
            ]
        parts: dict[int, dict[str, str]] = {}
        for sourced_id, hash_ in (event.unchanged or {}).items():
            key = record_kafka_key(event.tenant, event.entity, sourced_id)
            partition = key_partition(key, self._out_partitions, self._out_partitions)
            parts.setdefault(partition, {})[sourced_id] = hash_
        sent = []
        for partition, listed in parts.items():
            part = event.model_copy(update={"event_id": uuid4(), "unchanged": listed})
            sent.append(
                await producer.send(
                    self._output, part.to_bytes(), key=part.key(), partition=partition
                )
            )
        return sent

    async def _forward_marker(
        self,
        producer: AIOKafkaProducer,
        tp: TopicPartition,
        message: Message,
        event: Envelope,
        in_count: int,
    ) -> list[asyncio.Future[object]]:
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
        return [
            await producer.send(self._output, marker.to_bytes(), key=marker.key(), partition=p)
            for p in self._out_partitions
        ]

    async def _send_findings(
        self, producer: AIOKafkaProducer, event: Envelope, found: list[Finding], rejected: bool
    ) -> asyncio.Future[object]:
        report = FindingsEvent(
            tenant=event.tenant,
            run_id=str(event.run_id),
            stage=self.name,
            entity=event.entity.value if event.entity else None,
            sourced_id=clip(event.sourced_id, 1000) if event.sourced_id else None,
            rejected=rejected,
            findings=bounded(found),
        )
        value, key = report.model_dump_json(exclude_none=True).encode(), report.key()
        if message_size(value, key) > self.max_message_bytes:
            # Bounded findings fit by construction: only names far longer than any tenant's get
            # here. Sent as a count, with the names cut.
            log.error(
                "%s: a findings event of %d bytes: sent as a count only", self.name, len(value)
            )
            report = report.model_copy(
                update={
                    "tenant": clip(report.tenant, 200),
                    "sourced_id": clip(report.sourced_id, 200) if report.sourced_id else None,
                    "findings": bounded(found, 0),
                }
            )
            value, key = report.model_dump_json(exclude_none=True).encode(), report.key()
        fut: asyncio.Future[object] = await producer.send(self._findings, value, key=key)
        return fut

    async def _dead_letter(
        self, producer: AIOKafkaProducer, tp: TopicPartition, message: Message, found: list[Finding]
    ) -> asyncio.Future[object]:
        """The original message, byte for byte, with the reasons in its headers; when that would
        be too large, the reasons and where to read the original (its topic keeps it)."""
        letter = DeadLetter(
            stage=self.name,
            topic=tp.topic,
            partition=tp.partition,
            offset=message.offset,
            findings=bounded(found),
        )
        value, key, headers = message.value, message.key, letter.headers()
        if message_size(value, key, headers) > self.max_message_bytes:
            size = message_size(value, key)
            omitted = Finding(
                code=Code.MESSAGE_TOO_LARGE,
                severity=Severity.ERROR,
                message=f"the original message ({size:,} bytes) is not copied into its dead"
                f" letter: read it at {tp.topic}[{tp.partition}]@{message.offset}",
            )
            letter = DeadLetter(
                stage=self.name,
                topic=tp.topic,
                partition=tp.partition,
                offset=message.offset,
                findings=bounded([omitted, *found]),
            )
            value, headers = None, letter.headers()
            if message_size(value, key, headers) > self.max_message_bytes:
                key = None
        fut: asyncio.Future[object] = await producer.send(
            self._dlq, value, key=key, headers=headers
        )
        return fut
