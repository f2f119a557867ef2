"""What the fetcher has published of a run so far, for the run's view while it runs.

One row of ``run_stage_progress`` per run (stage ``fetcher``, partition -1; see
``rostersync_libs.stage_progress``), rewritten at most once a second from the publisher's flushes
and once at the run's end. It holds a total, so a rewrite is harmless (``GREATEST``: never
smaller). Progress is for people watching: a failed write is logged (once a minute) and
publishing goes on; the run event carries the run's real counts.
"""

from __future__ import annotations

import logging
import time
from uuid import UUID

import asyncpg

log = logging.getLogger(__name__)

PUBLISHED_SQL = """
INSERT INTO run_stage_progress AS s
    (tenant_id, run_id, stage, partition, passed, first_offset, last_offset)
VALUES ($1, $2, 'fetcher', -1, $3, 0, $3)
ON CONFLICT (tenant_id, run_id, stage, partition) DO UPDATE SET
    passed = GREATEST(s.passed, excluded.passed),
    last_offset = GREATEST(s.last_offset, excluded.last_offset),
    updated_at = now()
"""


class PublishedProgress:
    def __init__(self, pool: asyncpg.Pool, tenant: str, run_id: UUID, interval: float = 1.0):
        self._pool, self._tenant, self._run_id, self._interval = pool, tenant, run_id, interval
        self._next = 0.0

    async def record(self, total: int, *, final: bool = False) -> None:
        if not final and time.monotonic() < self._next:
            return
        self._next = time.monotonic() + self._interval
        try:
            await self._pool.execute(PUBLISHED_SQL, self._tenant, self._run_id, total, timeout=5)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            self._next = time.monotonic() + 60  # one line a minute at most
            log.warning("run %s: progress not written (%s)", self._run_id, type(exc).__name__)
