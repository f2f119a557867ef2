"""The validation report of a run: totals per file and code, the first findings of each code,
and every finding as CSV (streamed by PostgreSQL's COPY, whatever the number)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg

from rostersync_libs.run_reports.status import STATE_COLUMNS, STATE_JOINS

RUN_SQL = f"""
SELECT r.fetch_status, r.oneroster_version, r.file_counts, r.skipped_files,
       r.unchanged_counts, r.skipped_by_selection, r.trimmed_by_selection, r.first_event_at, r.completed_at, {STATE_COLUMNS}
FROM sync_runs r
{STATE_JOINS}
WHERE r.tenant_id = $1 AND r.run_id = $2
"""

BY_FILE_SQL = """
SELECT coalesce(file, '') AS file,
       count(*) FILTER (WHERE severity = 'error') AS errors,
       count(*) FILTER (WHERE severity = 'warning') AS warnings,
       count(DISTINCT (entity, sourced_id, row)) FILTER (WHERE rejected) AS rejected
FROM findings WHERE tenant_id = $1 AND run_id = $2
GROUP BY 1 ORDER BY 1
"""

BY_CODE_SQL = """
SELECT code, severity, count(*) AS n
FROM findings WHERE tenant_id = $1 AND run_id = $2
GROUP BY code, severity ORDER BY severity, n DESC, code
"""

FIRST_SQL = """
SELECT code, severity, file, row, column_name, value, message FROM (
    SELECT f.*, row_number() OVER (PARTITION BY code ORDER BY file, row NULLS FIRST) AS k
    FROM findings f WHERE tenant_id = $1 AND run_id = $2
) ranked WHERE k <= $3 ORDER BY severity, code, file, row NULLS FIRST
"""


def formula_safe(column: str, name: str | None = None) -> str:
    """SQL for a text column as a spreadsheet must show it: as text (OWASP CSV injection).

    A cell beginning with = + - @ tab or carriage return is a formula to Excel, LibreOffice and
    Google Sheets; a leading single quote makes it text. NULL stays NULL.
    """
    quote = "''''"  # SQL for a string holding one single quote
    return (
        f"CASE WHEN left({column}, 1) IN ('=', '+', '-', '@', chr(9), chr(13))"
        f" THEN {quote} || {column} ELSE {column} END AS {name or column}"
    )


# Every text column is neutralised, not only those known to carry source data (value,
# sourced_id, message, file and column names as found in the bundle): a safe cell costs nothing.
CSV_SQL = f"""
SELECT {formula_safe("severity")}, {formula_safe("code")}, {formula_safe("file")}, f.row,
       {formula_safe("column_name", "column")}, {formula_safe("value")}, {formula_safe("message")},
       {formula_safe("entity")}, {formula_safe("sourced_id")}, f.rejected, {formula_safe("stage")}
FROM findings f WHERE f.tenant_id = $1 AND f.run_id = $2
ORDER BY f.file, f.row NULLS FIRST, f.code
"""


async def run_summary(conn: asyncpg.Connection, tenant: str, run_id: UUID) -> Any:
    return await conn.fetchrow(RUN_SQL, tenant, run_id)


async def by_file(conn: asyncpg.Connection, tenant: str, run_id: UUID) -> list[Any]:
    return list(await conn.fetch(BY_FILE_SQL, tenant, run_id))


async def by_code(conn: asyncpg.Connection, tenant: str, run_id: UUID) -> list[Any]:
    return list(await conn.fetch(BY_CODE_SQL, tenant, run_id))


async def first_of_each_code(
    conn: asyncpg.Connection, tenant: str, run_id: UUID, limit: int
) -> list[Any]:
    return list(await conn.fetch(FIRST_SQL, tenant, run_id, limit))


async def export_csv(conn: asyncpg.Connection, tenant: str, run_id: UUID, path: Path) -> None:
    """Every finding of the run, as CSV with a header row."""
    await conn.copy_from_query(CSV_SQL, tenant, run_id, output=str(path), format="csv", header=True)


# The run's rejected records: where each came from, and every reason (the findings, as JSON).
REJECTED_CSV_SQL = f"""
SELECT {formula_safe("stage")}, {formula_safe("entity")}, {formula_safe("sourced_id")},
       {formula_safe("origin_file", "file")}, x.origin_row AS row,
       {formula_safe("x.findings::text", "reasons")}
FROM rejected_records x WHERE x.tenant_id = $1 AND x.run_id = $2
ORDER BY x.origin_file, x.origin_row NULLS FIRST, x.id
"""


async def stream_csv(
    pool: asyncpg.Pool, tenant: str, run_id: UUID, sql: str = CSV_SQL
) -> AsyncIterator[bytes]:
    """The run's findings (or, with ``REJECTED_CSV_SQL``, its rejected records) as CSV chunks,
    as PostgreSQL's COPY produces them: never the whole file in memory (a large district's run
    can have millions of findings)."""
    chunks: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=16)  # back-pressure on COPY

    async def copy() -> None:
        try:
            async with pool.acquire() as conn:
                await conn.copy_from_query(sql, tenant, run_id, output=chunks.put,
                                           format="csv", header=True)  # fmt: skip
        finally:
            await chunks.put(None)

    task = asyncio.create_task(copy())
    try:
        while (chunk := await chunks.get()) is not None:
            yield bytes(chunk)  # COPY hands out bytearrays; a response takes bytes
        await task  # raises what stopped the COPY
    finally:
        task.cancel()


def describe(finding: Any) -> str:
    where = ":".join(str(p) for p in (finding["file"], finding["row"]) if p is not None)
    column = f" column {finding['column_name']}" if finding["column_name"] else ""
    return f"{finding['severity']:<7} [{finding['code']}] {where}{column}: {finding['message']}"


def file_totals(
    files: list[Any], counts: dict[str, int]
) -> list[tuple[str | None, Any, int, int, int]]:
    """(file, rows published, errors, warnings, rejected records) per file of the run: the files
    with findings (``by_file``), then the published files without any."""
    with_findings = {f["file"] for f in files}
    return [
        (f["file"] or None, counts.get(f["file"]), f["errors"], f["warnings"], f["rejected"])
        for f in files
    ] + [(name, n, 0, 0, 0) for name, n in counts.items() if name not in with_findings]
