"""The writer's composition root and its consume loop.

Each batch from Kafka (mapped records and markers, dead letters, findings, run events) is applied
in ONE Postgres transaction together with the consumer positions it advances to: killing the
writer at any moment leaves exactly the rows a clean run leaves (exactly-once effect, see
docs/architecture.md).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TypeAlias
from uuid import UUID

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import ValidationError
from rostersync_libs.commands import COMMAND, HoldDecision
from rostersync_libs.db import create_pool
from rostersync_libs.envelope import Envelope, EventKind
from rostersync_libs.kafka import ensure_topics, make_consumer
from rostersync_libs.topics import Topics

from rostersync_writer.batch import apply_records
from rostersync_writer.decoding import decode_or_skip
from rostersync_writer.findings import store_findings
from rostersync_writer.landing import settle_run
from rostersync_writer.lifecycle import apply_decisions, complete_run
from rostersync_writer.migrate import migrate
from rostersync_writer.positions import SeekToStoredPositions, save_positions
from rostersync_writer.rejections import store_rejections, store_undecodable
from rostersync_writer.run_events import apply_run_events
from rostersync_writer.runs import note_runs, record_markers
from rostersync_writer.settings import WriterSettings

log = logging.getLogger(__name__)

Message: TypeAlias = ConsumerRecord[bytes, bytes]
Batches: TypeAlias = dict[TopicPartition, list[Message]]


@dataclass
class Inbox:
    """One batch, sorted by what it is."""

    records: list[Envelope] = field(default_factory=list)
    markers: list[tuple[int, Envelope]] = field(default_factory=list)
    dead: list[Message] = field(default_factory=list)
    undecodable: list[Message] = field(default_factory=list)  # on mapped: kept, never retried
    findings: list[Message] = field(default_factory=list)
    runs: list[Message] = field(default_factory=list)
    commands: list[Message] = field(default_factory=list)

    @classmethod
    def sort(cls, topics: Topics, batches: Batches) -> Inbox:
        inbox = cls()
        side = {
            topics.findings: inbox.findings,
            topics.runs: inbox.runs,
            topics.commands: inbox.commands,
        }
        for tp, messages in batches.items():
            if tp.topic != topics.mapped:
                side.get(tp.topic, inbox.dead).extend(messages)
                continue
            for message in messages:
                try:
                    event = Envelope.from_bytes(message.value or b"")
                except ValidationError:
                    inbox.undecodable.append(message)
                    continue
                if event.kind is EventKind.RUN_END:
                    inbox.markers.append((tp.partition, event))
                elif event.kind in (EventKind.RECORD, EventKind.UNCHANGED):
                    inbox.records.append(event)
        return inbox


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
    async with pool.acquire() as conn:
        await migrate(conn)
    topics = settings.topics
    # One group per database schema: a replay into a fresh schema is a second, independent writer.
    group = settings.consumer_group(f"writer-{settings.db_schema}")
    consumer = make_consumer(settings, group)
    consumer.subscribe(
        subscribed_topics(topics),
        listener=SeekToStoredPositions(consumer, pool, group),
    )
    await consumer.start()
    log.info("writer: reading %s into schema %s", topics.mapped, settings.db_schema)
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=500)
            if batches:
                await apply_batch(pool, consumer, group, topics, batches)
    finally:
        await consumer.stop()
        await pool.close()


async def apply_batch(
    pool: asyncpg.Pool, consumer: AIOKafkaConsumer, group: str, topics: Topics, batches: Batches
) -> None:
    inbox = Inbox.sort(topics, batches)
    positions = {tp: messages[-1].offset + 1 for tp, messages in batches.items()}
    async with pool.acquire() as conn, conn.transaction():
        await apply_run_events(conn, inbox.runs)
        await note_runs(conn, inbox.records + [e for _, e in inbox.markers])
        changed = await apply_records(conn, inbox.records)
        await store_rejections(conn, inbox.dead)
        await store_undecodable(conn, inbox.undecodable)
        found = await store_findings(conn, inbox.findings)
        completed = await record_markers(conn, inbox.markers)
        for tenant, run_id in completed:
            changed += await settle_run(conn, tenant, run_id)  # its parked records, for good
        outcomes = [await complete_run(conn, marker_of(inbox, run)) for run in completed]
        decided = await apply_decisions(conn, hold_decisions(inbox.commands))
        await save_positions(conn, group, positions)
    await commit_for_monitoring(consumer, positions)
    if inbox.records or inbox.dead or found:
        log.info(
            "wrote %d records (%d changed), %d rejections, %d findings",
            len(inbox.records),
            changed,
            len(inbox.dead),
            found,
        )
    for (tenant, run_id), outcome in zip(completed, outcomes, strict=True):
        log.info("tenant %s run %s complete: removals %s", tenant, run_id, outcome)
    for tenant, run_id, status in decided:
        log.info("tenant %s run %s: hold %s", tenant, run_id, status)


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


def marker_of(inbox: Inbox, run: tuple[str, UUID]) -> Envelope:
    """One of the markers that completed the run (they all carry the run's facts)."""
    return next(e for _, e in inbox.markers if (e.tenant, e.run_id) == run)


def hold_decisions(messages: list[Message]) -> list[HoldDecision]:
    """The hold decisions among the commands (sync commands are the fetcher's)."""
    commands = (decode_or_skip(COMMAND, m, "command") for m in messages)
    return [c for c in commands if isinstance(c, HoldDecision)]
