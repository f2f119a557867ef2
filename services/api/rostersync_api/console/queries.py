"""What the console reads that the API's documents do not give as it needs."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

SEARCH_REJECTIONS_SQL = """
SELECT stage, entity, sourced_id, origin_file, origin_row, findings
FROM rejected_records
WHERE tenant_id = $1 AND run_id = $2
  AND ($3::text IS NULL OR sourced_id ILIKE $3 OR entity ILIKE $3 OR origin_file ILIKE $3
       OR findings::text ILIKE $3)
ORDER BY origin_file, origin_row LIMIT $4
"""


def _like(words: str) -> str | None:
    words = words.strip()
    if not words:
        return None
    escaped = words.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def search_rejections(
    conn: asyncpg.Connection, tenant: str, run_id: UUID, words: str, limit: int
) -> list[Any]:
    """The run's rejected records whose id, entity, file or reasons contain ``words``."""
    return list(await conn.fetch(SEARCH_REJECTIONS_SQL, tenant, run_id, _like(words), limit))


async def was_requested(conn: asyncpg.Connection, control: str, tenant: str, run_id: UUID) -> bool:
    """A run asked for (its command is in the operator audit) that no stage has begun yet."""
    found: bool = await conn.fetchval(
        f'SELECT EXISTS (SELECT 1 FROM "{control}".operator_audit'
        " WHERE tenant_id = $1 AND run_id = $2)",
        tenant, run_id,
    )  # fmt: skip
    return found


async def decision_sent(conn: asyncpg.Connection, control: str, tenant: str, run_id: UUID) -> bool:
    """A hold decision is on its way (audited, sent) though the writer may not have applied it:
    the page offers no second one (the API would refuse it, 409)."""
    sent: bool = await conn.fetchval(
        f'SELECT EXISTS (SELECT 1 FROM "{control}".operator_audit WHERE tenant_id = $1'
        " AND run_id = $2 AND action IN ('hold_approve', 'hold_discard'))",
        tenant, run_id,
    )  # fmt: skip
    return sent
