"""Records the fetcher found unchanged: they were in the run, so the bulk sweep must keep them.

The fetcher listed them because the table held them active with the same content hash when the
run was fetched (rostersync_fetcher/unchanged.py). The list is checked again here, in the order
of the partition: a row whose hash no longer matches (an event in between changed it) or that was
archived meanwhile is still marked seen, and its hash is cleared so that the next run sends the
record whole and the row catches up. Such rows are counted as stale.
"""

from __future__ import annotations

import logging
from uuid import UUID

import asyncpg
from rostersync_libs.events import EntityType

from rostersync_writer.tables import TABLES

log = logging.getLogger(__name__)

Unchanged = dict[tuple[str, str], tuple[str, UUID]]  # (tenant, sourcedId) → (hash, run)


def _sql(table: str) -> str:
    return (
        f"UPDATE {table} AS t SET last_seen_run = u.run_id,"
        " content_hash = CASE WHEN t.content_hash = u.content_hash AND t.archived_at IS NULL"
        " THEN t.content_hash ELSE '' END"
        " FROM unnest($1::text[], $2::text[], $3::text[], $4::uuid[])"
        " AS u(tenant_id, sourced_id, content_hash, run_id)"
        " WHERE t.tenant_id = u.tenant_id AND t.sourced_id = u.sourced_id"
        " AND t.last_seen_run < u.run_id"
        " RETURNING t.internal_id, t.content_hash = '' AS stale"
    )


async def mark_unchanged(
    conn: asyncpg.Connection, entity: EntityType, listed: Unchanged
) -> set[UUID]:
    """Note the listed records as seen in their run; returns their internal ids (a verdict for
    what waits for them: the run holds them as they were)."""
    if not listed:
        return set()
    rows = [(tenant, sid, hash_, run_id) for (tenant, sid), (hash_, run_id) in listed.items()]
    found = await conn.fetch(_sql(TABLES[entity].name), *map(list, zip(*rows, strict=True)))
    stale = sum(1 for r in found if r["stale"])
    if stale:
        log.warning("%d %s listed as unchanged had changed: resent whole next run", stale, entity)
    return {r["internal_id"] for r in found}
