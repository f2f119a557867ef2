"""Durable sync state of REST sources: high-water marks and the time of the last full sync.

One event per (tenant, source) on the compacted ``fetch_state`` topic, keyed
``tenant:source``: compaction keeps the latest, and the fetcher reads the topic at start (and again
before every run, so a fetcher that took over a source sees what another one stored). A run's
state is written only after its end markers are acknowledged: a run that fails or is stopped
midway is redone from the old marks (the records it sent twice are harmless downstream).

Full or delta (:func:`decide`): full on the first run, when ``full_reconcile_every_hours`` have
passed since the last full sync, when a command asks for it, when a collection has no mark, or
when the source's version or base URL changed since the marks were taken; otherwise delta.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta
from typing import Protocol
from uuid import UUID

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from rostersync_libs.data_keys import DataKeys
from rostersync_libs.kafka import make_consumer, partitions_of
from rostersync_libs.sealing import UNREADABLE
from rostersync_libs.settings import ServiceSettings
from rostersync_libs.tenants import ApiSource

log = logging.getLogger(__name__)


class SourceState(BaseModel):
    """What the next run of one source starts from."""

    model_config = ConfigDict(frozen=True)

    tenant: str
    source: str
    version: str
    api_root: str
    # collection path → the highest dateLastModified seen (capped at the run's start)
    marks: dict[str, datetime] = Field(default_factory=dict)
    last_full_at: datetime | None = None
    last_run_id: UUID | None = None
    updated_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    def key(self) -> bytes:
        return state_key(self.tenant, self.source)


def state_key(tenant: str, source: str) -> bytes:
    return f"{tenant}:{source}".encode()


class StateStore(Protocol):
    async def refresh(self) -> None: ...

    def get(self, tenant: str, source: str) -> SourceState | None: ...

    async def save(self, state: SourceState) -> None: ...


class MemoryStateStore:
    """For unit tests."""

    def __init__(self) -> None:
        self.states: dict[bytes, SourceState] = {}

    async def refresh(self) -> None:
        return None

    def get(self, tenant: str, source: str) -> SourceState | None:
        return self.states.get(state_key(tenant, source))

    async def save(self, state: SourceState) -> None:
        self.states[state.key()] = state


class KafkaStateStore:
    """The compacted topic, read to its end into memory; writes go to the topic first."""

    def __init__(
        self, producer: AIOKafkaProducer, settings: ServiceSettings, topic: str, keys: DataKeys
    ) -> None:
        self._producer = producer
        self._keys = keys
        self._settings = settings  # the consumer connects as every client does (client_options)
        self._topic = topic
        self._states: dict[bytes, SourceState] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        consumer = make_consumer(self._settings, None, keys=self._keys)
        self._consumer = consumer  # stopped by stop() even if what follows fails
        await consumer.start()
        parts = await partitions_of(self._producer, self._topic)
        consumer.assign([TopicPartition(self._topic, p) for p in parts])
        await consumer.seek_to_beginning()
        await self.refresh()
        log.info("fetch state: %d REST sources known", len(self._states))

    async def stop(self) -> None:
        if self._consumer is not None:
            with contextlib.suppress(Exception):
                await self._consumer.stop()
            self._consumer = None

    async def refresh(self) -> None:
        """Read what was written since the last read, up to the topic's current end."""
        consumer = self._consumer
        if consumer is None:
            return
        async with self._lock:
            parts = list(consumer.assignment())
            ends = await consumer.end_offsets(parts)
            while [tp for tp in parts if await consumer.position(tp) < ends[tp]]:
                batches = await consumer.getmany(timeout_ms=500)
                for messages in batches.values():
                    for message in messages:
                        self._apply(message.key, message.value)

    def _apply(self, key: bytes | None, value: bytes | None) -> None:
        if key is None or value is UNREADABLE:
            return
        if value is None:
            self._states.pop(key, None)  # a tombstone: the source's state was dropped
            return
        try:
            self._states[key] = SourceState.model_validate_json(value)
        except ValidationError:
            log.warning("fetch state: ignoring an unreadable entry for %r", key)

    def get(self, tenant: str, source: str) -> SourceState | None:
        return self._states.get(state_key(tenant, source))

    async def save(self, state: SourceState) -> None:
        await self._producer.send_and_wait(
            self._topic, state.model_dump_json().encode(), key=state.key()
        )
        self._states[state.key()] = state


def decide(
    state: SourceState | None,
    source: ApiSource,
    collections: list[str],
    now: datetime,
    *,
    forced: bool = False,
) -> tuple[bool, str]:
    """(full?, why) for the next run of a source."""
    if forced:
        return True, "full sync requested"
    if state is None or state.last_full_at is None:
        return True, "first sync of this source"
    if state.version != source.version or state.api_root != source.api_root:
        return True, "the source's version or URL changed"
    missing = [c for c in collections if c not in state.marks]
    if missing:
        return True, f"no high-water mark for {', '.join(missing)}"
    if now - state.last_full_at >= timedelta(hours=source.full_reconcile_every_hours):
        return True, "full reconcile due"
    return False, "delta since the high-water marks"
