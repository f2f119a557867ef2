"""``/metrics`` of the admin API, and the middleware that counts its requests.

Counted by route *template* (``/api/v1/tenants/{tenant_id}``), so no label carries a tenant or a
run id; requests that match no route count as ``unmatched``. Unauthenticated, like every
Prometheus endpoint: it says how many requests, never about whom.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from rostersync_libs.metrics import API_REQUESTS

router = APIRouter(tags=["health"])


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


async def count_requests(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    response = await call_next(request)
    route = request.scope.get("route")
    template = getattr(route, "path", None) or "unmatched"
    API_REQUESTS.labels(request.method, template, str(response.status_code)).inc()
    return response
