"""API tokens: who calls, with which role, for which tenants.

A token is shown once, when it is made; only its SHA-256 is kept (``api_tokens``). Roles are
ranked: ``viewer`` reads, ``operator`` also syncs, uploads and decides holds, ``admin`` also
changes tenants, sources and tokens. A token limited to some tenants gets 404 for every other
tenant's anything: the API does not even say whether it exists. A token may expire
(``expires_at``, PostgreSQL's clock decides): past it, 401 with code ``token_expired``.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
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
    conn: asyncpg.Connection,
    control: str,
    name: str,
    role: Role,
    tenants: list[str] | None,
    lifetime: timedelta | None = None,
) -> tuple[UUID, str]:
    """A new token (its id, and the token itself: shown once, kept nowhere); with a
    ``lifetime``, it expires that long from now (the database's now)."""
    token_id, token = uuid4(), TOKEN_PREFIX + secrets.token_urlsafe(32)
    await conn.execute(
        f'INSERT INTO "{control}".api_tokens (token_id, name, token_hash, role, tenants,'
        " expires_at) VALUES ($1, $2, $3, $4, $5, now() + $6::interval)",
        token_id, name, token_hash(token), role, tenants, lifetime,
    )  # fmt: skip
    return token_id, token


Expired = Literal["expired"]
EXPIRED: Expired = "expired"


async def standing_of(state: ApiState, token: str) -> Principal | Expired | None:
    """The token's principal; ``EXPIRED`` past its expiry; None when unknown or revoked."""
    async with state.pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT token_id, name, role, tenants, expires_at <= now() AS expired"
            f' FROM "{state.settings.control}".api_tokens'
            " WHERE token_hash = $1 AND revoked_at IS NULL",
            token_hash(token),
        )
    if row is None:
        return None
    if row["expired"]:
        return EXPIRED
    tenants = frozenset(row["tenants"]) if row["tenants"] is not None else None
    return Principal(row["token_id"], row["name"], row["role"], tenants)


async def principal_of(state: ApiState, token: str) -> Principal | None:
    """The token's principal, if it is valid now (the console's sign-in)."""
    standing = await standing_of(state, token)
    return standing if isinstance(standing, Principal) else None


def caller(minimum: Role) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency: the calling token's principal, if its role is at least ``minimum``."""

    async def authenticated(request: Request) -> Principal:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.startswith(TOKEN_PREFIX):
            raise ApiError(401, "unauthorized", "an API token is needed: Authorization: Bearer …")
        principal = await standing_of(state_of(request), token.strip())
        if principal == EXPIRED:
            raise ApiError(401, "token_expired", "the token has expired: ask for a new one")
        if not isinstance(principal, Principal):
            raise ApiError(401, "unauthorized", "the token is not valid (unknown or revoked)")
        wait = state_of(request).limiter.wait(principal.token_id)
        if wait > 0:
            raise ApiError(429, "rate_limited", f"too many requests with this token: retry in"
                           f" {wait:.1f} s", {"Retry-After": str(math.ceil(wait))})  # fmt: skip
        if RANK[principal.role] < RANK[minimum]:
            raise ApiError(
                403, "forbidden", f"this needs the {minimum} role; the token is {principal.role}"
            )
        return principal

    return authenticated
