"""Identity decisions: which internal id a OneRoster record has when it is not the default uuid5.

The default internal id of a record is ``uuid5(tenant, entity, sourcedId)``
(:func:`rostersync_libs.ids.internal_id`) and needs no state. The exceptions are decisions:

- ``crosswalk``: an operator declared that the record is one the application already has;
- ``rekey``: the district's SIS gave a person a new sourcedId, and the record keeps the internal id
  of the user it was before;
- ``match``: a tenant's match rule found exactly one record of the application's directory.

Every decision is published to the compacted identities topic (key ``tenant:entity:sourcedId``),
so the latest decision per record survives forever and a replay rebuilds the same ids. The
mapper reads the whole topic at start (see ``docs/identity.md``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from enum import StrEnum
from uuid import UUID

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rostersync_libs.data_keys import DataKeys
from rostersync_libs.events import EntityType
from rostersync_libs.kafka import client_options
from rostersync_libs.sealed_clients import OpeningConsumer
from rostersync_libs.sealing import UNREADABLE
from rostersync_libs.settings import ServiceSettings

Key = tuple[str, str, str]  # tenant, entity, sourcedId


class Reason(StrEnum):
    CROSSWALK = "crosswalk"
    REKEY = "rekey"
    MATCH = "match"


class IdentityDecision(BaseModel):
    """One record's internal id, and why it is not the default."""

    model_config = ConfigDict(frozen=True)

    tenant: str
    entity: EntityType
    sourced_id: str
    internal_id: UUID
    reason: Reason
    decided_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    # The match rule or re-key key that decided (match and rekey only).
    rule: str | None = None
    # rekey only: the sourcedId the record had before (the writer moves that row).
    rekeyed_from: str | None = None

    @property
    def map_key(self) -> Key:
        return (self.tenant, self.entity.value, self.sourced_id)

    def key(self) -> bytes:
        """The Kafka key, the same as the record's own: ``tenant:entity:sourcedId``."""
        return f"{self.tenant}:{self.entity.value}:{self.sourced_id}".encode()

    def to_bytes(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> IdentityDecision:
        return cls.model_validate_json(data)


def decode(value: bytes | None) -> IdentityDecision | None:
    """A decision from the topic; None for a tombstone or a value that is not a decision."""
    if value is None:
        return None
    try:
        return IdentityDecision.from_bytes(value)
    except ValidationError:
        return None


async def publish(
    producer: AIOKafkaProducer, topic: str, decisions: list[IdentityDecision]
) -> None:
    """Send decisions and wait until Kafka has acknowledged every one of them."""
    futures = [await producer.send(topic, d.to_bytes(), key=d.key()) for d in decisions]
    await asyncio.gather(*futures)


def topic_reader(settings: ServiceSettings, client_id: str, keys: DataKeys) -> AIOKafkaConsumer:
    """A consumer without a group: it reads every partition itself and commits nothing."""
    return OpeningConsumer(
        keys=keys,
        **client_options(settings),
        group_id=None,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=5000,
    )


async def read_to_end(
    consumer: AIOKafkaConsumer, partitions: list[TopicPartition]
) -> Iterator[tuple[bytes | None, bytes | None]]:
    """Every (key, value) of the assigned partitions up to their current end offsets, in order
    within each partition (the consumer must already be assigned to ``partitions``)."""
    ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
    found: list[tuple[bytes | None, bytes | None]] = []
    pending = {tp for tp in partitions if await consumer.position(tp) < ends[tp]}
    while pending:
        batches = await consumer.getmany(*pending, timeout_ms=1000)
        for messages in batches.values():
            found.extend((m.key, m.value) for m in messages)
        pending = {tp for tp in pending if await consumer.position(tp) < ends[tp]}
    return iter(found)


async def topic_partitions(settings: ServiceSettings, topic: str) -> list[int]:
    """The partitions of a topic (a consumer without a subscription has no metadata for it)."""
    producer = AIOKafkaProducer(**client_options(settings))
    await producer.start()
    try:
        return sorted(await producer.partitions_for(topic))
    finally:
        await producer.stop()


async def load_decisions(
    settings: ServiceSettings, keys: DataKeys, tenant: str | None = None
) -> dict[Key, IdentityDecision]:
    """The current decision of every record (of one tenant, or of all): the topic read once."""
    topic = settings.topics.identities
    partitions = [TopicPartition(topic, p) for p in await topic_partitions(settings, topic)]
    consumer = topic_reader(settings, "rostersync-identities-reader", keys)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        current: dict[Key, IdentityDecision] = {}
        prefix = f"{tenant}:".encode() if tenant else b""
        for key, value in await read_to_end(consumer, partitions):
            if key is None or not key.startswith(prefix) or value is UNREADABLE:
                continue
            decision = decode(value)
            record_key = _split_key(key)
            if decision is None:
                if record_key is not None:
                    current.pop(record_key, None)  # a tombstone withdraws the decision
                continue
            current[decision.map_key] = decision
        return current
    finally:
        await consumer.stop()


def _split_key(key: bytes) -> Key | None:
    parts = key.decode(errors="replace").split(":", 2)
    if len(parts) != 3:
        return None
    return (parts[0], parts[1], parts[2])
