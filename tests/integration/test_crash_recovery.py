"""Exactly-once effect: kill -9 the writer (or the mapper) in the middle of a large run, restart
it, and the database ends exactly as after a clean run: same rows, no duplicates."""

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
from tests.conftest import isolated_settings
from tests.e2e import cli_settings
from tests.pipeline import wait_for_run
from tests.servers import Servers

pytestmark = pytest.mark.integration

ROSTER = ["orgs", "academic_sessions", "courses", "classes", "class_terms", "users", "user_orgs",
          "guardian_links", "enrollments", "demographics"]  # fmt: skip
RUN_COLUMNS = frozenset({"first_seen_run", "last_seen_run", "run_id", "finding_id"})


async def load(settings: ServiceSettings, tenants: Path, victim: str | None) -> bool:
    """Sync the district with the four services as processes; kill -9 ``victim`` mid-run.

    Returns whether the run was still incomplete when the victim was killed.
    """
    cli = cli_settings(settings, tenants)
    await ensure_topics(settings)
    procs: dict[str, subprocess.Popen[bytes]] = {n: start_service(n, cli) for n in SERVICES}
    conn = await asyncpg.connect(settings.database_url.get_secret_value())
    interrupted = False
    try:
        command = await request_sync(cli, "d1", None)
        if victim is not None:
            schema = settings.db_schema
            async with asyncio.timeout(120):
                while True:
                    written = 0
                    with contextlib.suppress(asyncpg.UndefinedTableError):
                        written = await conn.fetchval(f"SELECT count(*) FROM {schema}.enrollments")
                    if written and written > 2000:
                        break
                    await asyncio.sleep(0.05)
            status = await conn.fetchval(f"SELECT status FROM {schema}.sync_runs LIMIT 1")
            interrupted = status != "completed"
            procs[victim].kill()  # SIGKILL: no clean shutdown, no final commit
            procs[victim].wait()
            procs[victim] = start_service(victim, cli)
        await wait_for_run(settings, "d1", command.run_id, timeout=240)
    finally:
        await conn.close()
        stop_all(list(procs.values()))
    return interrupted


@pytest.mark.parametrize("victim", ["writer", "mapper"])
async def test_a_killed_service_restarts_to_exactly_the_rows_of_a_clean_run(
    servers: Servers, settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path, victim: str
) -> None:
    generate(tmp_path / "bundle", DistrictShape(students=1500))
    tenants = write_tenants(tmp_path / "t.toml", "d1", tmp_path / "bundle")
    assert await load(settings, tenants, victim=victim), "the run ended before the kill: grow it"
    async with isolated_settings(servers) as clean:
        await load(clean, tenants, victim=None)
        differences = await compare(db, settings.db_schema, clean.db_schema, ROSTER, RUN_COLUMNS)
    assert {t: d for t, d in differences.items() if d != (0, 0)} == {}
    assert await db.fetchval("SELECT count(*) FROM enrollments") > 5000
