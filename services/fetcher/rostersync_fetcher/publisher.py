"""What every kind of run publishes the same way, whatever its source (CSV bundle or REST API).

- run lifecycle events (``started``, ``fetched``, ``failed``) on the runs topic;
- ``file`` facts on every partition of the fetched topic, before the file's records;
- record events, sent in batches (acknowledgements awaited every ``send_batch`` events); records
  the application already holds unchanged go as one compact ``unchanged`` event per partition
  and batch (see unchanged.py);
- the end-of-run marker on every partition, with the bulk entities and the tenant's hold values.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from uuid import UUID

import asyncpg
from aiokafka import AIOKafkaProducer
from rostersync_libs.envelope import (
    EntityType,
    Envelope,
    EventKind,
    FileFacts,
    unchanged_event,
)
from rostersync_libs.kafka import partitions_of
from rostersync_libs.markers import run_end_event
from rostersync_libs.metrics import RECORDS_OUT
from rostersync_libs.partitioning import key_partition
from rostersync_libs.runs import RunEvent, RunPhase
from rostersync_libs.tenants import Tenant
from rostersync_libs.topics import Topics

from rostersync_fetcher.minimise import FieldPolicy
from rostersync_fetcher.published_progress import PublishedProgress
from rostersync_fetcher.selection import SelectionRules
from rostersync_fetcher.selection_pass import Selector
from rostersync_fetcher.unchanged import UnchangedRecords

log = logging.getLogger(__name__)


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
        send_batch: int = 5000,
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
        self._pending: list[asyncio.Future[object]] = []
        self._partitions: list[int] | None = None
        self.counts: Counter[str] = Counter()  # file (or collection) → records published
        self.unchanged_counts: Counter[str] = Counter()  # entity → records sent as unchanged
        # file (or collection) → records the source's selection skipped / references it trimmed
        self.skipped_by_selection: Counter[str] = Counter()
        self.trimmed_by_selection: Counter[str] = Counter()
        self._unchanged = unchanged
        self._unchanged_usable: bool | None = None  # decided at the first record
        self._held: list[Envelope] = []  # records waiting for their batch's unchanged lookup
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

    def file_event(self, facts: FileFacts) -> Envelope:
        return Envelope(
            kind=EventKind.FILE,
            tenant=self.tenant.id,
            source=self.source_id,
            run_id=self.run_id,
            entity=facts.entity,
            file=facts,
        )

    async def file_facts(self, facts: FileFacts) -> None:
        """A file's facts, on every partition (each validator instance needs them)."""
        await self.broadcast(self.file_event(facts))

    async def send(self, event: Envelope) -> None:
        """One record event, on the partition of its key (or in an unchanged list)."""
        event = self.policy.apply(event)  # before its hash is compared or anything is sent
        if await self._checks_unchanged():
            self._held.append(event)
            if len(self._held) >= self._send_batch:
                await self._send_held()
            return
        await self._send_whole(event)

    async def _send_whole(self, event: Envelope) -> None:
        fut = await self.producer.send(self.topics.fetched, event.to_bytes(), key=event.key())
        self._pending.append(fut)
        if len(self._pending) >= self._send_batch:
            await self.flush()

    async def _checks_unchanged(self) -> bool:
        if self._unchanged_usable is None:
            self._unchanged_usable = self._unchanged is not None and await self._unchanged.usable(
                self.tenant.id, self.run_id
            )
        return self._unchanged_usable

    async def _send_held(self) -> None:
        """The held records: changed ones whole, unchanged ones as one list per partition."""
        held, self._held = self._held, []
        if not held:
            return
        same = await self._same(held)
        partitions = await self.partitions()
        lists: dict[tuple[EntityType, int], dict[str, str]] = {}
        for event in held:
            if event.entity is None or (event.entity, event.sourced_id) not in same:
                await self._send_whole(event)
                continue
            assert event.sourced_id is not None
            assert event.content_hash is not None
            # The partition the record itself would go to: its events stay in order.
            partition = key_partition(event.key(), partitions, partitions)
            lists.setdefault((event.entity, partition), {})[event.sourced_id] = event.content_hash
            self.unchanged_counts[event.entity.value] += 1
        for (entity, partition), listed in lists.items():
            event = unchanged_event(
                tenant=self.tenant.id,
                source=self.source_id,
                run_id=self.run_id,
                entity=entity,
                listed=listed,
            )
            self._pending.append(
                await self.producer.send(
                    self.topics.fetched, event.to_bytes(), key=event.key(), partition=partition
                )
            )

    async def _same(self, held: list[Envelope]) -> set[tuple[EntityType, str]]:
        """The held records the application already holds unchanged."""
        assert self._unchanged is not None
        same: set[tuple[EntityType, str]] = set()
        try:
            for entity in {e.entity for e in held if e.entity is not None}:
                batch = [e for e in held if e.entity is entity]
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

    async def broadcast(self, event: Envelope) -> None:
        await self._send_held()  # everything keeps the order it was published in
        data, key = event.to_bytes(), event.key()
        for partition in await self.partitions():
            self._pending.append(
                await self.producer.send(self.topics.fetched, data, key=key, partition=partition)
            )

    async def flush(self) -> None:
        """Send what is held, and wait until everything sent so far is acknowledged."""
        try:
            await self._send_held()
            await asyncio.gather(*self._pending)
        finally:
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
            await self._mark_end(bulk_entities=[], aborted=True)
        except Exception as exc:  # the run is failing anyway; report the first reason
            log.warning("tenant %s run %s: abort markers: %s", self.tenant.id, self.run_id, exc)
        return await self.run_event(phase, reason=reason)
