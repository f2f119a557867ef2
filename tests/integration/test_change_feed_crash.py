"""The change feed's exactly-once effect: kill -9 the writer in the middle of a large run, and
again while its relay publishes; the outbox ends with exactly the changes of a clean run, and
the topic holds every sequence number, duplicates only as identical copies."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from pathlib import Path

import asyncpg
import pytest
from rostersync_cli.actions import request_sync
from rostersync_cli.generate import DistrictShape, generate
from rostersync_cli.processes import SERVICES, start_service, stop_all
from rostersync_cli.replay import compare
from rostersync_libs.kafka import ensure_topics
from rostersync_libs.settings import ServiceSettings

from tests.bundles import write_tenants
from tests.change_feed import changes_on_topic, until_relayed
from tests.conftest import isolated_settings
from tests.e2e import cli_settings
from tests.pipeline import wait_for_run
from tests.servers import Servers

pytestmark = pytest.mark.integration


async def _until(conn: asyncpg.Connection, sql: str, timeout: float = 120) -> None:
    async with asyncio.timeout(timeout):
        while True:
            with contextlib.suppress(asyncpg.UndefinedTableError):
                if await conn.fetchval(sql):
                    return
            await asyncio.sleep(0.02)


async def load(settings: ServiceSettings, tenants: Path, *, kill: bool) -> list[str]:
    """Sync with the services as processes; with ``kill``, kill -9 the writer mid-run and
    again mid-relay. Returns when each kill happened."""
    cli = cli_settings(settings, tenants)
    await ensure_topics(settings)
    procs: dict[str, subprocess.Popen[bytes]] = {n: start_service(n, cli) for n in SERVICES}
    conn = await asyncpg.connect(
        settings.database_url.get_secret_value(),
        server_settings={"search_path": settings.db_schema},
    )
    killed = []

    def kill_writer(when: str) -> None:
        procs["writer"].kill()  # SIGKILL: no clean shutdown, no final commit
        procs["writer"].wait()
        procs["writer"] = start_service("writer", cli)
        killed.append(when)

    try:
        command = await request_sync(cli, "d1", None)
        if kill:
            await _until(conn, "SELECT count(*) > 2000 FROM enrollments")
            if await conn.fetchval("SELECT status FROM sync_runs LIMIT 1") != "completed":
                kill_writer("mid-run")
        await wait_for_run(settings, "d1", command.run_id, timeout=240)
        if kill:
            with contextlib.suppress(TimeoutError):
                await _until(conn, "SELECT relayed_seq > 0 FROM change_relay", timeout=60)
            behind = "SELECT relayed_seq < last_seq FROM change_relay JOIN change_sequences USING (tenant_id)"  # fmt: skip
            if await conn.fetchval(behind):
                kill_writer("mid-relay")
        await until_relayed(conn, timeout=120)
    finally:
        await conn.close()
        stop_all(list(procs.values()))
    return killed


async def test_a_killed_writer_loses_and_duplicates_no_change(
    servers: Servers, settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    generate(tmp_path / "bundle", DistrictShape(students=1500))
    tenants = write_tenants(tmp_path / "t.toml", "d1", tmp_path / "bundle")
    killed = await load(settings, tenants, kill=True)
    assert "mid-run" in killed, "the run ended before the kill: grow it"
    last = await db.fetchval("SELECT last_seq FROM change_sequences")

    # The topic: every number once at least; a repeat (a relay killed before it stored its
    # cursor) is the same event again, recognisable by its number.
    by_number: dict[int, set[str]] = {}
    for _, event in await changes_on_topic(settings):
        by_number.setdefault(event.sequence, set()).add(event.model_dump_json())
    assert sorted(by_number) == list(range(1, last + 1))
    assert all(len(copies) == 1 for copies in by_number.values())

    # The outbox: exactly a clean run's changes, numbered the same (run ids and times aside).
    async with isolated_settings(servers) as clean:
        assert await load(clean, tenants, kill=False) == []
        differences = await compare(
            db, settings.db_schema, clean.db_schema, ["change_log", "change_sequences"],
            frozenset({"run_id", "effective_at"}),
        )  # fmt: skip
    assert differences == {"change_log": (0, 0), "change_sequences": (0, 0)}
    assert last > 5000
    print(f"writer killed: {killed}")
