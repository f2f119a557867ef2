"""What still points at a missing or archived row: the last line of the guarantee (cascade.py).

Expected 0; the writer records it with every run outcome. ``count_dangling`` checks the whole
tenant. After a run only what the run changed can have started to dangle: the rows it wrote
(their pointers and links) and what points at rows it archived. ``count_dangling_after`` checks
just those, found in the run's captured changes (changes.py), so a small delta does not scan every
table: 21 anti-joins over the whole tenant took about 0.8 s of a 2% delta's 4 s at 30,000
students, and grow with the tenant. A run that changed more than ``WHOLE_CHECK`` rows (a first
load) gets the whole check, which costs about the same then.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg

from rostersync_writer.references import LINKS, POINTERS, TABLE_OF

WHOLE_CHECK = 200_000

# The run's changes: those still pending (archives after the numbering, or all of them when the
# run is held) and those numbered after ``$3`` (this completion numbered them).
TOUCHED_SQL = """
SELECT entity, operation = 'archive' AS archived, array_agg(DISTINCT internal_id) AS ids FROM (
    SELECT entity, internal_id, operation FROM change_pending WHERE tenant_id = $1 AND run_id = $2
    UNION ALL
    SELECT entity, internal_id, operation FROM change_log
    WHERE tenant_id = $1 AND seq > $3 AND run_id = $2
) c GROUP BY entity, operation = 'archive'
"""
COUNT_SQL = (
    "SELECT (SELECT count(*) FROM change_pending WHERE tenant_id = $1 AND run_id = $2)"
    " + (SELECT count(*) FROM change_log WHERE tenant_id = $1 AND seq > $3 AND run_id = $2)"
)


def _active(target: str, column: str) -> str:
    return f"EXISTS (SELECT 1 FROM {target} x WHERE x.internal_id = t.{column} AND x.archived_at IS NULL)"  # fmt: skip


def _pointer_sql(table: str, column: str, target: str, where: str = "") -> str:
    return (
        f"SELECT count(*) FROM {table} t WHERE t.tenant_id = $1 AND t.archived_at IS NULL"
        f" AND t.{column} IS NOT NULL AND NOT {_active(target, column)}{where}"
    )


def _link_sql(table: str, column: str, target: str, where: str = "") -> str:
    return f"SELECT count(*) FROM {table} t WHERE t.tenant_id = $1 AND NOT {_active(target, column)}{where}"  # fmt: skip


async def count_dangling(conn: asyncpg.Connection, tenant: str) -> dict[str, int]:
    """Per ``table.column``: active rows and link rows pointing at a missing or archived row."""
    found: dict[str, int] = {}
    for p in POINTERS:
        n = await conn.fetchval(_pointer_sql(p.table, p.column, TABLE_OF[p.target]), tenant)
        if n:
            found[f"{p.table}.{p.column}"] = n
    for link in LINKS:
        for entity, column in ((link.owner, link.owner_column), (link.target, link.target_column)):
            n = await conn.fetchval(_link_sql(link.table, column, TABLE_OF[entity]), tenant)
            if n:
                found[f"{link.table}.{column}"] = n
    return found


async def count_dangling_after(
    conn: asyncpg.Connection, tenant: str, run_id: UUID, numbered_after: int
) -> dict[str, int]:
    """``count_dangling``, of what the run changed; ``numbered_after``: the tenant's last change
    number before this completion numbered the run's changes."""
    args = (tenant, run_id, numbered_after)
    if await conn.fetchval(COUNT_SQL, *args) > WHOLE_CHECK:
        return await count_dangling(conn, tenant)
    changed: dict[str, set[UUID]] = {}  # per entity (links: per owner), the rows written
    archived: dict[str, set[UUID]] = {}
    for row in await conn.fetch(TOUCHED_SQL, *args):
        changed.setdefault(row["entity"], set()).update(row["ids"])
        if row["archived"]:
            archived.setdefault(row["entity"], set()).update(row["ids"])
    found: dict[str, int] = {}
    for p in POINTERS:
        mine, theirs = changed.get(p.entity, set()), archived.get(p.target, set())
        if not mine and not theirs:
            continue
        sql = _pointer_sql(p.table, p.column, TABLE_OF[p.target], _either("internal_id", mine, p.column, theirs))  # fmt: skip
        n = await conn.fetchval(sql, tenant, list(mine), list(theirs))
        if n:
            found[f"{p.table}.{p.column}"] = n
    for link in LINKS:
        # A link's change is named by its owner (changes.py); its target may have been archived.
        owners = changed.get(link.owner, set()) | changed.get(link.entity, set())
        targets = archived.get(link.target, set())
        if not owners and not targets:
            continue
        where = _either(link.owner_column, owners, link.target_column, targets)
        for entity, column in ((link.owner, link.owner_column), (link.target, link.target_column)):
            sql = _link_sql(link.table, column, TABLE_OF[entity], where)
            n = await conn.fetchval(sql, tenant, list(owners), list(targets))
            if n:
                found[f"{link.table}.{column}"] = n
    return found


def _either(mine: str, ids: set[UUID], theirs: str, their_ids: set[UUID]) -> str:
    """Rows whose ``mine`` is in $2 or whose ``theirs`` is in $3; a side without ids is left out
    of the condition, so an index on the other serves it (an OR of both scans the table); its
    parameter stays named (``cardinality``) so that the statement keeps both."""
    if ids and their_ids:
        return f" AND (t.{mine} = ANY($2::uuid[]) OR t.{theirs} = ANY($3::uuid[]))"
    if ids:
        return f" AND t.{mine} = ANY($2::uuid[]) AND cardinality($3::uuid[]) >= 0"
    return f" AND cardinality($2::uuid[]) >= 0 AND t.{theirs} = ANY($3::uuid[])"
