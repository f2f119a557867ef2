"""``/healthz``: the process answers. ``/readyz``: its PostgreSQL and Kafka answer too."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from rostersync_api.state import state_of

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", response_model=None)
async def readyz(request: Request) -> dict[str, Any] | JSONResponse:
    state = state_of(request)
    checks: dict[str, str] = {}
    try:
        async with asyncio.timeout(3):
            async with state.pool.acquire() as conn:
                await conn.fetchval("SELECT 1")
        checks["postgresql"] = "ok"
    except Exception as exc:  # any failure is "not ready", said by its type
        checks["postgresql"] = type(exc).__name__
    try:
        async with asyncio.timeout(3):
            await state.producer.partitions_for(state.settings.topics.commands)
        checks["kafka"] = "ok"
    except Exception as exc:
        checks["kafka"] = type(exc).__name__
    ready = all(v == "ok" for v in checks.values())
    document = {"status": "ready" if ready else "not_ready", "checks": checks}
    return document if ready else JSONResponse(document, 503)
