"""Every run ends, also when the fetcher publishing it dies: a lease per run in PostgreSQL.

A fetcher holds a lease on each run it publishes from a command or a REST schedule, and renews it
every ``lease_renew_seconds``; a normal end (completed or failed) gives it back. Any fetcher looks
for leases not renewed for ``lease_stale_seconds`` (at start-up and then periodically): taking
one is an atomic delete, so one fetcher only ends each run, ``failed`` with aborted markers (every
stage releases it), and asks for it again (``lapsed_run_retries`` times) as a new run.

Inbox runs hold no lease: a claimed bundle is resumed, under its run id, by the next scan of its
folder (csv/inbox_folder.py). The clock is the database's (``now()``), so fetchers' clocks never matter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass
from uuid import UUID

import asyncpg
from rostersync_libs.store import runs

log = logging.getLogger(__name__)

TAKE_SQL = (
    "INSERT INTO fetch_leases (tenant_id, run_id, source, owner, attempt, full_sync)"
    " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, run_id)"
    " DO UPDATE SET owner = excluded.owner, renewed_at = now()"
)
RENEW_SQL = "UPDATE fetch_leases SET renewed_at = now() WHERE tenant_id = $1 AND run_id = $2"
GIVE_BACK_SQL = "DELETE FROM fetch_leases WHERE tenant_id = $1 AND run_id = $2"
LAPSED_SQL = (
    "DELETE FROM fetch_leases WHERE renewed_at < now() - make_interval(secs => $1)"
    " AND NOT (run_id = ANY($2::uuid[]))"
    " RETURNING tenant_id, run_id, source, attempt, full_sync,"
    " extract(epoch FROM now() - renewed_at)::int AS silent_seconds"
)


@dataclass(frozen=True)
class LapsedRun:
    tenant: str
    run_id: UUID
    source: str
    attempt: int
    full: bool
    silent_seconds: int


class RunLeases:
    def __init__(self, pool: asyncpg.Pool, owner: str, renew_seconds: float) -> None:
        self._pool = pool
        self._owner = owner
        self._renew_seconds = renew_seconds
        self._failing = False

    @contextlib.asynccontextmanager
    async def held(
        self, tenant: str, source: str, run_id: UUID, *, attempt: int = 1, full: bool = False
    ) -> AsyncIterator[None]:
        """Hold the run's lease while the block publishes it.

        Given back when the block ends by itself; kept when the task is cancelled or crashes, so
        the run is ended (and retried) by whichever fetcher finds it lapsed.
        """
        taken = await self._execute(TAKE_SQL, tenant, run_id, source, self._owner, attempt, full)
        renewing = asyncio.create_task(self._renew(tenant, run_id)) if taken else None
        try:
            yield
        except BaseException:
            if renewing is not None:
                renewing.cancel()
            raise
        if renewing is not None:
            renewing.cancel()
        if taken:
            await self._execute(GIVE_BACK_SQL, tenant, run_id)

    async def _renew(self, tenant: str, run_id: UUID) -> None:
        while True:
            await asyncio.sleep(self._renew_seconds)
            await self._execute(RENEW_SQL, tenant, run_id)

    async def _execute(self, sql: str, *args: object) -> bool:
        try:
            await self._pool.execute(sql, *args)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            # A lease that cannot be written only weakens the crash recovery of this run.
            if not self._failing:  # one line per outage, not one per renewal
                log.warning("fetcher: run lease not written (%s)", type(exc).__name__)
            self._failing = True
            return False
        self._failing = False
        return True

    async def publishing_ended(self, tenant: str, run_id: UUID) -> bool:
        """Whether the run's publishing ended (its fetcher said so): a lease left behind then
        (its give-back failed in a database outage) is no sign of a dead fetcher."""
        try:
            return await runs.publishing_ended(self._pool, tenant, run_id)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
            return False

    async def lapsed(
        self, stale_seconds: float, publishing: Collection[UUID] = ()
    ) -> list[LapsedRun]:
        """Take every lease not renewed in time (each is taken by one fetcher only), but never
        one of the runs this fetcher is ``publishing``: after a database outage its own renewals
        are late, and the run is alive."""
        try:
            rows = await self._pool.fetch(LAPSED_SQL, stale_seconds, list(publishing))
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            if not self._failing:  # one line per outage
                log.warning("fetcher: lapsed leases not read (%s)", type(exc).__name__)
            self._failing = True
            return []
        self._failing = False
        return [
            LapsedRun(
                r["tenant_id"], r["run_id"], r["source"], r["attempt"], r["full_sync"],
                r["silent_seconds"],
            )
            for r in rows
        ]  # fmt: skip
