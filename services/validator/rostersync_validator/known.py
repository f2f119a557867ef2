"""Which sourcedIds a tenant already has: references a delta bundle makes to earlier runs."""

from __future__ import annotations

from collections import defaultdict

import asyncpg
from rostersync_libs.store import roster

Key = tuple[str, str, str]  # tenant, entity, sourcedId


class KnownKeys:
    """Looks sourcedIds up in the roster tables (the tenant's current, unarchived records)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def known(self, wanted: set[Key]) -> set[Key]:
        if not wanted:
            return set()
        grouped: dict[tuple[str, str], list[str]] = defaultdict(list)
        for tenant, entity, sourced_id in wanted:
            # PostgreSQL text cannot hold a NUL (asyncpg would fail the whole batch's lookup):
            # no stored record has such an id, so it is not known.
            if "\x00" not in sourced_id and "\x00" not in tenant:
                grouped[(tenant, entity)].append(sourced_id)
        found: set[Key] = set()
        async with self._pool.acquire() as conn:
            for (tenant, entity), ids in grouped.items():
                known = await roster.known_ids(conn, tenant, entity, ids, active_only=True)
                found.update((tenant, entity, sourced_id) for sourced_id in known)
        return found
