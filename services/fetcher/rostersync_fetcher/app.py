"""The fetcher's composition root: settings, Kafka clients and tenants wired together.

The service waits for sync commands on the command topic and runs each one; an offset is
committed only after the run's records and markers are acknowledged by Kafka.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaProducer
from pydantic import ValidationError
from rostersync_libs.commands import SyncRequested
from rostersync_libs.kafka import ensure_topics, make_consumer, make_producer
from rostersync_libs.tenants import load_tenants

from rostersync_fetcher.settings import FetcherSettings
from rostersync_fetcher.sync import CsvRun

log = logging.getLogger(__name__)


class FetcherService:
    def __init__(self, settings: FetcherSettings) -> None:
        self.settings = settings

    async def run(self, stop: asyncio.Event) -> None:
        settings = self.settings
        await ensure_topics(settings)
        topics = settings.topics
        consumer = make_consumer(settings, settings.consumer_group("fetcher"), topics.commands)
        producer = make_producer(settings, "rostersync-fetcher")
        await producer.start()
        await consumer.start()
        log.info("fetcher: waiting for sync commands on %s", topics.commands)
        try:
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=500)
                for tp, messages in batches.items():
                    for message in messages:
                        assert message.value is not None
                        await self._handle(producer, message.value)
                    await consumer.commit({tp: messages[-1].offset + 1})
        finally:
            await consumer.stop()
            await producer.stop()

    async def _handle(self, producer: AIOKafkaProducer, raw: bytes) -> None:
        try:
            command = SyncRequested.model_validate_json(raw)
        except ValidationError as exc:
            log.error("ignoring a malformed command (%d schema errors)", exc.error_count())
            return
        try:
            tenant = load_tenants(self.settings.tenants_file).get(command.tenant)
            source = tenant.source(command.source)
            await CsvRun(
                producer=producer,
                topics=self.settings.topics,
                tenant=tenant,
                source=source,
                run_id=command.run_id,
                send_batch=self.settings.send_batch,
            ).run()
        except (KeyError, OSError) as exc:
            # The run cannot start; say why, and keep serving other tenants.
            log.error("tenant %s: sync %s failed: %s", command.tenant, command.run_id, exc)
