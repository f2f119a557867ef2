"""Source credentials stored through the admin API, sealed with the tenant's data key.

A REST source's secret comes from the environment (``secret_env``, as in a tenants file) or,
when the source names no variable, from here (``source_secrets``, a control table). Sealed with
AES-GCM under the tenant's data key (data_keys.py), bound to tenant and source: a copy of the
table opens nothing without the keys, and a purge destroys the secrets with the key.
"""

from __future__ import annotations

import os

import asyncpg
from cryptography.exceptions import InvalidTag
from pydantic import SecretStr

from rostersync_libs.data_keys import DataKeys
from rostersync_libs.sealing import MAGIC, NONCE_BYTES

TABLE = "source_secrets"


def _aad(tenant: str, source: str) -> bytes:
    return f"rostersync-source-secret:{tenant}:{source}".encode()


async def seal_secret(keys: DataKeys, tenant: str, aad: bytes, secret: str) -> bytes:
    """A secret sealed with the tenant's data key, bound to ``aad`` (what it is the secret of):
    also the change feed's webhook secrets (rostersync_api/subscriptions)."""
    aead = await keys.for_sealing(tenant)
    nonce = os.urandom(NONCE_BYTES)
    return MAGIC + nonce + aead.encrypt(nonce, secret.encode(), aad)


async def open_secret(keys: DataKeys, tenant: str, aad: bytes, sealed: bytes) -> str:
    """What :func:`seal_secret` sealed (InvalidTag when it does not open)."""
    aead = await keys.for_sealing(tenant)
    start = len(MAGIC)
    plain: bytes = aead.decrypt(sealed[start : start + NONCE_BYTES], sealed[start + NONCE_BYTES :], aad)  # fmt: skip
    return plain.decode()


async def store(
    conn: asyncpg.Connection, control: str, keys: DataKeys, tenant: str, source: str, secret: str
) -> None:
    sealed = await seal_secret(keys, tenant, _aad(tenant, source), secret)
    await conn.execute(
        f'INSERT INTO "{control}".{TABLE} (tenant_id, source_id, sealed) VALUES ($1, $2, $3)'
        " ON CONFLICT (tenant_id, source_id) DO UPDATE SET sealed = excluded.sealed,"
        " updated_at = now()",
        tenant, source, sealed,
    )  # fmt: skip


async def is_stored(conn: asyncpg.Connection, control: str, tenant: str, source: str) -> bool:
    found: bool = await conn.fetchval(
        f'SELECT EXISTS (SELECT 1 FROM "{control}".{TABLE} WHERE tenant_id = $1 AND source_id = $2)',
        tenant, source,
    )  # fmt: skip
    return found


async def read(
    pool: asyncpg.Pool, control: str, keys: DataKeys, tenant: str, source: str
) -> SecretStr:
    """The source's stored secret (KeyError, with what to do, when there is none)."""
    async with pool.acquire() as conn:
        sealed = await conn.fetchval(
            f'SELECT sealed FROM "{control}".{TABLE} WHERE tenant_id = $1 AND source_id = $2',
            tenant, source,
        )  # fmt: skip
    if sealed is None:
        raise KeyError(
            f"source {source} of tenant {tenant} has no secret: set its secret_env, or store one"
            f" (PUT /api/v1/tenants/{tenant}/sources/{source}/secret)"
        )
    try:
        return SecretStr(await open_secret(keys, tenant, _aad(tenant, source), sealed))
    except InvalidTag:
        raise KeyError(
            f"the stored secret of source {source} of tenant {tenant} does not open"
        ) from None
