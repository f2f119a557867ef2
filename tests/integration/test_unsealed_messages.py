"""A message forged on Kafka without the tenant's data key is refused (issue: trust).

Reproduction: a record built with the project's own event helper and put on the mapped topic
overwrote a student's name. Every event is now sealed with its tenant's key (sealing.py): the
same forged record, unsealed, is skipped by the writer; sealed with the key (a forger who also
stole the database's keys), it would land — which shows the refusal is the seal's doing.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import pytest
from aiokafka import AIOKafkaProducer
from rostersync_cli.generate import DistrictShape, generate
from rostersync_libs.events import EntityType, record_event
from rostersync_libs.ids import new_run_id
from rostersync_libs.kafka import client_options
from rostersync_libs.settings import ServiceSettings

from tests.bundles import write_tenants
from tests.e2e import sealing_producer, sync
from tests.pipeline import running_pipeline
from tests.wire import message_of

pytestmark = pytest.mark.integration


async def written_past(db: asyncpg.Connection, topic: str, partition: int, offset: int) -> None:
    """Wait until the writer has taken the message at ``offset`` (its stored position)."""
    async with asyncio.timeout(60):
        while not await db.fetchval(
            "SELECT max(next_offset) > $3 FROM consumer_positions"
            " WHERE topic = $1 AND partition = $2",
            topic, partition, offset,
        ):  # fmt: skip
            await asyncio.sleep(0.2)


async def test_a_record_forged_without_the_tenant_s_key_does_not_land(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    generate(tmp_path / "bundle", DistrictShape(students=30))
    tenants = write_tenants(tmp_path / "t.toml", "d1", tmp_path / "bundle")
    await sync(settings, tenants, "d1")
    student = await db.fetchrow(
        "SELECT sourced_id, internal_id, given_name, family_name, username FROM users"
        " WHERE tenant_id = 'd1' AND role = 'student' ORDER BY sourced_id LIMIT 1"
    )
    payload: dict[str, Any] = {
        "sourcedId": student["sourced_id"], "enabledUser": "true", "role": "student",
        "givenName": "Forged", "familyName": student["family_name"],
        "username": student["username"], "orgSourcedIds": [],
    }  # fmt: skip
    forged = record_event(
        tenant="d1", source="csv", run_id=new_run_id(), entity=EntityType.USER,
        sourced_id=student["sourced_id"], payload=payload,
    )  # fmt: skip
    forged = msgspec.structs.replace(forged, internal_id=student["internal_id"])
    topic = settings.topics.mapped
    key, value = message_of([forged], 0)

    async with running_pipeline(settings, tenants):
        plain = AIOKafkaProducer(**client_options(settings))
        await plain.start()
        try:
            sent = await plain.send_and_wait(topic, value, key=key, partition=0)
        finally:
            await plain.stop()
        await written_past(db, topic, sent.partition, sent.offset)
        name = "SELECT given_name FROM users WHERE tenant_id = 'd1' AND sourced_id = $1"
        assert await db.fetchval(name, student["sourced_id"]) == student["given_name"]

        async with sealing_producer(settings, "thief") as producer:
            sent = await producer.send_and_wait(topic, value, key=key, partition=0)
        await written_past(db, topic, sent.partition, sent.offset)
        assert await db.fetchval(name, student["sourced_id"]) == "Forged"
