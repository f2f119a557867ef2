"""Ending the runs whose fetcher died (leases.py): failed, with aborted markers, then asked again."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection
from uuid import UUID

from aiokafka import AIOKafkaProducer
from rostersync_libs.commands import SyncRequested
from rostersync_libs.tenants import Tenant, load_tenants

from rostersync_fetcher.leases import LapsedRun, RunLeases
from rostersync_fetcher.publisher import RunPublisher
from rostersync_fetcher.settings import FetcherSettings

log = logging.getLogger(__name__)


class LapsedRuns:
    def __init__(
        self,
        leases: RunLeases,
        producer: AIOKafkaProducer,
        settings: FetcherSettings,
        publishing: Callable[[], Collection[UUID]] = frozenset,
    ) -> None:
        self._leases = leases
        self._producer = producer
        self._settings = settings
        self._publishing = publishing  # the runs this fetcher is publishing now

    async def run(self, stop: asyncio.Event) -> None:
        """At start-up, then every ``lease_check_seconds``, until ``stop``."""
        while not stop.is_set():
            stale = self._settings.lease_stale_seconds
            for lapsed in await self._leases.lapsed(stale, self._publishing()):
                if await self._leases.publishing_ended(lapsed.tenant, lapsed.run_id):
                    log.info("tenant %s run %s: a finished run's lease, left behind: released",
                             lapsed.tenant, lapsed.run_id)  # fmt: skip
                    continue
                await self.end(lapsed)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._settings.lease_check_seconds)

    def _tenant(self, tenant_id: str) -> Tenant:
        try:
            return load_tenants(self._settings.tenants_file).get(tenant_id)
        except (KeyError, OSError, ValueError):  # gone from the file: the run still ends
            return Tenant.model_construct(id=tenant_id, name=tenant_id, sources=[])

    async def end(self, lapsed: LapsedRun) -> None:
        out = RunPublisher(
            producer=self._producer,
            topics=self._settings.topics,
            tenant=self._tenant(lapsed.tenant),
            source_id=lapsed.source,
            run_id=lapsed.run_id,
        )
        await out.fail(
            f"the fetcher publishing this run stopped (attempt {lapsed.attempt}): its lease"
            f" was not renewed for {lapsed.silent_seconds} s"
        )
        if lapsed.attempt > self._settings.lapsed_run_retries:
            return
        again = SyncRequested(
            tenant=lapsed.tenant, source=lapsed.source, full=lapsed.full, attempt=lapsed.attempt + 1
        )
        await self._producer.send_and_wait(
            self._settings.topics.commands, again.model_dump_json().encode(), key=again.key()
        )
        log.warning(
            "tenant %s run %s: its fetcher stopped; asked again as run %s (attempt %d)",
            lapsed.tenant, lapsed.run_id, again.run_id, again.attempt,
        )  # fmt: skip
