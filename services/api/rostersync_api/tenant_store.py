"""Tenants (districts) and their sources as the API stores them (``tenant_configs``).

The stored form is the tenants file's model (``rostersync_libs.tenants.Tenant``), validated the
same way. Tenants of the tenants file are shown too (``managed_by: file``) but only changed there:
``rostersync tenants import`` moves one to the API.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import asyncpg
import orjson
from rostersync_libs import source_secrets
from rostersync_libs.tenant_registry import TABLE, file_tenants
from rostersync_libs.tenants import ApiSource, Tenant

from rostersync_api.errors import ApiError, not_found

ManagedBy = Literal["api", "file"]


def view(tenant: Tenant, managed_by: ManagedBy, paused: bool) -> dict[str, Any]:
    return {
        "id": tenant.id,
        "managed_by": managed_by,
        "paused": paused,
        "config": tenant.model_dump(mode="json"),
    }


def checked(tenant: Tenant) -> Tenant:
    """What the file allows but a shared service cannot: a path relative to nothing."""
    for source in tenant.sources:
        if not isinstance(source, ApiSource) and not Path(source.path).is_absolute():
            raise ApiError(
                422, "invalid_request", f"sources.{source.id}.path: must be an absolute path"
            )
    return tenant


async def secrets_of(
    conn: asyncpg.Connection, control: str, found: dict[str, Any]
) -> dict[str, str]:
    """Where each REST source's secret comes from: ``env:NAME``, ``stored`` or ``missing``
    (never the secret)."""
    shown: dict[str, str] = {}
    for source in found["config"]["sources"]:
        auth = source.get("auth")
        if source.get("kind") != "oneroster-api" or not isinstance(auth, dict):
            continue
        if auth.get("secret_env"):
            shown[source["id"]] = f"env:{auth['secret_env']}"
        elif await source_secrets.is_stored(conn, control, found["id"], source["id"]):
            shown[source["id"]] = "stored"
        else:
            shown[source["id"]] = "missing"
    return shown


async def stored(
    conn: asyncpg.Connection, control: str, tenant_id: str
) -> tuple[Tenant, bool] | None:
    row = await conn.fetchrow(
        f'SELECT config, paused FROM "{control}".{TABLE} WHERE tenant_id = $1', tenant_id
    )
    if row is None:
        return None
    return Tenant.model_validate(orjson.loads(row["config"])), row["paused"]


def in_file(tenants_file: Path, tenant_id: str) -> Tenant | None:
    config = file_tenants(tenants_file)
    return next((t for t in config.tenants if t.id == tenant_id), None) if config else None


async def find(
    conn: asyncpg.Connection, control: str, tenants_file: Path, tenant_id: str
) -> dict[str, Any]:
    found = await stored(conn, control, tenant_id)
    if found is not None:
        return view(found[0], "api", found[1])
    from_file = in_file(tenants_file, tenant_id)
    if from_file is None:
        raise not_found(f"tenant {tenant_id}")
    return view(from_file, "file", False)


async def insert(
    conn: asyncpg.Connection, control: str, tenants_file: Path, tenant: Tenant
) -> None:
    if in_file(tenants_file, tenant.id) is not None:
        raise ApiError(409, "conflict", f"tenant {tenant.id} is in the tenants file: change it there,"
                       " or move it here with `rostersync tenants import`")  # fmt: skip
    try:
        await conn.execute(
            f'INSERT INTO "{control}".{TABLE} (tenant_id, config) VALUES ($1, $2::jsonb)',
            tenant.id, tenant.model_dump_json(),
        )  # fmt: skip
    except asyncpg.UniqueViolationError:
        raise ApiError(409, "conflict", f"tenant {tenant.id} exists already") from None


async def update(conn: asyncpg.Connection, control: str, tenant: Tenant) -> None:
    await conn.execute(
        f'UPDATE "{control}".{TABLE} SET config = $2::jsonb, version = version + 1,'
        " updated_at = now() WHERE tenant_id = $1",
        tenant.id, tenant.model_dump_json(),
    )  # fmt: skip


async def set_paused(conn: asyncpg.Connection, control: str, tenant_id: str, paused: bool) -> None:
    await conn.execute(
        f'UPDATE "{control}".{TABLE} SET paused = $2, updated_at = now() WHERE tenant_id = $1',
        tenant_id, paused,
    )  # fmt: skip


async def remove(conn: asyncpg.Connection, control: str, tenant_id: str) -> None:
    await conn.execute(f'DELETE FROM "{control}".{TABLE} WHERE tenant_id = $1', tenant_id)
