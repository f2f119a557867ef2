"""A tenant's change feed over HTTP: pages of changes after a sequence number, long-polled."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from rostersync_libs.change_events import LinkEntity, RecordEntity

from rostersync_api.auth import Principal, caller
from rostersync_api.feed import Filters, wait_for_page
from rostersync_api.known import known_tenant
from rostersync_api.state import state_of

router = APIRouter(prefix="/api/v1/tenants/{tenant_id}", tags=["changes"])
Viewer = Annotated[Principal, Depends(caller("viewer"))]


@router.get("/changes")
async def changes(
    request: Request,
    tenant_id: str,
    who: Viewer,
    after: Annotated[
        int, Query(ge=0, description="the last sequence number you have (0: all)")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    entity: Annotated[
        list[RecordEntity | LinkEntity] | None, Query(description="only these entities")
    ] = None,
    school: Annotated[UUID | None, Query(description="a school's internal id")] = None,
    class_: Annotated[
        UUID | None, Query(alias="class", description="a class's internal id")
    ] = None,
    wait: Annotated[
        float, Query(ge=0, le=60, description="seconds to wait for a change (long-poll)")
    ] = 0,
) -> dict[str, Any]:
    """The tenant's changes after ``after``, in sequence order; pass ``next`` as ``after`` to
    read on. With ``wait``, an empty page is only returned after that many seconds."""
    state = state_of(request)
    await known_tenant(state, who, tenant_id)
    filters = Filters(list(entity) if entity else None, school, class_)
    found = await wait_for_page(state.pool, tenant_id, after, limit, filters, wait)
    return {
        "items": [e.model_dump(mode="json") for e in found.items],
        "next": found.next,
        "last_sequence": found.last_sequence,
    }
