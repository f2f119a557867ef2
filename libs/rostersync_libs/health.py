"""Whether a service is ready: its loop has started with its servers, no outage is in progress,
and a probe of PostgreSQL and Kafka answers.

The service's own loop says when it started (``outages.working``) and when an outage began
(``service.keep_running``); between batches an idle service would not notice a lost server, so a
probe asks both every ``probe_seconds``: ``SELECT 1`` on a connection of its own (reopened when
lost), and a TCP connection to a Kafka bootstrap server (reachable; the clients' own
authentication is theirs to report, as an outage).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

import asyncpg

from rostersync_libs.metrics import SERVICE_READY
from rostersync_libs.outages import POSTGRES_OUTAGES
from rostersync_libs.settings import ServiceSettings

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 3.0


@dataclass
class Health:
    """One service's readiness, as its loop and its probe last saw it."""

    service: str
    started: bool = False  # its loop runs with its servers (outages.working)
    outage: str | None = None  # what the loop's last failure was (outages.describe)
    probe: str | None = "not probed yet"  # what the last probe found wrong, None: all well

    def __post_init__(self) -> None:
        SERVICE_READY.labels(self.service).set_function(lambda: 1.0 if self.ready()[0] else 0.0)

    def working(self) -> None:
        self.started, self.outage = True, None

    def failed(self, what: str) -> None:
        self.started, self.outage = False, what

    def ready(self) -> tuple[bool, str]:
        """Ready or not, and why not (never a connection string: outages.describe's words)."""
        if self.outage is not None:
            return False, self.outage
        if self.probe is not None:
            return False, self.probe
        if not self.started:
            return False, "starting"
        return True, "ready"


class Probe:
    """Asks PostgreSQL and Kafka whether they answer, every ``every`` seconds."""

    def __init__(self, settings: ServiceSettings, health: Health, every: float) -> None:
        self._settings = settings
        self._health = health
        self._every = every
        self._conn: asyncpg.Connection | None = None

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                self._health.probe = await self.check()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._every)
        finally:
            await self._close()

    async def check(self) -> str | None:
        """What does not answer (None: both do)."""
        if not await self._postgres():
            return "PostgreSQL does not answer"
        if not await self._kafka():
            return "Kafka does not answer"
        return None

    async def _postgres(self) -> bool:
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                if self._conn is None or self._conn.is_closed():
                    dsn = self._settings.database_url.get_secret_value()
                    self._conn = await asyncpg.connect(dsn, timeout=PROBE_TIMEOUT)
                await self._conn.fetchval("SELECT 1")
            return True
        except (*POSTGRES_OUTAGES, OSError, TimeoutError, asyncpg.PostgresError) as exc:
            log.debug("%s: PostgreSQL probe failed (%s)", self._health.service, type(exc).__name__)
            await self._close()
            return False

    async def _kafka(self) -> bool:
        for server in self._settings.kafka_bootstrap_servers.split(","):
            host, _, port = server.strip().rpartition(":")
            try:
                async with asyncio.timeout(PROBE_TIMEOUT):
                    _, writer = await asyncio.open_connection(host.strip("[]"), int(port))
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
                return True
            except (OSError, TimeoutError, ValueError):
                continue
        return False

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()  # never wait on a server that may be gone
