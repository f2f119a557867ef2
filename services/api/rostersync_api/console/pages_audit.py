"""The audit trail: every change and decision made through the API or the console."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from rostersync_api import audit
from rostersync_api.console import render, session
from rostersync_api.console.session import PREFIX, Session
from rostersync_api.state import state_of

router = APIRouter(prefix=f"{PREFIX}/audit")
Viewer = Annotated[Session, Depends(session.viewing())]
PAGE = 50


@router.get("")
async def audit_page(
    request: Request,
    who: Viewer,
    before: Annotated[int | None, Query(description="the oldest entry of the page shown")] = None,
) -> Response:
    """Newest first; a token limited to tenants sees only theirs (as ``GET /api/v1/audit``)."""
    state = state_of(request)
    async with state.pool.acquire() as conn:
        rows = await audit.listed(conn, state.settings.control, who.principal.tenants,
                                  PAGE + 1, before)  # fmt: skip
    older = rows[PAGE - 1]["id"] if len(rows) > PAGE else None
    return render.page(request, "audit.html", who, entries=rows[:PAGE], older=older)
