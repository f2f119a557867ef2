"""Runs held by the safety threshold: list, preview what would be archived, approve or discard.

A decision is the same command the CLI sends (audited, then on the command topic; the writer
applies it in order, and a replay again). Deciding a run that is not held, or was decided, is a
409; a run the tenant does not have, a 404.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from rostersync_libs.commands import HoldDecision
from rostersync_libs.run_reports import documents
from rostersync_libs.run_reports.status import STATE_COLUMNS, STATE_JOINS, RunState, RunStatus
from rostersync_writer.hold_preview import would_archive

from rostersync_api import commands
from rostersync_api.auth import Principal, caller
from rostersync_api.errors import ApiError, not_found
from rostersync_api.known import known_tenant
from rostersync_api.state import state_of

router = APIRouter(prefix="/api/v1/tenants/{tenant_id}/holds", tags=["holds"])
Viewer = Annotated[Principal, Depends(caller("viewer"))]
Operator = Annotated[Principal, Depends(caller("operator"))]

RUN_STATE_SQL = f"""
SELECT {STATE_COLUMNS}, (SELECT count(*) FROM "{{control}}".operator_audit a
        WHERE a.tenant_id = r.tenant_id AND a.run_id = r.run_id
        AND a.action IN ('hold_approve', 'hold_discard')) AS decisions_sent
FROM sync_runs r {STATE_JOINS} WHERE r.tenant_id = $1 AND r.run_id = $2
"""


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2000, description="kept in the audit trail")


@router.get("")
async def list_holds(
    request: Request,
    tenant_id: str,
    who: Viewer,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[UUID | None, Query(description="the `next` of the previous page")] = None,
    everything: Annotated[bool, Query(description="every run outcome, not only holds")] = False,
) -> dict[str, Any]:
    state = state_of(request)
    await known_tenant(state, who, tenant_id)
    async with state.pool.acquire() as conn:
        found = await documents.holds_document(conn, tenant_id, everything, limit + 1, before)
    items = found["outcomes"]
    return {
        "items": items[:limit],
        "next": items[limit - 1]["run_id"] if len(items) > limit else None,
    }


@router.get("/{run_id}")
async def preview(
    request: Request,
    tenant_id: str,
    run_id: UUID,
    who: Viewer,
    sample: Annotated[int, Query(ge=0, le=200)] = 20,
) -> dict[str, Any]:
    """What the run would archive, per entity: counts, share, and a sample of sourcedIds."""
    state = state_of(request)
    await known_tenant(state, who, tenant_id)
    async with state.pool.acquire() as conn:
        run = await conn.fetchrow(
            RUN_STATE_SQL.format(control=state.settings.control), tenant_id, run_id
        )
        archive = await would_archive(conn, tenant_id, run_id, sample)
    if run is None or archive is None:
        raise not_found(f"held run {run_id} of tenant {tenant_id}")
    status = RunState.of(run)
    return {"tenant": tenant_id, "run_id": str(run_id), "status": str(status.status),
            "detail": status.detail, "would_archive": archive}  # fmt: skip


@router.post("/{run_id}/{verdict}", status_code=202)
async def decide(
    request: Request,
    tenant_id: str,
    run_id: UUID,
    verdict: Literal["approve", "discard"],
    body: Decision,
    who: Operator,
) -> dict[str, Any]:
    state = state_of(request)
    await known_tenant(state, who, tenant_id)
    async with state.pool.acquire() as conn, conn.transaction():
        # One decision per run, even when two operators click at once: the run's row locked.
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext($1))", f"hold:{tenant_id}:{run_id}"
        )
        run = await conn.fetchrow(
            RUN_STATE_SQL.format(control=state.settings.control), tenant_id, run_id
        )
        if run is None:
            raise not_found(f"run {run_id} of tenant {tenant_id}")
        status = RunState.of(run)
        if run["decisions_sent"] or run["decision_approve"] is not None:
            raise ApiError(
                409,
                "conflict",
                f"run {run_id} was decided already ({status.detail or status.status})",
            )
        if status.status is not RunStatus.HELD:
            raise ApiError(409, "conflict", f"run {run_id} is not held (status: {status.status})")
        decision = HoldDecision(tenant=tenant_id, run_id=run_id, approve=verdict == "approve",
                                decided_by=f"api:{who.name}")  # fmt: skip
        await commands.audit_command(conn, state, who, decision, reason=body.reason,
                                     target=f"tenants/{tenant_id}/runs/{run_id}")  # fmt: skip
    await commands.publish(state, decision)  # once the audit is committed
    return {"tenant": tenant_id, "run_id": str(run_id), "decision": verdict, "status": "sent"}
