"""The roster as of an instant (rostersync_libs/store/history.py): a class's members then."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from rostersync_libs.store import history

from rostersync_api.auth import Principal, caller
from rostersync_api.errors import not_found
from rostersync_api.known import known_tenant
from rostersync_api.state import state_of

router = APIRouter(prefix="/api/v1/tenants/{tenant_id}", tags=["history"])
Viewer = Annotated[Principal, Depends(caller("viewer"))]


@router.get("/classes/{class_ref}/enrollments")
async def class_enrollments(
    request: Request,
    tenant_id: str,
    class_ref: str,
    who: Viewer,
    as_of: Annotated[
        datetime | None, Query(description="the instant (ISO 8601 with a zone); default now")
    ] = None,
) -> dict[str, Any]:
    """The class's enrollments as they were at ``as_of`` (the class by internal id or
    sourcedId), as the runs the source had delivered by then left them."""
    state = state_of(request)
    await known_tenant(state, who, tenant_id)
    at = as_of or datetime.now(UTC)
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    async with state.pool.acquire() as conn:
        found = await history.class_id(conn, tenant_id, class_ref)
        if found is None:
            raise not_found(f"class {class_ref} of tenant {tenant_id}")
        members = await history.enrollments_as_of(conn, tenant_id, found, at)
    return {"class_internal_id": str(found), "as_of": at.isoformat(), "items": members}
