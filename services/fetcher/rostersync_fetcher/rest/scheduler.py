"""One loop per REST source: scheduled runs and requested runs, one run at a time.

A requested run (a sync command) starts as soon as the current run of the source ends, pause
windows notwithstanding (an operator asked for it); scheduled runs honour the pause windows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from rostersync_libs.ids import new_run_id
from rostersync_libs.tenants import ApiSource, Tenant

from rostersync_fetcher.rest.schedule import next_run

log = logging.getLogger(__name__)

# The longest a loop sleeps without looking again (the tenants file may have changed).
MAX_NAP_SECONDS = 30.0


@dataclass(frozen=True)
class SyncRequest:
    run_id: UUID
    full: bool = False
    resend_unchanged: bool = False  # send every record whole (see unchanged.py)
    requested: bool = True  # False: started by the schedule
    attempt: int = 1  # the n-th try of a requested sync (see leases.py)


Runner = Callable[[Tenant, ApiSource, SyncRequest], Awaitable[object]]


class SourceLoop:
    def __init__(
        self,
        tenant: Tenant,
        source: ApiSource,
        runner: Runner,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.tenant = tenant
        self.source = source
        self._runner = runner
        self._clock = clock
        self._requests: deque[SyncRequest] = deque()
        self._wake = asyncio.Event()
        self.last_start: datetime | None = None
        self.removed = False
        self.runs = 0

    def update(self, tenant: Tenant, source: ApiSource) -> None:
        self.tenant, self.source = tenant, source
        self._wake.set()

    def request(self, request: SyncRequest) -> None:
        self._requests.append(request)
        self._wake.set()

    def remove(self) -> None:
        self.removed = True
        self._wake.set()

    def due(self) -> datetime | None:
        schedule = self.source.schedule
        if schedule is None:
            return None
        return next_run(schedule, self._clock(), self.last_start)

    async def run(self, stop: asyncio.Event) -> None:
        while True:
            request = await self._next(stop)
            if request is None:
                return
            self.last_start = self._clock()
            self.runs += 1
            try:
                await self._runner(self.tenant, self.source, request)
            except asyncio.CancelledError:
                raise
            except Exception:  # a broker hiccup must not end the source's schedule
                log.exception(
                    "tenant %s source %s: run %s could not be published",
                    self.tenant.id,
                    self.source.id,
                    request.run_id,
                )

    async def _next(self, stop: asyncio.Event) -> SyncRequest | None:
        while not (stop.is_set() or self.removed):
            if self._requests:
                return self._requests.popleft()
            due = self.due()
            now = self._clock()
            if due is not None and due <= now:
                return SyncRequest(run_id=new_run_id(), requested=False)
            nap = MAX_NAP_SECONDS if due is None else (due - now).total_seconds()
            await self._nap(stop, min(nap, MAX_NAP_SECONDS))
        return None

    async def _nap(self, stop: asyncio.Event, seconds: float) -> None:
        self._wake.clear()
        waiters = [
            asyncio.ensure_future(self._wake.wait()),
            asyncio.ensure_future(stop.wait()),
        ]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waiter
