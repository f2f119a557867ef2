"""Delivering a tenant's changes to its webhook subscriptions, in order, at least once.

Every ``POLL_SECONDS``, each subscription that is due and behind its tenant's feed is taken
``FOR UPDATE SKIP LOCKED`` (two API instances never deliver one subscription at once, so never
out of order); the next page of its changes after its cursor (its entity filter applied) is
POSTed as one JSON body, signed like run notifications (notify/deliver.py: ``X-Rostersync-
Timestamp``, ``X-Rostersync-Signature: sha256=HMAC(secret, "<timestamp>.<body>")``). A 2xx moves
the cursor to the page's last number; anything else leaves it and retries the same page after a
pause doubling from ``RETRY_SECONDS`` to an hour. A receiver may thus see a page again (its 2xx
lost): the sequence numbers say so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg
import httpx
import orjson
from cryptography.exceptions import InvalidTag

from rostersync_api.feed import Filters, page
from rostersync_api.notify.deliver import DeliveryFailed, post_signed
from rostersync_api.state import ApiState
from rostersync_api.subscriptions.store import secret_of

log = logging.getLogger(__name__)
POLL_SECONDS = 0.2
RETRY_SECONDS = 1.0
PAGE = 100

DUE_SQL = """
SELECT s.tenant_id, s.id, s.url, s.entities, s.sealed_secret, s.cursor, s.attempts
FROM change_subscriptions s JOIN change_sequences q USING (tenant_id)
WHERE q.last_seq > s.cursor AND s.next_attempt_at <= now()
ORDER BY s.next_attempt_at LIMIT 20 FOR UPDATE OF s SKIP LOCKED
"""
DONE_SQL = """
UPDATE change_subscriptions SET cursor = $3, attempts = 0, last_error = NULL,
    delivered_at = now() WHERE tenant_id = $1 AND id = $2
"""
FAILED_SQL = """
UPDATE change_subscriptions SET attempts = attempts + 1, last_error = $3,
    next_attempt_at = now() + make_interval(secs => least(3600, $4 * power(2, attempts)))
WHERE tenant_id = $1 AND id = $2
"""


async def once(state: ApiState, http: httpx.AsyncClient) -> int:
    """One pass over the due subscriptions; returns how many pages were delivered."""
    delivered = 0
    async with state.pool.acquire() as conn, conn.transaction():
        for row in await conn.fetch(DUE_SQL):
            delivered += await _deliver(state, http, conn, row)
    return delivered


async def _deliver(
    state: ApiState, http: httpx.AsyncClient, conn: asyncpg.Connection, row: asyncpg.Record
) -> int:
    tenant, subscription = row["tenant_id"], row["id"]
    found = await page(conn, tenant, row["cursor"], PAGE, Filters(row["entities"]))
    if not found.items:  # nothing for its filter: its cursor moves on without a request
        await conn.execute(DONE_SQL, tenant, subscription, found.next)
        return 0
    body = orjson.dumps({
        "tenant": tenant, "subscription": str(subscription), "next": found.next,
        "items": [e.model_dump(mode="json") for e in found.items],
    })  # fmt: skip
    try:
        secret = await secret_of(state.keys, tenant, subscription, row["sealed_secret"])
        await post_signed(http, row["url"], body, secret)
    except (DeliveryFailed, InvalidTag) as exc:
        reason = str(exc) if isinstance(exc, DeliveryFailed) else "its secret does not open"
        await conn.execute(FAILED_SQL, tenant, subscription, reason, RETRY_SECONDS)
        log.warning("tenant %s: change webhook %s to %s failed (attempt %d): %s", tenant,
                    subscription, httpx.URL(row["url"]).host, row["attempts"] + 1, reason)  # fmt: skip
        return 0
    await conn.execute(DONE_SQL, tenant, subscription, found.next)
    return 1


async def keep_delivering(state: ApiState, stop: asyncio.Event) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        while not stop.is_set():
            delivered = 0
            try:
                delivered = await once(state, http)
            except (asyncpg.PostgresError, OSError) as exc:
                log.warning("change webhooks: %s; trying again", type(exc).__name__)
            if not delivered:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), POLL_SECONDS)
