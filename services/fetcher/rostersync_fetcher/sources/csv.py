"""The ``csv`` source kind: a bundle (zip or folder) at a fixed path, read when a sync is asked.

A command's run is awaited here, so the command's offset is committed only after the run's
records and markers are acknowledged (intake.py).
"""

from __future__ import annotations

import asyncio
from functools import partial
from pathlib import Path
from uuid import UUID

from rostersync_libs.commands import SyncRequested
from rostersync_libs.runs import RunEvent
from rostersync_libs.tenants import CsvSource, Tenant

from rostersync_fetcher.csv.run import CsvRun
from rostersync_fetcher.sources.driver import Fetching
from rostersync_fetcher.sources.registry import driver


async def publish_bundle(
    fetching: Fetching,
    tenant: Tenant,
    source: CsvSource,
    run_id: UUID,
    *,
    resend_unchanged: bool = False,
) -> RunEvent:
    """One bundle as one run (the inbox kind publishes its claimed bundles through this too)."""
    run = CsvRun(
        producer=fetching.producer,
        topics=fetching.settings.topics,
        tenant=tenant,
        source=source,
        run_id=run_id,
        send_batch=fetching.settings.send_batch,
        unchanged=None if resend_unchanged else fetching.unchanged,
        progress_db=fetching.pool,
        roots=fetching.settings.source_roots,
    )
    return await run.run()


@driver("csv")
class CsvDriver:
    takes_bundle = True

    def __init__(self, fetching: Fetching) -> None:
        self._fetching = fetching

    async def sync(self, tenant: Tenant, source: CsvSource, command: SyncRequested) -> None:
        if command.bundle is not None:  # one given bundle, through the source's settings
            source = source.model_copy(update={"path": Path(command.bundle)})
        fetching = self._fetching
        await fetching.guard.run(
            publish_bundle(
                fetching, tenant, source, command.run_id,
                resend_unchanged=command.resend_unchanged,
            ),
            publisher=partial(fetching.publisher, tenant, source.id, command.run_id),
            tenant=tenant.id, source=source.id, run_id=command.run_id, attempt=command.attempt,
            timeout_seconds=source.run_timeout_seconds,
        )  # fmt: skip

    async def watch(self, stop: asyncio.Event) -> None:
        return  # read only when asked

    def release(self) -> list[asyncio.Task[None]]:
        return []
