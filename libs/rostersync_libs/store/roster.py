"""Reads of the roster tables, for the stages before the writer.

Each takes a pool or a connection (both have ``fetch``). Until the tables exist (a role that may
not migrate, before the owner's has) a lookup of ids finds none, as on a first run.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from rostersync_libs.events import EntityType
from rostersync_libs.store.tables import ENTITY_TABLES, ROSTER_TABLES

Db = Any  # an asyncpg.Pool or asyncpg.Connection (asyncpg is untyped)

KNOWN_SQL = "SELECT sourced_id FROM {table} WHERE tenant_id = $1 AND sourced_id = ANY($2::text[])"
HELD_SQL = (
    "SELECT sourced_id FROM {table} WHERE tenant_id = $1 AND source = $2 AND archived_at IS NULL"
)
UNCHANGED_SQL = (
    "SELECT t.sourced_id FROM unnest($3::text[], $4::text[]) AS u(sourced_id, content_hash)"
    " JOIN {table} t ON t.tenant_id = $1 AND t.sourced_id = u.sourced_id"
    " AND t.content_hash = u.content_hash"
    " WHERE t.source = $2 AND t.archived_at IS NULL"
)


async def known_ids(
    db: Db, tenant: str, entity: str, sourced_ids: list[str], *, active_only: bool
) -> set[str]:
    """Which of ``sourced_ids`` the tenant's table of ``entity`` holds (``active_only``: not
    archived); none for an entity without a table."""
    table = ENTITY_TABLES.get(entity)
    if table is None:
        return set()
    sql = KNOWN_SQL.format(table=table) + (" AND archived_at IS NULL" if active_only else "")
    try:
        rows = await db.fetch(sql, tenant, sourced_ids)
    except asyncpg.UndefinedTableError:
        return set()  # nothing written yet: nothing is known
    return {r["sourced_id"] for r in rows}


async def held_ids(db: Db, tenant: str, source: str, entity: EntityType) -> set[str]:
    """The sourcedIds of the entity's active rows from this source."""
    rows = await db.fetch(HELD_SQL.format(table=ROSTER_TABLES[entity]), tenant, source)
    return {r["sourced_id"] for r in rows}


async def unchanged_ids(
    db: Db,
    tenant: str,
    source: str,
    entity: EntityType,
    sourced_ids: list[str],
    content_hashes: list[str],
) -> set[str]:
    """The sourcedIds stored active, from this source, with the same content hash (pairwise)."""
    sql = UNCHANGED_SQL.format(table=ROSTER_TABLES[entity])
    rows = await db.fetch(sql, tenant, source, sourced_ids, content_hashes)
    return {r["sourced_id"] for r in rows}
