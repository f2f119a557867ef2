"""The store's migrations on a real PostgreSQL: any process migrates an empty schema (no writer
needed), concurrent starts apply each migration once, and an applied migration that changed is
refused."""

from __future__ import annotations

import asyncio
from pathlib import Path
from uuid import uuid4

import asyncpg
import pytest
from rostersync_libs.db import create_pool
from rostersync_libs.kafka import ensure_topics
from rostersync_libs.settings import ServiceSettings
from rostersync_libs.store.migrate import MigrationChangedError, migrate, migration_files

from tests.integration.test_mapper_identity import TENANTS, Reader, running_mapper, send, user

pytestmark = pytest.mark.integration


async def _applied(db: asyncpg.Connection) -> dict[int, str]:
    rows = await db.fetch("SELECT version, checksum FROM schema_migrations")
    return {r["version"]: r["checksum"] for r in rows}


async def test_a_mapper_alone_migrates_an_empty_schema_and_maps(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    assert await db.fetchval("SELECT to_regnamespace($1)", settings.db_schema) is None
    await ensure_topics(settings)
    tenants = tmp_path / "tenants.toml"
    tenants.write_text(TENANTS)
    async with (
        Reader(settings, settings.topics.mapped) as mapped,
        running_mapper(settings, tenants),  # no writer, no migration beforehand
    ):
        await send(settings, [user("u1", uuid4(), role="student", username="ann")])
        (record,) = await mapped.until(1)
    assert record["sourced_id"] == "u1"
    assert await _applied(db) == {m.version: m.checksum for m in migration_files()}


async def test_concurrent_starts_apply_each_migration_once(
    settings: ServiceSettings, db: asyncpg.Connection
) -> None:
    pools = [await create_pool(settings, max_size=1) for _ in range(3)]
    try:

        async def start(pool: asyncpg.Pool) -> list[str]:
            async with pool.acquire() as conn:
                return await migrate(conn)

        applied = await asyncio.gather(*(start(p) for p in pools))
    finally:
        for pool in pools:
            await pool.close()
    names = [m.name for m in migration_files()]
    assert sorted(applied, key=len) == [[], [], names]
    assert await migrate(db) == []


async def test_checksums_are_filled_in_and_a_changed_migration_is_refused(
    settings: ServiceSettings, db: asyncpg.Connection
) -> None:
    await db.execute(f'CREATE SCHEMA "{settings.db_schema}"')
    await migrate(db)
    # A schema migrated before checksums were kept: the column is added and filled in.
    await db.execute("ALTER TABLE schema_migrations DROP COLUMN checksum")
    assert await migrate(db) == []
    assert await _applied(db) == {m.version: m.checksum for m in migration_files()}
    await db.execute("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 3")
    with pytest.raises(MigrationChangedError, match=r"0003_identity\.sql"):
        await migrate(db)
