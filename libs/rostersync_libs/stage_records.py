"""A middle stage's output for one input batch of records, and for a list of unchanged records.

What goes on, in the input's order, goes out as record batches (:func:`events.batches_of`,
:func:`events.framed`): on the input's partition when both topics have the same partitions (the
key partitioner would choose it too), otherwise split by the partition each record's key chooses
(each part in order, so every key keeps its order). A rejected record is its own dead letter (the
record with its run's context, its index in the input batch) and goes on as ``seen`` in its place
(it was in the run: a bulk run's sweep must not archive it). A record whose frame alone would be
over the size limit is rejected the same way (``message_too_large``) instead of being sent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from uuid import uuid4

import msgspec
from aiokafka import AIOKafkaProducer

from rostersync_libs import events
from rostersync_libs.events import RecordEvent, UnchangedList, record_kafka_key
from rostersync_libs.finding_codes import Code
from rostersync_libs.findings import Finding, Severity
from rostersync_libs.partitioning import key_partition
from rostersync_libs.stage_handler import Outcome
from rostersync_libs.stage_letters import Letters, Sent, Where

log = logging.getLogger(__name__)


def seen_of(record: RecordEvent, found: list[Finding]) -> RecordEvent | None:
    """The seen version of a rejected record, None when its key names no record anyone can hold
    (a NUL character: PostgreSQL text refuses it; or no sourcedId)."""
    if not record.sourced_id or "\x00" in record.sourced_id:
        return None
    return record.seen(sorted({f.code for f in found if f.severity is Severity.ERROR}))


@dataclass
class _Part:
    """The output records bound for one partition, each with its index in the input batch."""

    records: list[RecordEvent] = field(default_factory=list)
    origins: list[int] = field(default_factory=list)


@dataclass
class _Batch:
    """One input batch's records and verdicts, and what was rejected so far (index → reasons)."""

    at: Where
    key: bytes | None
    records: list[RecordEvent]
    outcomes: list[Outcome]
    rejected: dict[int, list[Finding]] = field(default_factory=dict)


class RecordOutput:
    """Sends a stage's records on; ``partitions`` and ``same_partitions`` are set once the
    stage knows its topics."""

    def __init__(
        self, *, stage: str, topic: str, letters: Letters, max_bytes: int = events.MAX_BATCH_BYTES
    ) -> None:
        self.stage, self.topic, self.letters = stage, topic, letters
        self.max_bytes = min(max_bytes, letters.max_message_bytes)
        self.partitions: list[int] = []
        self.same_partitions = False

    async def send_batch(
        self,
        producer: AIOKafkaProducer,
        at: Where,
        key: bytes | None,
        records: list[RecordEvent],
        outcomes: list[Outcome],
    ) -> tuple[list[Sent], int]:
        """The outcomes of one input batch (``key``: its message's): what was sent, and how
        many of its records were rejected."""
        batch = _Batch(at, key, records, outcomes)
        parts: dict[int, _Part] = {}
        same, partitions = self.same_partitions, self.partitions
        for i, outcome in enumerate(outcomes):
            forward = outcome.forward
            if forward is None:
                batch.rejected[i] = outcome.findings
                forward = seen_of(records[i], outcome.findings)
                if forward is None:
                    continue
            p = at.partition if same else key_partition(forward.key(), partitions, partitions)
            part = parts.get(p)
            if part is None:
                part = parts[p] = _Part()
            part.records.append(forward)
            part.origins.append(i)
        sent: list[Sent] = []
        for p, part in parts.items():
            sent.extend(await self._send_part(producer, p, part, batch))
        sent.extend(await self._send_letters(producer, batch))
        return sent, len(batch.rejected)

    async def _send_part(
        self, producer: AIOKafkaProducer, partition: int, part: _Part, batch: _Batch
    ) -> list[Sent]:
        sent: list[Sent] = []
        position = 0  # of the frame's first record in ``part``
        for whole in events.batches_of(part.records):
            key = whole.key(partition)
            limit = self.max_bytes - len(key)
            for frame, data in events.framed(whole, limit):
                if len(data) <= limit:
                    sent.append(await producer.send(self.topic, data, key=key, partition=partition))
                else:  # one record, alone over the limit
                    index = part.origins[position]
                    sent.extend(await self._too_large(producer, partition, key, index, data, batch))
                position += len(frame.records)
        return sent

    async def _too_large(
        self,
        producer: AIOKafkaProducer,
        partition: int,
        key: bytes,
        index: int,
        data: bytes,
        batch: _Batch,
    ) -> list[Sent]:
        """A record whose output would be too large is rejected instead (its seen goes in its
        place); a rejected record's seen too large (its key alone is) cannot be anyone's."""
        record = batch.records[index]
        if index in batch.rejected:
            log.warning("%s: a rejected record's seen event is too large: not sent", self.stage)
            return []
        size = len(data) + len(key)
        log.warning(
            "%s: a %s record of tenant %s would be %d bytes: rejected",
            self.stage,
            record.entity,
            record.tenant,
            size,
        )
        too_large = Finding(
            code=Code.MESSAGE_TOO_LARGE,
            severity=Severity.ERROR,
            message=f"the {self.stage}'s output for this record would be {size:,} bytes, over the"
            f" {self.max_bytes:,} bytes a Kafka message may hold: not sent",
        )
        found = batch.rejected[index] = [too_large, *batch.outcomes[index].findings]
        seen = seen_of(record, found)
        if seen is None:
            return []
        (alone,) = events.batches_of([seen])
        value = events.encode(alone)
        if len(value) + len(key) > self.max_bytes:
            log.warning("%s: a rejected record's seen event is too large: not sent", self.stage)
            return []
        return [await producer.send(self.topic, value, key=key, partition=partition)]

    async def _send_letters(self, producer: AIOKafkaProducer, batch: _Batch) -> list[Sent]:
        """Every rejected record's dead letter, and the findings of every record."""
        sent: list[Sent] = []
        at = batch.at
        for i, outcome in enumerate(batch.outcomes):
            found = batch.rejected.get(i)
            rejected = found is not None
            if found is None:
                found = outcome.findings
                if not found:
                    continue
            record = batch.records[i]
            if rejected:
                where = Where(at.topic, at.partition, at.offset, i)
                sent.append(
                    await self.letters.dead_letter(
                        producer, where, record.to_bytes(), batch.key, found
                    )
                )
            sent.append(
                await self.letters.findings(
                    producer,
                    tenant=record.tenant,
                    run_id=record.run_id,
                    entity=record.entity.value,
                    sourced_id=record.sourced_id,
                    found=found,
                    rejected=rejected,
                )
            )
        return sent

    async def send_unchanged(
        self, producer: AIOKafkaProducer, partition: int, message_key: bytes | None,
        value: bytes, event: UnchangedList,
    ) -> list[Sent]:  # fmt: skip
        """A list judged and mapped in an earlier run goes on as it is, where its records go:
        the same partition, or (topics of other sizes) split by the records' key partitions."""
        if self.same_partitions:
            sent: Sent = await producer.send(
                self.topic, value, key=message_key, partition=partition
            )
            return [sent]
        parts: dict[int, dict[str, str]] = {}
        for sourced_id, hash_ in event.listed.items():
            key = record_kafka_key(event.tenant, event.entity, sourced_id)
            chosen = key_partition(key, self.partitions, self.partitions)
            parts.setdefault(chosen, {})[sourced_id] = hash_
        out: list[Sent] = []
        for chosen, listed in parts.items():
            part = msgspec.structs.replace(event, list_id=uuid4(), listed=listed)
            out.append(
                await producer.send(
                    self.topic, events.encode(part), key=part.key(), partition=chosen
                )
            )
        return out
