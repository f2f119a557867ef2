"""Runs of a tenant: request a sync, list runs, read one (with its progress), its rejections."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict
from rostersync_libs.commands import SyncRequested
from rostersync_libs.run_reports import documents, progress, validation

from rostersync_api import commands
from rostersync_api.auth import Principal, caller
from rostersync_api.errors import not_found
from rostersync_api.known import known_tenant
from rostersync_api.state import state_of

router = APIRouter(prefix="/api/v1/tenants/{tenant_id}", tags=["runs"])
Viewer = Annotated[Principal, Depends(caller("viewer"))]
Operator = Annotated[Principal, Depends(caller("operator"))]


class SyncBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str | None = None  # the tenant's first source when left out
    full: bool = False  # REST: a full sync even if a delta is due
    resend_unchanged: bool = False  # send records the application holds unchanged too


@router.post("/syncs", status_code=202)
async def request_sync(
    request: Request, tenant_id: str, who: Operator, body: SyncBody | None = None
) -> dict[str, Any]:
    """Ask the fetcher to sync the tenant now; the run's id comes back at once."""
    state = state_of(request)
    tenant = await known_tenant(state, who, tenant_id)
    wanted = body or SyncBody()
    try:
        source = tenant.find_source(wanted.source)
    except KeyError:
        raise not_found(f"source {wanted.source} of tenant {tenant_id}") from None
    command = SyncRequested(tenant=tenant_id, source=source.id, full=wanted.full,
                            resend_unchanged=wanted.resend_unchanged)  # fmt: skip
    await commands.send(state, who, command, target=f"tenants/{tenant_id}/runs/{command.run_id}")
    return {"tenant": tenant_id, "run_id": str(command.run_id), "source": source.id,
            "status": "requested"}  # fmt: skip


@router.get("/runs")
async def list_runs(
    request: Request,
    tenant_id: str,
    who: Viewer,
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
    before: Annotated[UUID | None, Query(description="the `next` of the previous page")] = None,
) -> dict[str, Any]:
    """The tenant's newest runs first, each with its honest status."""
    state = state_of(request)
    await known_tenant(state, who, tenant_id)
    async with state.pool.acquire() as conn:
        runs = (await documents.runs_document(conn, tenant_id, limit + 1, before))["runs"]
    return {"items": runs[:limit], "next": runs[limit - 1]["run_id"] if len(runs) > limit else None}


@router.get("/runs/{run_id}")
async def get_run(
    request: Request,
    tenant_id: str,
    run_id: UUID,
    who: Viewer,
    findings: Annotated[int, Query(ge=0, le=100, description="examples per finding code")] = 5,
) -> dict[str, Any]:
    """The run as ``rostersync report --json`` shows it, and its progress per stage."""
    state = state_of(request)
    await known_tenant(state, who, tenant_id)
    async with state.pool.acquire() as conn:
        document = await documents.run_document(conn, tenant_id, run_id, findings)
        if document is None:
            raise not_found(f"run {run_id} of tenant {tenant_id}")
        document["progress"] = await progress.progress(conn, tenant_id, run_id)
    return document


@router.get("/runs/{run_id}/rejections")
async def rejections(
    request: Request,
    tenant_id: str,
    run_id: UUID,
    who: Viewer,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after: Annotated[int | None, Query(description="the `next` of the previous page")] = None,
) -> dict[str, Any]:
    """The run's rejected records (each with every reason and where it came from)."""
    state = state_of(request)
    await known_tenant(state, who, tenant_id)
    async with state.pool.acquire() as conn:
        if not await documents.run_exists(conn, tenant_id, run_id):
            raise not_found(f"run {run_id} of tenant {tenant_id}")
        return await documents.rejections_page(conn, tenant_id, run_id, limit, after)


@router.get("/runs/{run_id}/findings.csv", response_class=StreamingResponse)
async def findings_csv(
    request: Request, tenant_id: str, run_id: UUID, who: Viewer
) -> StreamingResponse:
    """Every finding of the run as CSV (streamed; cells that a spreadsheet would take for a
    formula are quoted as text)."""
    return await _csv(request, tenant_id, run_id, who, validation.CSV_SQL, "findings")


@router.get("/runs/{run_id}/rejections.csv", response_class=StreamingResponse)
async def rejections_csv(
    request: Request, tenant_id: str, run_id: UUID, who: Viewer
) -> StreamingResponse:
    """Every rejected record of the run as CSV: stage, entity, sourcedId, file, row, reasons."""
    return await _csv(request, tenant_id, run_id, who, validation.REJECTED_CSV_SQL, "rejections")


async def _csv(
    request: Request, tenant_id: str, run_id: UUID, who: Principal, sql: str, name: str
) -> StreamingResponse:
    state = state_of(request)
    await known_tenant(state, who, tenant_id)
    async with state.pool.acquire() as conn:
        if not await documents.run_exists(conn, tenant_id, run_id):
            raise not_found(f"run {run_id} of tenant {tenant_id}")
    return StreamingResponse(
        validation.stream_csv(state.pool, tenant_id, run_id, sql),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}-{run_id}.csv"'},
    )
