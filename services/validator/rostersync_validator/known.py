"""Which sourcedIds a tenant already has: references a delta bundle makes to earlier runs."""

from __future__ import annotations

from collections import defaultdict

import asyncpg
from rostersync_libs.store.tables import ENTITY_TABLES

Key = tuple[str, str, str]  # tenant, entity, sourcedId

SQL = (
    "SELECT sourced_id FROM {table} WHERE tenant_id = $1 AND sourced_id = ANY($2::text[])"
    " AND archived_at IS NULL"
)


class KnownKeys:
    """Looks sourcedIds up in the writer's tables (the tenant's current, unarchived records)."""

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
                try:
                    rows = await conn.fetch(SQL.format(table=ENTITY_TABLES[entity]), tenant, ids)
                except asyncpg.UndefinedTableError:
                    continue  # nothing written yet: nothing is known
                found.update((tenant, entity, r["sourced_id"]) for r in rows)
        return found
