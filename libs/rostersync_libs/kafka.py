"""Kafka helpers: producers, consumers with manual commits, and topic creation.

Consumers never auto-commit: a stage commits an offset only after the work it stands for is
durable (produced downstream, or written to Postgres), which gives at-least-once delivery; the
writer's version-guarded upserts turn that into an exactly-once effect.

Every Kafka client the product creates (producers, consumers, admin clients) takes its connection
arguments from :func:`client_options`: one place decides TLS and SASL for all of them.
"""

from __future__ import annotations

import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.helpers import create_ssl_context

from rostersync_libs.data_keys import DataKeys
from rostersync_libs.partitioning import key_partition
from rostersync_libs.sealed_clients import OpeningConsumer, SealingProducer
from rostersync_libs.settings import ServiceSettings

log = logging.getLogger(__name__)

TOPIC_ALREADY_EXISTS = 36
# A principal without the right to create a topic (ACLs): the operator creates them beforehand.
TOPIC_AUTHORIZATION_FAILED = 29
CLUSTER_AUTHORIZATION_FAILED = 31

# Record topics are the source of truth for replay: keep them forever (see docs/architecture.md).
RETAINED_TOPIC_CONFIG = {"retention.ms": "-1", "retention.bytes": "-1"}
# Keyed state (identity decisions): compaction keeps the latest event of every key, forever.
COMPACTED_TOPIC_CONFIG = {"cleanup.policy": "compact", "retention.bytes": "-1"}


def client_options(settings: ServiceSettings) -> dict[str, Any]:
    """The connection arguments of every aiokafka client: servers, TLS and SASL.

    TLS verifies the broker's certificate and host name against ``kafka_ssl_cafile`` (else the
    system's CAs) and presents ``kafka_ssl_certfile``/``kafka_ssl_keyfile`` when given. The SASL
    password is read from its ``SecretStr`` only here, into the client.
    """
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "security_protocol": protocol,
    }
    if protocol in ("SSL", "SASL_SSL"):
        for name in ("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile"):
            path = getattr(settings, name)
            if path is not None and not path.is_file():
                raise ValueError(f"ROSTERSYNC_{name.upper()}: no file at {path}")
        options["ssl_context"] = create_ssl_context(
            cafile=settings.kafka_ssl_cafile,
            certfile=settings.kafka_ssl_certfile,
            keyfile=settings.kafka_ssl_keyfile,
        )
    if protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        # The settings refuse a SASL protocol without all three (ServiceSettings' validator).
        assert settings.kafka_sasl_password is not None
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = settings.kafka_sasl_password.get_secret_value()
    return options


def make_producer(settings: ServiceSettings, client_id: str, keys: DataKeys) -> AIOKafkaProducer:
    """An idempotent producer tuned for batches: a crash-and-retry never reorders one key.

    Keys go to the partitions Kafka's default partitioner chooses, computed faster than aiokafka
    does (:mod:`rostersync_libs.partitioning`). Values are sealed with their tenant's data key.
    """
    return SealingProducer(
        keys,
        **client_options(settings),
        client_id=client_id,
        partitioner=key_partition,
        enable_idempotence=True,
        acks="all",
        linger_ms=20,
        max_batch_size=512 * 1024,
        max_request_size=4 * 1024 * 1024,
    )


def make_consumer(
    settings: ServiceSettings, group_id: str | None, *topics: str, keys: DataKeys
) -> AIOKafkaConsumer:
    """A consumer whose offsets are committed by the caller, never automatically, and which opens
    the sealed values it reads (``sealed_clients.py``); no group: it reads without one."""
    return OpeningConsumer(
        *topics,
        keys=keys,
        **client_options(settings),
        group_id=group_id,
        client_id=group_id or "rostersync",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=2000,
        isolation_level="read_committed",
    )


async def partitions_of(producer: AIOKafkaProducer, topic: str) -> list[int]:
    """The partitions of a topic, as the producer's metadata knows them."""
    parts = await producer.partitions_for(topic)
    return sorted(parts)


def limited_retention(settings: ServiceSettings) -> dict[str, dict[str, str]]:
    """The configs of the topics whose retention the deployment limits (dead letters, findings)."""
    topics = settings.topics
    hours = {
        topics.validator_dlq: settings.dead_letter_retention_hours,
        topics.mapper_dlq: settings.dead_letter_retention_hours,
        topics.findings: settings.findings_retention_hours,
    }
    return {
        name: {"retention.ms": str(int(h * 3_600_000)), "retention.bytes": "-1"}
        for name, h in hours.items()
        if h is not None
    }


async def _apply_retention(admin: AIOKafkaAdminClient, configs: dict[str, dict[str, str]]) -> None:
    """Existing topics get the retention the settings say (a setting changed since creation)."""
    if not configs:
        return
    resources = [ConfigResource(ConfigResourceType.TOPIC, n, configs=c) for n, c in configs.items()]
    for response in await admin.alter_configs(resources):
        for code, _message, _type, name in response.resources:
            if code in (TOPIC_AUTHORIZATION_FAILED, CLUSTER_AUTHORIZATION_FAILED):
                log.warning("not authorised to set the retention of topic %s: the operator's", name)
            elif code != 0:
                raise RuntimeError(f"could not set the retention of topic {name}: error {code}")


async def ensure_topics(settings: ServiceSettings, names: list[str] | None = None) -> None:
    """Create the deployment's topics if they do not exist yet (idempotent).

    Under ACLs a principal sees only the topics it may use and may create none: the others are
    refused (topic authorisation failed) and left to the operator, who creates every topic with an
    administrator's principal before the services start (docs/security.md).
    """
    topics = settings.topics
    wanted = names or topics.all()
    retained = set(topics.record_topics())
    compacted = set(topics.compacted_topics())
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        limited = limited_retention(settings)
        new = [
            NewTopic(
                name=name,
                num_partitions=1 if name == topics.commands else settings.topic_partitions,
                replication_factor=settings.topic_replication,
                topic_configs=(
                    COMPACTED_TOPIC_CONFIG
                    if name in compacted
                    else limited.get(name, RETAINED_TOPIC_CONFIG)
                    if name in retained
                    else {}
                ),
            )
            for name in wanted
            if name not in existing
        ]
        await _apply_retention(admin, {n: c for n, c in limited.items() if n in existing})
        if not new:
            return
        response = await admin.create_topics(new)
        created: list[str] = []
        refused: list[str] = []
        for name, code, *_ in response.topic_errors:
            if code == 0:
                created.append(name)
            elif code == TOPIC_AUTHORIZATION_FAILED:
                refused.append(name)
            elif code != TOPIC_ALREADY_EXISTS:
                raise RuntimeError(f"could not create topic {name}: Kafka error code {code}")
        if created:
            log.info("created topics %s", created)
        if refused:
            # Not an error: these are other principals' topics, or the operator's to create.
            log.debug("not authorised to create or see topics %s: left to the operator", refused)
    finally:
        await admin.close()
