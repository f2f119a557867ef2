"""PostgreSQL pool helper: every connection works inside the deployment's schema."""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from rostersync_libs.settings import ServiceSettings

log = logging.getLogger(__name__)


async def ensure_schema(settings: ServiceSettings) -> None:
    """Create the deployment's schema if missing (the name is validated by the settings).

    Only when missing: a least-privilege role (db_roles.py) has no ``CREATE`` and needs none once
    the writer's role has made the schema; until then it goes on without (its lookups find no
    tables yet, as on a first run).
    """
    conn = await asyncpg.connect(settings.database_url.get_secret_value())
    try:
        if await conn.fetchval("SELECT to_regnamespace($1)", settings.db_schema) is not None:
            return
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{settings.db_schema}"')
    except asyncpg.UniqueViolationError:
        pass  # another service created it at the same moment: IF NOT EXISTS does not serialise
    except asyncpg.InsufficientPrivilegeError:
        log.info("schema %s does not exist yet; the writer's role creates it", settings.db_schema)
    finally:
        await conn.close()


async def create_pool(settings: ServiceSettings, *, max_size: int = 4) -> asyncpg.Pool:
    """A pool whose connections resolve unqualified table names in the deployment's schema."""
    await ensure_schema(settings)
    pool: asyncpg.Pool = await asyncpg.create_pool(
        settings.database_url.get_secret_value(),
        min_size=1,
        max_size=max_size,
        server_settings={"search_path": settings.db_schema, "application_name": "rostersync"},
    )
    return pool


async def close_pool(pool: asyncpg.Pool, timeout: float = 5.0) -> None:
    """Close gracefully if the server answers within ``timeout``; otherwise drop the sockets
    (after an outage a graceful close may wait on a server that is gone)."""
    try:
        await asyncio.wait_for(pool.close(), timeout)
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        log.debug("pool closed by force (%s)", type(exc).__name__)
        pool.terminate()
