"""Running the four services as asyncio tasks against real servers, for integration tests."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
from rostersync_cli.processes import service_environment
from rostersync_fetcher.app import FetcherService
from rostersync_fetcher.settings import FetcherSettings
from rostersync_libs.kafka import ensure_topics
from rostersync_libs.settings import ServiceSettings
from rostersync_mapper import app as mapper_app
from rostersync_mapper.settings import MapperSettings
from rostersync_validator import app as validator_app
from rostersync_validator.settings import ValidatorSettings
from rostersync_writer import app as writer_app
from rostersync_writer.settings import WriterSettings


@contextlib.asynccontextmanager
async def running_pipeline(
    settings: ServiceSettings,
    tenants_file: Path,
    *,
    http_transport: Any = None,
    **overrides: Any,
) -> AsyncIterator[None]:
    """All four services, each with its own settings object, until the block ends.

    ``http_transport`` (an httpx transport) points the fetcher's API sources at a fake server.
    """
    values = {**settings.model_dump(), "tenants_file": tenants_file, **overrides}
    await ensure_topics(settings)
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(
            FetcherService(FetcherSettings(**values), http_transport=http_transport).run(stop)
        ),
        asyncio.create_task(validator_app.run(ValidatorSettings(**values), stop)),
        asyncio.create_task(mapper_app.run(MapperSettings(**values), stop)),
        asyncio.create_task(writer_app.run(WriterSettings(**values), stop)),
    ]
    try:
        yield
    finally:
        stop.set()
        done = await asyncio.gather(*tasks, return_exceptions=True)
        errors = [d for d in done if isinstance(d, BaseException)]
        if errors:
            raise errors[0]


async def wait_for_run(
    settings: ServiceSettings, tenant: str, run_id: UUID, timeout: float = 60
) -> None:
    """Until the writer marks the run complete (fails the test on time-out)."""
    conn = await asyncpg.connect(
        settings.database_url.get_secret_value(),
        server_settings={"search_path": settings.db_schema},
    )
    try:
        async with asyncio.timeout(timeout):
            while True:
                with contextlib.suppress(asyncpg.UndefinedTableError):
                    status = await conn.fetchval(
                        "SELECT status FROM sync_runs WHERE tenant_id = $1 AND run_id = $2",
                        tenant,
                        run_id,
                    )
                    if status == "completed":
                        return
                await asyncio.sleep(0.2)
    finally:
        await conn.close()


def start_logged(
    name: str, settings: ServiceSettings, logs: Path, **environment: str
) -> subprocess.Popen[bytes]:
    """One service as a process (its real entry point), its output in ``logs/<name>.log``."""
    with (logs / f"{name}.log").open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", f"rostersync_{name}"],
            env={**service_environment(settings), **environment},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
