"""Tenants' data keys in PostgreSQL (data_keys.py): made once, wrapped, rotated, purged."""

from __future__ import annotations

import asyncio
import base64
import os
from pathlib import Path

import asyncpg
import pytest
from rostersync_cli import tenant_commands
from rostersync_libs.data_keys import DataKeys, TenantPurgedError
from rostersync_libs.db import close_pool, create_pool
from rostersync_libs.sealing import open_sealed, seal
from rostersync_libs.settings import ServiceSettings
from rostersync_libs.store.migrate import migrate

pytestmark = pytest.mark.integration


def master_file(path: Path) -> Path:
    path.write_text(base64.b64encode(os.urandom(32)).decode())
    return path


async def keys_of(settings: ServiceSettings) -> tuple[asyncpg.Pool, DataKeys]:
    pool = await create_pool(settings, max_size=2)
    async with pool.acquire() as conn:
        await migrate(conn)
    return pool, DataKeys(pool, settings, ttl=0)


async def test_services_racing_for_a_new_tenant_s_key_all_get_the_same_one(
    settings: ServiceSettings, db: asyncpg.Connection
) -> None:
    pools, services = zip(*[await keys_of(settings) for _ in range(4)], strict=True)
    try:
        aeads = await asyncio.gather(*(k.for_sealing("d1") for k in services))
        sealed = seal(aeads[0], "d1", b"event")
        assert all(open_sealed(a, "d1", sealed) == b"event" for a in aeads)
        assert await db.fetchval("SELECT count(*) FROM tenant_data_keys") == 1
    finally:
        for pool in pools:
            await close_pool(pool)


async def test_a_master_key_wraps_new_keys_and_rotating_it_keeps_every_event_readable(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    pool, plain = await keys_of(settings)  # no master key: stored as they are
    sealed = seal(await plain.for_sealing("old"), "old", b"an event of before")
    await close_pool(pool)
    first = master_file(tmp_path / "first.key")
    wrapped = ServiceSettings(**{**settings.model_dump(), "master_key_file": first})
    pool, keys = await keys_of(wrapped)
    await keys.for_sealing("new")
    await close_pool(pool)
    rows = dict(await db.fetch("SELECT tenant_id, wrapped FROM tenant_data_keys"))
    assert rows == {"old": False, "new": True}

    second = master_file(tmp_path / "second.key")
    rotated = ServiceSettings(**{**settings.model_dump(), "master_key_file": second})
    # Without --old-master-key-file the wrapped key cannot be unwrapped: nothing changes.
    with pytest.raises(ValueError, match="wrapped"):
        await tenant_commands.rewrap_keys(rotated, None)
    assert await db.fetchval("SELECT count(*) FROM tenant_data_keys WHERE wrapped") == 1
    assert await tenant_commands.rewrap_keys(rotated, first) == 0
    assert await db.fetchval("SELECT bool_and(wrapped) FROM tenant_data_keys")

    pool, keys = await keys_of(rotated)
    try:
        assert open_sealed(await keys.for_sealing("old"), "old", sealed) == b"an event of before"
    finally:
        await close_pool(pool)
    pool, keys = await keys_of(wrapped)  # the first master key opens nothing any more
    try:
        with pytest.raises(ValueError, match="does not unwrap with the configured master key"):
            await keys.for_sealing("old")
    finally:
        await close_pool(pool)


async def test_a_purged_tenant_gets_no_key_and_no_new_one(
    settings: ServiceSettings, db: asyncpg.Connection
) -> None:
    pool, keys = await keys_of(settings)
    try:
        await keys.for_sealing("d1")
        await db.execute(
            "UPDATE tenant_data_keys SET key_material = NULL, purged_at = now() WHERE tenant_id = 'd1'"
        )
        with pytest.raises(TenantPurgedError):
            await keys.for_sealing("d1")
        assert await keys.purged({"d1", "d2"}) == {"d1"}
        assert (await keys.for_opening({"d1"}))["d1"] is None
    finally:
        await close_pool(pool)
