"""A run: its status (followed live while it runs), files, findings by code, rejected records."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse
from rostersync_libs.run_reports import documents, progress

from rostersync_api.console import queries, render, session
from rostersync_api.console.session import PREFIX, Session
from rostersync_api.errors import not_found
from rostersync_api.known import known_tenant
from rostersync_api.routes import runs as api_runs
from rostersync_api.state import ApiState, state_of

router = APIRouter(prefix=f"{PREFIX}/tenants/{{tenant_id}}/runs/{{run_id}}")
Viewer = Annotated[Session, Depends(session.viewing())]
EXAMPLES = 5  # per finding code
REJECTIONS_SHOWN = 200


async def _run(state: ApiState, who: Session, tenant_id: str, run_id: UUID) -> dict[str, Any]:
    """The run as the API serves it, with its progress; a run asked for but not begun yet is
    ``requested``; any other unknown run, 404."""
    await known_tenant(state, who.principal, tenant_id)
    async with state.pool.acquire() as conn:
        run = await documents.run_document(conn, tenant_id, run_id, EXAMPLES)
        if run is None:
            if not await queries.was_requested(conn, state.settings.control, tenant_id, run_id):
                raise not_found(f"run {run_id} of tenant {tenant_id}")
            return {"tenant": tenant_id, "run_id": str(run_id), "status": "requested",
                    "detail": "waiting for the fetcher to begin", "files": [], "progress": None}  # fmt: skip
        run["progress"] = await progress.progress(conn, tenant_id, run_id)
    published = (run["progress"] or {}).get("published") or {}
    run["progress"]["published_total"] = sum(published.values())
    return run


def _findings(run: dict[str, Any]) -> list[dict[str, Any]]:
    """Each finding code with its count and its first examples."""
    return [
        {**code, "examples": [f for f in run["first_findings"] if f["code"] == code["code"]]}
        for code in run.get("findings_by_code", [])
    ]


def following(run: dict[str, Any]) -> bool:
    return run["status"] in ("requested", "running")


@router.get("")
async def run_page(
    request: Request, tenant_id: str, run_id: UUID, who: Viewer, q: str = ""
) -> Response:
    state = state_of(request)
    run = await _run(state, who, tenant_id, run_id)
    async with state.pool.acquire() as conn:
        rejected = await queries.search_rejections(conn, tenant_id, run_id, q, REJECTIONS_SHOWN)
    return render.page(request, "run.html", who, run=run, findings=_findings(run), q=q,
                       rejected=rejected, following=following(run))  # fmt: skip


@router.get("/status")
async def run_status(request: Request, tenant_id: str, run_id: UUID, who: Viewer) -> Response:
    """The status block, polled by htmx while the run goes on; once it ends, the whole page
    reloads (its findings and rejections are complete only then)."""
    run = await _run(state_of(request), who, tenant_id, run_id)
    answer = render.page(request, "_run_status.html", who, run=run, following=following(run))
    if not following(run):
        answer.headers["HX-Refresh"] = "true"
    return answer


@router.get("/rejections")
async def rejections(
    request: Request,
    tenant_id: str,
    run_id: UUID,
    who: Viewer,
    q: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    """The rejected records' table body, filtered as the operator types."""
    state = state_of(request)
    await known_tenant(state, who.principal, tenant_id)
    async with state.pool.acquire() as conn:
        rejected = await queries.search_rejections(conn, tenant_id, run_id, q, REJECTIONS_SHOWN)
    return render.page(request, "_rejections.html", who, rejected=rejected, q=q)


@router.get("/findings.csv", response_class=StreamingResponse)
async def findings_csv(request: Request, tenant_id: str, run_id: UUID, who: Viewer) -> Response:
    """The API's findings.csv itself (a browser link carries the cookie, not a bearer token)."""
    return await api_runs.findings_csv(request, tenant_id, run_id, who.principal)
