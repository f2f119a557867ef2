"""The fetcher's composition root: settings, Kafka clients and tenants wired together.

Two loops share one producer: sync commands from the command topic (an offset is committed only
after the run's records and markers are acknowledged), and the tenants' inbox folders, scanned
every few seconds for complete bundles.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from uuid import UUID

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pydantic import ValidationError
from rostersync_libs.commands import COMMAND, SyncRequested
from rostersync_libs.ids import new_run_id
from rostersync_libs.kafka import ensure_topics, make_consumer, make_producer
from rostersync_libs.runs import RunEvent
from rostersync_libs.tenants import CsvSource, InboxSource, Tenant, load_tenants

from rostersync_fetcher import inbox
from rostersync_fetcher.settings import FetcherSettings
from rostersync_fetcher.sync import CsvRun

log = logging.getLogger(__name__)


class FetcherService:
    def __init__(self, settings: FetcherSettings) -> None:
        self.settings = settings
        # One scan of an inbox at a time: the command loop and the watcher may both ask for one.
        self._inbox_locks: dict[Path, asyncio.Lock] = {}

    async def run(self, stop: asyncio.Event) -> None:
        settings = self.settings
        await ensure_topics(settings)
        topics = settings.topics
        consumer = make_consumer(settings, settings.consumer_group("fetcher"), topics.commands)
        producer = make_producer(settings, "rostersync-fetcher")
        await producer.start()
        await consumer.start()
        log.info("fetcher: waiting for sync commands on %s and watching inboxes", topics.commands)
        try:
            await asyncio.gather(
                self._commands(consumer, producer, stop), self._watch_inboxes(producer, stop)
            )
        finally:
            await consumer.stop()
            await producer.stop()

    async def _commands(
        self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer, stop: asyncio.Event
    ) -> None:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=500)
            for tp, messages in batches.items():
                for message in messages:
                    assert message.value is not None
                    await self._handle_command(producer, message.value)
                await consumer.commit({tp: messages[-1].offset + 1})

    async def _handle_command(self, producer: AIOKafkaProducer, raw: bytes) -> None:
        try:
            command = COMMAND.validate_json(raw)
        except ValidationError as exc:
            log.error("ignoring a malformed command (%d schema errors)", exc.error_count())
            return
        if not isinstance(command, SyncRequested):
            return  # meant for another service
        try:
            tenant = load_tenants(self.settings.tenants_file).get(command.tenant)
            source = tenant.source(command.source)
        except (KeyError, OSError, ValueError) as exc:
            # The run cannot start; say why, and keep serving other tenants.
            log.error("tenant %s: sync %s refused: %s", command.tenant, command.run_id, exc)
            return
        if isinstance(source, InboxSource):
            await self._scan(producer, tenant, source)
        else:
            await self._sync(producer, tenant, source, command.run_id)

    async def _sync(
        self, producer: AIOKafkaProducer, tenant: Tenant, source: CsvSource, run_id: UUID
    ) -> RunEvent:
        run = CsvRun(
            producer=producer,
            topics=self.settings.topics,
            tenant=tenant,
            source=source,
            run_id=run_id,
            send_batch=self.settings.send_batch,
        )
        return await run.run()

    async def _watch_inboxes(self, producer: AIOKafkaProducer, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                tenants = load_tenants(self.settings.tenants_file).tenants
            except (OSError, ValueError) as exc:
                log.error("cannot read tenants file %s: %s", self.settings.tenants_file, exc)
                tenants = []
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
        claims = inbox.pending_claims(folder)
        for bundle in inbox.ready_bundles(folder, source.settle_seconds):
            try:
                claims.append(inbox.claim(folder, bundle, new_run_id()))
            except FileNotFoundError:
                continue  # another fetcher took it first
        for claimed in claims:
            claimed_source = CsvSource(id=source.id, path=claimed.path)
            outcome = await self._sync(producer, tenant, claimed_source, claimed.run_id)
            done = inbox.finish(folder, claimed, outcome)
            log.info("tenant %s: inbox bundle %s %s", tenant.id, done.name, outcome.phase.value)
