"""What watches a run while the fetcher publishes it: its lease, its time limit, its cancellation.

- The lease (leases.py) lets another fetcher end the run if this one dies.
- A run that outlasts ``run_timeout_seconds`` is stopped and ends ``failed`` ("took longer than").
- ``rostersync runs cancel`` stops it and ends it ``cancelled``, with who asked.
Either way the run ends as every failed run does (aborted markers, then its run event), and its
lease is given back: it is not asked again. A stop of the fetcher itself is not a cancellation:
the run keeps its lease and is ended, then retried, by another fetcher.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from uuid import UUID

from rostersync_libs.logs import log_context
from rostersync_libs.runs import RunPhase

from rostersync_fetcher.leases import RunLeases
from rostersync_fetcher.publisher import RunPublisher

log = logging.getLogger(__name__)

T = TypeVar("T")


class RunGuard:
    def __init__(self, leases: RunLeases | None, timeout_seconds: float) -> None:
        self._leases = leases
        self._timeout = timeout_seconds or None
        self._running: dict[UUID, asyncio.Future[Any]] = {}
        self._cancelled: dict[UUID, str] = {}
        self._ended: dict[UUID, tuple[RunPhase, str]] = {}

    async def run(
        self,
        work: Awaitable[T],
        *,
        publisher: Callable[[], RunPublisher],
        tenant: str,
        source: str,
        run_id: UUID,
        attempt: int = 1,
        full: bool = False,
        timeout_seconds: float | None = None,
        lease: bool = True,
    ) -> T | None:
        """``work`` (the run's publishing); None when it was stopped and ended here.

        ``timeout_seconds``: the source's own limit (None: the fetcher's). ``lease``: False for
        inbox runs (their claimed bundle is their recovery, csv/inbox_folder.py)."""
        # The run's log lines (its own, and those of the task publishing it) carry its ids.
        with log_context(tenant=tenant, source=source, run=run_id, stage="fetcher"):
            timeout = timeout_seconds or self._timeout
            inner: asyncio.Future[T] = asyncio.ensure_future(work)
            self._running[run_id] = inner
            held: contextlib.AbstractAsyncContextManager[None] = (
                self._leases.held(tenant, source, run_id, attempt=attempt, full=full)
                if self._leases is not None and lease
                else contextlib.nullcontext()
            )
            self._ended.pop(run_id, None)
            try:
                async with held:
                    try:
                        return await asyncio.wait_for(inner, timeout)
                    except TimeoutError:
                        phase = RunPhase.FAILED
                        reason = f"the run took longer than {timeout:g} s (run_timeout_seconds)"
                    except asyncio.CancelledError:
                        task = asyncio.current_task()
                        if run_id not in self._cancelled or (
                            task is not None and task.cancelling()
                        ):
                            raise  # the fetcher is stopping: the lease stays (see leases.py)
                        phase, reason = RunPhase.CANCELLED, self._cancelled[run_id]
                    await publisher().fail(reason, phase)
                    self._ended[run_id] = (phase, reason)
                    return None
            finally:
                self._running.pop(run_id, None)
                self._cancelled.pop(run_id, None)

    def publishing(self) -> frozenset[UUID]:
        """The runs this guard watches now (their publishing is alive)."""
        return frozenset(run for run, inner in self._running.items() if not inner.done())

    def ended_here(self, run_id: UUID) -> tuple[RunPhase, str] | None:
        """How the guard ended a run it stopped (timed out or cancelled), once."""
        return self._ended.pop(run_id, None)

    def cancel(self, run_id: UUID, requested_by: str) -> bool:
        """Stop the run if this fetcher is publishing it; False when it is not."""
        inner = self._running.get(run_id)
        if inner is None or inner.done():
            return False
        self._cancelled[run_id] = f"cancelled by {requested_by}"
        inner.cancel()
        return True
