"""Dead letters and findings may be kept on Kafka for a while only; record topics stay forever."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from rostersync_libs.kafka import client_options, ensure_topics
from rostersync_libs.settings import ServiceSettings

from tests.integration.test_mapper_identity import described_topic_config

pytestmark = pytest.mark.integration


async def retention_ms(settings: ServiceSettings) -> dict[str, str]:
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        topics = settings.topics
        names = [topics.validator_dlq, topics.mapper_dlq, topics.findings, topics.mapped]
        return {n: (await described_topic_config(admin, n))["retention.ms"] for n in names}
    finally:
        await admin.close()


async def test_retention_of_dead_letters_and_findings_is_set_at_creation_and_changed_later(
    settings: ServiceSettings,
) -> None:
    topics = settings.topics
    limited = settings.model_copy(
        update={"dead_letter_retention_hours": 24, "findings_retention_hours": 24 * 30}
    )
    await ensure_topics(limited)
    assert await retention_ms(settings) == {
        topics.validator_dlq: str(24 * 3_600_000),
        topics.mapper_dlq: str(24 * 3_600_000),
        topics.findings: str(30 * 24 * 3_600_000),
        topics.mapped: "-1",  # the replay source: forever
    }
    # A setting changed after the topics exist is applied to them at the next start.
    await ensure_topics(limited.model_copy(update={"dead_letter_retention_hours": 0.5}))
    async with asyncio.timeout(30):
        while (await retention_ms(settings))[topics.validator_dlq] != str(1_800_000):
            await asyncio.sleep(0.2)
    assert (await retention_ms(settings))[topics.findings] == str(30 * 24 * 3_600_000)
