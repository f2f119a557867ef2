"""Operations on real servers: the metrics after a run, JSON log lines of a run, and readiness
following PostgreSQL away and back."""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from rostersync_libs.health import Health
from rostersync_libs.health_server import serving_health
from rostersync_libs.logs import JsonFormatter
from rostersync_libs.settings import ServiceSettings

from tests.bundles import write_bundle, write_tenants
from tests.e2e import cli_settings
from tests.integration.test_end_to_end import ORGS, USERS, sync_now
from tests.integration.test_outages import proxied_database
from tests.pipeline import running_pipeline, start_logged
from tests.proxy import free_port
from tests.servers import Servers

pytestmark = pytest.mark.integration


async def http_get(port: int, path: str) -> tuple[int, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode()


def samples(exposition: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    found = {}
    for family in text_string_to_metric_families(exposition):
        for s in family.samples:
            found[(s.name, frozenset(s.labels.items()))] = s.value
    return found


def value(
    found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


async def test_metrics_endpoint_counts_a_run(settings: ServiceSettings, tmp_path: Path) -> None:
    tenant = f"metrics-{uuid.uuid4().hex[:8]}"  # series of this test only
    bundle = write_bundle(tmp_path / "bundle", {"orgs": ORGS, "users": USERS})
    tenants = write_tenants(tmp_path / "tenants.toml", tenant, bundle)
    port = free_port()
    endpoint = settings.model_copy(update={"metrics_port": port, "probe_seconds": 0.2})
    health = Health("test-pipeline")
    async with serving_health(endpoint, health), running_pipeline(settings, tenants):
        run_id = await sync_now(settings, tenants, tenant)
        health.working()
        await asyncio.sleep(0.5)  # a probe round
        assert await http_get(port, "/readyz") == (200, "ready\n")
        status, body = await http_get(port, "/metrics")
    assert status == 200
    found = samples(body)
    records = len(ORGS) + len(USERS)  # one of the users ("bad1") the validator rejects
    assert value(found, "rostersync_records_out_total", stage="fetcher", tenant=tenant) == records
    assert value(found, "rostersync_records_in_total", stage="validator", tenant=tenant) == records
    assert value(found, "rostersync_records_rejected_total", stage="validator", tenant=tenant) == 1
    assert (
        value(found, "rostersync_records_out_total", stage="validator", tenant=tenant)
        == records - 1
    )
    # The rejected record goes on as "seen" (it was in the run): the mapper and writer get it too.
    assert value(found, "rostersync_records_in_total", stage="mapper", tenant=tenant) == records
    assert value(found, "rostersync_records_in_total", stage="writer", tenant=tenant) == records
    ended = {
        labels: v for (name, labels), v in found.items() if name == "rostersync_runs_ended_total"
        and dict(labels)["tenant"] == tenant
    }  # fmt: skip
    assert ended == {
        frozenset({"tenant": tenant, "source": "csv", "outcome": "completed"}.items()): 1.0
    }
    assert value(found, "rostersync_run_duration_seconds_count", tenant=tenant) == 1
    last = value(
        found, "rostersync_last_successful_sync_timestamp_seconds", tenant=tenant, source="csv"
    )
    assert last >= (run_id.int >> 80) / 1000
    assert value(found, "rostersync_writer_rows_changed_total", table="orgs") >= len(ORGS)
    assert value(found, "rostersync_batch_messages_count", service="writer") >= 1
    lags = [k for k in found if k[0] == "rostersync_consumer_lag_messages"]
    assert {dict(labels)["service"] for _, labels in lags} >= {"validator", "mapper", "writer"}
    assert value(found, "rostersync_service_ready", service="test-pipeline") == 1.0


async def test_json_log_lines_of_a_run_carry_its_ids_and_no_record_values(
    settings: ServiceSettings, tmp_path: Path
) -> None:
    bundle = write_bundle(tmp_path / "bundle", {"orgs": ORGS, "users": USERS})
    tenants = write_tenants(tmp_path / "tenants.toml", "district-j", bundle)
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Collect(logging.INFO)
    handler.setFormatter(JsonFormatter("pipeline"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        async with running_pipeline(settings, tenants):
            run_id = await sync_now(settings, tenants, "district-j")
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    parsed = [orjson.loads(line) for line in lines]
    of_run = [p for p in parsed if p.get("run") == str(run_id)]
    assert of_run, lines
    assert all(p["tenant"] == "district-j" for p in of_run)
    assert {p.get("stage") for p in of_run} >= {"fetcher", "writer"}
    # No value of any record (names, user names, e-mail, a password) anywhere in the lines.
    personal = ("name", "givenName", "familyName", "username", "email", "password")
    values = {row[k] for row in [*ORGS, *USERS] for k in personal if row.get(k)}
    assert len(values) >= 10
    leaked = [(v, line) for line in lines for v in values if v in line]
    assert leaked == []


async def test_readiness_follows_postgres_away_and_back(
    servers: Servers, settings: ServiceSettings, tmp_path: Path
) -> None:
    tenants = write_tenants(tmp_path / "t.toml", "d1", tmp_path / "none")
    pg, pg_url = proxied_database(servers.database_url)
    through = cli_settings(settings, tenants).model_copy(update={"database_url": SecretStr(pg_url)})
    port = free_port()
    await pg.open()
    writer = start_logged(
        "writer", through, tmp_path,
        ROSTERSYNC_METRICS_PORT=str(port), ROSTERSYNC_PROBE_SECONDS="0.3",
        ROSTERSYNC_LOG_FORMAT="json",
    )  # fmt: skip

    async def until(status: int, timeout: float) -> str:
        async with asyncio.timeout(timeout):
            while True:
                try:
                    got, body = await http_get(port, "/readyz")
                    if got == status:
                        return body
                except OSError:
                    pass  # not listening yet
                await asyncio.sleep(0.1)

    try:
        assert await until(200, 60) == "ready\n"
        await pg.cut()
        assert "PostgreSQL" in await until(503, 10)
        assert (await http_get(port, "/healthz"))[0] == 200  # alive all along: not restarted
        _, metrics = await http_get(port, "/metrics")
        assert value(samples(metrics), "rostersync_service_ready", service="writer") == 0.0
        await pg.open()
        assert await until(200, 60) == "ready\n"
        assert writer.poll() is None
    finally:
        writer.terminate()
        writer.wait(30)
        await pg.cut()
    log = [orjson.loads(line) for line in (tmp_path / "writer.log").read_text().splitlines()]
    assert {line["service"] for line in log} == {"writer"}
