"""Reading a tenant's change feed: a page of changes after a sequence number, waiting for the
next ones when asked to (long-poll). Shared by the events endpoint and the webhook deliveries.

Sequence numbers of a tenant commit in order (rostersync_writer/changes.py), so ``seq > after``
never skips a change that commits later.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from uuid import UUID

import asyncpg
from rostersync_libs.change_events import COLUMNS, MembershipChanged, RecordChanged, event_of

# How often a long-poll looks again (the feed's latency floor for API clients).
POLL_SECONDS = 0.2

PAGE_SQL = f"""
SELECT {COLUMNS} FROM change_log
WHERE tenant_id = $1 AND seq > $2
  AND ($3::text[] IS NULL OR entity = ANY($3::text[]))
  AND ($4::uuid IS NULL OR school_id = $4) AND ($5::uuid IS NULL OR class_id = $5)
ORDER BY seq LIMIT $6
"""
LAST_SQL = "SELECT last_seq FROM change_sequences WHERE tenant_id = $1"


@dataclass(frozen=True)
class Filters:
    entities: list[str] | None = None
    school: UUID | None = None
    class_: UUID | None = None


@dataclass
class Page:
    items: list[RecordChanged | MembershipChanged] = field(default_factory=list)
    next: int = 0  # the ``after`` of the next request
    last_sequence: int = 0  # the tenant's newest change


async def page(
    conn: asyncpg.Connection, tenant: str, after: int, limit: int, filters: Filters
) -> Page:
    # The newest number first: the page's query, a later snapshot, sees every change up to it.
    last = await conn.fetchval(LAST_SQL, tenant) or 0
    rows = await conn.fetch(
        PAGE_SQL, tenant, after, filters.entities, filters.school, filters.class_, limit
    )
    items = [event_of(r) for r in rows]
    if len(items) == limit:
        return Page(items, items[-1].sequence, last)
    # A short page read everything up to ``last``: filtered-out changes need no second look.
    return Page(items, max(after, last, items[-1].sequence if items else 0), last)


async def wait_for_page(
    pool: asyncpg.Pool, tenant: str, after: int, limit: int, filters: Filters, wait: float
) -> Page:
    """The page, or, while it is empty, the same again until ``wait`` seconds have passed."""
    deadline = time.monotonic() + wait
    while True:
        async with pool.acquire() as conn:
            found = await page(conn, tenant, after, limit, filters)
        if found.items or time.monotonic() >= deadline:
            return found
        after = found.next
        await asyncio.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))
