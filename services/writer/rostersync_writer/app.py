"""The writer's composition root and its consume loop.

Each batch from Kafka (mapped records and markers, dead letters, findings, run events) is applied
in ONE Postgres transaction together with the consumer positions it advances to: killing the
writer at any moment leaves exactly the rows a clean run leaves (exactly-once effect, see
docs/architecture.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TypeAlias
from uuid import UUID

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from rostersync_libs import events
from rostersync_libs.commands import COMMAND, HoldDecision
from rostersync_libs.data_keys import DataKeys
from rostersync_libs.db import close_pool, create_pool
from rostersync_libs.events import RecordBatch, RecordEvent, UnchangedList
from rostersync_libs.kafka import ensure_topics, make_consumer
from rostersync_libs.lag import LagSampler
from rostersync_libs.logs import log_context
from rostersync_libs.metrics import BATCH_MESSAGES, BATCH_SECONDS
from rostersync_libs.outages import working
from rostersync_libs.store.migrate import migrate
from rostersync_libs.topics import Topics

from rostersync_writer.changes import number_runs
from rostersync_writer.collector import collector_paused
from rostersync_writer.decisions import apply_decisions
from rostersync_writer.decoding import decode_or_skip
from rostersync_writer.findings import store_findings
from rostersync_writer.landing import Changes
from rostersync_writer.poison import (
    DATA_ERRORS,
    Judged,
    Parts,
    isolate,
    read_mapped,
    seen_version,
    units_of,
)
from rostersync_writer.positions import Handover, SeekToStoredPositions, save_positions
from rostersync_writer.purged import without_purged
from rostersync_writer.rejections import Rejected, store_own, store_rejections
from rostersync_writer.relay import run_relay
from rostersync_writer.run_ends import RunEnd
from rostersync_writer.run_events import apply_run_events, decode_run_events, publishing_ends
from rostersync_writer.run_metrics import RunGauges, count_batch
from rostersync_writer.run_order import apply_in_run_order
from rostersync_writer.runs import lock_runs, note_runs
from rostersync_writer.safety import SafetyLimits
from rostersync_writer.settings import WriterSettings
from rostersync_writer.statistics import refresh_statistics

log = logging.getLogger(__name__)

# A deadlock between writer instances rolls one batch back; it is applied again this often.
ROLLBACK_ATTEMPTS = 5

Message: TypeAlias = ConsumerRecord[bytes, bytes]
Batches: TypeAlias = dict[TopicPartition, list[Message]]


@dataclass
class Inbox:
    """One batch, sorted by what it is."""

    # Records (and unchanged lists), in each partition's order, and the runs they belong to.
    records: list[RecordEvent | UnchangedList] = field(default_factory=list)
    markers: list[tuple[int, events.RunEnd]] = field(default_factory=list)
    runs_seen: set[tuple[str, UUID, str]] = field(default_factory=set)  # tenant, run, source
    received: Counter[str] = field(default_factory=Counter)  # records, per tenant
    dead: list[Message] = field(default_factory=list)
    # On mapped, what cannot be applied (poison.py): kept as the writer's rejections, never retried.
    poison: list[Rejected] = field(default_factory=list)
    findings: list[Message] = field(default_factory=list)
    runs: list[Message] = field(default_factory=list)
    commands: list[Message] = field(default_factory=list)

    @classmethod
    def sort(cls, topics: Topics, batches: Batches) -> Inbox:
        inbox = cls()
        for tp, messages in batches.items():
            if tp.topic != topics.mapped:
                inbox._side(topics, tp.topic).extend(messages)
                continue
            for message in messages:
                inbox.take(tp.partition, message, read_mapped(message))
        return inbox

    @classmethod
    def of_units(cls, topics: Topics, parts: Parts) -> Inbox:
        """The inbox of a part of a batch (poison isolation: poison.py)."""
        inbox = cls()
        for tp, units in parts.items():
            for unit in units:
                if unit.judged is None:
                    inbox._side(topics, tp.topic).append(unit.message)
                else:
                    inbox.take(tp.partition, unit.message, unit.judged, unit.index)
        return inbox

    def _side(self, topics: Topics, topic: str) -> list[Message]:
        if topic == topics.findings:
            return self.findings
        if topic == topics.runs:
            return self.runs
        if topic == topics.commands:
            return self.commands
        return self.dead  # the validator's and the mapper's dead letters

    def take(
        self, partition: int, message: Message, judged: Judged, index: int | None = None
    ) -> None:
        """A message of the mapped topic (only its record at ``index``, when given)."""
        event = judged.event
        if judged.problem is not None:
            self.poison.append((message, 0, None, [judged.problem]))
        elif isinstance(event, RecordBatch):
            records = judged.records if index is None else judged.records[index : index + 1]
            before = len(self.records)
            if not judged.problems:  # most batches: every record as it came
                self.records.extend(records)
            else:
                for i, record in enumerate(records, index or 0):
                    problem = judged.problems.get(i)
                    if problem is None:
                        self.records.append(record)
                        continue
                    self.poison.append((message, i, record, [problem]))
                    seen = seen_version(record, [problem.code])
                    if seen is not None:  # it was in its run: seen, and rejected in it
                        self.records.append(seen)
            taken = len(self.records) - before
            if taken:  # (none: every record rejected, maybe for a run no row can name)
                self.runs_seen.add((event.tenant, event.run_id, event.source))
                self.received[event.tenant] += taken
        elif isinstance(event, events.RunEnd):
            self.runs_seen.add((event.tenant, event.run_id, event.source))
            self.markers.append((partition, event))
        elif isinstance(event, UnchangedList):
            self.runs_seen.add((event.tenant, event.run_id, event.source))
            self.records.append(event)
        # A file's facts are the validator's business: nothing to write.


@dataclass(frozen=True)
class Rules:
    """What the writer judges messages by, beyond the messages: the tenants' safety holds, and
    the schema of the control tables (the operator audit it checks hold decisions against)."""

    limits: SafetyLimits
    control: str


@dataclass
class Applied:
    """What a batch (or part of one) did, for the log."""

    records: int = 0
    changed: Changes = field(default_factory=Changes)  # rows, per table
    rejections: int = 0
    findings: int = 0
    set_aside: int = 0
    completed: list[tuple[RunEnd, str]] = field(default_factory=list)  # with the outcome
    decided: list[tuple[str, UUID, str]] = field(default_factory=list)
    received: Counter[str] = field(default_factory=Counter)  # record events, per tenant

    def __add__(self, other: Applied) -> Applied:
        return Applied(
            self.records + other.records,
            self.changed + other.changed,
            self.rejections + other.rejections,
            self.findings + other.findings,
            self.set_aside + other.set_aside,
            self.completed + other.completed,
            self.decided + other.decided,
            self.received + other.received,
        )


def subscribed_topics(topics: Topics) -> list[str]:
    """Everything the writer reads: what a replay must read to its end."""
    return [
        topics.mapped,
        topics.validator_dlq,
        topics.mapper_dlq,
        topics.findings,
        topics.runs,
        topics.commands,  # hold decisions
    ]


async def run(settings: WriterSettings, stop: asyncio.Event) -> None:
    await ensure_topics(settings)
    pool = await create_pool(settings)
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
        with log_context(stage="writer"):
            await consume(settings, pool, stop)
    finally:
        await close_pool(pool)


async def consume(settings: WriterSettings, pool: asyncpg.Pool, stop: asyncio.Event) -> None:
    topics = settings.topics
    rules = Rules(SafetyLimits(settings.tenants_file, settings.control), settings.control)
    # One group per database schema: a replay into a fresh schema is a second, independent writer.
    group = settings.consumer_group(f"writer-{settings.db_schema}")
    keys = DataKeys(pool, settings)
    consumer = make_consumer(settings, group, keys=keys)
    handover = Handover()
    consumer.subscribe(
        subscribed_topics(topics),
        listener=SeekToStoredPositions(consumer, pool, group, handover),
    )
    gauges = asyncio.create_task(RunGauges(pool).run(stop))
    relay = (
        asyncio.create_task(run_relay(settings, pool, keys, stop))
        if settings.change_relay
        else None
    )
    batch_seconds, batch_messages = BATCH_SECONDS.labels("writer"), BATCH_MESSAGES.labels("writer")
    try:
        await consumer.start()
        working()
        log.info("writer: reading %s into schema %s", topics.mapped, settings.db_schema)
        lag = LagSampler("writer", consumer)
        while not stop.is_set():
            generation = handover.generation
            batches = await consumer.getmany(timeout_ms=500)
            if batches:
                began = time.perf_counter()
                positions = {tp: messages[-1].offset + 1 for tp, messages in batches.items()}
                async with handover.applying:
                    if handover.generation != generation:
                        continue  # fetched before a rebalance: the partitions' owner reads it again
                    applied = await apply_batch(pool, group, topics, rules, batches, positions)
                await commit_for_monitoring(consumer, positions)
                await report(pool, applied)
                batch_seconds.observe(time.perf_counter() - began)
                batch_messages.observe(sum(len(m) for m in batches.values()))
            await lag.sample()
    finally:
        for task in (gauges, relay):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await consumer.stop()


async def apply_batch(
    pool: asyncpg.Pool,
    group: str,
    topics: Topics,
    rules: Rules,
    batches: Batches,
    positions: dict[TopicPartition, int],
) -> Applied:
    """The batch and the positions it advances to, in one transaction; again when PostgreSQL
    rolled it back for a deadlock with another writer instance."""
    for attempt in itertools.count(1):
        try:
            return await apply_once(pool, group, topics, rules, batches, positions)
        except asyncpg.TransactionRollbackError as exc:
            if attempt >= ROLLBACK_ATTEMPTS:
                raise
            log.warning("a batch was rolled back (%s): applying it again", type(exc).__name__)
            await asyncio.sleep(0.05 * attempt)
    raise AssertionError("unreachable")


async def apply_once(
    pool: asyncpg.Pool,
    group: str,
    topics: Topics,
    rules: Rules,
    batches: Batches,
    positions: dict[TopicPartition, int],
) -> Applied:
    """The batch and its positions in one transaction. When that fails on data, again in a new
    one with the failing messages or records set aside (poison.py); other errors are raised.
    Events of purged tenants are left out in that transaction (purged.py)."""
    try:
        async with pool.acquire() as conn, conn.transaction():
            batches = await without_purged(conn, rules.control, batches)
            applied = await apply_messages(conn, topics, rules, batches)
            await save_positions(conn, group, positions)
        return applied
    except DATA_ERRORS as exc:
        log.warning(
            "a batch of %d messages failed on data (%s %s): applying it again without the poison",
            sum(len(m) for m in batches.values()),
            type(exc).__name__,
            getattr(exc, "sqlstate", ""),
        )
    async with pool.acquire() as conn, conn.transaction():
        batches = await without_purged(conn, rules.control, batches)

        async def apply(part: Parts) -> Applied:
            return await apply_inbox(conn, Inbox.of_units(topics, part), rules)

        async def apply_seen(seen: RecordEvent) -> Applied:
            inbox = Inbox(records=[seen], runs_seen={(seen.tenant, seen.run_id, seen.source)})
            return await apply_inbox(conn, inbox, rules)

        with collector_paused():
            units = units_of(topics.mapped, batches)
        parts, aside = await isolate(conn, units, apply, apply_seen)
        await save_positions(conn, group, positions)
    applied = sum(parts, Applied())
    applied.set_aside += len(aside)
    return applied


async def report(pool: asyncpg.Pool, applied: Applied) -> None:
    """After a batch committed: the planner's statistics when runs completed, metrics, logs."""
    ended = [(e.tenant, e.run_id, e.source, status) for e, status in applied.completed]
    if ended:  # before the next run's lookups read the tables it filled (statistics.py)
        analyzed = await refresh_statistics(pool)
        if analyzed:
            log.info("statistics refreshed: %s", ", ".join(analyzed))
    count_batch(applied.received, applied.changed, ended)
    if applied.records or applied.rejections or applied.findings or applied.set_aside:
        log.info(
            "wrote %d records (%d changed), %d rejections, %d findings, %d set aside",
            applied.records,
            applied.changed.total(),
            applied.rejections,
            applied.findings,
            applied.set_aside,
        )
    for tenant, run_id, source, status in ended:
        log.info(
            "tenant %s run %s complete: removals %s",
            tenant,
            run_id,
            status,
            extra={"tenant": tenant, "run": run_id, "source": source},
        )
    for tenant, run_id, status in applied.decided:
        log.info("tenant %s run %s: hold %s", tenant, run_id, status)


async def apply_messages(
    conn: asyncpg.Connection, topics: Topics, rules: Rules, batches: Batches
) -> Applied:
    with collector_paused():
        inbox = Inbox.sort(topics, batches)
    return await apply_inbox(conn, inbox, rules)


async def apply_inbox(conn: asyncpg.Connection, inbox: Inbox, rules: Rules) -> Applied:
    """Everything the batch holds, inside the caller's transaction."""
    run_events = decode_run_events(inbox.runs)
    # The runs that may complete now: markers in, or the fetcher's word that publishing ended.
    ending = {(e.tenant, e.run_id) for _, e in inbox.markers} | publishing_ends(run_events)
    await lock_runs(conn, ending)
    await apply_run_events(conn, run_events)
    await note_runs(conn, inbox.runs_seen)
    await store_rejections(conn, inbox.dead)
    await store_own(conn, inbox.poison)
    found = await store_findings(conn, inbox.findings)
    done = await apply_in_run_order(conn, inbox.records, inbox.markers, ending, rules.limits)
    changed, completed, outcomes = done.changed, done.ends, done.outcomes
    decided = await apply_decisions(conn, rules.control, hold_decisions(inbox.commands))
    # A complete run's changes get their sequence numbers (and a decided hold's removals).
    await number_runs(conn, [(e.tenant, e.run_id) for e in completed] + [d[:2] for d in decided])
    return Applied(
        records=len(inbox.records),
        changed=changed,
        rejections=len(inbox.dead),
        findings=found,
        set_aside=len(inbox.poison),
        completed=list(zip(completed, outcomes, strict=True)),
        decided=decided,
        received=inbox.received,
    )


async def commit_for_monitoring(
    consumer: AIOKafkaConsumer, positions: dict[TopicPartition, int]
) -> None:
    """Kafka's copy of the positions only feeds lag monitoring; Postgres holds the truth.

    So it is best effort: a failed or slow commit must never stall the writer.
    """
    try:
        await asyncio.wait_for(consumer.commit(positions), timeout=5)
    except (KafkaError, TimeoutError) as exc:
        log.warning("could not commit positions to Kafka (monitoring only): %s", type(exc).__name__)


def hold_decisions(messages: list[Message]) -> list[HoldDecision]:
    """The hold decisions among the commands (sync commands are the fetcher's)."""
    commands = (decode_or_skip(COMMAND, m, "command") for m in messages)
    return [c for c in commands if isinstance(c, HoldDecision)]
