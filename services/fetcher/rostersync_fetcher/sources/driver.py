"""What a source kind's driver does for the fetcher, and what the fetcher lends it.

A driver gets a sync command for one of its sources (``sync``), may have work of its own while the
fetcher runs (``watch``: an inbox scanned every few seconds, a REST source's schedule), and hands
back at shutdown the tasks that should get the stop grace (``release``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar
from uuid import UUID

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer
from rostersync_libs.commands import SyncRequested
from rostersync_libs.data_keys import DataKeys
from rostersync_libs.tenants import Tenant

from rostersync_fetcher.guard import RunGuard
from rostersync_fetcher.publisher import RunPublisher
from rostersync_fetcher.rest.state import StateStore
from rostersync_fetcher.settings import FetcherSettings
from rostersync_fetcher.unchanged import UnchangedRecords

SourceT_contra = TypeVar("SourceT_contra", contravariant=True)


@dataclass(frozen=True)
class Fetching:
    """The fetcher's shared parts, as the composition root (app.py) built them."""

    settings: FetcherSettings
    producer: AIOKafkaProducer
    guard: RunGuard  # every run goes through it: lease, timeout, cancel
    unchanged: UnchangedRecords | None  # what the application already has (None: send all)
    state: StateStore  # REST sources' cursors
    pool: asyncpg.Pool | None
    keys: DataKeys | None
    # The tenants whose schedules and inboxes run (None: the tenants cannot be read now).
    live_tenants: Callable[[], Awaitable[list[Tenant] | None]]
    stop: asyncio.Event
    http_transport: httpx.AsyncBaseTransport | None = None  # tests: an in-process server

    def publisher(self, tenant: Tenant, source_id: str, run_id: UUID) -> RunPublisher:
        """The run events of a run that ends before (or outside) its source's own publisher."""
        return RunPublisher(
            producer=self.producer,
            topics=self.settings.topics,
            tenant=tenant,
            source_id=source_id,
            run_id=run_id,
        )


class SourceDriver(Protocol[SourceT_contra]):
    """One source kind. ``SourceT_contra`` is the kind's config model."""

    # Whether ``rostersync sync --bundle`` may replace the source's data for one run.
    takes_bundle: bool

    async def sync(self, tenant: Tenant, source: SourceT_contra, command: SyncRequested) -> None:
        """Run (or queue) the sync a command asks for."""

    async def watch(self, stop: asyncio.Event) -> None:
        """The kind's own work until ``stop`` (return at once when it has none)."""

    def release(self) -> list[asyncio.Task[None]]:
        """At shutdown: the tasks still running, to be given the stop grace."""
