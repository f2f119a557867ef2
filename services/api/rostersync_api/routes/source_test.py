"""``POST …/sources/{id}/test``: can the source be read, now, with its settings?

A REST source signs in (OAuth 1 or 2, with its secret from the environment or the API's store)
and asks for one org, without retries; a CSV source's path must be a readable bundle (a folder
with a manifest, or a zip), an inbox's a folder. The answer says what failed, precisely, and
never carries a secret. Nothing is published: this is not a sync.
"""

from __future__ import annotations

import asyncio
import os
import zipfile
from pathlib import Path
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, Request
from rostersync_fetcher.rest.auth import authenticator_for
from rostersync_fetcher.rest.client import OneRosterClient, RetryPolicy
from rostersync_fetcher.rest.errors import FetchError
from rostersync_libs import source_secrets
from rostersync_libs.tenants import ApiSource, CsvSource, Source

from rostersync_api.auth import Principal, caller
from rostersync_api.errors import not_found
from rostersync_api.known import known_tenant
from rostersync_api.state import ApiState, state_of

router = APIRouter(prefix="/api/v1/tenants/{tenant_id}/sources", tags=["tenants"])
Operator = Annotated[Principal, Depends(caller("operator"))]


@router.post("/{source_id}/test")
async def test_source(
    request: Request, tenant_id: str, source_id: str, who: Operator
) -> dict[str, Any]:
    """``{"ok": true|false, "message": …}``: whether the source answers, and what it said."""
    state = state_of(request)
    tenant = await known_tenant(state, who, tenant_id)
    try:
        source = tenant.find_source(source_id)
    except KeyError:
        raise not_found(f"source {source_id} of tenant {tenant_id}") from None
    if isinstance(source, ApiSource):
        ok, message = await _api(state, tenant_id, source)
    else:
        ok, message = await asyncio.to_thread(_files, source)
    return {"tenant": tenant_id, "source": source_id, "ok": ok, "message": message}


async def _api(state: ApiState, tenant: str, source: ApiSource) -> tuple[bool, str]:
    try:
        stored = None
        if source.auth.secret_env is None:
            stored = await source_secrets.read(
                state.pool, state.settings.control, state.keys, tenant, source.id
            )
        async with httpx.AsyncClient(timeout=httpx.Timeout(source.timeout_seconds)) as http:
            auth = authenticator_for(source, http, stored)
            client = OneRosterClient(
                source, http, auth, asyncio.Semaphore(1), policy=RetryPolicy(max_attempts=1)
            )
            page = await client.page("orgs", offset=0, limit=1)
    except KeyError as exc:
        return False, str(exc.args[0])
    except FetchError as exc:
        return False, str(exc)
    count = (
        f"{page.total} orgs"
        if page.total is not None
        else f"{len(page.items)} org(s) on the first page"
    )
    return True, f"signed in ({source.auth.kind}); GET /orgs answered: {count}"


def _files(source: Source) -> tuple[bool, str]:
    path = Path(source.path)  # type: ignore[union-attr]  # a file source here
    if not path.exists():
        return False, f"{path} does not exist (on the fetcher's host it must)"
    if isinstance(source, CsvSource):
        if path.is_dir():
            if not (path / "manifest.csv").is_file():
                return False, f"{path} is a folder without manifest.csv: not a OneRoster bundle"
            if not os.access(path, os.R_OK | os.X_OK):
                return False, f"{path}: the API cannot read it (the fetcher must)"
            return True, f"{path}: a bundle folder, readable"
        if not zipfile.is_zipfile(path):
            return False, f"{path} is neither a bundle folder nor a zip file"
        return True, f"{path}: a zip bundle"
    if not path.is_dir():
        return False, f"{path} is not a folder (an inbox is one)"
    if not os.access(path, os.R_OK | os.W_OK | os.X_OK):
        return False, f"{path}: the API cannot read and write it (the fetcher must)"
    return True, f"{path}: an inbox folder, readable and writable"
