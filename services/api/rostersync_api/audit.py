"""The API's audit trail: every change and decision, with the token that made it (api_audit)."""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson

from rostersync_api.auth import Principal


async def record(
    conn: asyncpg.Connection,
    control: str,
    principal: Principal,
    *,
    tenant: str | None,
    action: str,
    target: str,
    before: Any = None,
    after: Any = None,
) -> None:
    """One audit row, in the caller's transaction (the change and its record, or neither)."""
    await conn.execute(
        f'INSERT INTO "{control}".api_audit'
        " (token_id, token_name, tenant_id, action, target, before, after)"
        " VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb)",
        principal.token_id, principal.name, tenant, action, target,
        None if before is None else orjson.dumps(before).decode(),
        None if after is None else orjson.dumps(after).decode(),
    )  # fmt: skip


async def listed(
    conn: asyncpg.Connection,
    control: str,
    tenants: frozenset[str] | None,
    limit: int,
    before: int | None,
) -> list[dict[str, Any]]:
    """The newest entries first (a token limited to tenants sees only theirs)."""
    rows = await conn.fetch(
        f'SELECT id, token_id, token_name, tenant_id, action, target, before, after, recorded_at'
        f' FROM "{control}".api_audit'
        " WHERE ($1::bigint IS NULL OR id < $1) AND ($2::text[] IS NULL OR tenant_id = ANY($2))"
        " ORDER BY id DESC LIMIT $3",
        before, None if tenants is None else sorted(tenants), limit,
    )  # fmt: skip
    return [
        {
            **dict(row),
            "token_id": str(row["token_id"]),
            "before": orjson.loads(row["before"]) if row["before"] else None,
            "after": orjson.loads(row["after"]) if row["after"] else None,
            "recorded_at": row["recorded_at"].isoformat(),
        }
        for row in rows
    ]
