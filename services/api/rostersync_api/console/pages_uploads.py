"""Upload: a bundle for a tenant; the run starts and its page follows it to the end."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import Response
from rostersync_libs.tenant_registry import all_tenants
from rostersync_libs.tenants import CsvSource

from rostersync_api.console import render, session
from rostersync_api.console.session import PREFIX, Session
from rostersync_api.errors import ApiError
from rostersync_api.routes import uploads as api_uploads
from rostersync_api.state import state_of

router = APIRouter(prefix=f"{PREFIX}/upload")
Operator = Annotated[Session, Depends(session.viewing("operator"))]
Posting = Annotated[Session, Depends(session.posting("operator"))]


async def _form(request: Request, who: Session, chosen: str, status: int, problem: str) -> Response:
    """Tenants the token sees that have a CSV source (an upload is synced through one)."""
    state = state_of(request)
    registry = await all_tenants(state.pool, state.settings.control, state.settings.tenants_file)
    tenants = [t for t in sorted(registry.tenants.tenants, key=lambda t: t.id)
               if who.principal.sees(t.id) and any(isinstance(s, CsvSource) for s in t.sources)]  # fmt: skip
    return render.page(request, "upload.html", who, status, tenants=tenants, chosen=chosen,
                       problem=problem, limit=state.settings.max_upload_bytes)  # fmt: skip


@router.get("")
async def upload_form(request: Request, who: Operator, tenant: str = "") -> Response:
    return await _form(request, who, tenant, 200, "")


@router.post("")
async def upload(
    request: Request,
    who: Posting,
    tenant: Annotated[str, Form()],
    bundle: Annotated[UploadFile, File()],
) -> Response:
    """The API's upload route itself (same limits, same checks, same audit and command)."""
    try:
        sent = await api_uploads.upload(request, tenant, who.principal, bundle, None)
    except ApiError as exc:
        if exc.status == 404:
            raise  # another tenant's, or none: the 404 page, not a hint
        return await _form(request, who, tenant, exc.status, exc.message)
    return render.see_other(f"{PREFIX}/tenants/{tenant}/runs/{sent['run_id']}")
