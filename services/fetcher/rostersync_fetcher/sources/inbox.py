"""The ``inbox`` source kind: a drop folder (as an SFTP server fills it), each complete bundle
dropped one run.

The folders are scanned every few seconds (``watch``) and when a sync is asked; one scan of a
folder at a time, as both may ask at once. Claiming, settling and where a finished bundle goes
are csv/inbox_folder.py's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from functools import partial
from pathlib import Path

from rostersync_libs.commands import SyncRequested
from rostersync_libs.ids import new_run_id
from rostersync_libs.runs import RunEvent, RunPhase
from rostersync_libs.tenants import CsvSource, InboxSource, Tenant

from rostersync_fetcher.csv import inbox_folder
from rostersync_fetcher.sources.csv import publish_bundle
from rostersync_fetcher.sources.driver import Fetching
from rostersync_fetcher.sources.registry import driver

log = logging.getLogger(__name__)


@driver("inbox")
class InboxDriver:
    takes_bundle = False

    def __init__(self, fetching: Fetching) -> None:
        self._fetching = fetching
        self._locks: dict[Path, asyncio.Lock] = {}

    async def sync(self, tenant: Tenant, source: InboxSource, command: SyncRequested) -> None:
        await self._scan(tenant, source)

    async def watch(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            tenants = await self._fetching.live_tenants() or []
            for tenant in tenants:
                for source in tenant.sources:
                    if isinstance(source, InboxSource) and not stop.is_set():
                        await self._scan(tenant, source)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._fetching.settings.inbox_poll_seconds)

    def release(self) -> list[asyncio.Task[None]]:
        return []  # a scan in progress is part of ``watch``, which gets the grace

    async def _scan(self, tenant: Tenant, source: InboxSource) -> None:
        folder = source.path
        if not folder.is_dir():
            log.warning("tenant %s: inbox %s does not exist", tenant.id, folder)
            return
        async with self._locks.setdefault(folder, asyncio.Lock()):
            await self._scan_locked(tenant, source)

    async def _scan_locked(self, tenant: Tenant, source: InboxSource) -> None:
        fetching, folder = self._fetching, source.path
        roots = fetching.settings.source_roots
        claims = inbox_folder.pending_claims(folder, roots=roots)
        for bundle in inbox_folder.ready_bundles(folder, source.settle_seconds, roots=roots):
            try:
                claims.append(inbox_folder.claim(folder, bundle, new_run_id()))
            except FileNotFoundError:
                continue  # another fetcher took it first
        for claimed in claims:
            claimed_source = CsvSource(id=source.id, path=claimed.path)
            outcome = await fetching.guard.run(
                publish_bundle(fetching, tenant, claimed_source, claimed.run_id),
                publisher=partial(fetching.publisher, tenant, source.id, claimed.run_id),
                tenant=tenant.id, source=source.id, run_id=claimed.run_id,
                timeout_seconds=source.run_timeout_seconds, lease=False,
            )  # fmt: skip
            if outcome is None:  # timed out or cancelled: failed/, with the reason
                ended = fetching.guard.ended_here(claimed.run_id)
                phase, reason = ended or (RunPhase.FAILED, "")
                outcome = RunEvent(
                    tenant=tenant.id, run_id=claimed.run_id, source=source.id,
                    phase=RunPhase.FAILED, reason=f"{phase.value}: {reason}",
                )  # fmt: skip
            done = inbox_folder.finish(folder, claimed, outcome)
            log.info("tenant %s: inbox bundle %s %s", tenant.id, done.name, outcome.phase.value)
