"""Sources of a district: list, add or edit (secret write-only), test the connection, pause."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import SecretStr, ValidationError
from rostersync_libs.tenants import Source

from rostersync_api import tenant_store
from rostersync_api.console import render, session, source_form
from rostersync_api.console.session import PREFIX, Session
from rostersync_api.errors import ApiError
from rostersync_api.known import known_tenant
from rostersync_api.routes import source_test, tenants
from rostersync_api.state import state_of

router = APIRouter(prefix=f"{PREFIX}/tenants/{{tenant_id}}/sources")
Viewer = Annotated[Session, Depends(session.viewing())]
Admin = Annotated[Session, Depends(session.viewing("admin"))]
PostingOperator = Annotated[Session, Depends(session.posting("operator"))]
PostingAdmin = Annotated[Session, Depends(session.posting("admin"))]


@router.get("")
async def sources_page(request: Request, tenant_id: str, who: Viewer, saved: str = "") -> Response:
    state = state_of(request)
    await known_tenant(state, who.principal, tenant_id)
    async with state.pool.acquire() as conn:
        found = await tenant_store.find(conn, state.settings.control, state.settings.tenants_file,
                                        tenant_id)  # fmt: skip
        secrets = await tenant_store.secrets_of(conn, state.settings.control, found)
    return render.page(request, "sources.html", who, tenant_id=tenant_id, found=found,
                       secrets=secrets, saved=saved)  # fmt: skip


async def _editing(request: Request, who: Session, tenant_id: str, source_id: str) -> Source | None:
    tenant = await known_tenant(state_of(request), who.principal, tenant_id)
    return next((s for s in tenant.sources if s.id == source_id), None)


def _form(request: Request, who: Session, tenant_id: str, values: dict[str, str],
          editing: bool, problems: list[str], status: int = 200) -> Response:  # fmt: skip
    return render.page(request, "source_form.html", who, status, tenant_id=tenant_id,
                       values=values, editing=editing, problems=problems)  # fmt: skip


@router.get("/new")
async def new_source(request: Request, tenant_id: str, who: Admin) -> Response:
    await known_tenant(state_of(request), who.principal, tenant_id)
    return _form(request, who, tenant_id, source_form.shown(None), False, [])


@router.get("/{source_id}/edit")
async def edit_source(request: Request, tenant_id: str, source_id: str, who: Admin) -> Response:
    source = await _editing(request, who, tenant_id, source_id)
    if source is None:
        raise ApiError(404, "not_found", f"source {source_id} of tenant {tenant_id} not found")
    return _form(request, who, tenant_id, source_form.shown(source), True, [])


@router.post("")
async def save_source(request: Request, tenant_id: str, who: PostingAdmin) -> Response:
    """The API's ``PUT …/sources/{id}`` (and ``…/secret`` when one is typed), as they are."""
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    values = {k: form.get(k, "").strip() for k in source_form.FIELDS}
    editing = await _editing(request, who, tenant_id, values["id"])
    try:
        source = source_form.parsed(values, editing)
        await tenants.put_source(request, tenant_id, source.id, source, who.principal)
        if secret := form.get("secret", ""):
            body = tenants.SecretBody(secret=SecretStr(secret))
            await tenants.put_secret(request, tenant_id, source.id, body, who.principal)
    except ValidationError as exc:
        return _form(request, who, tenant_id, values, editing is not None,
                     source_form.problems(exc), 422)  # fmt: skip
    except ApiError as exc:
        if exc.status == 404 and not who.principal.sees(tenant_id):
            raise
        return _form(request, who, tenant_id, values, editing is not None, [exc.message],
                     exc.status)  # fmt: skip
    return render.see_other(f"{PREFIX}/tenants/{tenant_id}/sources?saved={source.id}")


@router.post("/{source_id}/test")
async def test_connection(
    request: Request, tenant_id: str, source_id: str, who: PostingOperator
) -> Response:
    """The API's connection test; its message in the page (a fragment for htmx)."""
    result = await source_test.test_source(request, tenant_id, source_id, who.principal)
    return render.page(request, "_test_result.html", who, result=result)


@router.post("/pause")
async def pause(request: Request, tenant_id: str, who: PostingOperator) -> Response:
    """Stops the district's schedules and inboxes (the API's pause: audited the same)."""
    await tenants.pause(request, tenant_id, who.principal)
    return render.see_other(f"{PREFIX}/tenants/{tenant_id}/sources?saved=paused")


@router.post("/resume")
async def resume(request: Request, tenant_id: str, who: PostingOperator) -> Response:
    await tenants.resume(request, tenant_id, who.principal)
    return render.see_other(f"{PREFIX}/tenants/{tenant_id}/sources?saved=resumed")
