"""Nothing active points at an archived row: what archiving a row does to what points at it.

Driven by the pointer catalogue (references.py), transitively:
- a row whose *required* pointer targets an archived row is archived too (a user's enrollments,
  demographics, profiles and roles; a class's enrollments; a closed school's classes, courses,
  enrollments and roles; a course's classes);
- an *optional* pointer to it is cleared, and the row's content hash with it, so the next run
  sends the record whole and the pointer comes back once its target does;
- link rows that belong to it or point at it are removed (terms of a class, a user's orgs and
  guardians, and guardian links to the user).
What still points at a missing or archived row is counted after every run (dangling.py).
"""

from __future__ import annotations

from uuid import UUID

import asyncpg
from rostersync_libs.events import EntityType

from rostersync_writer.references import LINKS, POINTERS, TABLE_OF, LinkPointer


async def cascade(
    conn: asyncpg.Connection, tenant: str, entity: EntityType, ids: list[UUID]
) -> None:
    """These rows of ``entity`` were archived: archive, clear and unlink what points at them."""
    queue: list[tuple[EntityType, list[UUID]]] = [(entity, ids)]
    while queue:
        target, archived = queue.pop()
        if not archived:
            continue
        for pointer in POINTERS:
            if pointer.target is not target:
                continue
            if pointer.required:
                rows = await conn.fetch(
                    f"UPDATE {pointer.table} SET archived_at = now(), updated_at = now()"
                    f" WHERE tenant_id = $1 AND {pointer.column} = ANY($2::uuid[])"
                    " AND archived_at IS NULL RETURNING internal_id",
                    tenant,
                    archived,
                )
                queue.append((pointer.entity, [r["internal_id"] for r in rows]))
            else:
                await conn.execute(
                    f"UPDATE {pointer.table} SET {pointer.column} = NULL, content_hash = '',"
                    f" updated_at = now() WHERE tenant_id = $1 AND {pointer.column} = ANY($2::uuid[])",
                    tenant,
                    archived,
                )
        for link in LINKS:
            if link.owner is target:
                await conn.execute(
                    f"DELETE FROM {link.table} WHERE tenant_id = $1"
                    f" AND {link.owner_column} = ANY($2::uuid[])",
                    tenant,
                    archived,
                )
            if link.target is target:
                await _unlink(conn, tenant, link, archived)


async def _unlink(
    conn: asyncpg.Connection, tenant: str, link: LinkPointer, targets: list[UUID]
) -> None:
    """Remove links to these rows; their owners' hashes are cleared so the next run sends the
    owners whole and the links come back once their targets do."""
    rows = await conn.fetch(
        f"DELETE FROM {link.table} WHERE tenant_id = $1 AND {link.target_column} = ANY($2::uuid[])"
        f" RETURNING {link.owner_column} AS owner",
        tenant,
        targets,
    )
    if rows:
        await conn.execute(
            f"UPDATE {TABLE_OF[link.owner]} SET content_hash = '', updated_at = now()"
            " WHERE tenant_id = $1 AND internal_id = ANY($2::uuid[])",
            tenant,
            list({r["owner"] for r in rows}),
        )


async def unlink_rejected(conn: asyncpg.Connection, tenant: str, run_id: UUID) -> None:
    """The run is complete: records it rejected that have no active row are gone for what still
    points at them optionally (a guardian's link to a refused student, a school's parent)."""
    rows = await conn.fetch(
        "SELECT entity, array_agg(internal_id) AS ids FROM run_rejections WHERE tenant_id = $1"
        " AND run_id = $2 AND internal_id IS NOT NULL GROUP BY entity",
        tenant,
        run_id,
    )
    for row in rows:
        entity = EntityType(row["entity"])
        active = await conn.fetch(
            f"SELECT internal_id FROM {TABLE_OF[entity]} WHERE tenant_id = $1"
            " AND internal_id = ANY($2::uuid[]) AND archived_at IS NULL",
            tenant,
            row["ids"],
        )
        kept = {r["internal_id"] for r in active}
        await cascade(conn, tenant, entity, [i for i in row["ids"] if i not in kept])
