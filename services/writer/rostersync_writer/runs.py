"""Sync runs as the writer sees them: started on their first event, complete on their markers."""

from __future__ import annotations

from uuid import UUID

import asyncpg
import orjson
from rostersync_libs.envelope import Envelope

START_SQL = (
    "INSERT INTO sync_runs (tenant_id, run_id, source) VALUES ($1, $2, $3)"
    " ON CONFLICT (tenant_id, run_id) DO NOTHING"
)
MARKER_SQL = (
    "INSERT INTO run_markers"
    " (tenant_id, run_id, partition, origin_partition, origin_count, fanout)"
    " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING"
)
# A partition is complete once the markers of all its origins are in; the run once all are.
COMPLETE_SQL = """
WITH partitions AS (
    SELECT partition, max(fanout) AS fanout
    FROM run_markers WHERE tenant_id = $1 AND run_id = $2
    GROUP BY partition
    HAVING count(*) >= max(origin_count)
)
UPDATE sync_runs SET status = CASE WHEN status IN ('failed', 'cancelled') THEN status
        WHEN $4 THEN 'failed' ELSE 'completed' END,
    completed_at = coalesce(completed_at, now()), published_counts = $3::jsonb
WHERE tenant_id = $1 AND run_id = $2 AND status IN ('running', 'failed', 'cancelled')
  AND NOT EXISTS (SELECT 1 FROM run_outcomes o WHERE o.tenant_id = $1 AND o.run_id = $2)
  AND (SELECT count(*) FROM partitions) >= (SELECT coalesce(max(fanout), 0) FROM partitions)
  AND (SELECT count(*) FROM partitions) > 0
RETURNING run_id
"""


async def note_runs(conn: asyncpg.Connection, events: list[Envelope]) -> None:
    """Make sure every run seen in the batch has its row."""
    seen = {(e.tenant, e.run_id, e.source) for e in events}
    if seen:
        await conn.executemany(START_SQL, list(seen))


async def record_markers(
    conn: asyncpg.Connection, markers: list[tuple[int, Envelope]]
) -> list[tuple[str, UUID]]:
    """Store markers (with the partition they arrived on); returns the runs now complete."""
    rows = []
    for partition, event in markers:
        assert event.marker is not None
        m = event.marker
        rows.append(
            (event.tenant, event.run_id, partition, m.origin_partition, m.origin_count, m.fanout)
        )
    if not rows:
        return []
    await conn.executemany(MARKER_SQL, rows)
    completed: list[tuple[str, UUID]] = []
    for event in {(e.tenant, e.run_id): e for _, e in markers}.values():
        assert event.marker is not None
        done = await conn.fetchval(
            COMPLETE_SQL,
            event.tenant,
            event.run_id,
            orjson.dumps(event.marker.counts).decode(),
            event.marker.aborted,
        )
        if done is not None:
            completed.append((event.tenant, event.run_id))
    return completed
