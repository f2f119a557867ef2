"""What the operator's commands on one run share: checking that the tenant and the run exist,
and putting a command on the command topic."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import asyncpg
from rostersync_libs.commands import CancelRun, HoldDecision, SyncRequested
from rostersync_libs.data_keys import TABLE as KEYS_TABLE
from rostersync_libs.data_keys import DataKeys
from rostersync_libs.db import close_pool, create_pool
from rostersync_libs.kafka import ensure_topics, make_producer
from rostersync_libs.settings import ServiceSettings
from rostersync_libs.tenants import load_tenants
from rostersync_writer.migrate import migrate

from rostersync_cli.status import STATE_COLUMNS, STATE_JOINS

T = TypeVar("T")


async def on_connection(
    settings: ServiceSettings, work: Callable[[asyncpg.Connection], Awaitable[T]]
) -> T:
    """``work`` on one connection to the deployment's schema, closed afterwards."""
    pool = await create_pool(settings, max_size=1)
    try:
        async with pool.acquire() as conn:
            return await work(conn)
    finally:
        await pool.close()


RUN_SQL = f"""
SELECT {STATE_COLUMNS}
FROM sync_runs r
{STATE_JOINS}
WHERE r.tenant_id = $1 AND r.run_id = $2
"""


def tenant_refusal(tenants_file: Path, tenant: str) -> str | None:
    """Why ``tenant`` cannot be acted on (not configured, file unreadable), or None."""
    try:
        load_tenants(tenants_file).get(tenant)
    except KeyError as exc:
        return str(exc.args[0])
    except OSError as exc:
        return f"cannot read the tenants file {tenants_file}: {exc.strerror or exc}"
    return None


async def fetch_run(
    settings: ServiceSettings, tenant: str, run_id: UUID, extra_sql: str | None = None
) -> tuple[Any, Any]:
    """The run's row (``STATE_COLUMNS``, None if unknown) and, when asked, one more row."""
    pool = await create_pool(settings, max_size=1)
    try:
        async with pool.acquire() as conn:
            run = await conn.fetchrow(RUN_SQL, tenant, run_id)
            extra = await conn.fetchrow(extra_sql, tenant, run_id) if extra_sql else None
    finally:
        await pool.close()
    return run, extra


@asynccontextmanager
async def data_keys(settings: ServiceSettings) -> AsyncIterator[DataKeys]:
    """The tenants' data keys, to seal what the CLI sends. On a deployment whose writer has not
    started yet, the CLI makes the tables itself (the writer's migrations, under their lock)
    when its login may; otherwise the error says the tables are missing, at once."""
    pool = await create_pool(settings, max_size=1)
    try:
        async with pool.acquire() as conn:
            table = f'"{settings.control}".{KEYS_TABLE}'
            if await conn.fetchval("SELECT to_regclass($1)", table) is None:
                await migrate(conn)
        yield DataKeys(pool, settings, table_wait=0)
    finally:
        await close_pool(pool)


async def send_command(
    settings: ServiceSettings, command: SyncRequested | HoldDecision | CancelRun
) -> None:
    """Put one command on the command topic, acknowledged."""
    await ensure_topics(settings)
    async with data_keys(settings) as keys:
        producer = make_producer(settings, "rostersync-cli", keys)
        try:
            await producer.start()
            await producer.send_and_wait(
                settings.topics.commands, command.model_dump_json().encode(), key=command.key()
            )
        finally:
            await producer.stop()
