"""The operator endpoint: /healthz, /readyz as the loop and the probe say, /metrics."""

from __future__ import annotations

import asyncio

from prometheus_client import REGISTRY
from pydantic import SecretStr
from rostersync_libs.health import Health
from rostersync_libs.health_server import answer, serving_health
from rostersync_libs.settings import ServiceSettings

from tests.proxy import free_port


def test_ready_only_when_started_probed_and_not_in_an_outage() -> None:
    health = Health("unit-a")
    assert health.ready() == (False, "not probed yet")
    health.probe = None
    assert health.ready() == (False, "starting")
    health.working()
    assert health.ready() == (True, "ready")
    assert REGISTRY.get_sample_value("rostersync_service_ready", {"service": "unit-a"}) == 1.0
    health.failed("PostgreSQL unavailable (ConnectionResetError)")
    assert health.ready() == (False, "PostgreSQL unavailable (ConnectionResetError)")
    assert REGISTRY.get_sample_value("rostersync_service_ready", {"service": "unit-a"}) == 0.0
    health.working()
    health.probe = "Kafka does not answer"
    assert health.ready() == (False, "Kafka does not answer")


def test_answers_by_path() -> None:
    health = Health("unit-b")
    assert answer(health, "GET", "/healthz") == (200, "text/plain", b"ok\n")
    assert answer(health, "GET", "/readyz")[0] == 503
    health.probe = None
    health.working()
    assert answer(health, "GET", "/readyz?verbose") == (200, "text/plain", b"ready\n")
    status, content_type, body = answer(health, "GET", "/metrics")
    assert (status, content_type.split(";")[0]) == (200, "text/plain")
    assert b'rostersync_service_ready{service="unit-b"} 1.0' in body
    assert answer(health, "GET", "/other")[0] == 404
    assert answer(health, "POST", "/readyz")[0] == 405


async def get(port: int, path: str) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


async def test_served_over_http_with_a_probe_of_servers_that_are_not_there() -> None:
    port = free_port()
    nowhere = free_port()  # nothing listens: both probes fail
    settings = ServiceSettings(
        metrics_port=port,
        probe_seconds=0.05,
        kafka_bootstrap_servers=f"127.0.0.1:{nowhere}",
        database_url=SecretStr(f"postgresql://postgres@127.0.0.1:{nowhere}/x"),
    )
    health = Health("unit-c")
    health.working()
    async with serving_health(settings, health):
        await asyncio.sleep(0.3)
        assert await get(port, "/healthz") == (200, b"ok\n")
        assert await get(port, "/readyz") == (503, b"PostgreSQL does not answer\n")
        status, body = await get(port, "/metrics")
        assert status == 200
        assert b'rostersync_service_ready{service="unit-c"} 0.0' in body
