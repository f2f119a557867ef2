"""The ``oneroster-api`` source kind: a OneRoster REST API, polled on a schedule and on request.

One loop per configured source (rest/scheduler.py) runs its schedule and its requested runs, one
run at a time; ``watch`` keeps the loops in step with the tenants (added, changed, removed). A
sync command is queued on the source's loop, behind any run in progress.
"""

from __future__ import annotations

import asyncio
import contextlib
from functools import partial

import httpx
from pydantic import SecretStr
from rostersync_libs import source_secrets
from rostersync_libs.commands import SyncRequested
from rostersync_libs.runs import RunPhase
from rostersync_libs.tenants import ApiSource, Tenant

from rostersync_fetcher.rest.auth import authenticator_for
from rostersync_fetcher.rest.client import OneRosterClient
from rostersync_fetcher.rest.errors import FetchError
from rostersync_fetcher.rest.run import ApiRun, ApiRunResult
from rostersync_fetcher.rest.scheduler import SourceLoop, SyncRequest
from rostersync_fetcher.sources.driver import Fetching
from rostersync_fetcher.sources.registry import driver

SourceKey = tuple[str, str]  # (tenant, source)


@driver("oneroster-api")
class OneRosterApiDriver:
    takes_bundle = False

    def __init__(self, fetching: Fetching) -> None:
        self._fetching = fetching
        self._loops: dict[SourceKey, SourceLoop] = {}
        self._loop_tasks: dict[SourceKey, asyncio.Task[None]] = {}
        self._semaphores: dict[tuple[str, int], asyncio.Semaphore] = {}

    async def sync(self, tenant: Tenant, source: ApiSource, command: SyncRequested) -> None:
        self._loop_for(tenant, source).request(
            SyncRequest(
                run_id=command.run_id,
                full=command.full,
                resend_unchanged=command.resend_unchanged,
                attempt=command.attempt,
            )
        )

    async def watch(self, stop: asyncio.Event) -> None:
        """Keep one loop per configured REST source, following the tenants."""
        while not stop.is_set():
            tenants = await self._fetching.live_tenants()
            if tenants is not None:
                wanted = {(t.id, s.id): (t, s) for t in tenants for s in t.api_sources}
                for tenant, source in wanted.values():
                    self._loop_for(tenant, source)
                for key, loop in list(self._loops.items()):
                    if key not in wanted:
                        loop.remove()
                        del self._loops[key]
                        self._loop_tasks.pop(key, None)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._fetching.settings.inbox_poll_seconds)

    def release(self) -> list[asyncio.Task[None]]:
        tasks = list(self._loop_tasks.values())
        for loop in self._loops.values():
            loop.remove()
        self._loops.clear()
        self._loop_tasks.clear()
        return tasks

    def _loop_for(self, tenant: Tenant, source: ApiSource) -> SourceLoop:
        key = (tenant.id, source.id)
        loop = self._loops.get(key)
        if loop is not None and not loop.removed:
            loop.update(tenant, source)
            return loop
        loop = SourceLoop(tenant, source, self._run)
        self._loops[key] = loop
        self._loop_tasks[key] = asyncio.create_task(loop.run(self._fetching.stop))
        return loop

    def _semaphore(self, tenant: Tenant) -> asyncio.Semaphore:
        """One cap per tenant, shared by its REST sources (the smallest they declare)."""
        limit = min((s.max_concurrency for s in tenant.api_sources), default=1)
        return self._semaphores.setdefault((tenant.id, limit), asyncio.Semaphore(limit))

    async def _stored_secret(self, tenant: Tenant, source: ApiSource) -> SecretStr | None:
        """The secret stored through the admin API, for a source that names no variable."""
        fetching = self._fetching
        if source.auth.secret_env is not None or fetching.pool is None or fetching.keys is None:
            return None
        try:
            return await source_secrets.read(
                fetching.pool, fetching.settings.control, fetching.keys, tenant.id, source.id
            )
        except KeyError as exc:
            raise FetchError(str(exc.args[0])) from exc

    async def _run(
        self, tenant: Tenant, source: ApiSource, request: SyncRequest
    ) -> ApiRunResult | None:
        fetching = self._fetching
        publisher = partial(fetching.publisher, tenant, source.id, request.run_id)
        timeout = httpx.Timeout(source.timeout_seconds)
        async with httpx.AsyncClient(timeout=timeout, transport=fetching.http_transport) as http:
            try:
                auth = authenticator_for(source, http, await self._stored_secret(tenant, source))
            except FetchError as exc:  # no secret: the run cannot start; say so on the runs topic
                out = publisher()
                await out.run_event(RunPhase.STARTED, version=source.version)
                await out.fail(str(exc))
                return None
            run = ApiRun(
                producer=fetching.producer,
                topics=fetching.settings.topics,
                tenant=tenant,
                source=source,
                run_id=request.run_id,
                client=OneRosterClient(
                    source, http, auth, self._semaphore(tenant), tenant=tenant.id
                ),
                store=fetching.state,
                force_full=request.full,
                send_batch=fetching.settings.send_batch,
                unchanged=None if request.resend_unchanged else fetching.unchanged,
                progress_db=fetching.pool,
            )
            return await fetching.guard.run(
                run.run(),
                publisher=publisher,
                tenant=tenant.id, source=source.id, run_id=request.run_id,
                attempt=request.attempt, full=request.full,
                timeout_seconds=source.run_timeout_seconds,
            )  # fmt: skip
