"""``rostersync serve`` restarts a service that dies, and the pipeline goes on (real processes,
Kafka and PostgreSQL)."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from pathlib import Path

import asyncpg
import pytest
from rostersync_cli.actions import request_sync
from rostersync_cli.processes import Supervisor
from rostersync_libs.settings import ServiceSettings

from tests import districts
from tests.bundles import write_bundle, write_tenants
from tests.e2e import cli_settings, ids
from tests.pipeline import wait_for_run

pytestmark = pytest.mark.integration


async def test_serve_restarts_a_killed_writer_and_the_next_sync_completes(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    tenants = write_tenants(
        tmp_path / "t.toml", "d1", write_bundle(tmp_path / "b", districts.bundle_1_1())
    )
    cli = cli_settings(settings, tenants)
    supervisor = Supervisor(cli)
    thread = threading.Thread(target=supervisor.run, kwargs={"poll_seconds": 0.1})
    thread.start()
    try:
        first = supervisor.children["writer"]
        await asyncio.sleep(2)  # let it start
        os.kill(first.pid, signal.SIGKILL)
        async with asyncio.timeout(30):
            while supervisor.restarts["writer"] == 0:
                await asyncio.sleep(0.1)
        restarted = supervisor.children["writer"]
        assert restarted.pid != first.pid
        assert restarted.poll() is None
        assert first.returncode == -signal.SIGKILL
        command = await request_sync(cli, "d1", None)
        await wait_for_run(settings, "d1", command.run_id, timeout=120)
        assert await ids(db, "enrollments") == {"e1", "e2", "e3"}
        # The other services were never restarted.
        assert {n: c for n, c in supervisor.restarts.items() if n != "writer"} == {
            "fetcher": 0, "validator": 0, "mapper": 0,
        }  # fmt: skip
    finally:
        supervisor.stop()
        await asyncio.to_thread(thread.join, 60)
    assert all(proc.poll() is not None for proc in supervisor.children.values())
