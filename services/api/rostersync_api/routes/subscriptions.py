"""A tenant's webhook subscriptions to its change feed (subscriptions/): made, listed, changed
(a new cursor replays from any sequence number) and removed; audited. The secret is write-only."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, SecretStr
from rostersync_libs.change_events import LinkEntity, RecordEntity

from rostersync_api import audit
from rostersync_api.auth import Principal, caller
from rostersync_api.errors import not_found
from rostersync_api.known import known_tenant
from rostersync_api.state import state_of
from rostersync_api.subscriptions import store

router = APIRouter(prefix="/api/v1/tenants/{tenant_id}/change-subscriptions", tags=["changes"])
Viewer = Annotated[Principal, Depends(caller("viewer"))]
Admin = Annotated[Principal, Depends(caller("admin"))]
Entities = list[RecordEntity | LinkEntity] | None


class NewSubscription(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: HttpUrl
    entities: Entities = Field(None, description="only these entities (default: all)")
    secret: SecretStr = Field(min_length=16, description="signs every delivery (HMAC-SHA256)")
    cursor: int = Field(0, ge=0, description="deliver the changes after this number")


class SubscriptionChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: HttpUrl | None = None
    entities: Entities = None
    secret: SecretStr | None = Field(None, min_length=16)
    cursor: int | None = Field(None, ge=0, description="replay from here (clears failures)")


@router.post("", status_code=201)
async def create(
    request: Request, tenant_id: str, body: NewSubscription, who: Admin
) -> dict[str, Any]:
    state = state_of(request)
    await known_tenant(state, who, tenant_id)
    entities: list[str] | None = list(body.entities) if body.entities else None
    async with state.pool.acquire() as conn, conn.transaction():
        made = await store.create(conn, state.keys, tenant_id, uuid4(), str(body.url), entities,
                                  body.secret.get_secret_value(), body.cursor)  # fmt: skip
        await audit.record(conn, state.settings.control, who, tenant=tenant_id,
                           action="change_subscription_created",
                           target=f"tenants/{tenant_id}/change-subscriptions/{made['id']}",
                           after={"url": made["url"], "entities": entities})  # fmt: skip
    return made


@router.get("")
async def listed(request: Request, tenant_id: str, who: Viewer) -> dict[str, Any]:
    state = state_of(request)
    await known_tenant(state, who, tenant_id)
    async with state.pool.acquire() as conn:
        return {"items": await store.listed(conn, tenant_id)}


@router.get("/{subscription_id}")
async def one(request: Request, tenant_id: str, subscription_id: UUID, who: Viewer) -> dict[str, Any]:  # fmt: skip
    state = state_of(request)
    await known_tenant(state, who, tenant_id)
    async with state.pool.acquire() as conn:
        found = await store.one(conn, tenant_id, subscription_id)
    if found is None:
        raise not_found(f"change subscription {subscription_id} of tenant {tenant_id}")
    return found


@router.patch("/{subscription_id}")
async def change(
    request: Request, tenant_id: str, subscription_id: UUID, body: SubscriptionChange, who: Admin
) -> dict[str, Any]:
    state = state_of(request)
    await known_tenant(state, who, tenant_id)
    changes: dict[str, Any] = {k: v for k, v in body.model_dump(exclude_unset=True).items()
                               if v is not None}  # fmt: skip
    if "url" in changes:
        changes["url"] = str(body.url)
    if "secret" in changes and body.secret is not None:
        changes["secret"] = body.secret.get_secret_value()
    async with state.pool.acquire() as conn, conn.transaction():
        found = await store.update(conn, state.keys, tenant_id, subscription_id, changes)
        if found is None:
            raise not_found(f"change subscription {subscription_id} of tenant {tenant_id}")
        shown = {k: v for k, v in changes.items() if k != "secret"} | {"secret": "secret" in changes}  # fmt: skip
        await audit.record(conn, state.settings.control, who, tenant=tenant_id,
                           action="change_subscription_changed",
                           target=f"tenants/{tenant_id}/change-subscriptions/{subscription_id}",
                           after=shown)  # fmt: skip
    return found


@router.delete("/{subscription_id}", status_code=204)
async def delete(request: Request, tenant_id: str, subscription_id: UUID, who: Admin) -> Response:
    state = state_of(request)
    await known_tenant(state, who, tenant_id)
    async with state.pool.acquire() as conn, conn.transaction():
        if not await store.delete(conn, tenant_id, subscription_id):
            raise not_found(f"change subscription {subscription_id} of tenant {tenant_id}")
        await audit.record(conn, state.settings.control, who, tenant=tenant_id,
                           action="change_subscription_deleted",
                           target=f"tenants/{tenant_id}/change-subscriptions/{subscription_id}")  # fmt: skip
    return Response(status_code=204)
