"""What the operator's commands on one run share: checking that the tenant and the run exist,
and putting a command on the command topic, audited first (rostersync_libs/audit.py)."""

from __future__ import annotations

import asyncio
import getpass
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import asyncpg
from rostersync_libs import audit
from rostersync_libs.commands import put_command
from rostersync_libs.data_keys import DataKeys
from rostersync_libs.db import close_pool, create_pool
from rostersync_libs.kafka import ensure_topics, make_producer
from rostersync_libs.run_reports.status import STATE_COLUMNS, STATE_JOINS
from rostersync_libs.settings import ServiceSettings
from rostersync_libs.store.migrate import migrate_at_start
from rostersync_libs.tenant_registry import registered_with_file
from rostersync_libs.tenants import TenantsConfig

T = TypeVar("T")

# A first command may be sent while the writer is still creating the schema (a fresh deployment,
# ``rostersync serve`` just started): its audit row waits that long for the table.
AUDIT_TABLE_WAIT_SECONDS = 20.0


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


async def known_tenants(settings: ServiceSettings, tenants_file: Path) -> TenantsConfig:
    """The tenants the deployment knows: the tenants file's and the admin API's."""
    return (await on_connection(
        settings, lambda conn: registered_with_file(conn, settings.control, tenants_file)
    )).tenants  # fmt: skip


async def tenant_refusal(settings: ServiceSettings, tenants_file: Path, tenant: str) -> str | None:
    """Why ``tenant`` cannot be acted on (not configured, file unreadable), or None."""
    try:
        (await known_tenants(settings, tenants_file)).get(tenant)
    except KeyError as exc:
        return str(exc.args[0])
    except (OSError, ValueError) as exc:
        return (
            f"cannot read the tenants file {tenants_file}: {getattr(exc, 'strerror', None) or exc}"
        )
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
    started yet, the CLI makes the tables itself (the migrations, under their lock)
    when its login may; otherwise the error says the tables are missing, at once."""
    pool = await create_pool(settings, max_size=1)
    try:
        await migrate_at_start(pool)  # a no-op once migrated (whoever started first did it)
        yield DataKeys(pool, settings, table_wait=0)
    finally:
        await close_pool(pool)


def login_name() -> str:
    """The operator's OS login: a label kept with the audit row, never trusted as identity."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in this environment (e.g. a bare container)
        return "operator"


async def send_command(
    settings: ServiceSettings,
    command: audit.AuditedCommand,
    *,
    label: str | None = None,
    reason: str | None = None,
) -> audit.AuditEntry:
    """Audit the command (the server records the authenticated login), then put it on the
    command topic, acknowledged. Audit first: the services act only on an audited command."""

    async def record(conn: asyncpg.Connection) -> audit.AuditEntry:
        deadline = time.monotonic() + AUDIT_TABLE_WAIT_SECONDS
        while True:
            try:
                return await audit.record(
                    conn, settings.control, command, label=label or login_name(), reason=reason
                )
            except asyncpg.UndefinedTableError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)

    async with data_keys(settings) as keys:  # on a fresh deployment, makes the tables first
        entry = await on_connection(settings, record)
        await ensure_topics(settings)
        producer = make_producer(settings, "rostersync-cli", keys)
        try:
            await producer.start()
            await put_command(producer, settings.topics.commands, command)
        finally:
            await producer.stop()
    return entry
