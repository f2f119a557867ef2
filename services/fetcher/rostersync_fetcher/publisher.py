"""What every kind of run publishes the same way, whatever its source (CSV bundle or REST API).

- run lifecycle events (``started``, ``fetched``, ``failed``) on the runs topic;
- a ``file`` event (the file's facts) on every partition of the fetched topic, before the file's
  records;
- the records, in :class:`~rostersync_libs.events.RecordBatch` messages: each record is buffered
  for the partition its own key picks (``tenant:entity:sourcedId``, Kafka's default
  partitioner: every version of a record stays in one partition, in order), and the buffers go
  out as batches of at most ``MAX_BATCH_RECORDS`` records and ``MAX_BATCH_BYTES`` bytes when the
  run has ``send_batch`` records buffered, before anything sent to every partition (a file's
  facts, the run's end) and at a flush: everything keeps, on every partition, the order it was
  published in. Records the application already holds unchanged go as one compact
  ``unchanged`` list per entity and partition (see unchanged.py);
- the end-of-run marker on every partition, with the bulk entities and the tenant's hold values.

Acknowledgements are awaited one round behind (a round: the records of one ``send_batch``),
so the next round is read while Kafka acknowledges the last; a flush awaits them all.

A record whose batch alone is over ``MAX_BATCH_BYTES`` goes alone in its message when that
message fits what a stage accepts (``MAX_MESSAGE_BYTES``, as in v1, when every record was its own
message); a larger one cannot be sent at all and fails the run (:class:`RecordTooLarge`, its
file and row in the reason): leaving it out would let a bulk run's sweep archive it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from uuid import UUID

import asyncpg
from aiokafka import AIOKafkaProducer
from rostersync_libs.events import (
    MAX_BATCH_BYTES,
    EntityType,
    FileEvent,
    FileFacts,
    RecordBatch,
    RecordEvent,
    RunEnd,
    batches_of,
    encode,
    framed,
    records_of,
    too_large,
    unchanged_list,
)
from rostersync_libs.kafka import partitions_of
from rostersync_libs.markers import run_end_event
from rostersync_libs.metrics import RECORDS_OUT
from rostersync_libs.partitioning import key_partition
from rostersync_libs.runs import RunEvent, RunPhase
from rostersync_libs.stage import MAX_MESSAGE_BYTES
from rostersync_libs.tenants import Tenant
from rostersync_libs.topics import Topics

from rostersync_fetcher.minimise import FieldPolicy
from rostersync_fetcher.published_progress import PublishedProgress
from rostersync_fetcher.selection import SelectionRules
from rostersync_fetcher.selection_pass import Selector
from rostersync_fetcher.unchanged import UnchangedRecords

log = logging.getLogger(__name__)

# Records buffered (all partitions together) before they are sent: with the default 3 partitions,
# messages of about 1,000 records (MAX_BATCH_RECORDS), with 6 about 500.
SEND_BATCH = 3000

# The largest message a record alone may make (key and value) is what a stage accepts and sends
# (``MAX_MESSAGE_BYTES``, imported: one limit), under Kafka's default (1,048,588 bytes).


class RecordTooLarge(Exception):  # noqa: N818 (a reason a run fails, said in its message)
    """A record too large for any message: it cannot be sent, so its run cannot complete."""

    def __init__(self, record: RecordEvent, size: int) -> None:
        origin = record.origin
        where = f"{origin.file} row {origin.row}" if origin and origin.file else record.entity.value
        super().__init__(
            f"{where}: a {record.entity.value} record of {size:,} bytes, more than a message may"
            f" hold ({MAX_MESSAGE_BYTES:,} bytes): it cannot be sent, so the run cannot complete"
        )
        self.record = record
        self.size = size


class RunPublisher:
    """Publishes the events of one run of one tenant's source."""

    def __init__(
        self,
        *,
        producer: AIOKafkaProducer,
        topics: Topics,
        tenant: Tenant,
        source_id: str,
        run_id: UUID,
        send_batch: int = SEND_BATCH,
        unchanged: UnchangedRecords | None = None,
        progress_db: asyncpg.Pool | None = None,
    ) -> None:
        self.producer = producer
        # Published so far, for the run's view while it runs (run_stage_progress)
        self._progress = PublishedProgress(progress_db, tenant.id, run_id) if progress_db else None
        self.topics = topics
        self.tenant = tenant
        self.source_id = source_id
        self.run_id = run_id
        self._send_batch = send_batch
        self._pending: list[asyncio.Future[object]] = []  # sent in this round
        self._in_flight: list[asyncio.Future[object]] = []  # sent in the last round
        self._partitions: list[int] | None = None
        self.counts: Counter[str] = Counter()  # file (or collection) → records published
        self.unchanged_counts: Counter[str] = Counter()  # entity → records sent as unchanged
        # file (or collection) → records the source's selection skipped / references it trimmed
        self.skipped_by_selection: Counter[str] = Counter()
        self.trimmed_by_selection: Counter[str] = Counter()
        self._unchanged = unchanged
        self._unchanged_usable: bool | None = None  # decided at the first record
        self._held: list[RecordEvent] = []  # records waiting for their batch's unchanged lookup
        self._buffers: dict[int, list[RecordEvent]] = {}  # partition → records to send, in order
        self._buffered = 0
        self.policy = FieldPolicy(tenant.minimise)
        # What the end marker declared complete bulk snapshots; the FETCHED run event says it
        # again, on the runs topic, where the writer takes it from (None: not ended yet).
        self.bulk_entities: list[EntityType] | None = None
        self._counted = 0  # records of ``counts`` already added to the metrics

    def selector(self, rules: SelectionRules) -> Selector:
        """A filter through ``rules`` that counts into this run's report."""
        unmatched = rules.unmatched()
        if unmatched:  # the tenants file's values, not records: a closed school, or a typo
            log.warning("tenant %s source %s run %s: selection values naming no record: %s",
                        self.tenant.id, self.source_id, self.run_id, ", ".join(unmatched))  # fmt: skip
        return Selector(rules, self.skipped_by_selection, self.trimmed_by_selection)

    async def partitions(self) -> list[int]:
        if self._partitions is None:
            self._partitions = await partitions_of(self.producer, self.topics.fetched)
        return self._partitions

    def file_event(self, facts: FileFacts) -> FileEvent:
        return FileEvent(
            tenant=self.tenant.id, source=self.source_id, run_id=self.run_id, facts=facts
        )

    async def file_facts(self, facts: FileFacts) -> None:
        """A file's facts, on every partition (each validator instance needs them)."""
        await self.broadcast(self.file_event(facts))

    async def send(self, event: RecordEvent) -> None:
        """One record, to the partition of its key (in a batch, or in an unchanged list).

        Its payload has the tenant's field policy applied already (``self.policy.treat``, when
        it was built: its hash is computed once, of what is sent)."""
        if await self._checks_unchanged():
            self._held.append(event)
            if len(self._held) >= self._send_batch:
                await self._send_held()
                await self._next_round()
            return
        partitions = await self.partitions()
        self._buffer(event, key_partition(event.key(), partitions, partitions))
        if self._buffered >= self._send_batch:
            await self._send_records()
            await self._next_round()

    def _buffer(self, event: RecordEvent, partition: int) -> None:
        self._buffers.setdefault(partition, []).append(event)
        self._buffered += 1

    async def _send_records(self) -> None:
        """Every partition's buffered records, as batches (each partition's in order)."""
        buffers, self._buffers, self._buffered = self._buffers, {}, 0
        topic = self.topics.fetched
        for partition, records in buffers.items():
            for batch in batches_of(records):
                key = batch.key(partition)
                for part, data in framed(batch):
                    if too_large(data):
                        self._check_alone(part, data, key)
                    self._pending.append(
                        await self.producer.send(topic, data, key=key, partition=partition)
                    )

    def _check_alone(self, part: RecordBatch, data: bytes, key: bytes) -> None:
        """A record alone over ``MAX_BATCH_BYTES``: it goes alone in its message if that fits what
        a stage accepts; otherwise it cannot be sent at all (the run fails: it is not dropped,
        which would let a bulk run's sweep archive it)."""
        size = len(data) + len(key)
        log.warning("tenant %s run %s: a record alone makes a message of %d bytes (batches: %d)",
                    self.tenant.id, self.run_id, size, MAX_BATCH_BYTES)  # fmt: skip
        if size > MAX_MESSAGE_BYTES:
            # framed() leaves a record over the limit alone in its part: this is that record.
            raise RecordTooLarge(records_of(part)[0], size)

    async def _next_round(self) -> None:
        """Wait for the last round's acknowledgements (this one's come while the next is read)."""
        last, self._in_flight, self._pending = self._in_flight, self._pending, []
        await asyncio.gather(*last)
        self._count_published()
        if self._progress is not None:
            await self._progress.record(sum(self.counts.values()))

    async def _checks_unchanged(self) -> bool:
        if self._unchanged_usable is None:
            self._unchanged_usable = self._unchanged is not None and await self._unchanged.usable(
                self.tenant.id, self.run_id
            )
        return self._unchanged_usable

    async def _send_held(self) -> None:
        """The held records: changed ones in batches, unchanged ones as lists (one per entity
        and partition), after the batches (each list after the records held before it)."""
        held, self._held = self._held, []
        if not held:
            return
        same = await self._same(held)
        partitions = await self.partitions()
        lists: dict[tuple[EntityType, int], dict[str, str]] = {}
        for event in held:
            # The partition the record itself goes to: its events stay in order.
            partition = key_partition(event.key(), partitions, partitions)
            if (event.entity, event.sourced_id) not in same:
                self._buffer(event, partition)
                continue
            assert event.content_hash is not None  # only records with one are looked up
            lists.setdefault((event.entity, partition), {})[event.sourced_id] = event.content_hash
            self.unchanged_counts[event.entity.value] += 1
        await self._send_records()
        for (entity, partition), listed in lists.items():
            unchanged = unchanged_list(
                tenant=self.tenant.id,
                source=self.source_id,
                run_id=self.run_id,
                entity=entity,
                listed=listed,
            )
            self._pending.append(
                await self.producer.send(
                    self.topics.fetched,
                    encode(unchanged),
                    key=unchanged.key(),
                    partition=partition,
                )
            )

    async def _same(self, held: list[RecordEvent]) -> set[tuple[EntityType, str]]:
        """The held records the application already holds unchanged."""
        assert self._unchanged is not None
        by_entity: dict[EntityType, list[RecordEvent]] = {}
        for e in held:
            by_entity.setdefault(e.entity, []).append(e)
        same: set[tuple[EntityType, str]] = set()
        try:
            for entity, batch in by_entity.items():
                found = await self._unchanged.matching(
                    self.tenant.id, self.source_id, entity, batch
                )
                same.update((entity, sourced_id) for sourced_id in found)
        except (asyncpg.PostgresError, OSError) as exc:
            # Without the lookup every record goes whole: slower, never wrong.
            log.warning("tenant %s run %s: unchanged lookup failed (%s): sending whole",
                        self.tenant.id, self.run_id, exc)  # fmt: skip
            self._unchanged_usable = False
            return set()
        return same

    async def broadcast(self, event: FileEvent | RunEnd) -> None:
        """``event`` on every partition, after every record published before it."""
        await self._send_held()
        await self._send_records()
        data, key = encode(event), event.key()
        for partition in await self.partitions():
            self._pending.append(
                await self.producer.send(self.topics.fetched, data, key=key, partition=partition)
            )

    async def flush(self) -> None:
        """Send what is held and buffered, and wait until everything sent is acknowledged."""
        try:
            await self._send_held()
            await self._send_records()
            await asyncio.gather(*self._in_flight, *self._pending)
        finally:
            self._in_flight.clear()
            self._pending.clear()
        self._count_published()
        if self._progress is not None:
            await self._progress.record(sum(self.counts.values()))

    def _count_published(self) -> None:
        """The records published since the last flush, for the metrics (once per flush)."""
        total = sum(self.counts.values())
        if total > self._counted:
            RECORDS_OUT.labels("fetcher", self.tenant.id).inc(total - self._counted)
            self._counted = total

    async def end(self, bulk_entities: list[EntityType]) -> None:
        """The end-of-run marker on every partition, acknowledged before this returns."""
        await self._mark_end(bulk_entities=bulk_entities, aborted=False)
        self.bulk_entities = list(bulk_entities)
        log.info(
            "tenant %s run %s: published %s (unchanged: %s, skipped by selection: %s)",
            self.tenant.id,
            self.run_id,
            dict(self.counts),
            dict(self.unchanged_counts),
            dict(self.skipped_by_selection),
        )

    async def _mark_end(self, *, bulk_entities: list[EntityType], aborted: bool) -> None:
        """A run_end marker on every partition, after everything sent; acknowledged."""
        await self.flush()
        marker = run_end_event(
            tenant=self.tenant.id,
            source=self.source_id,
            run_id=self.run_id,
            fanout=len(await self.partitions()),
            counts=dict(self.counts),
            bulk_entities=bulk_entities,
            hold_threshold=self.tenant.hold_threshold,
            hold_min_records=self.tenant.hold_min_records,
            aborted=aborted,
        )
        await self.broadcast(marker)
        await self.flush()
        if self._progress is not None:
            await self._progress.record(sum(self.counts.values()), final=True)

    async def run_event(
        self,
        phase: RunPhase,
        *,
        version: str | None = None,
        manifest: dict[str, str] | None = None,
        skipped: dict[str, str] | None = None,
        reason: str | None = None,
    ) -> RunEvent:
        event = RunEvent(
            tenant=self.tenant.id,
            run_id=self.run_id,
            source=self.source_id,
            phase=phase,
            oneroster_version=version,
            manifest=manifest or {},
            file_counts=dict(self.counts),
            unchanged_counts=dict(self.unchanged_counts),
            skipped_by_selection=dict(self.skipped_by_selection),
            trimmed_by_selection=dict(self.trimmed_by_selection),
            skipped_files=skipped or {},
            reason=reason,
            bulk_entities=self.bulk_entities if phase is RunPhase.FETCHED else None,
            fanout=len(self._partitions) if self._partitions is not None else None,
        )
        await self.producer.send_and_wait(
            self.topics.runs, event.model_dump_json().encode(), key=event.key()
        )
        if phase in (RunPhase.FAILED, RunPhase.CANCELLED):
            log.error("tenant %s run %s %s: %s", self.tenant.id, self.run_id, phase, reason)
        return event

    async def fail(self, reason: str, phase: RunPhase = RunPhase.FAILED) -> RunEvent:
        """End the run as failed: an *aborted* marker on every partition, so every stage releases
        the run (commits past it) and the writer ends it ``failed`` without removals; the records
        sent stay harmless. Then the ``failed`` run event with the reason."""
        try:
            try:
                await self._mark_end(bulk_entities=[], aborted=True)
            except RecordTooLarge as exc:  # it is left out (the run fails): the markers still go
                log.warning("tenant %s run %s: %s", self.tenant.id, self.run_id, exc)
                await self._mark_end(bulk_entities=[], aborted=True)
        except Exception as exc:  # the run is failing anyway; report the first reason
            log.warning("tenant %s run %s: abort markers: %s", self.tenant.id, self.run_id, exc)
        return await self.run_event(phase, reason=reason)
