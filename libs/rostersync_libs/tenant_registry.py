"""Tenants from both ways in: the tenants file, and the admin API's ``tenant_configs`` table.

The admin API (services/api) stores each tenant it creates as the same model a tenants file's
``[[tenants]]`` entry is (``tenants.Tenant``), validated before it is stored; services read both
and merge them here. A tenant in both is the API's (the file is a way in: ``rostersync tenants
import`` moves its tenants to the API). A paused tenant is still known (manual syncs, reports) but
its schedules and inboxes are not run (``Registered.paused``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import orjson
from pydantic import ValidationError

from rostersync_libs.tenants import CsvSource, InboxSource, Tenant, TenantsConfig, load_tenants

log = logging.getLogger(__name__)

TABLE = "tenant_configs"


@dataclass(frozen=True)
class Registered:
    tenants: TenantsConfig
    paused: frozenset[str]
    from_api: frozenset[str]  # the ids the admin API holds (the others are the file's)


async def registered(conn: asyncpg.Connection, control: str) -> list[tuple[Tenant, bool]]:
    """The API's tenants and whether each is paused (none while the table does not exist)."""
    if await conn.fetchval("SELECT to_regclass($1)", f'"{control}".{TABLE}') is None:
        return []
    found = []
    for row in await conn.fetch(
        f'SELECT tenant_id, config, paused FROM "{control}".{TABLE} ORDER BY tenant_id'
    ):
        try:
            found.append((Tenant.model_validate(orjson.loads(row["config"])), row["paused"]))
        except ValidationError as exc:  # stored by an older version: say which, keep the others
            log.error("tenant %s: stored configuration is not valid (%d errors)",
                      row["tenant_id"], exc.error_count())  # fmt: skip
    return found


def merged(file_config: TenantsConfig | None, api: list[tuple[Tenant, bool]]) -> Registered:
    """The file's tenants and the API's; the API's win. File limits apply to the API's file
    sources too (the API stores absolute paths)."""
    base = file_config or TenantsConfig(tenants=[])
    from_api = {tenant.id: tenant for tenant, _ in api}
    limited = [
        tenant.model_copy(
            update={
                "sources": [
                    s.model_copy(update={"limits": base.limits.merged(s.limits)})
                    if isinstance(s, CsvSource | InboxSource) else s
                    for s in tenant.sources
                ]
            }
        )
        for tenant in from_api.values()
    ]  # fmt: skip
    tenants = [t for t in base.tenants if t.id not in from_api] + limited
    return Registered(
        TenantsConfig(limits=base.limits, tenants=tenants),
        frozenset(tenant.id for tenant, paused in api if paused),
        frozenset(from_api),
    )


def file_tenants(tenants_file: Path) -> TenantsConfig | None:
    """The tenants file's tenants; None when there is no file (a small read: not worth a thread)."""
    return load_tenants(tenants_file) if tenants_file.exists() else None


async def all_tenants(pool: asyncpg.Pool, control: str, tenants_file: Path) -> Registered:
    """Every tenant the deployment knows. A tenants file that does not exist is no error (the
    API's tenants alone); one that cannot be read or is invalid raises (OSError, ValueError)."""
    async with pool.acquire() as conn:
        return await registered_with_file(conn, control, tenants_file)


async def registered_with_file(
    conn: asyncpg.Connection, control: str, tenants_file: Path
) -> Registered:
    """``all_tenants`` on one connection."""
    return merged(file_tenants(tenants_file), await registered(conn, control))
