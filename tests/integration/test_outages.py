"""Outages of PostgreSQL and Kafka are waited out, not exited on.

The four services run as processes (their real entry points: signals, logging, the retry loop),
connected to PostgreSQL and Kafka through proxies the test cuts and opens. Started before both
servers, they wait and then load the district; when PostgreSQL goes away mid-run they wait, come
back, and end with exactly the rows of a clean run; each says so in a few lines, not thousands.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from pydantic import SecretStr
from rostersync_cli.actions import request_sync
from rostersync_cli.generate import DistrictShape, generate
from rostersync_cli.processes import SERVICES, stop_all
from rostersync_cli.replay import compare
from rostersync_libs.settings import ServiceSettings

from tests.bundles import write_tenants
from tests.conftest import isolated_settings
from tests.e2e import cli_settings
from tests.integration.test_crash_recovery import ROSTER, RUN_COLUMNS, load
from tests.pipeline import start_logged, wait_for_run
from tests.proxy import TcpProxy
from tests.servers import Servers

pytestmark = pytest.mark.integration


def proxied_database(url: str) -> tuple[TcpProxy, str]:
    parts = urlsplit(url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{proxy.port}"
    through = f"{netloc[0]}@{host}" if len(netloc) == 2 else host
    return proxy, urlunsplit(parts._replace(netloc=through))


def proxied_kafka(bootstrap: str) -> tuple[TcpProxy, str]:
    host, port = bootstrap.split(",")[0].rsplit(":", 1)
    proxy = TcpProxy(host, int(port))
    return proxy, f"127.0.0.1:{proxy.port}"


def quiet(logs: Path) -> None:
    """No traceback in any service's log, and few lines that are not INFO."""
    for name, loud in loud_lines(logs).items():
        assert not [line for line in loud if "Traceback" in line], (name, loud)
        assert len(loud) <= 12, (name, loud)


def loud_lines(logs: Path) -> dict[str, list[str]]:
    """Each service's log lines that are not INFO (what a failed assertion shows)."""
    lines = {}
    for name in SERVICES:
        text = (logs / f"{name}.log").read_text(errors="replace")
        lines[name] = [line for line in text.splitlines() if " INFO " not in line]
    return lines


def outage_lines(logs: Path, name: str) -> list[str]:
    text = (logs / f"{name}.log").read_text(errors="replace")
    return [line for line in text.splitlines() if "unavailable" in line or "back after" in line]


async def written(db: asyncpg.Connection, schema: str) -> int:
    with contextlib.suppress(asyncpg.UndefinedTableError):
        return int(await db.fetchval(f"SELECT count(*) FROM {schema}.enrollments"))
    return 0


async def test_services_started_before_postgres_and_kafka_wait_for_both(
    servers: Servers, settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    generate(tmp_path / "bundle", DistrictShape(students=100))
    tenants = write_tenants(tmp_path / "t.toml", "d1", tmp_path / "bundle")
    pg, pg_url = proxied_database(servers.database_url)
    kafka, kafka_bootstrap = proxied_kafka(servers.kafka_bootstrap)
    direct = cli_settings(settings, tenants)
    through = direct.model_copy(
        update={"database_url": SecretStr(pg_url), "kafka_bootstrap_servers": kafka_bootstrap}
    )
    procs = {name: start_logged(name, through, tmp_path) for name in SERVICES}
    try:
        await asyncio.sleep(5)  # several attempts each, against servers that are not there
        assert {n: p.poll() for n, p in procs.items()} == dict.fromkeys(SERVICES)
        await kafka.open()
        await asyncio.sleep(4)  # Kafka is there, PostgreSQL is not: still waiting
        assert {n: p.poll() for n, p in procs.items()} == dict.fromkeys(SERVICES)
        assert await written(db, settings.db_schema) == 0
        await pg.open()
        command = await request_sync(direct, "d1", None)
        await wait_for_run(settings, "d1", command.run_id, timeout=120)
    finally:
        stop_all(list(procs.values()))
        await pg.cut()
        await kafka.cut()
    assert await written(db, settings.db_schema) > 100
    for name in SERVICES:
        lines = outage_lines(tmp_path, name)
        # One line when it began, one when it ended (a line a minute at most in between).
        assert len(lines) == 2, (name, lines)
        assert "unavailable" in lines[0], (name, lines)
        assert "back after" in lines[1], (name, lines)
    quiet(tmp_path)


async def test_a_postgres_outage_mid_run_ends_with_the_rows_of_a_clean_run(
    servers: Servers, settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    generate(tmp_path / "bundle", DistrictShape(students=1500))
    tenants = write_tenants(tmp_path / "t.toml", "d1", tmp_path / "bundle")
    pg, pg_url = proxied_database(servers.database_url)
    direct = cli_settings(settings, tenants)
    through = direct.model_copy(update={"database_url": SecretStr(pg_url)})
    await pg.open()
    procs = {name: start_logged(name, through, tmp_path) for name in SERVICES}
    try:
        command = await request_sync(direct, "d1", None)
        async with asyncio.timeout(120):
            while await written(db, settings.db_schema) < 2000:
                await asyncio.sleep(0.05)
        status = await db.fetchval("SELECT status FROM sync_runs WHERE run_id = $1", command.run_id)
        assert status != "completed", "the run ended before the outage: grow it"
        await pg.cut()  # every connection reset, new ones refused
        await asyncio.sleep(5)
        await pg.open()
        try:
            await wait_for_run(settings, "d1", command.run_id, timeout=240)
        except TimeoutError:
            pytest.fail(f"the run did not end: {loud_lines(tmp_path)}")
        alive = {n: p.poll() for n, p in procs.items()}
        assert alive == dict.fromkeys(SERVICES), loud_lines(tmp_path)
    finally:
        stop_all(list(procs.values()))
        await pg.cut()
    async with isolated_settings(servers) as clean:
        await load(clean, tenants, victim=None)
        differences = await compare(db, settings.db_schema, clean.db_schema, ROSTER, RUN_COLUMNS)
    assert {t: d for t, d in differences.items() if d != (0, 0)} == {}, loud_lines(tmp_path)
    writer_lines = outage_lines(tmp_path, "writer")
    assert 1 <= len(writer_lines) <= 4, loud_lines(tmp_path)
    assert any("PostgreSQL unavailable" in line for line in writer_lines), writer_lines
    assert "back after" in writer_lines[-1], writer_lines
    quiet(tmp_path)
