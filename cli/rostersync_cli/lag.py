"""``rostersync lag``: how far behind each service is, per topic (and per partition on request).

Lag is the topic's end offset minus the service's committed offset (every stage commits after
its work is durable; the writer commits its positions for monitoring after each transaction).
A growing lag is the alert rule's too (deploy/prometheus/alerts.yaml).
"""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from rostersync_libs.kafka import client_options
from rostersync_libs.settings import ServiceSettings
from rostersync_writer.app import subscribed_topics

from rostersync_cli.text_tables import format_table


def groups(settings: ServiceSettings) -> dict[str, tuple[str, list[str]]]:
    """Each service's consumer group and the topics it reads."""
    topics = settings.topics
    return {
        "fetcher": (settings.consumer_group("fetcher"), [topics.commands]),
        "validator": (settings.consumer_group("validator"), [topics.fetched]),
        "mapper": (settings.consumer_group("mapper"), [topics.validated]),
        "writer": (
            settings.consumer_group(f"writer-{settings.db_schema}"),
            subscribed_topics(topics),
        ),
    }


async def group_lag(
    admin: AIOKafkaAdminClient, consumer: AIOKafkaConsumer, group: str, topics: list[str]
) -> dict[TopicPartition, int]:
    """Per partition of ``topics``: messages the group has not committed yet."""
    committed = await admin.list_consumer_group_offsets(group)
    if any(consumer.partitions_for_topic(t) is None for t in topics):
        await consumer._client.force_metadata_update()  # a consumer without a subscription
    parts = [
        TopicPartition(topic, p)
        for topic in topics
        for p in sorted(consumer.partitions_for_topic(topic) or ())
    ]
    ends: dict[TopicPartition, int] = await consumer.end_offsets(parts) if parts else {}
    return {tp: end - (committed[tp].offset if tp in committed else 0) for tp, end in ends.items()}


async def lag(settings: ServiceSettings) -> dict[str, dict[TopicPartition, int]]:
    admin = AIOKafkaAdminClient(**client_options(settings))
    consumer = AIOKafkaConsumer(**client_options(settings))  # offsets only: nothing to open
    await admin.start()
    await consumer.start()
    try:
        return {
            service: await group_lag(admin, consumer, group, topics)
            for service, (group, topics) in groups(settings).items()
        }
    finally:
        await admin.close()
        await consumer.stop()


def document(found: dict[str, dict[TopicPartition, int]]) -> dict[str, Any]:
    return {
        "services": {
            service: {
                "lag": sum(parts.values()),
                "partitions": [
                    {"topic": tp.topic, "partition": tp.partition, "lag": n}
                    for tp, n in sorted(parts.items())
                ],
            }
            for service, parts in found.items()
        }
    }


def table(found: dict[str, dict[TopicPartition, int]], per_partition: bool) -> str:
    rows = []
    for service, parts in found.items():
        if per_partition:
            rows += [
                [service, tp.topic, str(tp.partition), f"{n:,}"] for tp, n in sorted(parts.items())
            ]
        else:
            rows.append([service, "", "", f"{sum(parts.values()):,}"])
    return format_table(["service", "topic", "partition", "lag"], rows)
