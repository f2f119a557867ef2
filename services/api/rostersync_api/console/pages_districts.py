"""Districts: one row per tenant the token sees, with its health at a glance; a district's runs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from rostersync_fetcher.rest.schedule import next_run
from rostersync_libs.run_reports import queries
from rostersync_libs.run_reports.status import RunState
from rostersync_libs.tenant_registry import all_tenants
from rostersync_libs.tenants import Tenant

from rostersync_api.console import render, session, trend
from rostersync_api.console.session import PREFIX, Session
from rostersync_api.known import known_tenant
from rostersync_api.state import state_of

router = APIRouter(prefix=PREFIX)
Viewer = Annotated[Session, Depends(session.viewing())]
TREND_RUNS = 10


def run_row(row: Any) -> dict[str, Any]:
    """A run as a table row: its honest status, when, how long, records sent, rejections."""
    published = row["published_counts"]
    published = orjson.loads(published) if isinstance(published, str) else published
    started, ended = row["first_event_at"], row["completed_at"]
    return {
        "run_id": str(row["run_id"]),
        "source": row["source"],
        "state": RunState.of(row),
        "started_at": started,
        "duration": ended - started if started and ended else None,
        "records": sum((published or {}).values()),
        "rejected": row["rejected"],
    }


def next_scheduled(tenant: Tenant, runs: list[dict[str, Any]], paused: bool) -> datetime | None:
    """When the fetcher next syncs one of the tenant's REST sources on its own (its scheduler's
    rule, from each source's latest run); None: paused, or nothing is scheduled."""
    if paused:
        return None
    now = datetime.now(UTC)
    due = [
        next_run(source.schedule, now,
                 next((r["started_at"] for r in runs if r["source"] == source.id), None))
        for source in tenant.api_sources
        if source.schedule is not None
    ]  # fmt: skip
    return min(due, default=None)


@router.get("/")
async def districts(request: Request, who: Viewer) -> Response:
    state = state_of(request)
    control, tenants_file = state.settings.control, state.settings.tenants_file
    registry = await all_tenants(state.pool, control, tenants_file)
    visible = sorted((t for t in registry.tenants.tenants if who.principal.sees(t.id)),
                     key=lambda t: t.id)  # fmt: skip
    rows = []
    async with state.pool.acquire() as conn:
        for tenant in visible:
            runs = [run_row(r) for r in await queries.list_runs(conn, tenant.id, TREND_RUNS)]
            holds = await queries.list_holds(conn, tenant.id, False)
            points = [trend.Point(r["records"], r["rejected"]) for r in reversed(runs)]
            paused = tenant.id in registry.paused
            rows.append({"tenant": tenant, "paused": paused,
                         "last": runs[0] if runs else None, "open_holds": len(holds),
                         "next": next_scheduled(tenant, runs, paused),
                         "trend": trend.trend(points)})  # fmt: skip
    return render.page(request, "districts.html", who, rows=rows)


@router.get("/tenants/{tenant_id}")
async def district(request: Request, tenant_id: str, who: Viewer) -> Response:
    state = state_of(request)
    tenant = await known_tenant(state, who.principal, tenant_id)
    async with state.pool.acquire() as conn:
        runs = [run_row(r) for r in await queries.list_runs(conn, tenant_id, 50)]
        holds = await queries.list_holds(conn, tenant_id, False)
    return render.page(request, "district.html", who, tenant=tenant, runs=runs,
                       holds=[str(h["run_id"]) for h in holds])  # fmt: skip
