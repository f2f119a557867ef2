"""Helpers of the end-to-end tests: one sync through the whole pipeline, and row queries."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
from aiokafka import AIOKafkaProducer, TopicPartition
from rostersync_cli.actions import request_sync
from rostersync_cli.replay import compare, replay
from rostersync_cli.settings import CliSettings
from rostersync_libs.commands import CancelRun, HoldDecision, SyncRequested, put_command
from rostersync_libs.data_keys import DataKeys
from rostersync_libs.db import close_pool, create_pool
from rostersync_libs.kafka import make_consumer, make_producer
from rostersync_libs.settings import ServiceSettings
from rostersync_libs.store.migrate import migrate

from tests.pipeline import running_pipeline, wait_for_run


async def send_unaudited(
    settings: ServiceSettings, command: SyncRequested | HoldDecision | CancelRun
) -> None:
    """A command put straight on the command topic with no operator audit row: what a forger
    who stole the tenant's key would send, and how tests ask for a sync (which needs no audit)."""
    async with sealing_producer(settings, "test") as producer:
        await put_command(producer, settings.topics.commands, command)


def cli_settings(settings: ServiceSettings, tenants_file: Path) -> CliSettings:
    return CliSettings(**{**settings.model_dump(), "tenants_file": tenants_file})


async def sync(
    settings: ServiceSettings,
    tenants: Path,
    tenant: str,
    *,
    resend_unchanged: bool = False,
    **overrides: Any,
) -> UUID:
    """Run the whole pipeline over one tenant's source until the writer completes the run."""
    async with running_pipeline(settings, tenants, **overrides):
        command = await request_sync(
            cli_settings(settings, tenants), tenant, None, resend_unchanged=resend_unchanged
        )
        await wait_for_run(settings, tenant, command.run_id)
    return command.run_id


async def ids(db: asyncpg.Connection, table: str, tenant: str = "d1") -> set[str]:
    """The sourcedIds of a tenant's active (not archived) rows of a table."""
    rows = await db.fetch(
        f"SELECT sourced_id FROM {table} WHERE tenant_id = $1 AND archived_at IS NULL", tenant
    )
    return {r["sourced_id"] for r in rows}


async def replay_differences(
    settings: ServiceSettings, db: asyncpg.Connection
) -> dict[str, tuple[int, int]]:
    """Replay the topics into a fresh schema; per table, rows only live / only replayed."""
    replayed = f"{settings.db_schema}_replay"
    try:
        await replay(settings, replayed, timeout=120)
        return await compare(db, settings.db_schema, replayed)
    finally:
        await db.execute(f'DROP SCHEMA IF EXISTS "{replayed}" CASCADE')


@asynccontextmanager
async def data_keys(settings: ServiceSettings) -> AsyncIterator[DataKeys]:
    """The deployment's tenants' data keys, as a service reads them."""
    pool = await create_pool(settings, max_size=1)
    try:
        async with pool.acquire() as conn:
            await migrate(conn)  # the deployment's tables, as the writer makes them at start
        yield DataKeys(pool, settings)
    finally:
        await close_pool(pool)


@asynccontextmanager
async def sealing_producer(
    settings: ServiceSettings, client_id: str
) -> AsyncIterator[AIOKafkaProducer]:
    """A started producer that seals what it sends, as every service's does."""
    async with data_keys(settings) as keys:
        producer = make_producer(settings, client_id, keys)
        try:
            await producer.start()
            yield producer
        finally:
            await producer.stop()


async def every_message(settings: ServiceSettings) -> bytes:
    """Every key, value and header on every topic of the deployment (a search for leaks), opened
    with the tenants' data keys: what a service (or a thief holding the keys) could read."""
    async with data_keys(settings) as keys:
        return await _every_message(settings, keys)


async def _every_message(settings: ServiceSettings, keys: DataKeys) -> bytes:
    consumer = make_consumer(settings, None, keys=keys)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        parts = [
            TopicPartition(topic, p)
            for topic in settings.topics.all()
            for p in consumer.partitions_for_topic(topic) or ()
        ]
        assert {tp.topic for tp in parts} == set(settings.topics.all())
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        chunks: list[bytes] = []
        async with asyncio.timeout(60):
            while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
                for messages in (await consumer.getmany(timeout_ms=500)).values():
                    for m in messages:
                        chunks.extend((m.key or b"", m.value or b""))
                        chunks.extend(v for _, v in m.headers or ())
        return b"\n".join(chunks)
    finally:
        await consumer.stop()
