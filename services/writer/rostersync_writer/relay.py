"""The change feed's relay: numbered ``change_log`` rows to ``rostersync.changes.v2``.

Exactly-once effect with the outbox: a change exists only if its batch committed (no event for
a rolled-back write); the relay publishes a tenant's changes in sequence order, waits for Kafka's
acknowledgements, and only then stores how far it got (``change_relay``). A crash in between
sends those changes again on restart: duplicates, recognisable by their sequence number, never a
gap. Each tenant's cursor row is taken ``FOR UPDATE SKIP LOCKED``, so several writer instances
share the tenants and never publish one tenant's changes concurrently (out of order).

Events go out in batches (``ChangeBatch``), a message per partition and round: a record's changes
go to the partition its key ``tenant:internal_id`` picks (the default partitioner's choice), so they
stay in one partition, in order. One message per change cost the writer's process about 40 µs of
Python each (partitioning, sealing, the producer's bookkeeping): more than the rest of a re-sync.
Messages are keyed ``tenant:changes:<partition>`` and sealed with the tenant's data key by the
sealing producer, like every event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from rostersync_libs.change_events import COLUMNS, batch_json, event_json
from rostersync_libs.data_keys import DataKeys
from rostersync_libs.kafka import make_producer, partitions_of
from rostersync_libs.partitioning import key_partition
from rostersync_libs.stage import MAX_MESSAGE_BYTES

from rostersync_writer.settings import WriterSettings

log = logging.getLogger(__name__)

BATCH = 5000  # changes read per tenant and round
FRAME_EVENTS = 1000  # changes per message at most
FRAME_BYTES = MAX_MESSAGE_BYTES * 9 // 10  # the broker's limit, with room for the sealing

BEHIND_SQL = """
SELECT s.tenant_id FROM change_sequences s LEFT JOIN change_relay r USING (tenant_id)
WHERE s.last_seq > coalesce(r.relayed_seq, 0) ORDER BY s.tenant_id
"""
CURSOR_SQL = "SELECT relayed_seq FROM change_relay WHERE tenant_id = $1 FOR UPDATE SKIP LOCKED"
# A tenant's numbers have no gaps, so the next changes are a range of the primary key: bounded,
# it reads just them whatever the planner believes ("seq > $2 ... LIMIT" on a change_log never
# analyzed was planned as a bitmap scan sorting every change after the cursor: 0.3 s a round).
NEXT_SQL = (
    f"SELECT {COLUMNS} FROM change_log"
    " WHERE tenant_id = $1 AND seq > $2 AND seq <= $2::bigint + $3::int ORDER BY seq"
)


async def relay_once(conn: asyncpg.Connection, producer: AIOKafkaProducer, topic: str) -> int:
    """Publish what is not relayed yet, a batch per tenant; returns how many were sent."""
    sent = 0
    for row in await conn.fetch(BEHIND_SQL):
        tenant = row["tenant_id"]
        await conn.execute(
            "INSERT INTO change_relay (tenant_id) VALUES ($1) ON CONFLICT DO NOTHING", tenant
        )
        async with conn.transaction():
            cursor = await conn.fetchval(CURSOR_SQL, tenant)
            if cursor is None:
                continue  # another writer instance is relaying this tenant
            changes = await conn.fetch(NEXT_SQL, tenant, cursor, BATCH)
            partitions = await partitions_of(producer, topic)
            acks = [
                await producer.send(
                    topic,
                    message,
                    key=f"{tenant}:changes:{partition}".encode(),
                    partition=partition,
                )
                for partition, message in framed(tenant, changes, partitions)
            ]
            await asyncio.gather(*acks)
            if changes:
                await conn.execute(
                    "UPDATE change_relay SET relayed_seq = $2 WHERE tenant_id = $1",
                    tenant,
                    changes[-1]["seq"],
                )
            sent += len(changes)
    return sent


def framed(
    tenant: str, changes: list[asyncpg.Record], partitions: list[int]
) -> list[tuple[int, bytes]]:
    """The changes (in sequence order) as messages per partition, each in sequence order and
    bounded by ``FRAME_EVENTS`` and ``FRAME_BYTES``."""
    open_frames: dict[int, tuple[list[bytes], int]] = {}
    messages: list[tuple[int, bytes]] = []
    for change in changes:
        key = f"{tenant}:{change['internal_id']}".encode()
        partition = key_partition(key, partitions, partitions)
        event = event_json(change)
        events, size = open_frames.get(partition, ([], 0))
        if events and (len(events) >= FRAME_EVENTS or size + len(event) + 1 > FRAME_BYTES):
            messages.append((partition, batch_json(tenant, events)))
            events, size = [], 0
        events.append(event)
        open_frames[partition] = (events, size + len(event) + 1)
    messages += [(p, batch_json(tenant, events)) for p, (events, _) in open_frames.items()]
    return messages


async def keep_relaying(
    pool: asyncpg.Pool, producer: AIOKafkaProducer, topic: str, stop: asyncio.Event
) -> None:
    """Until ``stop``: relay, then wait a little when there was nothing (0.1 s: the feed's
    latency floor). An outage is waited out here, the writer's loop has its own."""
    pause = 0.1
    while not stop.is_set():
        sent = 0
        try:
            async with pool.acquire() as conn:
                sent = await relay_once(conn, producer, topic)
            pause = 0.1
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, KafkaError) as exc:
            log.warning("change relay: %s; trying again", type(exc).__name__)
            pause = min(pause * 2, 30)
        if not sent:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pause)


async def run_relay(
    settings: WriterSettings, pool: asyncpg.Pool, keys: DataKeys, stop: asyncio.Event
) -> None:
    producer = make_producer(settings, "rostersync-writer-relay", keys)
    await producer.start()
    try:
        await keep_relaying(pool, producer, settings.topics.changes, stop)
    finally:
        await producer.stop()
