"""A bundle uploaded by hand (multipart), synced once through the tenant's CSV source.

The file is copied to ``upload_dir/<tenant>/<run id>.zip`` in chunks, never whole in memory,
refused above ``max_upload_bytes`` (while the body arrives, said length or not: upload_limit.py;
here again on the file itself) and when it is not a zip; the fetcher reads it with its usual checks (zip bombs, symbolic links, limits), as it
reads a ``rostersync sync --bundle``. The fetcher must see the folder (same host or volume).
"""

from __future__ import annotations

import asyncio
import zipfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from rostersync_libs.commands import SyncRequested
from rostersync_libs.tenants import CsvSource

from rostersync_api import commands
from rostersync_api.auth import Principal, caller
from rostersync_api.errors import ApiError, not_found
from rostersync_api.known import known_tenant
from rostersync_api.state import state_of

router = APIRouter(prefix="/api/v1/tenants/{tenant_id}/uploads", tags=["uploads"])
Operator = Annotated[Principal, Depends(caller("operator"))]
CHUNK = 1 << 20


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"the bundle is over the limit of {limit:,} bytes")


def _copy(source: UploadFile, target: Path, limit: int) -> None:
    written = 0
    with target.open("wb") as out:
        while chunk := source.file.read(CHUNK):
            written += len(chunk)
            if written > limit:
                raise _too_large(limit)
            out.write(chunk)


@router.post("", status_code=202)
async def upload(
    request: Request,
    tenant_id: str,
    who: Operator,
    bundle: Annotated[UploadFile, File(description="a OneRoster CSV bundle (zip)")],
    source: Annotated[
        str | None, Form(description="the tenant's CSV source (default: its first)")
    ] = None,
) -> dict[str, Any]:
    state = state_of(request)
    limit = state.settings.max_upload_bytes
    tenant = await known_tenant(state, who, tenant_id)
    csv_sources = [s for s in tenant.sources if isinstance(s, CsvSource)]
    chosen = next((s for s in csv_sources if source in (None, s.id)), None)
    if chosen is None:
        raise not_found(f"csv source {source or ''} of tenant {tenant_id}".replace("  ", " "))
    command = SyncRequested(tenant=tenant_id, source=chosen.id)
    folder = (state.settings.upload_dir / tenant_id).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{command.run_id}.zip"
    try:
        await asyncio.to_thread(_copy, bundle, target, limit)  # big files: off the event loop
        if not zipfile.is_zipfile(target):
            raise ApiError(
                422, "invalid_request", "bundle: not a zip file (a OneRoster CSV bundle is one)"
            )
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    command = command.model_copy(update={"bundle": str(target)})
    await commands.send(state, who, command, target=f"tenants/{tenant_id}/runs/{command.run_id}")
    return {"tenant": tenant_id, "run_id": str(command.run_id), "source": chosen.id,
            "bytes": target.stat().st_size, "status": "requested"}  # fmt: skip
