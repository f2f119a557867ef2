"""Erasure of one tenant: its data key destroyed, its rows deleted, its keyed state withdrawn.

What each step guarantees (docs/security.md, "Erasure"):

1. The tenant's data key is set to NULL (the row stays, marked purged): every event of the
   tenant on every topic — record topics, dead letters, findings, runs, commands, identities —
   can no longer be opened, by a running service (within its key cache's 30 s) or any replay.
   The key row is updated first, so the purge waits for a writer batch writing the tenant to
   commit, and a later batch leaves the tenant out (``rostersync_writer.purged``).
2. In the same transaction, every row of the tenant in every table of the schema is deleted.
3. Tombstones on the compacted topics (identities, fetch state), so compaction removes even the
   sealed values and their keys.

A purged tenant id is retired: its events stay on the topics, unreadable, so it cannot be used
again (a district that comes back is added under a new id).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from rostersync_libs.data_keys import TABLE, DataKeys
from rostersync_libs.db import close_pool, create_pool
from rostersync_libs.kafka import client_options, make_producer
from rostersync_libs.settings import ServiceSettings

# Tables that are not the tenant's data: kept (the key row says the tenant was purged).
KEPT = frozenset({TABLE, "operator_audit", "api_audit"})


@dataclass
class Purged:
    tenant: str
    rows: dict[str, int] = field(default_factory=dict)  # table → rows deleted
    tombstones: dict[str, int] = field(default_factory=dict)  # compacted topic → keys withdrawn


class PurgeRefused(KeyError):  # noqa: N818 - the CLI reports a KeyError's message and exits 2
    pass


async def purge(settings: ServiceSettings, tenant: str) -> Purged:
    pool = await create_pool(settings, max_size=1)
    try:
        async with pool.acquire() as conn:
            result = await _purge_rows(conn, settings, tenant)
            # The destroyed key's old row version: reclaimable now rather than at autovacuum.
            await conn.execute(f'VACUUM "{settings.control}".{TABLE}')
        for topic in settings.topics.compacted_topics():
            result.tombstones[topic] = await _withdraw_keys(settings, pool, topic, tenant)
        return result
    finally:
        await close_pool(pool)


async def _tenant_tables(conn: asyncpg.Connection, schema: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT c.table_name FROM information_schema.columns c"
        " JOIN information_schema.tables t USING (table_schema, table_name)"
        " WHERE c.table_schema = $1 AND c.column_name = 'tenant_id'"
        " AND t.table_type = 'BASE TABLE' ORDER BY 1",
        schema,
    )
    return [r["table_name"] for r in rows if r["table_name"] not in KEPT]


async def _purge_rows(conn: asyncpg.Connection, settings: ServiceSettings, tenant: str) -> Purged:
    keys = f'"{settings.control}".{TABLE}'
    schema = settings.db_schema
    async with conn.transaction():
        row = await conn.fetchrow(
            f"SELECT purged_at FROM {keys} WHERE tenant_id = $1 FOR UPDATE", tenant
        )
        if row is not None and row["purged_at"] is not None:
            raise PurgeRefused(f"tenant {tenant} was already purged ({row['purged_at']:%Y-%m-%d})")
        tables = await _tenant_tables(conn, schema)
        if row is None and not await _has_rows(conn, schema, tables, tenant):
            raise PurgeRefused(f"no tenant {tenant}: no data key and no rows (nothing to purge)")
        await conn.execute(
            f"INSERT INTO {keys} AS k (tenant_id, key_material, wrapped, purged_at, purged_by)"
            " VALUES ($1, NULL, false, now(), session_user) ON CONFLICT (tenant_id) DO UPDATE"
            " SET key_material = NULL, purged_at = now(), purged_by = session_user",
            tenant,
        )
        result = Purged(tenant)
        for table in tables:
            status = await conn.execute(
                f'DELETE FROM "{schema}"."{table}" WHERE tenant_id = $1', tenant
            )
            result.rows[table] = int(status.split()[-1])
    return result


async def _has_rows(conn: asyncpg.Connection, schema: str, tables: list[str], tenant: str) -> bool:
    for table in tables:
        if await conn.fetchval(
            f'SELECT EXISTS (SELECT 1 FROM "{schema}"."{table}" WHERE tenant_id = $1)', tenant
        ):
            return True
    return False


async def _withdraw_keys(
    settings: ServiceSettings, pool: asyncpg.Pool, topic: str, tenant: str
) -> int:
    """A tombstone for every key of the tenant still on a compacted topic."""
    prefix = f"{tenant}:".encode()
    reader = AIOKafkaConsumer(**client_options(settings), enable_auto_commit=False)
    await reader.start()
    try:
        parts = [TopicPartition(topic, p) for p in reader.partitions_for_topic(topic) or ()]
        if not parts:
            await reader._client.force_metadata_update()
            parts = [TopicPartition(topic, p) for p in reader.partitions_for_topic(topic) or ()]
        reader.assign(parts)
        await reader.seek_to_beginning(*parts)
        ends = await reader.end_offsets(parts)
        live: dict[bytes, int] = {}  # key → partition, while its latest value is not a tombstone
        while [tp for tp in parts if await reader.position(tp) < ends[tp]]:
            for tp, messages in (await reader.getmany(timeout_ms=500)).items():
                for m in messages:
                    if m.key is not None and m.key.startswith(prefix):
                        if m.value is None:
                            live.pop(m.key, None)
                        else:
                            live[m.key] = tp.partition
    finally:
        await reader.stop()
    if not live:
        return 0
    producer = make_producer(settings, "rostersync-cli-purge", DataKeys(pool, settings))
    await producer.start()
    try:
        for key, partition in live.items():  # tombstones carry no value: nothing to seal
            await producer.send(topic, None, key=key, partition=partition)
        await producer.flush()
    finally:
        await producer.stop()
    return len(live)
