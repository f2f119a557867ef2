"""Helpers of the admin API's tests: the API served by uvicorn on a free port, and tokens."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import httpx
import uvicorn
from rostersync_api.app import create_app
from rostersync_api.auth import Role, create_token
from rostersync_api.settings import ApiSettings
from rostersync_libs.settings import ServiceSettings
from rostersync_libs.store.migrate import migrate


def api_settings(settings: ServiceSettings, tenants_file: Path, upload_dir: Path) -> ApiSettings:
    return ApiSettings(
        **{
            **settings.model_dump(),
            "tenants_file": tenants_file,
            "upload_dir": upload_dir,
            "api_port": 0,
        }
    )


@asynccontextmanager
async def running_api(settings: ApiSettings) -> AsyncIterator[str]:
    """The API over real HTTP until the block ends; yields its base URL."""
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_config=None,
                            access_log=False, lifespan="on")  # fmt: skip
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(30):
            while not server.started:
                if task.done():
                    await task  # raises what stopped it
                await asyncio.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def token(
    db: asyncpg.Connection, settings: ServiceSettings, role: Role, tenants: list[str] | None = None
) -> dict[str, str]:
    """Authorization headers with a new token of ``role`` (for ``tenants``, or all)."""
    await db.execute(f'CREATE SCHEMA IF NOT EXISTS "{settings.db_schema}"')
    await migrate(db)
    _, secret = await create_token(db, settings.control, f"test-{role}", role, tenants)
    return {"Authorization": f"Bearer {secret}"}


@asynccontextmanager
async def api(settings: ApiSettings) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the API served for the block."""
    async with running_api(settings) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        yield http
