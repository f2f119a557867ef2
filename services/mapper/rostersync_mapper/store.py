"""The identity map's Kafka side: loaded from the compacted identities topic at start, kept current
by reading the topic on, and written with the decisions this instance makes."""

from __future__ import annotations

import logging
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from rostersync_libs import identities
from rostersync_libs.data_keys import DataKeys
from rostersync_libs.identities import IdentityDecision
from rostersync_libs.kafka import make_producer, partitions_of
from rostersync_libs.settings import ServiceSettings

from rostersync_mapper.identity_map import IdentityMap

log = logging.getLogger(__name__)


class IdentityStore:
    """Every instance reads every partition of the identities topic (no consumer group)."""

    def __init__(
        self, settings: ServiceSettings, identity_map: IdentityMap, keys: DataKeys
    ) -> None:
        self._settings = settings
        self._keys = keys
        self._topic = settings.topics.identities
        self.map = identity_map
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._partitions: list[TopicPartition] = []

    async def start(self) -> None:
        """Read the whole topic into the map before any record is mapped."""
        started = time.monotonic()
        self._producer = make_producer(self._settings, "rostersync-mapper-identities", self._keys)
        await self._producer.start()
        parts = await partitions_of(self._producer, self._topic)
        self._partitions = [TopicPartition(self._topic, p) for p in parts]
        self._consumer = identities.topic_reader(
            self._settings, "rostersync-mapper-identities", self._keys
        )
        await self._consumer.start()
        self._consumer.assign(self._partitions)
        await self._consumer.seek_to_beginning(*self._partitions)
        await self.catch_up()
        log.info(
            "identity map loaded: %d decisions in %.2fs", len(self.map), time.monotonic() - started
        )

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
        if self._producer is not None:
            await self._producer.stop()

    async def poll(self) -> None:
        """Apply whatever decisions have arrived (never waits)."""
        assert self._consumer is not None
        batches = await self._consumer.getmany(timeout_ms=0)
        for messages in batches.values():
            self._apply(messages)

    async def catch_up(self) -> None:
        """Apply every decision published until now (by any instance or operator)."""
        assert self._consumer is not None
        consumer = self._consumer
        ends: dict[TopicPartition, int] = await consumer.end_offsets(self._partitions)
        pending = [tp for tp in self._partitions if await consumer.position(tp) < ends[tp]]
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=500)
            for messages in batches.values():
                self._apply(messages)
            pending = [tp for tp in pending if await consumer.position(tp) < ends[tp]]

    async def publish(self, decisions: list[IdentityDecision]) -> None:
        """Decisions this instance made (already in its map), acknowledged by Kafka on return."""
        assert self._producer is not None
        await identities.publish(self._producer, self._topic, decisions)

    def _apply(self, messages: list[ConsumerRecord[bytes, bytes]]) -> None:
        for message in messages:
            decision = identities.decode(message.value)
            if decision is not None:
                self.map.apply(decision)
            elif message.value is None and message.key is not None:
                parts = message.key.decode(errors="replace").split(":", 2)
                if len(parts) == 3:
                    self.map.withdraw((parts[0], parts[1], parts[2]))
