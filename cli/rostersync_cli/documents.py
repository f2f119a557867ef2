"""``--json``: one JSON document per command, with stable keys, for scripts.

Keys are only ever added, never renamed or removed. Times are ISO 8601, ids strings, counts
numbers; a run's ``status`` is the honest one of ``status.py`` and ``exit_code`` what the command
exits with.
"""

from __future__ import annotations

import sys
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from rostersync_cli import reports, validation_report
from rostersync_cli.holds import list_holds
from rostersync_cli.status import RunState

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


def emit(document: dict[str, Any]) -> None:
    sys.stdout.write(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n")


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
    run = await validation_report.run_summary(conn, tenant, run_id)
    if run is None:
        return None
    counts = _json(run["file_counts"]) or {}
    files = await validation_report.by_file(conn, tenant, run_id)
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
            for totals in validation_report.file_totals(files, counts)
        ],
        "skipped_files": _json(run["skipped_files"]) or {},
        "unchanged": _json(run["unchanged_counts"]) or {},
        "skipped_by_selection": _json(run["skipped_by_selection"]) or {},
        "trimmed_by_selection": _json(run["trimmed_by_selection"]) or {},
        "findings_by_code": [
            {"code": c["code"], "severity": c["severity"], "count": c["n"]}
            for c in await validation_report.by_code(conn, tenant, run_id)
        ],
        "first_findings": [
            {key: f[column] for key, column in FINDING_KEYS.items()}
            for f in await validation_report.first_of_each_code(conn, tenant, run_id, limit)
        ],
        "rows": [
            {"table": r["entity"], "active": r["active"], "archived": r["archived"]}
            for r in await reports.landed(conn, tenant)
        ],
    }


async def runs_document(conn: asyncpg.Connection, tenant: str | None, limit: int) -> dict[str, Any]:
    return {
        "runs": [
            {
                "run_id": str(r["run_id"]),
                "tenant": r["tenant_id"],
                "source": r["source"],
                **_state(r),
                "started_at": r["first_event_at"],
                "published": _json(r["published_counts"]),
                "unchanged": sum((_json(r["unchanged_counts"]) or {}).values()),
                "rejected_records": r["rejected"],
            }
            for r in await reports.list_runs(conn, tenant, limit)
        ]
    }


async def holds_document(
    conn: asyncpg.Connection, tenant: str | None, everything: bool
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
            for r in await list_holds(conn, tenant, everything)
        ]
    }
