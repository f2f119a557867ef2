"""The fetcher's composition root: settings, Kafka clients, the database and the source drivers
wired together.

Three kinds of loop share one producer: sync commands from the command topic, handed to the
driver of the source's kind (dispatch.py; sources/), each driver's own work (an inbox scanned
every few seconds, one loop per REST source with its schedule: ``SourceDriver.watch``), and the
runs whose fetcher died (lapsed.py). On stop, what is still running gets
``stop_grace_seconds``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket

import httpx
from rostersync_libs.data_keys import DataKeys
from rostersync_libs.db import close_pool, create_pool
from rostersync_libs.kafka import ensure_topics, make_consumer, make_producer
from rostersync_libs.outages import working
from rostersync_libs.store.migrate import migrate_at_start

from rostersync_fetcher.cancels import AuditedCancels
from rostersync_fetcher.dispatch import CommandDispatcher
from rostersync_fetcher.guard import RunGuard
from rostersync_fetcher.intake import CommandIntake, finish
from rostersync_fetcher.lapsed import LapsedRuns
from rostersync_fetcher.leases import RunLeases
from rostersync_fetcher.rest.state import KafkaStateStore
from rostersync_fetcher.settings import FetcherSettings
from rostersync_fetcher.sources.driver import Fetching
from rostersync_fetcher.sources.registry import build_drivers
from rostersync_fetcher.tenants_view import TenantsView
from rostersync_fetcher.unchanged import UnchangedRecords

log = logging.getLogger(__name__)


class FetcherService:
    def __init__(
        self,
        settings: FetcherSettings,
        *,
        http_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self._http_transport = http_transport  # tests: an in-process OneRoster server

    async def run(self, stop: asyncio.Event) -> None:
        settings = self.settings
        await ensure_topics(settings)
        topics = settings.topics
        # The database holds the runs' leases and what the application already has: wait for it.
        pool = await create_pool(settings, max_size=2)
        await migrate_at_start(pool)  # no other service need have started
        keys = DataKeys(pool, settings)
        consumer = make_consumer(
            settings, settings.consumer_group("fetcher"), topics.commands, keys=keys
        )
        producer = make_producer(settings, "rostersync-fetcher", keys)
        state = KafkaStateStore(producer, settings, topics.fetch_state, keys)
        owner = f"{socket.gethostname()}:{os.getpid()}"
        leases = RunLeases(pool, owner, settings.lease_renew_seconds)
        guard = RunGuard(leases, settings.run_timeout_seconds)
        tenants = TenantsView(settings, pool, keys)
        drivers = build_drivers(
            Fetching(
                settings=settings, producer=producer, guard=guard,
                unchanged=UnchangedRecords(pool), state=state, pool=pool, keys=keys,
                live_tenants=tenants.live, stop=stop, http_transport=self._http_transport,
            )
        )  # fmt: skip
        watching: list[asyncio.Task[None]] = []
        try:
            await producer.start()
            await consumer.start()
            await state.start()
            working()
            log.info("fetcher: waiting for sync commands on %s, watching inboxes", topics.commands)
            # A driver's work in progress when the fetcher stops gets the same grace as a command.
            watching = [asyncio.create_task(d.watch(stop)) for d in drivers.values()]
            await asyncio.gather(
                CommandIntake(
                    consumer,
                    CommandDispatcher(tenants.registry, drivers),
                    settings.stop_grace_seconds,
                    cancel=AuditedCancels(pool, settings.control, guard),
                ).run(stop),
                LapsedRuns(leases, producer, settings, guard.publishing).run(stop),
                *(_failure_of(task, stop) for task in watching),
            )
        finally:
            released = [task for d in drivers.values() for task in d.release()]
            await finish([*watching, *released], settings.stop_grace_seconds)
            await state.stop()
            await consumer.stop()
            await producer.stop()
            await close_pool(pool)


async def _failure_of(task: asyncio.Task[None], stop: asyncio.Event) -> None:
    """Raise what ``task`` raises before ``stop``: a driver's loop that fails (a database
    outage) takes the service's work down, to be started again (service.py), instead of dying
    unseen. After ``stop`` the task is left running: it gets the grace."""
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if task.done() and not task.cancelled() and task.exception() is not None:
        await task  # raises it
