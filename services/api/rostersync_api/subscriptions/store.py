"""A tenant's webhook subscriptions: what the API stores and shows (never the secret)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
from rostersync_libs.data_keys import DataKeys
from rostersync_libs.source_secrets import open_secret, seal_secret

SHOWN = "id, url, entities, cursor, attempts, next_attempt_at, last_error, delivered_at, created_at"


def aad(tenant: str, subscription: UUID) -> bytes:
    return f"rostersync-change-webhook:{tenant}:{subscription}".encode()


def shown(row: Any) -> dict[str, Any]:
    return {
        "id": str(row["id"]), "url": row["url"], "entities": row["entities"],
        "cursor": row["cursor"], "attempts": row["attempts"],
        "next_attempt_at": row["next_attempt_at"].isoformat(), "last_error": row["last_error"],
        "delivered_at": row["delivered_at"].isoformat() if row["delivered_at"] else None,
        "created_at": row["created_at"].isoformat(),
    }  # fmt: skip


async def create(
    conn: asyncpg.Connection, keys: DataKeys, tenant: str, subscription: UUID,
    url: str, entities: list[str] | None, secret: str, cursor: int,
) -> dict[str, Any]:  # fmt: skip
    sealed = await seal_secret(keys, tenant, aad(tenant, subscription), secret)
    row = await conn.fetchrow(
        "INSERT INTO change_subscriptions (tenant_id, id, url, entities, sealed_secret, cursor)"
        f" VALUES ($1, $2, $3, $4, $5, $6) RETURNING {SHOWN}",
        tenant, subscription, url, entities, sealed, cursor,
    )  # fmt: skip
    return shown(row)


async def listed(conn: asyncpg.Connection, tenant: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"SELECT {SHOWN} FROM change_subscriptions WHERE tenant_id = $1 ORDER BY created_at", tenant
    )
    return [shown(r) for r in rows]


async def one(conn: asyncpg.Connection, tenant: str, subscription: UUID) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        f"SELECT {SHOWN} FROM change_subscriptions WHERE tenant_id = $1 AND id = $2",
        tenant, subscription,
    )  # fmt: skip
    return None if row is None else shown(row)


async def update(
    conn: asyncpg.Connection, keys: DataKeys, tenant: str, subscription: UUID,
    changes: dict[str, Any],
) -> dict[str, Any] | None:  # fmt: skip
    """Change what ``changes`` names (url, entities, secret, cursor); a new cursor also clears
    the failures, so the next delivery is at once (a subscriber replays from any number)."""
    sets, values = [], [tenant, subscription]
    for column in ("url", "entities", "cursor"):
        if column in changes:
            values.append(changes[column])
            sets.append(f"{column} = ${len(values)}")
    if "secret" in changes:
        values.append(await seal_secret(keys, tenant, aad(tenant, subscription), changes["secret"]))
        sets.append(f"sealed_secret = ${len(values)}")
    if "cursor" in changes:
        sets.append("attempts = 0, next_attempt_at = now(), last_error = NULL")
    if not sets:
        return await one(conn, tenant, subscription)
    row = await conn.fetchrow(
        f"UPDATE change_subscriptions SET {', '.join(sets)} WHERE tenant_id = $1 AND id = $2"
        f" RETURNING {SHOWN}",
        *values,
    )
    return None if row is None else shown(row)


async def delete(conn: asyncpg.Connection, tenant: str, subscription: UUID) -> bool:
    done: str = await conn.execute(
        "DELETE FROM change_subscriptions WHERE tenant_id = $1 AND id = $2", tenant, subscription
    )
    return done.endswith(" 1")


async def secret_of(keys: DataKeys, tenant: str, subscription: UUID, sealed: bytes) -> str:
    return await open_secret(keys, tenant, aad(tenant, subscription), sealed)
