"""The writer's composition root and its consume loop.

Each batch from Kafka is applied in ONE Postgres transaction together with the consumer
positions it advances to: killing the writer at any moment leaves exactly the rows a clean run
leaves (exactly-once effect, see docs/architecture.md).
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from rostersync_libs.db import create_pool
from rostersync_libs.envelope import Envelope, EventKind
from rostersync_libs.kafka import ensure_topics, make_consumer

from rostersync_writer.batch import apply_records
from rostersync_writer.migrate import migrate
from rostersync_writer.positions import SeekToStoredPositions, save_positions
from rostersync_writer.rejections import store_rejections
from rostersync_writer.runs import note_runs, record_markers
from rostersync_writer.settings import WriterSettings

log = logging.getLogger(__name__)

Batches = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]


async def run(settings: WriterSettings, stop: asyncio.Event) -> None:
    await ensure_topics(settings)
    pool = await create_pool(settings)
    async with pool.acquire() as conn:
        await migrate(conn)
    topics = settings.topics
    group = settings.consumer_group("writer")
    consumer = make_consumer(settings, group)
    consumer.subscribe(
        [topics.mapped, topics.validator_dlq, topics.mapper_dlq],
        listener=SeekToStoredPositions(consumer, pool, group),
    )
    await consumer.start()
    log.info("writer: reading %s into schema %s", topics.mapped, settings.db_schema)
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=500)
            if batches:
                await apply_batch(pool, consumer, group, topics.mapped, batches)
    finally:
        await consumer.stop()
        await pool.close()


async def apply_batch(
    pool: asyncpg.Pool, consumer: AIOKafkaConsumer, group: str, mapped_topic: str, batches: Batches
) -> None:
    records: list[Envelope] = []
    markers: list[tuple[int, Envelope]] = []
    dead: list[ConsumerRecord[bytes, bytes]] = []
    for tp, messages in batches.items():
        for message in messages:
            if tp.topic != mapped_topic:
                dead.append(message)
                continue
            assert message.value is not None
            event = Envelope.from_bytes(message.value)
            if event.kind is EventKind.RUN_END:
                markers.append((tp.partition, event))
            else:
                records.append(event)
    positions = {tp: messages[-1].offset + 1 for tp, messages in batches.items()}
    async with pool.acquire() as conn, conn.transaction():
        await note_runs(conn, records + [e for _, e in markers])
        changed = await apply_records(conn, records)
        await store_rejections(conn, dead)
        completed = await record_markers(conn, markers)
        await save_positions(conn, group, positions)
    # Kafka's copy of the positions only feeds lag monitoring; Postgres holds the truth.
    await consumer.commit(positions)
    if records or dead:
        log.info("wrote %d records (%d changed), %d rejections", len(records), changed, len(dead))
    for tenant, run_id in completed:
        log.info("tenant %s run %s complete", tenant, run_id)
