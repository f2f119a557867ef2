"""The writer refreshes planner statistics that a completed run made stale (statistics.py)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from rostersync_libs.db import close_pool, create_pool
from rostersync_libs.settings import ServiceSettings
from rostersync_libs.store.migrate import migrate
from rostersync_writer.statistics import refresh_statistics

pytestmark = pytest.mark.integration

LAST_ANALYZE = "SELECT last_analyze FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = $2"


async def test_a_table_filled_since_its_last_analyze_is_analyzed_and_a_small_change_is_not(
    settings: ServiceSettings, db: asyncpg.Connection
) -> None:
    pool = await create_pool(settings)
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
        insert = (
            "INSERT INTO user_orgs (tenant_id, user_internal_id, org_internal_id, role)"
            " SELECT 'd1', gen_random_uuid(), gen_random_uuid(), 'student'"
            " FROM generate_series(1, $1)"
        )
        await db.execute(insert, 5000)  # a first load
        # Activity statistics reach pg_stat_user_tables within about a second of the commit.
        analyzed: list[str] = []
        async with asyncio.timeout(30):
            while "user_orgs" not in analyzed:
                analyzed = await refresh_statistics(pool)
                await asyncio.sleep(0.2)
        assert await db.fetchval(LAST_ANALYZE, settings.db_schema, "user_orgs") is not None
        assert "users" not in analyzed  # nothing changed there

        await db.execute(insert, 50)  # a small delta: autovacuum's business
        await db.execute("UPDATE user_orgs SET role = 'teacher'")  # every row, none added
        await asyncio.sleep(1.5)
        assert "user_orgs" not in await refresh_statistics(pool)
    finally:
        await close_pool(pool)
