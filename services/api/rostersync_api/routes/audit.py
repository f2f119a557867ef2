"""The audit trail: every change and decision made through the API, newest first."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from rostersync_api import audit
from rostersync_api.auth import Principal, caller
from rostersync_api.state import state_of

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])
Viewer = Annotated[Principal, Depends(caller("viewer"))]


@router.get("")
async def list_audit(
    request: Request,
    who: Viewer,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before: Annotated[int | None, Query(description="the `next` of the previous page")] = None,
) -> dict[str, Any]:
    """A token limited to tenants sees only their entries."""
    state = state_of(request)
    async with state.pool.acquire() as conn:
        rows = await audit.listed(conn, state.settings.control, who.tenants, limit + 1, before)
    return {"items": rows[:limit], "next": rows[limit - 1]["id"] if len(rows) > limit else None}
