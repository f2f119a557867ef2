"""The roster as of an instant, from the change feed's rows (``change_log``).

Each numbered change holds its row's content after the change, so a row's versions are its
changes: version *k* is valid from its ``effective_at`` until the next one's (an archive ends
it). ``effective_at`` is when the run read its source (the fetcher's run event, on a retained
topic), never a wall clock: a replay rebuilds the same history. "As of T" is therefore the roster
the source had given rostersync by T, as the writer applied it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import orjson

# Each enrollment ever in the class: its latest version at the instant, kept if still in it.
MEMBERS_SQL = """
SELECT v.internal_id, v.sourced_id, v.record, u.sourced_id AS user_sourced_id
FROM (
    SELECT DISTINCT ON (c.internal_id) c.internal_id, c.sourced_id, c.operation, c.record,
           c.class_id
    FROM change_log c
    WHERE c.tenant_id = $1 AND c.entity = 'enrollments'
      AND c.effective_at <= $3
      AND c.internal_id IN (SELECT internal_id FROM change_log WHERE tenant_id = $1
                            AND class_id = $2 AND entity = 'enrollments')
    ORDER BY c.internal_id, c.seq DESC
) v
LEFT JOIN users u ON u.tenant_id = $1 AND u.internal_id = (v.record ->> 'user_internal_id')::uuid
WHERE v.operation <> 'archive' AND v.class_id = $2
ORDER BY v.sourced_id
"""
# A class named by its sourcedId: the one in the tenant's classes, archived or not.
CLASS_SQL = "SELECT internal_id FROM classes WHERE tenant_id = $1 AND sourced_id = $2"


async def class_id(conn: asyncpg.Connection, tenant: str, class_ref: str) -> UUID | None:
    """A class's internal id from its internal id or its sourcedId (None: no such class)."""
    try:
        return UUID(class_ref)
    except ValueError:
        found: UUID | None = await conn.fetchval(CLASS_SQL, tenant, class_ref)
        return found


async def enrollments_as_of(
    conn: asyncpg.Connection, tenant: str, class_internal_id: UUID, at: datetime
) -> list[dict[str, Any]]:
    """The class's enrollments at ``at``: sourcedId, user, role, and the rest of the row."""
    rows = await conn.fetch(MEMBERS_SQL, tenant, class_internal_id, at)
    members = []
    for r in rows:
        record = orjson.loads(r["record"]) if isinstance(r["record"], str) else r["record"]
        members.append({
            "sourced_id": r["sourced_id"], "internal_id": str(r["internal_id"]),
            "user_internal_id": record.get("user_internal_id"),
            "user_sourced_id": r["user_sourced_id"], "role": record.get("role"),
            "primary": record.get("is_primary"), "begin_date": record.get("begin_date"),
            "end_date": record.get("end_date"),
        })  # fmt: skip
    return members
