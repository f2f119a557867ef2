"""Messages cannot loosen what the writer protects (issue: trust).

Reproduction: one forged end-of-run marker on the mapped topic, for a run nobody fetched,
declaring users and enrollments complete bulk snapshots (none of their records seen) and a
safety threshold of 1.0, archived every user and enrollment of the district. The writer now
applies the tenants file's threshold when the marker's is looser: the run is held, nothing moves.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest
from rostersync_cli.generate import DistrictShape, generate
from rostersync_libs.envelope import EntityType
from rostersync_libs.ids import new_run_id
from rostersync_libs.markers import run_end_event
from rostersync_libs.settings import ServiceSettings

from tests.bundles import write_tenants
from tests.e2e import sealing_producer, sync
from tests.pipeline import running_pipeline

pytestmark = pytest.mark.integration


async def test_a_forged_run_end_with_a_loose_threshold_is_held_not_applied(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    generate(tmp_path / "bundle", DistrictShape(students=60))
    tenants = write_tenants(tmp_path / "t.toml", "d1", tmp_path / "bundle")
    await sync(settings, tenants, "d1")
    active = "SELECT count(*) FROM {} WHERE tenant_id = 'd1' AND archived_at IS NULL"
    users = await db.fetchval(active.format("users"))
    enrollments = await db.fetchval(active.format("enrollments"))
    assert users > 60
    assert enrollments > 100

    forged = run_end_event(
        tenant="d1", source="csv", run_id=new_run_id(), fanout=1, counts={},
        bulk_entities=[EntityType.USER, EntityType.ENROLLMENT], hold_threshold=1.0,
        hold_min_records=0,
    )  # fmt: skip
    # Sealed with the tenant's data key: a forger who also stole it (see the next test for one
    # who did not).
    async with sealing_producer(settings, "forger") as producer:
        await producer.send_and_wait(
            settings.topics.mapped, forged.to_bytes(), key=forged.key(), partition=0
        )
    async with running_pipeline(settings, tenants):
        async with asyncio.timeout(60):
            while not await db.fetchval(
                "SELECT count(*) FROM run_outcomes WHERE run_id = $1", forged.run_id
            ):
                await asyncio.sleep(0.2)
    outcome = await db.fetchrow(
        "SELECT status, threshold FROM run_outcomes WHERE run_id = $1", forged.run_id
    )
    assert outcome["status"] == "held"
    assert outcome["threshold"] == pytest.approx(0.10)  # the tenant's, not the marker's 1.0
    assert await db.fetchval(active.format("users")) == users
    assert await db.fetchval(active.format("enrollments")) == enrollments
