"""The writer's metrics: what a committed batch did, and the runs' standing from PostgreSQL.

A batch's counts are added only after its transaction committed (a batch applied again without
its poison counts once, as what it finally did). The gauges of runs held and of each source's
last successful sync are read from PostgreSQL every ``every`` seconds, so they are right after a
restart and the same on every writer instance (the rules take their ``max``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from uuid import UUID

import asyncpg
from rostersync_libs.metrics import (
    LAST_SUCCESS,
    RECORDS_IN,
    ROWS_CHANGED,
    RUN_SECONDS,
    RUNS_ENDED,
    RUNS_HELD,
)
from rostersync_libs.outages import POSTGRES_OUTAGES

log = logging.getLogger(__name__)

STAGE = "writer"

# run_outcomes.status → the outcome a run ended with (metrics.RUNS_ENDED).
OUTCOMES = {
    "applied": "completed",
    "approved": "completed",
    "discarded": "completed",
    "held": "held",
    "aborted": "failed",
}

HELD_SQL = "SELECT tenant_id, count(*) FROM run_outcomes WHERE status = 'held' GROUP BY tenant_id"
LAST_SUCCESS_SQL = (
    "SELECT tenant_id, source, extract(epoch FROM max(completed_at))::float8 AS at"
    " FROM sync_runs WHERE status = 'completed' GROUP BY tenant_id, source"
)


def requested_at(run_id: UUID) -> float:
    """When the run was requested: a run id is a UUIDv7, its first 48 bits Unix milliseconds."""
    return (run_id.int >> 80) / 1000.0


def count_batch(
    received: Counter[str],
    changes: Counter[str],
    ended: list[tuple[str, UUID, str, str]],
) -> None:
    """A committed batch: records received per tenant, rows changed per table, and the runs it
    completed as (tenant, run, source, run_outcomes status)."""
    for tenant, n in received.items():
        RECORDS_IN.labels(STAGE, tenant).inc(n)
    for table, n in changes.items():
        ROWS_CHANGED.labels(table).inc(n)
    now = time.time()
    for tenant, run_id, source, status in ended:
        outcome = OUTCOMES.get(status, status)
        RUNS_ENDED.labels(tenant, source, outcome).inc()
        RUN_SECONDS.labels(tenant).observe(max(0.0, now - requested_at(run_id)))
        if outcome == "completed":
            LAST_SUCCESS.labels(tenant, source).set(now)


class RunGauges:
    """Keeps the held-runs and last-success gauges as PostgreSQL says."""

    def __init__(self, pool: asyncpg.Pool, every: float = 30.0) -> None:
        self._pool = pool
        self._every = every
        self._held: set[str] = set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.refresh()
            except (*POSTGRES_OUTAGES, OSError, asyncpg.UndefinedTableError) as exc:
                # The batch loop reports an outage; these gauges wait for the next round.
                log.debug("run gauges not refreshed (%s)", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._every)

    async def refresh(self) -> None:
        async with self._pool.acquire() as conn:
            held = {r[0]: r[1] for r in await conn.fetch(HELD_SQL)}
            last = await conn.fetch(LAST_SUCCESS_SQL)
        for tenant in self._held - held.keys():  # decided since: none held any more
            RUNS_HELD.labels(tenant).set(0)
        for tenant, n in held.items():
            RUNS_HELD.labels(tenant).set(n)
        self._held |= held.keys()
        for row in last:
            LAST_SUCCESS.labels(row["tenant_id"], row["source"]).set(row["at"])
