"""A small admin HTTP API for demos: change data and inject faults from curl.

Unauthenticated (the server binds to loopback only); turn it off with ``admin_api=False``.
Every endpoint takes and returns JSON; see docs/oneroster-server.md for examples.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from rostersync_oneroster_server.data import ENTITIES, UnknownEntityError, UnknownRecordError

if TYPE_CHECKING:
    from rostersync_oneroster_server.server import OneRosterServer


def routes(server: OneRosterServer) -> list[web.RouteDef]:
    data = server.data

    async def body(request: web.Request) -> dict[str, Any]:
        try:
            found = await request.json()
        except ValueError as exc:
            raise web.HTTPBadRequest(text="a JSON object is expected") from exc
        if not isinstance(found, dict):
            raise web.HTTPBadRequest(text="a JSON object is expected")
        return found

    async def status(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "version": data.version,
                "loadedAt": data.loaded_at,
                "records": {e: len(data.records(e)) for e in ENTITIES},
                "requestsServed": dict(server.requests_served),
                "faultsPending": server.faults.pending,
                "faultsInjected": dict(server.faults.injected),
            }
        )

    async def add_fault(request: web.Request) -> web.Response:
        b = await body(request)
        try:
            server.faults.add(
                str(b.get("kind", "")),
                int(b.get("count", 1)),
                path_contains=b.get("path_contains"),
                retry_after=float(b.get("retry_after", 1)),
                delay=float(b.get("delay", 1)),
            )
        except (TypeError, ValueError) as exc:
            raise web.HTTPBadRequest(text=str(exc)) from exc
        return web.json_response({"faultsPending": server.faults.pending})

    async def clear_faults(request: web.Request) -> web.Response:
        server.faults.clear()
        return web.json_response({"faultsPending": 0})

    async def change(request: web.Request) -> web.Response:
        b = await body(request)
        action = request.match_info["action"]
        entity, sourced_id = str(b.get("entity", "")), str(b.get("sourcedId", ""))
        try:
            if action == "touch":
                return web.json_response({"dateLastModified": data.touch(entity, sourced_id)})
            if action == "mark_deleted":
                return web.json_response(
                    {"dateLastModified": data.mark_deleted(entity, sourced_id)}
                )
            if action == "hard_delete":
                data.hard_delete(entity, sourced_id)
                return web.json_response({"deleted": sourced_id})
            if action == "upsert":
                record = data.upsert(entity, b["row"], str(b.get("status", "active")))
                return web.json_response({"dateLastModified": record.date_last_modified})
            if action == "delta":
                return web.json_response(data.apply_delta_bundle(Path(str(b["path"]))))
        except (UnknownEntityError, UnknownRecordError) as exc:
            raise web.HTTPNotFound(text=f"unknown {exc}") from exc
        except (KeyError, OSError, ValueError) as exc:
            raise web.HTTPBadRequest(text=f"bad request: {exc}") from exc
        raise web.HTTPNotFound(text=f"no admin action {action!r}")

    async def expire_tokens(request: web.Request) -> web.Response:
        if server.tokens is not None:
            server.tokens.expire_all()
        return web.json_response({"expired": True})

    return [
        web.get("/_admin/status", status),
        web.post("/_admin/faults", add_fault),
        web.delete("/_admin/faults", clear_faults),
        web.post("/_admin/expire_tokens", expire_tokens),
        web.post("/_admin/data/{action}", change),
    ]
