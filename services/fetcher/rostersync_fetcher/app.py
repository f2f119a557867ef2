"""The fetcher's composition root: settings, Kafka clients and tenants wired together.

Three loops share one producer: sync commands from the command topic (for file sources an offset
is committed only after the run's records and markers are acknowledged; for REST sources the
command is handed to the source's loop), the tenants' inbox folders, scanned every few seconds for
complete bundles, and one loop per REST source (its schedule and its requested runs, one run at a
time; see ``rest/scheduler.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from functools import partial
from pathlib import Path
from uuid import UUID

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer
from pydantic import SecretStr
from rostersync_libs import source_secrets
from rostersync_libs.commands import SyncRequested
from rostersync_libs.data_keys import DataKeys
from rostersync_libs.db import close_pool, create_pool
from rostersync_libs.ids import new_run_id
from rostersync_libs.kafka import ensure_topics, make_consumer, make_producer
from rostersync_libs.outages import working
from rostersync_libs.runs import RunEvent, RunPhase
from rostersync_libs.tenant_registry import Registered, all_tenants, merged
from rostersync_libs.tenants import ApiSource, CsvSource, InboxSource, Tenant, load_tenants

from rostersync_fetcher import inbox
from rostersync_fetcher.cancels import AuditedCancels
from rostersync_fetcher.guard import RunGuard
from rostersync_fetcher.intake import CommandIntake, finish
from rostersync_fetcher.lapsed import LapsedRuns
from rostersync_fetcher.leases import RunLeases
from rostersync_fetcher.publisher import RunPublisher
from rostersync_fetcher.rest.auth import authenticator_for
from rostersync_fetcher.rest.client import OneRosterClient
from rostersync_fetcher.rest.errors import FetchError
from rostersync_fetcher.rest.run import ApiRun, ApiRunResult
from rostersync_fetcher.rest.scheduler import SourceLoop, SyncRequest
from rostersync_fetcher.rest.state import KafkaStateStore, StateStore
from rostersync_fetcher.settings import FetcherSettings
from rostersync_fetcher.sync import CsvRun
from rostersync_fetcher.unchanged import UnchangedRecords

log = logging.getLogger(__name__)


SourceKey = tuple[str, str]  # (tenant, source)


class FetcherService:
    def __init__(
        self,
        settings: FetcherSettings,
        *,
        http_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        # One scan of an inbox at a time: the command loop and the watcher may both ask for one.
        self._inbox_locks: dict[Path, asyncio.Lock] = {}
        self._http_transport = http_transport  # tests: an in-process OneRoster server
        self._loops: dict[SourceKey, SourceLoop] = {}
        self._loop_tasks: dict[SourceKey, asyncio.Task[None]] = {}
        self._semaphores: dict[tuple[str, int], asyncio.Semaphore] = {}
        self._producer: AIOKafkaProducer | None = None
        self._state: StateStore | None = None
        self._unchanged: UnchangedRecords | None = None
        self._guard = RunGuard(None, settings.run_timeout_seconds)
        self._stop = asyncio.Event()
        self._keys: DataKeys | None = None
        self._pool: asyncpg.Pool | None = None
        self._purged_noted: set[str] = set()

    async def run(self, stop: asyncio.Event) -> None:
        settings = self.settings
        await ensure_topics(settings)
        topics = settings.topics
        # The database holds the runs' leases and what the application already has: wait for it.
        pool = await create_pool(settings, max_size=2)
        keys = self._keys = DataKeys(pool, settings)
        self._pool = pool
        consumer = make_consumer(
            settings, settings.consumer_group("fetcher"), topics.commands, keys=keys
        )
        producer = make_producer(settings, "rostersync-fetcher", keys)
        state = KafkaStateStore(producer, settings, topics.fetch_state, keys)
        self._unchanged = UnchangedRecords(pool)
        owner = f"{socket.gethostname()}:{os.getpid()}"
        leases = RunLeases(pool, owner, settings.lease_renew_seconds)
        self._guard = RunGuard(leases, settings.run_timeout_seconds)
        self._producer, self._state, self._stop = producer, state, stop
        watcher: asyncio.Task[None] | None = None
        try:
            await producer.start()
            await consumer.start()
            await state.start()
            working()
            log.info("fetcher: waiting for sync commands on %s, watching inboxes", topics.commands)
            # An inbox bundle being synced when the fetcher stops gets the same grace as a command.
            watcher = asyncio.create_task(self._watch_inboxes(producer, stop))
            await asyncio.gather(
                CommandIntake(
                    consumer,
                    partial(self._handle_command, producer),
                    settings.stop_grace_seconds,
                    cancel=AuditedCancels(pool, settings.control, self._guard),
                ).run(stop),
                self._supervise_api_sources(stop),
                LapsedRuns(leases, producer, settings, self._guard.publishing).run(stop),
            )
        finally:
            tasks = list(self._loop_tasks.values())
            for loop in self._loops.values():
                loop.remove()
            self._loops.clear()
            self._loop_tasks.clear()
            await finish(
                [t for t in (watcher, *tasks) if t is not None], settings.stop_grace_seconds
            )
            await state.stop()
            await consumer.stop()
            await producer.stop()
            await close_pool(pool)

    async def _handle_command(self, producer: AIOKafkaProducer, command: SyncRequested) -> None:
        try:
            tenant = (await self._registry()).tenants.get(command.tenant)
            source = tenant.find_source(command.source)
            if command.bundle is not None:  # one given bundle, through the source's settings
                if not isinstance(source, CsvSource):
                    raise ValueError(f"source {source.id} is not a csv source: no --bundle")
                source = source.model_copy(update={"path": Path(command.bundle)})
        except (KeyError, OSError, ValueError) as exc:
            # The run cannot start; say why, and keep serving other tenants.
            log.error("tenant %s: sync %s refused: %s", command.tenant, command.run_id, exc)
            return
        if isinstance(source, ApiSource):
            # The source's loop runs it after any run in progress (one run at a time).
            self._loop_for(tenant, source).request(
                SyncRequest(
                    run_id=command.run_id,
                    full=command.full,
                    resend_unchanged=command.resend_unchanged,
                    attempt=command.attempt,
                )
            )
        elif isinstance(source, InboxSource):
            await self._scan(producer, tenant, source)
        else:
            await self._guard.run(
                self._sync(
                    producer, tenant, source, command.run_id,
                    resend_unchanged=command.resend_unchanged,
                ),
                publisher=partial(self._publisher, tenant, source.id, command.run_id),
                tenant=tenant.id, source=source.id, run_id=command.run_id, attempt=command.attempt,
                timeout_seconds=source.run_timeout_seconds,
            )  # fmt: skip

    def _publisher(self, tenant: Tenant, source_id: str, run_id: UUID) -> RunPublisher:
        assert self._producer is not None
        return RunPublisher(
            producer=self._producer,
            topics=self.settings.topics,
            tenant=tenant,
            source_id=source_id,
            run_id=run_id,
        )

    async def _sync(
        self,
        producer: AIOKafkaProducer,
        tenant: Tenant,
        source: CsvSource,
        run_id: UUID,
        *,
        resend_unchanged: bool = False,
    ) -> RunEvent:
        run = CsvRun(
            producer=producer,
            topics=self.settings.topics,
            tenant=tenant,
            source=source,
            run_id=run_id,
            send_batch=self.settings.send_batch,
            unchanged=None if resend_unchanged else self._unchanged,
            progress_db=self._pool,
            roots=self.settings.source_roots,
        )
        return await run.run()

    async def _registry(self) -> Registered:
        """The tenants file's tenants and the admin API's (tenant_registry.py)."""
        if self._pool is None:
            return merged(load_tenants(self.settings.tenants_file), [])
        return await all_tenants(self._pool, self.settings.control, self.settings.tenants_file)

    async def _live_tenants(self) -> list[Tenant] | None:
        """The tenants whose schedules and inboxes run: not paused, not purged (None: the
        tenants file cannot be read)."""
        try:
            registry = await self._registry()
        except (OSError, ValueError) as exc:
            log.error("cannot read tenants file %s: %s", self.settings.tenants_file, exc)
            return None
        tenants = [t for t in registry.tenants.tenants if t.id not in registry.paused]
        if self._keys is None or not tenants:
            return tenants
        purged = await self._keys.purged({t.id for t in tenants})
        for tenant_id in purged - self._purged_noted:
            log.warning(
                "tenant %s was purged: not synced (remove it from the tenants file)", tenant_id
            )
        self._purged_noted |= purged
        return [t for t in tenants if t.id not in purged]

    async def _watch_inboxes(self, producer: AIOKafkaProducer, stop: asyncio.Event) -> None:
        while not stop.is_set():
            tenants = await self._live_tenants() or []
            for tenant in tenants:
                for source in tenant.sources:
                    if isinstance(source, InboxSource) and not stop.is_set():
                        await self._scan(producer, tenant, source)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.inbox_poll_seconds)

    async def _scan(self, producer: AIOKafkaProducer, tenant: Tenant, source: InboxSource) -> None:
        folder = source.path
        if not folder.is_dir():
            log.warning("tenant %s: inbox %s does not exist", tenant.id, folder)
            return
        async with self._inbox_locks.setdefault(folder, asyncio.Lock()):
            await self._scan_locked(producer, tenant, source)

    async def _scan_locked(
        self, producer: AIOKafkaProducer, tenant: Tenant, source: InboxSource
    ) -> None:
        folder = source.path
        roots = self.settings.source_roots
        claims = inbox.pending_claims(folder, roots=roots)
        for bundle in inbox.ready_bundles(folder, source.settle_seconds, roots=roots):
            try:
                claims.append(inbox.claim(folder, bundle, new_run_id()))
            except FileNotFoundError:
                continue  # another fetcher took it first
        for claimed in claims:
            claimed_source = CsvSource(id=source.id, path=claimed.path)
            outcome = await self._guard.run(
                self._sync(producer, tenant, claimed_source, claimed.run_id),
                publisher=partial(self._publisher, tenant, source.id, claimed.run_id),
                tenant=tenant.id, source=source.id, run_id=claimed.run_id,
                timeout_seconds=source.run_timeout_seconds, lease=False,
            )  # fmt: skip
            if outcome is None:  # timed out or cancelled: failed/, with the reason
                phase, reason = self._guard.ended_here(claimed.run_id) or (RunPhase.FAILED, "")
                outcome = RunEvent(
                    tenant=tenant.id, run_id=claimed.run_id, source=source.id,
                    phase=RunPhase.FAILED, reason=f"{phase.value}: {reason}",
                )  # fmt: skip
            done = inbox.finish(folder, claimed, outcome)
            log.info("tenant %s: inbox bundle %s %s", tenant.id, done.name, outcome.phase.value)

    # --- REST sources -------------------------------------------------------------------------

    def _loop_for(self, tenant: Tenant, source: ApiSource) -> SourceLoop:
        key = (tenant.id, source.id)
        loop = self._loops.get(key)
        if loop is not None and not loop.removed:
            loop.update(tenant, source)
            return loop
        loop = SourceLoop(tenant, source, self._api_sync)
        self._loops[key] = loop
        self._loop_tasks[key] = asyncio.create_task(loop.run(self._stop))
        return loop

    async def _supervise_api_sources(self, stop: asyncio.Event) -> None:
        """Keep one loop per configured REST source, following the tenants file."""
        while not stop.is_set():
            tenants = await self._live_tenants()
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
                await asyncio.wait_for(stop.wait(), self.settings.inbox_poll_seconds)

    def _semaphore(self, tenant: Tenant) -> asyncio.Semaphore:
        """One cap per tenant, shared by its REST sources (the smallest they declare)."""
        limit = min((s.max_concurrency for s in tenant.api_sources), default=1)
        return self._semaphores.setdefault((tenant.id, limit), asyncio.Semaphore(limit))

    async def _stored_secret(self, tenant: Tenant, source: ApiSource) -> SecretStr | None:
        """The secret stored through the admin API, for a source that names no variable."""
        if source.auth.secret_env is not None or self._pool is None or self._keys is None:
            return None
        try:
            return await source_secrets.read(
                self._pool, self.settings.control, self._keys, tenant.id, source.id
            )
        except KeyError as exc:
            raise FetchError(str(exc.args[0])) from exc

    async def _api_sync(
        self, tenant: Tenant, source: ApiSource, request: SyncRequest
    ) -> ApiRunResult | None:
        assert self._producer is not None
        assert self._state is not None
        timeout = httpx.Timeout(source.timeout_seconds)
        async with httpx.AsyncClient(timeout=timeout, transport=self._http_transport) as http:
            try:
                auth = authenticator_for(source, http, await self._stored_secret(tenant, source))
            except FetchError as exc:  # no secret: the run cannot start; say so on the runs topic
                out = self._publisher(tenant, source.id, request.run_id)
                await out.run_event(RunPhase.STARTED, version=source.version)
                await out.fail(str(exc))
                return None
            run = ApiRun(
                producer=self._producer,
                topics=self.settings.topics,
                tenant=tenant,
                source=source,
                run_id=request.run_id,
                client=OneRosterClient(
                    source, http, auth, self._semaphore(tenant), tenant=tenant.id
                ),
                store=self._state,
                force_full=request.full,
                send_batch=self.settings.send_batch,
                unchanged=None if request.resend_unchanged else self._unchanged,
                progress_db=self._pool,
            )
            return await self._guard.run(
                run.run(),
                publisher=partial(self._publisher, tenant, source.id, request.run_id),
                tenant=tenant.id, source=source.id, run_id=request.run_id,
                attempt=request.attempt, full=request.full,
                timeout_seconds=source.run_timeout_seconds,
            )  # fmt: skip
