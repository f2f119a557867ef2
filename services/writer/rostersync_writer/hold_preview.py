"""What a held run would archive, record by record: the writer's own sweep and staged deletes
(lifecycle.py), read without changing anything, for an operator deciding the hold."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
import orjson
from rostersync_libs.events import EntityType

from rostersync_writer.lifecycle import staged_where, sweep_where
from rostersync_writer.tables import TABLES


async def would_archive(
    conn: asyncpg.Connection, tenant: str, run_id: UUID, sample: int
) -> dict[str, dict[str, Any]] | None:
    """Per entity, up to ``sample`` sourcedIds the run would archive and the outcome's numbers;
    None when the run has no outcome (not complete, or not of this tenant)."""
    outcome = await conn.fetchrow(
        "SELECT source, bulk_entities, numbers FROM run_outcomes WHERE tenant_id = $1 AND run_id = $2",
        tenant, run_id,
    )  # fmt: skip
    if outcome is None:
        return None
    bulk = {EntityType(e) for e in orjson.loads(outcome["bulk_entities"])}
    numbers = orjson.loads(outcome["numbers"])
    found: dict[str, dict[str, Any]] = {}
    for entity, table in TABLES.items():
        if entity.value not in numbers:
            continue
        ids = [r["sourced_id"] for r in await conn.fetch(
            f"SELECT t.sourced_id {staged_where(table.name)} ORDER BY 1 LIMIT $4",
            tenant, run_id, entity.value, sample,
        )]  # fmt: skip
        if entity in bulk and len(ids) < sample:
            ids += [r["sourced_id"] for r in await conn.fetch(
                f"SELECT sourced_id {sweep_where(table.name)} ORDER BY 1 LIMIT $4",
                tenant, outcome["source"], run_id, sample - len(ids),
            )]  # fmt: skip
        found[entity.value] = {**numbers[entity.value], "sample": ids}
        school = SCHOOL_OF.get(entity)
        if school is not None:
            staged = f"SELECT {school.replace('x.', 't.')} AS school {staged_where(table.name)}"
            swept = f"SELECT {school} AS school FROM (SELECT * {sweep_where(table.name)}) x"
            by_school = await _per_school(conn, staged, (tenant, run_id, entity.value))
            if entity in bulk:
                for key, n in (
                    await _per_school(conn, swept, (tenant, outcome["source"], run_id))
                ).items():
                    by_school[key] = by_school.get(key, 0) + n
            found[entity.value]["by_school"] = dict(
                sorted(by_school.items(), key=lambda kv: -kv[1])
            )
    return found


# How a record of each entity names its school: classes and enrollments by a column, users by
# a membership (a user of several schools is counted under one of them).
SCHOOL_OF = {
    EntityType.CLASS: "x.school_internal_id",
    EntityType.ENROLLMENT: "x.school_internal_id",
    EntityType.USER: "(SELECT min(m.org_internal_id::text)::uuid FROM user_orgs m"
    " WHERE m.tenant_id = x.tenant_id AND m.user_internal_id = x.internal_id)",
}


async def _per_school(
    conn: asyncpg.Connection, rows_sql: str, args: tuple[object, ...]
) -> dict[str, int]:
    """Rows of ``rows_sql`` (a ``school`` column of internal ids) counted per school sourcedId."""
    counted = await conn.fetch(
        f"SELECT coalesce(o.sourced_id, '(no school)') AS school, count(*) AS n FROM ({rows_sql})"
        " r LEFT JOIN orgs o ON o.internal_id = r.school GROUP BY 1",
        *args,
    )
    return {row["school"]: row["n"] for row in counted}
