"""The notifier: in the API process, every ``notify_poll_seconds``, find and deliver.

Due notifications are taken ``FOR UPDATE SKIP LOCKED`` (two API instances never send one twice)
and retried with a pause doubling from ``notify_retry_seconds`` (10 s) to an hour, at most ``MAX_ATTEMPTS`` times; each row
keeps its attempts, last error and delivery time (the delivery log).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg
import httpx
import orjson
from rostersync_libs.tenant_registry import all_tenants
from rostersync_libs.tenants import Tenant

from rostersync_api.notify import deliver, found
from rostersync_api.state import ApiState

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 12

DUE_SQL = """
SELECT tenant_id, run_id, event, target, detail, attempts FROM notifications
WHERE delivered_at IS NULL AND next_attempt_at <= now() AND attempts < $1
ORDER BY next_attempt_at LIMIT 50 FOR UPDATE SKIP LOCKED
"""
DONE_SQL = """
UPDATE notifications SET attempts = attempts + 1, delivered_at = now(), last_error = NULL
WHERE tenant_id = $1 AND run_id = $2 AND event = $3 AND target = $4
"""
FAILED_SQL = """
UPDATE notifications SET attempts = attempts + 1, last_error = $5,
    next_attempt_at = now() + make_interval(secs => least(3600, $6 * power(2, attempts)))
WHERE tenant_id = $1 AND run_id = $2 AND event = $3 AND target = $4
"""


async def once(state: ApiState, http: httpx.AsyncClient) -> None:
    settings = state.settings
    registry = await all_tenants(state.pool, settings.control, settings.tenants_file)
    tenants = {t.id: t for t in registry.tenants.tenants}
    async with state.pool.acquire() as conn:
        await found.find(conn, list(tenants.values()))
        async with conn.transaction():
            for row in await conn.fetch(DUE_SQL, MAX_ATTEMPTS):
                await _deliver(state, http, conn, tenants, row)


async def _deliver(state: ApiState, http: httpx.AsyncClient, conn: asyncpg.Connection,
                   tenants: dict[str, Tenant], row: asyncpg.Record) -> None:  # fmt: skip
    key = (row["tenant_id"], row["run_id"], row["event"], row["target"])
    tenant = tenants.get(row["tenant_id"])
    detail = orjson.loads(row["detail"])
    try:
        if tenant is None:
            raise deliver.DeliveryFailed("the tenant is no longer configured")
        notify = tenant.notify
        if row["target"].startswith("mailto:"):
            await deliver.email(state.settings, row["target"].removeprefix("mailto:"), detail)
        else:
            await deliver.webhook(http, notify, row["target"], row["detail"].encode())
    except deliver.DeliveryFailed as exc:
        await conn.execute(FAILED_SQL, *key, str(exc), state.settings.notify_retry_seconds)
        log.warning("tenant %s: notification %s to %s failed (attempt %d): %s", key[0], key[2],
                    _where(key[3]), row["attempts"] + 1, exc)  # fmt: skip
        return
    await conn.execute(DONE_SQL, *key)


def _where(target: str) -> str:
    """A target for the log without what could be secret in a URL (its path and query)."""
    return "e-mail" if target.startswith("mailto:") else httpx.URL(target).host


async def keep_notifying(state: ApiState, stop: asyncio.Event) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        while not stop.is_set():
            try:
                await once(state, http)
            except (asyncpg.PostgresError, OSError) as exc:
                log.warning("notifier: %s; trying again", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), state.settings.notify_poll_seconds)
