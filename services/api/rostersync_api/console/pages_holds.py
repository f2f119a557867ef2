"""Hold review: what a held run would archive, per entity with a sample; approve or discard."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from pydantic import ValidationError

from rostersync_api.console import queries, render, session
from rostersync_api.console.session import PREFIX, Session
from rostersync_api.errors import ApiError
from rostersync_api.routes import holds as api_holds
from rostersync_api.state import state_of

router = APIRouter(prefix=f"{PREFIX}/tenants/{{tenant_id}}/holds/{{run_id}}")
Viewer = Annotated[Session, Depends(session.viewing())]
Operator = Annotated[Session, Depends(session.posting("operator"))]
SAMPLE = 20


@router.get("")
async def hold_page(
    request: Request, tenant_id: str, run_id: UUID, who: Viewer, decided: str = ""
) -> Response:
    preview = await api_holds.preview(request, tenant_id, run_id, who.principal, SAMPLE)
    state = state_of(request)
    async with state.pool.acquire() as conn:
        sent = await queries.decision_sent(conn, state.settings.control, tenant_id, run_id)
    return render.page(request, "hold.html", who, tenant_id=tenant_id, hold=preview,
                       decided=decided, sent=sent, problem="")  # fmt: skip


@router.post("")
async def decide(
    request: Request,
    tenant_id: str,
    run_id: UUID,
    who: Operator,
    verdict: Annotated[Literal["approve", "discard"], Form()],
    reason: Annotated[str, Form()] = "",
) -> Response:
    """The API's decision route itself: the same checks (409 when not held or decided), the
    same two audit rows, the same command."""
    try:
        body = api_holds.Decision(reason=reason.strip())
        await api_holds.decide(request, tenant_id, run_id, verdict, body, who.principal)
    except (ValidationError, ApiError) as exc:
        problem = (
            "Say why (1 to 2000 characters)." if isinstance(exc, ValidationError) else str(exc)
        )
        preview = await api_holds.preview(request, tenant_id, run_id, who.principal, SAMPLE)
        return render.page(request, "hold.html", who, 422 if isinstance(exc, ValidationError)
                           else exc.status, tenant_id=tenant_id, hold=preview, decided="",
                           sent=False, problem=problem)  # fmt: skip
    return render.see_other(f"{PREFIX}/tenants/{tenant_id}/holds/{run_id}?decided={verdict}")
