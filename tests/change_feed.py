"""Helpers of the change feed's tests: the events on the changes topic, and waiting for the
relay."""

from __future__ import annotations

import asyncio

import asyncpg
from aiokafka import TopicPartition
from rostersync_libs.change_events import ChangeBatch, MembershipChanged, RecordChanged
from rostersync_libs.kafka import make_consumer
from rostersync_libs.settings import ServiceSettings

from tests.e2e import data_keys


async def until_relayed(db: asyncpg.Connection, tenant: str = "d1", timeout: float = 60) -> int:
    """Until the relay has published every numbered change of the tenant; returns the last."""
    async with asyncio.timeout(timeout):
        while True:
            last = await db.fetchval(
                "SELECT last_seq FROM change_sequences WHERE tenant_id = $1", tenant
            )
            done = await db.fetchval(
                "SELECT relayed_seq FROM change_relay WHERE tenant_id = $1", tenant
            )
            if last is not None and done == last:
                return int(last)
            await asyncio.sleep(0.1)


async def changes_on_topic(
    settings: ServiceSettings,
) -> list[tuple[int, RecordChanged | MembershipChanged]]:
    """Every (partition, event) on the changes topic, in each partition's order, opened with the
    tenants' data keys; checks every message's key and tenant on the way."""
    async with data_keys(settings) as keys:
        consumer = make_consumer(settings, None, keys=keys)
        await consumer.start()
        try:
            topic = settings.topics.changes
            await consumer._client.force_metadata_update()
            parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
            consumer.assign(parts)
            await consumer.seek_to_beginning(*parts)
            ends = await consumer.end_offsets(parts)
            found = []
            async with asyncio.timeout(60):
                while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
                    for tp, messages in (await consumer.getmany(timeout_ms=500)).items():
                        for m in messages:
                            batch = ChangeBatch.model_validate_json(m.value or b"")
                            assert m.key == f"{batch.tenant}:changes:{tp.partition}".encode()
                            assert all(e.tenant == batch.tenant for e in batch.changes)
                            found += [(tp.partition, e) for e in batch.changes]
            return found
        finally:
            await consumer.stop()
