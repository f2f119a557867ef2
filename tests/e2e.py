"""Helpers of the end-to-end tests: one sync through the whole pipeline, and row queries."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from rostersync_cli.actions import request_sync
from rostersync_cli.replay import compare, replay
from rostersync_cli.settings import CliSettings
from rostersync_libs.commands import CancelRun, HoldDecision
from rostersync_libs.kafka import client_options, make_producer
from rostersync_libs.settings import ServiceSettings

from tests.pipeline import running_pipeline, wait_for_run


async def send_unaudited(settings: ServiceSettings, command: HoldDecision | CancelRun) -> None:
    """A command put straight on the command topic, as a forger would: no operator audit row."""
    producer = make_producer(settings, "forger")
    await producer.start()
    try:
        await producer.send_and_wait(
            settings.topics.commands, command.model_dump_json().encode(), key=command.key()
        )
    finally:
        await producer.stop()


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


async def every_message(settings: ServiceSettings) -> bytes:
    """Every key, value and header on every topic of the deployment (a search for leaks)."""
    consumer = AIOKafkaConsumer(**client_options(settings))
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
