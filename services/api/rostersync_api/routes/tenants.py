"""Tenants and their sources: list, read, create, replace, delete, pause and resume."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from rostersync_libs import source_secrets
from rostersync_libs.tenant_registry import all_tenants
from rostersync_libs.tenants import ApiSource, Source, Tenant

from rostersync_api import audit, tenant_store
from rostersync_api.auth import Principal, caller
from rostersync_api.errors import ApiError, not_found
from rostersync_api.state import state_of

router = APIRouter(prefix="/api/v1/tenants", tags=["tenants"])
Viewer = Annotated[Principal, Depends(caller("viewer"))]
Operator = Annotated[Principal, Depends(caller("operator"))]
Admin = Annotated[Principal, Depends(caller("admin"))]


@router.get("")
async def list_tenants(
    request: Request,
    who: Viewer,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    after: str | None = None,
) -> dict[str, Any]:
    """The tenants the token sees, by id; ``next`` is the ``after`` of the following page."""
    state = state_of(request)
    registry = await all_tenants(state.pool, state.settings.control, state.settings.tenants_file)
    tenants = sorted(
        (t for t in registry.tenants.tenants if who.sees(t.id) and (after is None or t.id > after)),
        key=lambda t: t.id,
    )
    page = tenants[:limit]
    items = [
        tenant_store.view(
            t, "api" if t.id in registry.from_api else "file", t.id in registry.paused
        )
        for t in page
    ]
    return {"items": items, "next": page[-1].id if len(tenants) > limit else None}


@router.get("/{tenant_id}")
async def get_tenant(request: Request, tenant_id: str, who: Viewer) -> dict[str, Any]:
    who.check_tenant(tenant_id)
    state = state_of(request)
    async with state.pool.acquire() as conn:
        found = await tenant_store.find(
            conn, state.settings.control, state.settings.tenants_file, tenant_id
        )
        found["secrets"] = await tenant_store.secrets_of(conn, state.settings.control, found)
    return found


@router.post("", status_code=201)
async def create_tenant(request: Request, tenant: Tenant, who: Admin) -> dict[str, Any]:
    who.check_tenant(tenant.id)
    state = state_of(request)
    tenant_store.checked(tenant)
    async with state.pool.acquire() as conn, conn.transaction():
        await tenant_store.insert(conn, state.settings.control, state.settings.tenants_file, tenant)
        await audit.record(conn, state.settings.control, who, tenant=tenant.id,
                           action="tenant_created", target=f"tenants/{tenant.id}",
                           after=tenant.model_dump(mode="json"))  # fmt: skip
    return tenant_store.view(tenant, "api", False)


async def _change(
    request: Request, who: Principal, tenant_id: str, new: Tenant | None, action: str
) -> dict[str, Any]:
    """Replace (``new``) or delete (None) an API tenant, audited with before and after."""
    who.check_tenant(tenant_id)
    state = state_of(request)
    control = state.settings.control
    async with state.pool.acquire() as conn, conn.transaction():
        found = await tenant_store.stored(conn, control, tenant_id)
        if found is None:
            if tenant_store.in_file(state.settings.tenants_file, tenant_id) is not None:
                raise ApiError(409, "conflict", f"tenant {tenant_id} is in the tenants file:"
                               " change it there, or move it here with `rostersync tenants import`")  # fmt: skip
            raise not_found(f"tenant {tenant_id}")
        before, paused = found
        if new is None:
            await tenant_store.remove(conn, control, tenant_id)
        else:
            await tenant_store.update(conn, control, tenant_store.checked(new))
        await audit.record(conn, control, who, tenant=tenant_id, action=action,
                           target=f"tenants/{tenant_id}", before=before.model_dump(mode="json"),
                           after=None if new is None else new.model_dump(mode="json"))  # fmt: skip
    return tenant_store.view(new or before, "api", paused)


@router.put("/{tenant_id}")
async def replace_tenant(
    request: Request, tenant_id: str, tenant: Tenant, who: Admin
) -> dict[str, Any]:
    if tenant.id != tenant_id:
        raise ApiError(
            422,
            "invalid_request",
            f"id: {tenant.id!r} is not the tenant of the path ({tenant_id!r})",
        )
    return await _change(request, who, tenant_id, tenant, "tenant_changed")


@router.delete("/{tenant_id}", status_code=204)
async def delete_tenant(request: Request, tenant_id: str, who: Admin) -> Response:
    """The tenant's configuration, not its data (``rostersync tenants purge`` erases that)."""
    await _change(request, who, tenant_id, None, "tenant_deleted")
    return Response(status_code=204)


@router.put("/{tenant_id}/sources/{source_id}")
async def put_source(
    request: Request, tenant_id: str, source_id: str, source: Source, who: Admin
) -> dict[str, Any]:
    """Add a source, or replace the one of that id."""
    if source.id != source_id:
        raise ApiError(
            422,
            "invalid_request",
            f"id: {source.id!r} is not the source of the path ({source_id!r})",
        )
    current = await _current(request, who, tenant_id)
    sources = [s for s in current.sources if s.id != source_id] + [source]
    return await _change(
        request, who, tenant_id, current.model_copy(update={"sources": sources}), "source_set"
    )


@router.delete("/{tenant_id}/sources/{source_id}")
async def delete_source(
    request: Request, tenant_id: str, source_id: str, who: Admin
) -> dict[str, Any]:
    current = await _current(request, who, tenant_id)
    sources = [s for s in current.sources if s.id != source_id]
    if len(sources) == len(current.sources):
        raise not_found(f"source {source_id} of tenant {tenant_id}")
    if not sources:
        raise ApiError(
            409, "conflict", "a tenant needs at least one source: delete the tenant instead"
        )
    return await _change(
        request, who, tenant_id, current.model_copy(update={"sources": sources}), "source_deleted"
    )


async def _current(request: Request, who: Principal, tenant_id: str) -> Tenant:
    who.check_tenant(tenant_id)
    state = state_of(request)
    async with state.pool.acquire() as conn:
        found = await tenant_store.stored(conn, state.settings.control, tenant_id)
    if found is None:
        raise not_found(f"tenant {tenant_id} (managed by the API)")
    return found[0]


class SecretBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    secret: SecretStr = Field(description="write-only: never returned, logged or sent on a topic")


@router.put("/{tenant_id}/sources/{source_id}/secret", status_code=204)
async def put_secret(
    request: Request, tenant_id: str, source_id: str, body: SecretBody, who: Admin
) -> Response:
    """Store a REST source's secret (OAuth 1 secret, OAuth 2 client secret), sealed with the
    tenant's data key; the source then names no ``secret_env``."""
    current = await _current(request, who, tenant_id)
    source = next((s for s in current.sources if s.id == source_id), None)
    if not isinstance(source, ApiSource):
        raise not_found(f"REST source {source_id} of tenant {tenant_id}")
    value = body.secret.get_secret_value()
    if not value or len(value) > 4096:
        raise ApiError(422, "invalid_request", "secret: 1 to 4096 characters")
    state = state_of(request)
    async with state.pool.acquire() as conn, conn.transaction():
        await source_secrets.store(
            conn, state.settings.control, state.keys, tenant_id, source_id, value
        )
        await audit.record(conn, state.settings.control, who, tenant=tenant_id,
                           action="source_secret_set",
                           target=f"tenants/{tenant_id}/sources/{source_id}/secret")  # fmt: skip
    return Response(status_code=204)


@router.post("/{tenant_id}/pause")
async def pause(request: Request, tenant_id: str, who: Operator) -> dict[str, Any]:
    """Scheduled and inbox syncs stop; manual syncs and uploads still run."""
    return await _set_paused(request, who, tenant_id, True)


@router.post("/{tenant_id}/resume")
async def resume(request: Request, tenant_id: str, who: Operator) -> dict[str, Any]:
    return await _set_paused(request, who, tenant_id, False)


async def _set_paused(
    request: Request, who: Principal, tenant_id: str, paused: bool
) -> dict[str, Any]:
    tenant = await _current(request, who, tenant_id)
    state = state_of(request)
    async with state.pool.acquire() as conn, conn.transaction():
        await tenant_store.set_paused(conn, state.settings.control, tenant_id, paused)
        await audit.record(conn, state.settings.control, who, tenant=tenant_id,
                           action="tenant_paused" if paused else "tenant_resumed",
                           target=f"tenants/{tenant_id}", after={"paused": paused})  # fmt: skip
    return tenant_store.view(tenant, "api", paused)
