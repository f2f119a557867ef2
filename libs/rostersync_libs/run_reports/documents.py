"""Runs as JSON documents with stable keys: the CLI's ``--json`` and the admin API.

Keys are only ever added, never renamed or removed. Times are ISO 8601, ids strings, counts
numbers; a run's ``status`` is the honest one of ``status.py`` and ``exit_code`` what the command
exits with.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
import orjson

from rostersync_libs.run_reports import queries, validation
from rostersync_libs.run_reports.progress import WRITTEN_SQL, so_far, stage_counts
from rostersync_libs.run_reports.status import RunState, RunStatus

FILE_KEYS = ("file", "rows", "errors", "warnings", "rejected_records")
FINDING_KEYS = {
    "code": "code",
    "severity": "severity",
    "file": "file",
    "row": "row",
    "column": "column_name",
    "value": "value",
    "message": "message",
}


def _json(value: Any) -> Any:
    """A jsonb column as asyncpg returns it (text) as its value."""
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def _state(row: Any) -> dict[str, Any]:
    state = RunState.of(row)
    return {"status": str(state.status), "detail": state.detail, "exit_code": state.exit_code}


async def run_document(
    conn: asyncpg.Connection, tenant: str, run_id: UUID, limit: int
) -> dict[str, Any] | None:
    """``report --json`` and ``sync --wait --json``: the run, its findings, the tenant's rows."""
    run = await validation.run_summary(conn, tenant, run_id)
    if run is None:
        return None
    counts = _json(run["file_counts"]) or {}
    files = await validation.by_file(conn, tenant, run_id)
    return {
        "tenant": tenant,
        "run_id": str(run_id),
        **_state(run),
        "fetch_status": run["fetch_status"],
        "fetch_error": run["fetch_error"],
        "oneroster_version": run["oneroster_version"],
        "started_at": run["first_event_at"],
        "completed_at": run["completed_at"],
        "files": [
            dict(zip(FILE_KEYS, totals, strict=True))
            for totals in validation.file_totals(files, counts)
        ],
        "skipped_files": _json(run["skipped_files"]) or {},
        "unchanged": _json(run["unchanged_counts"]) or {},
        "skipped_by_selection": _json(run["skipped_by_selection"]) or {},
        "trimmed_by_selection": _json(run["trimmed_by_selection"]) or {},
        "findings_by_code": [
            {"code": c["code"], "severity": c["severity"], "count": c["n"]}
            for c in await validation.by_code(conn, tenant, run_id)
        ],
        "first_findings": [
            {key: f[column] for key, column in FINDING_KEYS.items()}
            for f in await validation.first_of_each_code(conn, tenant, run_id, limit)
        ],
        "rows": [
            {"table": r["entity"], "active": r["active"], "archived": r["archived"]}
            for r in await queries.landed(conn, tenant)
        ],
    }


async def runs_document(
    conn: asyncpg.Connection, tenant: str | None, limit: int, before: UUID | None = None
) -> dict[str, Any]:
    rows = await queries.list_runs(conn, tenant, limit, before)
    stages: dict[UUID, dict[str, dict[str, Any]]] = {}
    for each in {r["tenant_id"] for r in rows}:  # one query per tenant of the page
        stages |= await stage_counts(conn, each, [r["run_id"] for r in rows])
    runs = []
    for r in rows:
        state = _state(r)
        published = _json(r["published_counts"])
        # ``written`` (a count over the roster tables) only while the run runs: a finished
        # run's numbers are its report's.
        written = None
        if state["status"] == RunStatus.RUNNING:
            written = await conn.fetchval(WRITTEN_SQL, r["tenant_id"], r["run_id"])
        runs.append({
            "run_id": str(r["run_id"]),
            "tenant": r["tenant_id"],
            "source": r["source"],
            **state,
            "started_at": r["first_event_at"],
            "published": published,
            "unchanged": sum((_json(r["unchanged_counts"]) or {}).values()),
            "rejected_records": r["rejected"],
            "progress": so_far(stages.get(r["run_id"], {}), published, written),
        })  # fmt: skip
    return {"runs": runs}


async def holds_document(
    conn: asyncpg.Connection,
    tenant: str | None,
    everything: bool,
    limit: int = 50,
    before: UUID | None = None,
) -> dict[str, Any]:
    return {
        "outcomes": [
            {
                "run_id": str(r["run_id"]),
                "tenant": r["tenant_id"],
                "status": r["status"],
                "would_archive": _json(r["numbers"]),
                "threshold": round(float(r["threshold"]), 4),
            }
            for r in await queries.list_holds(conn, tenant, everything, limit, before)
        ]
    }


async def run_exists(conn: asyncpg.Connection, tenant: str, run_id: UUID) -> bool:
    found: bool = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM sync_runs WHERE tenant_id = $1 AND run_id = $2)",
        tenant, run_id,
    )  # fmt: skip
    return found


REJECTIONS_PAGE_SQL = """
SELECT id, stage, entity, sourced_id, origin_file, origin_row, findings
FROM rejected_records WHERE tenant_id = $1 AND run_id = $2 AND ($3::bigint IS NULL OR id > $3)
ORDER BY id LIMIT $4
"""


async def rejections_page(
    conn: asyncpg.Connection, tenant: str, run_id: UUID, limit: int, after: int | None
) -> dict[str, Any]:
    """One page of the run's rejected records; ``next`` is the ``after`` of the following one."""
    rows = await conn.fetch(REJECTIONS_PAGE_SQL, tenant, run_id, after, limit + 1)
    items = [
        {"stage": r["stage"], "entity": r["entity"], "sourced_id": r["sourced_id"],
         "file": r["origin_file"], "row": r["origin_row"], "findings": _json(r["findings"])}
        for r in rows[:limit]
    ]  # fmt: skip
    return {"items": items, "next": rows[limit - 1]["id"] if len(rows) > limit else None}
