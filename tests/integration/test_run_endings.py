"""Every run ends: a REST run that fails after it began publishing ends with aborted markers, so
the middle stages commit past it (their offsets never freeze), the writer ends it ``failed``
without removals, and the next runs of other tenants complete (real Kafka and PostgreSQL)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from rostersync_libs.settings import ServiceSettings
from rostersync_oneroster_server import OneRosterServer

from tests import districts
from tests.bundles import write_bundle
from tests.e2e import ids
from tests.integration.test_rest_deltas_and_faults import api_tenant, oauth1, request
from tests.pipeline import running_pipeline

pytestmark = pytest.mark.integration


async def lag(settings: ServiceSettings, group: str, topic: str) -> int:
    """Messages of ``topic`` the consumer group has not committed past."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=settings.consumer_group(group),
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not partitions:
            await consumer.topics()
            partitions = [
                TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()
            ]
        ends = await consumer.end_offsets(partitions)
        behind = 0
        for tp in partitions:
            committed = await consumer.committed(tp)
            behind += ends[tp] - (committed or 0)
        return behind
    finally:
        await consumer.stop()


async def status_of(db: asyncpg.Connection, run_id: object) -> tuple[str | None, str | None]:
    try:
        row = await db.fetchrow(
            "SELECT r.status, o.status AS outcome FROM sync_runs r LEFT JOIN run_outcomes o"
            " ON o.tenant_id = r.tenant_id AND o.run_id = r.run_id WHERE r.run_id = $1",
            run_id,
        )
    except asyncpg.UndefinedTableError:  # the writer has not created its tables yet
        return (None, None)
    return (row["status"], row["outcome"]) if row else (None, None)


async def test_a_rest_run_failing_midway_ends_failed_and_releases_every_stage(
    settings: ServiceSettings,
    db: asyncpg.Connection,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ROSTERSYNC_TEST_O1", "secret")
    bundle = write_bundle(tmp_path / "b", districts.bundle_1_1())
    async with OneRosterServer(bundle, oauth1={"key": "secret"}) as server:
        common = {"page_size": 2, "timeout_seconds": 5, "max_attempts": 2}
        tenants = tmp_path / "t.toml"
        tenants.write_text(
            api_tenant("broken", server, oauth1(), **common)
            + api_tenant("fine", server, oauth1(), **common)
        )
        async with running_pipeline(settings, tenants):
            # Orgs, sessions, courses, classes and users are published, then enrollments fail.
            server.faults.add("500", 100, path_contains="/enrollments")
            failed = await request(settings, "broken")
            async with asyncio.timeout(90):
                while (await status_of(db, failed))[1] is None:
                    await asyncio.sleep(0.2)
            assert await status_of(db, failed) == ("failed", "aborted")
            reason = await db.fetchval(
                "SELECT fetch_error FROM sync_runs WHERE run_id = $1", failed
            )
            assert "/enrollments" in reason
            # What was valid and published before the failure landed; nothing was swept.
            assert await ids(db, "users", "broken") == {"u-t1", "u-s1", "u-s2", "u-p1"}
            assert await ids(db, "enrollments", "broken") == set()

            server.faults.rules.clear()
            fine = await request(settings, "fine")
            async with asyncio.timeout(90):
                while (await status_of(db, fine))[0] != "completed":
                    await asyncio.sleep(0.2)
            assert await ids(db, "enrollments", "fine") == {"e1", "e2", "e3"}
            # The middle stages committed past the failed run: nothing is held back.
            async with asyncio.timeout(30):
                while await lag(settings, "validator", settings.topics.fetched) or await lag(
                    settings, "mapper", settings.topics.validated
                ):
                    await asyncio.sleep(0.5)
