"""API tokens: who calls, with which role, for which tenants.

A token is shown once, when it is made; only its SHA-256 is kept (``api_tokens``). Roles are
ranked: ``viewer`` reads, ``operator`` also syncs, uploads and decides holds, ``admin`` also
changes tenants, sources and tokens. A token limited to some tenants gets 404 for every other
tenant's anything: the API does not even say whether it exists.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal
from uuid import UUID, uuid4

import asyncpg
from fastapi import Request

from rostersync_api.errors import ApiError, not_found
from rostersync_api.state import ApiState, state_of

Role = Literal["admin", "operator", "viewer"]
RANK: dict[Role, int] = {"viewer": 0, "operator": 1, "admin": 2}
TOKEN_PREFIX = "rs_"  # noqa: S105 - a prefix that says what a string is, not a secret


@dataclass(frozen=True)
class Principal:
    token_id: UUID
    name: str
    role: Role
    tenants: frozenset[str] | None  # None: every tenant

    def sees(self, tenant: str) -> bool:
        return self.tenants is None or tenant in self.tenants

    def check_tenant(self, tenant: str) -> None:
        """404, not 403, for a tenant outside the token's: no existence leak."""
        if not self.sees(tenant):
            raise not_found(f"tenant {tenant}")


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def create_token(
    conn: asyncpg.Connection, control: str, name: str, role: Role, tenants: list[str] | None
) -> tuple[UUID, str]:
    """A new token (its id, and the token itself: shown once, kept nowhere)."""
    token_id, token = uuid4(), TOKEN_PREFIX + secrets.token_urlsafe(32)
    await conn.execute(
        f'INSERT INTO "{control}".api_tokens (token_id, name, token_hash, role, tenants)'
        " VALUES ($1, $2, $3, $4, $5)",
        token_id, name, token_hash(token), role, tenants,
    )  # fmt: skip
    return token_id, token


async def principal_of(state: ApiState, token: str) -> Principal | None:
    async with state.pool.acquire() as conn:
        row = await conn.fetchrow(
            f'SELECT token_id, name, role, tenants FROM "{state.settings.control}".api_tokens'
            " WHERE token_hash = $1 AND revoked_at IS NULL",
            token_hash(token),
        )
    if row is None:
        return None
    tenants = frozenset(row["tenants"]) if row["tenants"] is not None else None
    return Principal(row["token_id"], row["name"], row["role"], tenants)


def caller(minimum: Role) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency: the calling token's principal, if its role is at least ``minimum``."""

    async def authenticated(request: Request) -> Principal:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.startswith(TOKEN_PREFIX):
            raise ApiError(401, "unauthorized", "an API token is needed: Authorization: Bearer …")
        principal = await principal_of(state_of(request), token.strip())
        if principal is None:
            raise ApiError(401, "unauthorized", "the token is not valid (unknown or revoked)")
        if RANK[principal.role] < RANK[minimum]:
            raise ApiError(
                403, "forbidden", f"this needs the {minimum} role; the token is {principal.role}"
            )
        return principal

    return authenticated
