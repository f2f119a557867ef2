"""A service's HTTP endpoint for operators: ``/metrics``, ``/healthz`` and ``/readyz``.

A small asyncio server in the service's own event loop, rather than prometheus_client's
``start_http_server`` (a thread that serves only the metrics): answering from the loop itself
makes ``/healthz`` mean the loop is alive (a loop stuck in a long call stops answering, and the
liveness probe restarts it), and the server needs no dependency beyond prometheus_client's
exposition. Requests are small GETs from Prometheus and the kubelet: the first line is read, the
headers skipped, one answer written, the connection closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from rostersync_libs.health import Health, Probe
from rostersync_libs.settings import ServiceSettings

log = logging.getLogger(__name__)

READ_TIMEOUT = 5.0
MAX_HEADER_LINES = 100
REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


def answer(health: Health, method: str, path: str) -> tuple[int, str, bytes]:
    """Status, content type and body for one request."""
    if method not in ("GET", "HEAD"):
        return 405, "text/plain", b"GET only\n"
    path = path.split("?", 1)[0]
    if path == "/metrics":
        return 200, CONTENT_TYPE_LATEST, generate_latest(REGISTRY)
    if path == "/healthz":
        return 200, "text/plain", b"ok\n"
    if path == "/readyz":
        ready, why = health.ready()
        return (200 if ready else 503), "text/plain", f"{why}\n".encode()
    return 404, "text/plain", b"/metrics, /healthz or /readyz\n"


class HealthServer:
    def __init__(self, health: Health) -> None:
        self.health = health

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(READ_TIMEOUT):
                first = (await reader.readline()).decode("latin-1").split()
                for _ in range(MAX_HEADER_LINES):
                    if (await reader.readline()).strip() == b"":
                        break
            method, path = (first[0], first[1]) if len(first) >= 2 else ("", "")
            status, content_type, body = answer(self.health, method, path)
            head = (
                f"HTTP/1.1 {status} {REASONS[status]}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + (b"" if method == "HEAD" else body))
            await writer.drain()
        except (OSError, TimeoutError, UnicodeError):
            pass  # a client that went away or never finished its request
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def serving_health(settings: ServiceSettings, health: Health) -> AsyncIterator[None]:
    """The endpoint and the readiness probe, while the block runs; nothing without a port."""
    if settings.metrics_port is None:
        yield
        return
    server = await asyncio.start_server(
        HealthServer(health).serve, settings.metrics_host, settings.metrics_port
    )
    log.info(
        "%s: /metrics, /healthz, /readyz on %s:%d",
        health.service,
        settings.metrics_host,
        settings.metrics_port,
    )
    stop = asyncio.Event()
    probing = asyncio.create_task(Probe(settings, health, settings.probe_seconds).run(stop))
    try:
        yield
    finally:
        stop.set()
        server.close()
        await probing
        await server.wait_closed()
