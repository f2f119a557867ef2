"""Runs that need a person, turned into one notification per target (idempotent).

A run *failed*, is *held* by the safety threshold, was *cancelled* by an operator, or *completed*
with more rejected records than the tenant's ``rejections_over``. Only recent runs (a day) are
looked at: turning notifications on does not send the history.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson
from rostersync_libs.notify_config import NotifyEvent
from rostersync_libs.run_reports.status import STATE_COLUMNS, STATE_JOINS, RunState, RunStatus
from rostersync_libs.tenants import Tenant

RECENT_SQL = f"""
SELECT r.run_id, r.source, r.first_event_at, {STATE_COLUMNS},
       (SELECT count(*) FROM rejected_records x
         WHERE x.tenant_id = r.tenant_id AND x.run_id = r.run_id) AS rejected
FROM sync_runs r {STATE_JOINS}
WHERE r.tenant_id = $1 AND r.first_event_at > now() - interval '1 day'
  -- a run already notified is not looked at again (each poll would re-insert its rows)
  AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.tenant_id = r.tenant_id
                  AND n.run_id = r.run_id)
"""

INSERT_SQL = """
INSERT INTO notifications (tenant_id, run_id, event, target, detail)
VALUES ($1, $2, $3, $4, $5::jsonb) ON CONFLICT DO NOTHING
"""


def event_of(row: Any, rejections_over: int) -> NotifyEvent | None:
    state = RunState.of(row)
    if state.status is RunStatus.FAILED:
        return "failed"
    if state.status is RunStatus.HELD:
        return "held"
    if state.status is RunStatus.CANCELLED:
        return "cancelled"
    if state.status is RunStatus.COMPLETED and row["rejected"] > rejections_over:
        return "rejections"
    return None


async def find(conn: asyncpg.Connection, tenants: list[Tenant]) -> int:
    """Notifications made for runs that need them; returns how many were new."""
    made = 0
    for tenant in tenants:
        notify = tenant.notify
        if not notify.webhooks and not notify.email:
            continue
        for row in await conn.fetch(RECENT_SQL, tenant.id):
            event = event_of(row, notify.rejections_over)
            if event is None:
                continue
            state = RunState.of(row)
            detail = orjson.dumps({
                "tenant": tenant.id, "run_id": str(row["run_id"]), "source": row["source"],
                "event": event, "status": str(state.status), "detail": state.detail,
                "rejected_records": row["rejected"],
            }).decode()  # fmt: skip
            for target in notify.targets(event):
                done = await conn.execute(
                    INSERT_SQL, tenant.id, row["run_id"], event, target, detail
                )
                made += done.endswith(" 1")
    return made
