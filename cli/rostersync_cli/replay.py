"""Rebuilding a database from the retained topics, and proving it equals the live one.

A replay is the writer itself, pointed at a fresh schema: its positions live in that schema, so
it starts from the beginning of every topic, and its consumer group follows the schema, so it
never takes partitions from the live writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from rostersync_libs.kafka import client_options, ensure_topics
from rostersync_libs.settings import ServiceSettings
from rostersync_writer import app as writer_app
from rostersync_writer.settings import WriterSettings

# Columns that say when something happened on this machine, not what the roster is.
VOLATILE = frozenset({"updated_at", "received_at", "first_event_at", "completed_at", "created_at",
                      "fetch_started_at", "fetched_at", "id", "applied_at"})  # fmt: skip
# Positions are the schema's own; control tables (data keys, audits, API configuration) are read
# from the live schema, never rebuilt: a replay's own stay empty.
NOT_COMPARED = frozenset({"schema_migrations", "consumer_positions", "tenant_data_keys",
                          "operator_audit", "api_tokens", "tenant_configs", "api_audit",
                          "source_secrets", "notifications", "change_relay",
                          "change_subscriptions", "change_log", "change_sequences",
                          "run_stage_progress"})  # fmt: skip
# The change feed (change_log) is left out above: a replay that reads a later run's records
# before an earlier run's last marker applies fewer removals (as RECOMPUTED below says), and so
# fewer changes; docs/change-feed.md ("Replay") says when it is equal, and
# tests/integration/test_change_feed.py compares it.
# A replay recomputes a run's removal numbers where the run completes in the replay; partitions
# read at other speeds than live can make them smaller (records of a later run already in), so
# the numbers and the held/applied status may differ while the roster itself is identical.
RECOMPUTED = frozenset({("run_outcomes", "numbers"), ("run_outcomes", "status"),
                        ("run_outcomes", "decided_at")})  # fmt: skip


async def end_offsets(settings: ServiceSettings) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(**client_options(settings))
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in writer_app.subscribed_topics(settings.topics)
            for p in consumer.partitions_for_topic(topic) or await _partitions(consumer, topic)
        ]
        ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
        return ends
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()
    return consumer.partitions_for_topic(topic) or set()


async def replay(settings: ServiceSettings, schema: str, timeout: float = 3600) -> float:
    """Write everything on the topics into ``schema``; returns the seconds it took."""
    # The live schema's control tables: its data keys open the topics, its audit holds decisions.
    # Its change feed is not relayed: the same changes are on the topic already.
    live = {"db_schema": schema, "control_schema": settings.control, "change_relay": False}
    target = WriterSettings(**{**settings.model_dump(), **live})
    await ensure_topics(settings)
    ends = {tp: end for tp, end in (await end_offsets(settings)).items() if end > 0}
    started = time.perf_counter()
    stop = asyncio.Event()
    writer = asyncio.create_task(writer_app.run(target, stop))
    conn = await asyncpg.connect(settings.database_url.get_secret_value())
    try:
        async with asyncio.timeout(timeout):
            while not await _caught_up(conn, schema, ends):
                if writer.done():
                    break
                await asyncio.sleep(0.2)
    finally:
        await conn.close()
        stop.set()
        await writer
    return time.perf_counter() - started


async def _caught_up(
    conn: asyncpg.Connection, schema: str, ends: dict[TopicPartition, int]
) -> bool:
    with contextlib.suppress(asyncpg.UndefinedTableError):
        rows = await conn.fetch(
            f'SELECT topic, partition, next_offset FROM "{schema}".consumer_positions'
        )
        done = {TopicPartition(r["topic"], r["partition"]): r["next_offset"] for r in rows}
        return all(done.get(tp, 0) >= end for tp, end in ends.items())
    return False


async def compare(
    conn: asyncpg.Connection,
    live: str,
    replayed: str,
    tables: list[str] | None = None,
    ignore: frozenset[str] = frozenset(),
) -> dict[str, tuple[int, int]]:
    """Per table: rows only in the live schema, rows only in the replayed one (both 0: equal)."""
    tables = tables or [
        r["table_name"]
        for r in await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1",
            live,
        )
        if r["table_name"] not in NOT_COMPARED
    ]
    result: dict[str, tuple[int, int]] = {}
    for table in tables:
        columns = await _columns(conn, live, table, ignore)
        one = f'SELECT {columns} FROM "{live}".{table} EXCEPT ALL SELECT {columns} FROM "{replayed}".{table}'
        two = f'SELECT {columns} FROM "{replayed}".{table} EXCEPT ALL SELECT {columns} FROM "{live}".{table}'
        result[table] = (
            await conn.fetchval(f"SELECT count(*) FROM ({one}) d"),
            await conn.fetchval(f"SELECT count(*) FROM ({two}) d"),
        )
    return result


async def _columns(
    conn: asyncpg.Connection, schema: str, table: str, ignore: frozenset[str]
) -> str:
    rows: list[Any] = await conn.fetch(
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
        schema, table,
    )  # fmt: skip
    names = []
    for r in rows:
        name = r["column_name"]
        if name in VOLATILE or name in ignore or (table, name) in RECOMPUTED:
            continue
        if name == "archived_at":
            names.append("(archived_at IS NULL) AS active")
        elif r["data_type"] == "jsonb":
            names.append(f"{name}::text")
        else:
            names.append(name)
    return ", ".join(names)
