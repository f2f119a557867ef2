"""A tenant's roster in one schema, compared row for row with the same tenant's in another.

Used by ``benchmarks/fault_matrix.py``. What is compared is the business content of every roster
table (``rostersync_libs.run_reports.queries.ROSTER_TABLES``) and link table (``LINK_TABLES``): every column
but the tenant and what only says *when* or *by which run* a row was written
(``first_seen_run``, ``last_seen_run``, ``updated_at`` and any other ``timestamptz`` except
``source_date_last_modified``); ``archived_at`` is compared as archived yes/no. Internal ids are
compared: they are ``uuid5(tenant, entity, sourcedId)`` (docs/identity.md), the same in any schema.

Entity tables are keyed by ``sourced_id``; a link table has no key of its own, so its rows are
compared as a multiset (a duplicated link row is a difference).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import asyncpg
from rostersync_libs.run_reports.queries import LINK_TABLES, ROSTER_TABLES

# Columns that say when or by which run a row was written, never what it says.
WHEN_COLUMNS = frozenset({"tenant_id", "first_seen_run", "last_seen_run", "updated_at"})
KEPT_TIMESTAMPS = frozenset({"source_date_last_modified"})
EXAMPLES = 3

# table -> key -> digest of the row's content (link tables: digest -> count, as text)
Snapshot = dict[str, dict[str, str]]


@dataclass
class TableDiff:
    table: str
    clean: int
    trial: int
    missing: list[str] = field(default_factory=list)  # in the clean run's roster only
    extra: list[str] = field(default_factory=list)  # in the trial's only
    changed: list[str] = field(default_factory=list)  # both, different content

    @property
    def equal(self) -> bool:
        return not (self.missing or self.extra or self.changed)

    def summary(self) -> dict[str, Any]:
        return {
            "clean_rows": self.clean,
            "trial_rows": self.trial,
            "missing": len(self.missing),
            "extra": len(self.extra),
            "changed": len(self.changed),
        }


async def content_columns(conn: asyncpg.Connection, schema: str, table: str) -> list[str]:
    """SQL expressions for the columns compared (see the module's docstring)."""
    rows = await conn.fetch(
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
        schema,
        table,
    )
    columns = []
    for row in rows:
        name, kind = row["column_name"], row["data_type"]
        when = kind.startswith("timestamp") and name not in KEPT_TIMESTAMPS
        if name == "archived_at":
            columns.append("(archived_at IS NOT NULL)")
        elif not (when or name in WHEN_COLUMNS or name == "run_id" or name.endswith("_run")):
            columns.append(f'"{name}"')
    return columns


async def snapshot(conn: asyncpg.Connection, schema: str, tenant: str) -> Snapshot:
    """Every roster row of ``tenant`` in ``schema``, as key -> digest of its content."""
    taken: Snapshot = {}
    for table in (*ROSTER_TABLES, *LINK_TABLES):
        columns = await content_columns(conn, schema, table)
        digest = f"md5(ROW({', '.join(columns)})::text)"
        if table in LINK_TABLES:
            sql = (
                f'SELECT {digest} AS key, count(*)::text AS value FROM "{schema}"."{table}"'
                " WHERE tenant_id = $1 GROUP BY 1"
            )
        else:
            sql = (
                f'SELECT sourced_id AS key, {digest} AS value FROM "{schema}"."{table}"'
                " WHERE tenant_id = $1"
            )
        taken[table] = {r["key"]: r["value"] for r in await conn.fetch(sql, tenant)}
    return taken


def rows_of(table: str, taken: dict[str, str]) -> int:
    return sum(int(n) for n in taken.values()) if table in LINK_TABLES else len(taken)


def compare(clean: Snapshot, trial: Snapshot) -> list[TableDiff]:
    diffs = []
    for table, want in clean.items():
        got = trial.get(table, {})
        diffs.append(
            TableDiff(
                table=table,
                clean=rows_of(table, want),
                trial=rows_of(table, got),
                missing=sorted(want.keys() - got.keys()),
                extra=sorted(got.keys() - want.keys()),
                changed=sorted(k for k in want.keys() & got.keys() if want[k] != got[k]),
            )
        )
    return diffs


async def examples(
    conn: asyncpg.Connection, clean_schema: str, trial_schema: str, tenant: str, diff: TableDiff
) -> list[dict[str, Any]]:
    """A few differing rows of an entity table as both schemas hold them (JSON text)."""
    if diff.table in LINK_TABLES:
        return []
    keys = [
        *(("missing", k) for k in diff.missing[:EXAMPLES]),
        *(("extra", k) for k in diff.extra[:EXAMPLES]),
        *(("changed", k) for k in diff.changed[:EXAMPLES]),
    ]
    found = []
    for kind, key in keys:
        sql = "SELECT row_to_json(t)::text FROM {}.{} t WHERE tenant_id = $1 AND sourced_id = $2"
        found.append(
            {
                "kind": kind,
                "sourced_id": key,
                "clean": await conn.fetchval(
                    sql.format(f'"{clean_schema}"', f'"{diff.table}"'), tenant, key
                ),
                "trial": await conn.fetchval(
                    sql.format(f'"{trial_schema}"', f'"{diff.table}"'), tenant, key
                ),
            }
        )
    return found
