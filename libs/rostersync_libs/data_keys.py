"""Tenants' data keys: one AES-256 key per tenant, kept in PostgreSQL, destroyed on purge.

The keys live in ``tenant_data_keys``, a control table (``settings.control``): a replay into a
fresh schema opens the topics with the live deployment's keys. With a master key
(``ROSTERSYNC_MASTER_KEY_FILE`` or ``ROSTERSYNC_MASTER_KEY``), a data key is stored wrapped by it
(AES-GCM, bound to the tenant), so a copy of the table alone opens nothing. Purge
(``rostersync tenants purge``) sets the key to NULL: from then on no service can open the
tenant's events, on any topic, in any replay (crypto-shredding; docs/security.md).

Keys are cached for ``ttl`` seconds, so a service notices a purge within that time; the writer
does not rely on the cache (it checks the table in the transaction that writes, ``purged.py``).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import time
from dataclasses import dataclass

import asyncpg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from rostersync_libs.sealing import KEY_BYTES, NONCE_BYTES
from rostersync_libs.settings import ServiceSettings

log = logging.getLogger(__name__)

TABLE = "tenant_data_keys"
# A fresh deployment: the writer's role makes the tables; the others wait for them this long.
TABLE_WAIT_SECONDS = 120.0


class TenantPurgedError(RuntimeError):
    """The tenant was purged: its events can be neither written nor read any more."""

    def __init__(self, tenant: str) -> None:
        super().__init__(f"tenant {tenant} was purged: its data key is destroyed")
        self.tenant = tenant


def master_key(settings: ServiceSettings) -> AESGCM | None:
    """The key that wraps data keys, from a file or the environment (base64 of 32 bytes)."""
    if settings.master_key_file is not None:
        text = settings.master_key_file.read_text().strip()
        name = "ROSTERSYNC_MASTER_KEY_FILE"
    elif settings.master_key is not None:
        text = settings.master_key.get_secret_value().strip()
        name = "ROSTERSYNC_MASTER_KEY"
    else:
        return None
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        raw = b""
    if len(raw) != KEY_BYTES:
        raise ValueError(f"{name}: expected the base64 of {KEY_BYTES} random bytes")
    return AESGCM(raw)


def _wrap_aad(tenant: str) -> bytes:
    return b"rostersync-data-key:" + tenant.encode()


def wrap(master: AESGCM | None, tenant: str, key: bytes) -> bytes:
    if master is None:
        return key
    nonce = os.urandom(NONCE_BYTES)
    return nonce + master.encrypt(nonce, key, _wrap_aad(tenant))


def unwrap(master: AESGCM | None, tenant: str, stored: bytes, wrapped: bool) -> bytes:
    if not wrapped:
        return stored
    if master is None:
        raise ValueError(
            f"tenant {tenant}'s data key is wrapped: set ROSTERSYNC_MASTER_KEY_FILE "
            "(or ROSTERSYNC_MASTER_KEY) to the master key it was wrapped with"
        )
    try:
        return master.decrypt(stored[:NONCE_BYTES], stored[NONCE_BYTES:], _wrap_aad(tenant))
    except InvalidTag:
        raise ValueError(
            f"tenant {tenant}'s data key does not unwrap with the configured master key: not"
            " the key it was wrapped with (rotated with `rostersync tenants rewrap-keys`?)"
        ) from None


async def rewrap(conn: asyncpg.Connection, control: str, old: AESGCM | None, new: AESGCM) -> int:
    """Wrap every live data key with ``new`` (master key rotation); ``old``: the master key they
    are wrapped with now (None: they are stored unwrapped). One transaction: all or none."""
    table = f'"{control}".{TABLE}'
    async with conn.transaction():
        rows = await conn.fetch(
            f"SELECT tenant_id, key_material, wrapped FROM {table}"
            " WHERE key_material IS NOT NULL FOR UPDATE"
        )
        for row in rows:
            tenant = row["tenant_id"]
            key = unwrap(old, tenant, row["key_material"], row["wrapped"])
            await conn.execute(
                f"UPDATE {table} SET key_material = $2, wrapped = true WHERE tenant_id = $1",
                tenant, wrap(new, tenant, key),
            )  # fmt: skip
    return len(rows)


@dataclass(frozen=True)
class _Cached:
    aead: AESGCM | None  # None: purged
    loaded_at: float


class DataKeys:
    """Reads tenants' keys (one query per batch of tenants not cached) and creates missing ones."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        settings: ServiceSettings,
        ttl: float = 30.0,
        table_wait: float = TABLE_WAIT_SECONDS,
    ) -> None:
        self._pool = pool
        self._table_wait = table_wait
        self._table = f'"{settings.control}".{TABLE}'
        self._master = master_key(settings)
        self._ttl = ttl
        self._cache: dict[str, _Cached] = {}

    async def for_sealing(self, tenant: str, *, fresh: bool = False) -> AESGCM:
        """The tenant's key, made on its first event; ``fresh`` reads past the cache."""
        if fresh:
            self._cache.pop(tenant, None)
        cached = self._cache.get(tenant)  # the common case, once per event: no set, no await
        fresh_enough = cached is not None and time.monotonic() - cached.loaded_at <= self._ttl
        if fresh_enough and cached is not None and cached.aead is not None:
            return cached.aead
        found = (await self.for_opening({tenant})).get(tenant)
        if found is None:
            if tenant in self._cache:
                raise TenantPurgedError(tenant)
            await self._create(tenant)
            found = (await self.for_opening({tenant})).get(tenant)
            if found is None:
                raise TenantPurgedError(tenant)
        return found

    async def for_opening(self, tenants: set[str]) -> dict[str, AESGCM | None]:
        """Each tenant's key; None for a purged tenant or one without a key."""
        now = time.monotonic()
        stale = {
            t for t in tenants if (c := self._cache.get(t)) is None or now - c.loaded_at > self._ttl
        }
        if stale:
            await self._load(stale, now)
        return {t: c.aead if (c := self._cache.get(t)) else None for t in tenants}

    async def purged(self, tenants: set[str]) -> set[str]:
        """Those of ``tenants`` that were purged (a tenant without a key yet is not)."""
        await self.for_opening(tenants)
        return {t for t in tenants if (c := self._cache.get(t)) is not None and c.aead is None}

    async def _load(self, tenants: set[str], now: float) -> None:
        rows = await self._wait_for_table(
            f"SELECT tenant_id, key_material, wrapped FROM {self._table} WHERE tenant_id = ANY($1)",
            sorted(tenants),
        )
        for tenant in tenants:
            self._cache.pop(tenant, None)  # no row: not cached, so a key made later is found
        for row in rows:
            tenant, stored = row["tenant_id"], row["key_material"]
            aead = (
                None
                if stored is None
                else AESGCM(unwrap(self._master, tenant, stored, row["wrapped"]))
            )
            self._cache[tenant] = _Cached(aead, now)

    async def _create(self, tenant: str) -> None:
        stored = wrap(self._master, tenant, AESGCM.generate_key(bit_length=KEY_BYTES * 8))
        await self._wait_for_table(
            f"INSERT INTO {self._table} (tenant_id, key_material, wrapped) VALUES ($1, $2, $3)"
            " ON CONFLICT (tenant_id) DO NOTHING RETURNING tenant_id",
            tenant, stored, self._master is not None,
        )  # fmt: skip
        log.info("tenant %s: data key created", tenant)

    async def _wait_for_table(self, query: str, *args: object) -> list[asyncpg.Record]:
        """Run ``query``, waiting for the writer to have made the table on a fresh deployment."""
        deadline = time.monotonic() + self._table_wait
        waited = False
        while True:
            try:
                async with self._pool.acquire() as conn:
                    rows: list[asyncpg.Record] = await conn.fetch(query, *args)
                    return rows
            except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
                if time.monotonic() > deadline:
                    raise
                if not waited:
                    log.info("waiting for table %s (the writer makes it)", self._table)
                    waited = True
                await asyncio.sleep(0.5)
