"""Kafka clients that seal what they send and open what they read (``sealing.py``).

Every producer and consumer the product makes is one of these (``kafka.make_producer``,
``kafka.make_consumer``): no code path writes a readable event or reads a sealed one by mistake.
An event that does not open — its tenant purged, not sealed, or sealed with another key — keeps
its place in the batch with the value :data:`sealing.UNREADABLE`, so consumers skip it and still
count its offset (a replay reads past a purged tenant's events).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from rostersync_libs.data_keys import DataKeys
from rostersync_libs.sealing import (
    UNREADABLE,
    Headers,
    NotSealedError,
    open_headers,
    open_sealed,
    seal,
    seal_headers,
    tenant_of,
    tenant_of_or_none,
)

log = logging.getLogger(__name__)

Batches = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]


class SealingProducer(AIOKafkaProducer):  # type: ignore[misc]
    def __init__(self, keys: DataKeys, **options: Any) -> None:
        super().__init__(**options)
        self._keys = keys

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Headers | None = None,
    ) -> asyncio.Future[Any]:
        if value is not None:  # a tombstone has nothing to seal
            tenant = tenant_of(key)
            aead = await self._keys.for_sealing(tenant)
            value = seal(aead, tenant, value)
            headers = seal_headers(aead, tenant, headers)
        future: asyncio.Future[Any] = await super().send(
            topic, value, key, partition, timestamp_ms, headers
        )
        return future


class OpeningConsumer(AIOKafkaConsumer):  # type: ignore[misc]
    def __init__(self, *topics: str, keys: DataKeys, **options: Any) -> None:
        super().__init__(*topics, **options)
        self._keys = keys
        self._refused = _RefusalLog()

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
    ) -> Batches:
        batches: Batches = await super().getmany(
            *partitions, timeout_ms=timeout_ms, max_records=max_records
        )
        if batches:
            await self._open(batches)
        return batches

    async def _open(self, batches: Batches) -> None:
        # The tenant of each event once (its key's first field), then its key once per batch.
        tenants = [
            [tenant_of_or_none(m.key) if m.value is not None else "" for m in messages]
            for messages in batches.values()
        ]
        keys = await self._keys.for_opening({t for ts in tenants for t in ts if t})
        for (tp, messages), owners in zip(batches.items(), tenants, strict=True):
            for message, tenant in zip(messages, owners, strict=True):
                if message.value is None:
                    continue  # a tombstone
                aead = keys.get(tenant)
                try:
                    if aead is None:
                        raise NotSealedError(
                            f"no data key for tenant {tenant or '?'} (purged or none)"
                        )
                    message.value = open_sealed(aead, tenant, message.value)
                    if message.headers:
                        message.headers = tuple(open_headers(aead, tenant, list(message.headers)))
                except NotSealedError as exc:
                    message.value = UNREADABLE
                    self._refused.note(tp, str(exc))


class _RefusalLog:
    """One warning per topic and reason a minute: a purged tenant's history can be long."""

    def __init__(self, every: float = 60.0) -> None:
        self._every = every
        self._last: dict[tuple[str, str], float] = {}
        self._count: dict[tuple[str, str], int] = {}

    def note(self, tp: TopicPartition, reason: str) -> None:
        key = (tp.topic, reason)
        self._count[key] = self._count.get(key, 0) + 1
        now = time.monotonic()
        if now - self._last.get(key, -self._every) >= self._every:
            log.warning(
                "%s: skipped %d event(s) that do not open: %s",
                tp.topic,
                self._count.pop(key),
                reason,
            )
            self._last[key] = now
