"""Upserting accepted records of one entity: COPY into a temporary stage, one ``INSERT … SELECT …
ON CONFLICT`` per table, then the records' link rows, inside the caller's transaction."""

from __future__ import annotations

from collections import defaultdict
from uuid import UUID

import asyncpg
from rostersync_libs.events import EntityType, RecordEvent

from rostersync_writer.lifecycle import cancel_staged
from rostersync_writer.memberships import replace_links
from rostersync_writer.tables import TABLES


async def upsert_rows(
    conn: asyncpg.Connection,
    entity: EntityType,
    upserts: list[tuple[RecordEvent, UUID]],
    *,
    staged: bool,
) -> int:
    """Write these records (event, first seen run); returns how many rows changed."""
    if not upserts:
        return 0
    table = TABLES[entity]
    archived = await _archived(conn, upserts) if entity is EntityType.USER else {}
    stage = f"stage_{table.name}"
    await conn.execute(
        f"CREATE TEMP TABLE {stage} (LIKE {table.name} INCLUDING DEFAULTS) ON COMMIT DROP"
    )
    await conn.copy_records_to_table(
        stage,
        records=[table.full_row(e, first) for e, first in upserts],
        columns=table.all_columns,
    )
    # The internal id is the person; when the SIS re-issues sourcedIds the mapper keeps the id
    # (``_rekeyedFrom``) and the row follows it to its new sourcedId.
    rekeyed = [
        (e.tenant, e.internal_id, e.sourced_id) for e, _ in upserts if "_rekeyedFrom" in e.payload
    ]
    if rekeyed:
        await conn.executemany(table.rekey_sql(), rekeyed)
    applied = {r["internal_id"] for r in await conn.fetch(table.upsert_sql(stage))}
    await conn.execute(f"DROP TABLE {stage}")
    await replace_links(conn, entity, [e for e, _ in upserts if e.internal_id in applied])
    if staged:
        await cancel_staged(conn, [e for e, _ in upserts])
    if archived:
        await _restore_demographics(conn, {i: at for i, at in archived.items() if i in applied})
    return len(applied)


async def _archived(
    conn: asyncpg.Connection, upserts: list[tuple[RecordEvent, UUID]]
) -> dict[UUID, tuple[str, object]]:
    """Archived users among these records: when they were archived, to restore with them what
    was archived with them."""
    by_tenant: dict[str, list[UUID]] = defaultdict(list)
    for e, _ in upserts:
        if e.internal_id is not None:
            by_tenant[e.tenant].append(e.internal_id)
    found: dict[UUID, tuple[str, object]] = {}
    for tenant, ids in by_tenant.items():
        rows = await conn.fetch(
            "SELECT internal_id, archived_at FROM users WHERE tenant_id = $1"
            " AND internal_id = ANY($2::uuid[]) AND archived_at IS NOT NULL",
            tenant,
            ids,
        )
        found.update((r["internal_id"], (tenant, r["archived_at"])) for r in rows)
    return found


async def _restore_demographics(
    conn: asyncpg.Connection, restored: dict[UUID, tuple[str, object]]
) -> None:
    """A user who comes back gets back the demographics archived with them (same moment: the
    cascade ran in the same transaction, so ``archived_at`` is equal), not older archives."""
    if restored:
        await conn.execute(
            "UPDATE demographics AS d SET archived_at = NULL, updated_at = now()"
            " FROM unnest($1::text[], $2::uuid[], $3::timestamptz[]) AS r(tenant, id, at)"
            " WHERE d.tenant_id = r.tenant AND d.user_internal_id = r.id AND d.archived_at = r.at",
            [tenant for tenant, _ in restored.values()],
            list(restored),
            [at for _, at in restored.values()],
        )
