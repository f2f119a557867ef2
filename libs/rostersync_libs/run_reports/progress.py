"""How far a run is, per stage: records fetched, validated, mapped and written so far.

``fetched``, ``validated`` and ``mapped`` come from ``run_stage_progress``, which the fetcher,
validator and mapper write about once a second while a run runs (stage_progress.py): at-least-once
approximations, good for watching a run move. ``written`` counts the rows the run last saw (the
writer's tables), and ``published`` and ``rejected_by_stage`` are the writer's own records: those
are the run's final numbers once it has ended.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
import orjson

from rostersync_libs.store.tables import ENTITY_TABLES

REJECTED_SQL = """
SELECT stage, count(*) AS n FROM rejected_records
WHERE tenant_id = $1 AND run_id = $2 GROUP BY stage
"""

# Per stage and run: its partitions' counts summed (a missing table: no counts yet).
STAGES_SQL = """
SELECT run_id, stage, sum(passed)::bigint AS passed, sum(rejected)::bigint AS rejected,
       max(updated_at) AS updated_at
FROM run_stage_progress WHERE tenant_id = $1 AND run_id = ANY($2::uuid[])
GROUP BY run_id, stage
"""

WRITTEN_SQL = "SELECT " + " + ".join(
    f"(SELECT count(*) FROM {t} WHERE tenant_id = $1 AND last_seen_run = $2)"
    for t in ENTITY_TABLES.values()
)


def _json(value: Any) -> Any:
    """A jsonb column as asyncpg returns it (text) as its value."""
    return orjson.loads(value) if isinstance(value, str | bytes) else value


async def stage_counts(
    conn: asyncpg.Connection, tenant: str, run_ids: list[UUID]
) -> dict[UUID, dict[str, dict[str, Any]]]:
    """run → stage → passed, rejected, updated_at (what each stage reported so far)."""
    try:
        rows = await conn.fetch(STAGES_SQL, tenant, run_ids)
    except asyncpg.UndefinedTableError:  # a schema the writer has not migrated to 0018 yet
        return {}
    counts: dict[UUID, dict[str, dict[str, Any]]] = {}
    for r in rows:
        counts.setdefault(r["run_id"], {})[r["stage"]] = {
            "passed": r["passed"], "rejected": r["rejected"], "updated_at": r["updated_at"]
        }  # fmt: skip
    return counts


def so_far(
    stages: dict[str, dict[str, Any]], published: dict[str, int] | None, written: int | None
) -> dict[str, Any]:
    """The four headline numbers: records each stage has got through (passed or rejected)."""

    def through(stage: str) -> int:
        counted = stages.get(stage)
        return counted["passed"] + counted["rejected"] if counted else 0

    fetched = max(through("fetcher"), sum((published or {}).values()))
    return {
        "fetched": fetched,
        "validated": through("validator"),
        "mapped": through("mapper"),
        "written": written,
        "stages": stages,
    }


async def progress(conn: asyncpg.Connection, tenant: str, run_id: UUID) -> dict[str, Any]:
    """How far the run is: what the fetcher published (all of it once it has said so), what each
    stage got through so far, what the writer has written of it so far (rows this run last saw),
    and what each stage rejected so far."""
    run = await conn.fetchrow(
        "SELECT published_counts FROM sync_runs WHERE tenant_id = $1 AND run_id = $2",
        tenant, run_id,
    )  # fmt: skip
    published = _json(run["published_counts"]) if run else None
    written = await conn.fetchval(WRITTEN_SQL, tenant, run_id)
    rejected = {r["stage"]: r["n"] for r in await conn.fetch(REJECTED_SQL, tenant, run_id)}
    stages = (await stage_counts(conn, tenant, [run_id])).get(run_id, {})
    return {
        "published": published,
        **so_far(stages, published, written),
        "rejected_by_stage": rejected,
    }
