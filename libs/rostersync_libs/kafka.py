"""Kafka helpers: producers, consumers with manual commits, and topic creation.

Consumers never auto-commit: a stage commits an offset only after the work it stands for is
durable (produced downstream, or written to Postgres), which gives at-least-once delivery; the
writer's version-guarded upserts turn that into an exactly-once effect.
"""

from __future__ import annotations

import logging

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from rostersync_libs.partitioning import key_partition
from rostersync_libs.settings import ServiceSettings

log = logging.getLogger(__name__)

TOPIC_ALREADY_EXISTS = 36

# Record topics are the source of truth for replay: keep them forever (see docs/architecture.md).
RETAINED_TOPIC_CONFIG = {"retention.ms": "-1", "retention.bytes": "-1"}
# Keyed state (identity decisions): compaction keeps the latest event of every key, forever.
COMPACTED_TOPIC_CONFIG = {"cleanup.policy": "compact", "retention.bytes": "-1"}


def make_producer(settings: ServiceSettings, client_id: str) -> AIOKafkaProducer:
    """An idempotent producer tuned for batches: a crash-and-retry never reorders one key.

    Keys go to the partitions Kafka's default partitioner chooses, computed faster than aiokafka
    does (:mod:`rostersync_libs.partitioning`).
    """
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id=client_id,
        partitioner=key_partition,
        enable_idempotence=True,
        acks="all",
        linger_ms=20,
        max_batch_size=512 * 1024,
        max_request_size=4 * 1024 * 1024,
    )


def make_consumer(settings: ServiceSettings, group_id: str, *topics: str) -> AIOKafkaConsumer:
    """A consumer whose offsets are committed by the caller, never automatically."""
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=group_id,
        client_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=2000,
        isolation_level="read_committed",
    )


async def partitions_of(producer: AIOKafkaProducer, topic: str) -> list[int]:
    """The partitions of a topic, as the producer's metadata knows them."""
    parts = await producer.partitions_for(topic)
    return sorted(parts)


async def ensure_topics(settings: ServiceSettings, names: list[str] | None = None) -> None:
    """Create the deployment's topics if they do not exist yet (idempotent)."""
    topics = settings.topics
    wanted = names or topics.all()
    retained = set(topics.record_topics())
    compacted = set(topics.compacted_topics())
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        new = [
            NewTopic(
                name=name,
                num_partitions=1 if name == topics.commands else settings.topic_partitions,
                replication_factor=settings.topic_replication,
                topic_configs=(
                    COMPACTED_TOPIC_CONFIG
                    if name in compacted
                    else RETAINED_TOPIC_CONFIG
                    if name in retained
                    else {}
                ),
            )
            for name in wanted
            if name not in existing
        ]
        if not new:
            return
        response = await admin.create_topics(new)
        for name, code, *_ in response.topic_errors:
            if code not in (0, TOPIC_ALREADY_EXISTS):
                raise RuntimeError(f"could not create topic {name}: Kafka error code {code}")
        log.info("created topics %s", [t.name for t in new])
    finally:
        await admin.close()
