"""A running run's progress per stage in the API: what the stages wrote to run_stage_progress
(their flushes, redelivered ones too) is what the run view and the runs list show, per tenant."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import asyncpg
import pytest
from rostersync_fetcher.published_progress import PublishedProgress
from rostersync_libs.db import close_pool, create_pool
from rostersync_libs.ids import new_run_id
from rostersync_libs.settings import ServiceSettings
from rostersync_libs.stage_progress import StageProgress

from tests.api import api, api_settings, token

pytestmark = pytest.mark.integration


async def counted(pool: asyncpg.Pool, stage: str, tenant: str, run: UUID,
                  partition: int, offsets: range, rejected: frozenset[int] = frozenset()) -> None:  # fmt: skip
    """One stage process's life: these input offsets counted, flushed when it stops."""
    progress = StageProgress(pool, stage)
    verdicts = [(tenant, run, partition, offset in rejected) for offset in offsets]
    progress.add_batch(verdicts, {partition: (offsets[0], offsets[-1])})
    progress.soon()
    progress.tick()
    await progress.close()


async def test_a_running_runs_stage_counts_are_served_once_each_redelivery_aside(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    tenants = tmp_path / "t.toml"
    entry = '[[tenants]]\nid = "{0}"\nname = "{0}"\n\n[[tenants.sources]]\nid = "csv"\n'
    tenants.write_text("".join(entry.format(t) + f'kind = "csv"\npath = "{tmp_path}"\n\n'
                               for t in ("d1", "d2")))  # fmt: skip
    viewer = await token(db, settings, "viewer", ["d1"])
    other = await token(db, settings, "viewer", ["d2"])
    run = new_run_id()
    for tenant in ("d1", "d2"):  # one run id in two tenants: each sees only its own counts
        await db.execute(
            "INSERT INTO sync_runs (tenant_id, run_id, source) VALUES ($1, $2, 'csv')", tenant, run
        )
    pool = await create_pool(settings, max_size=2)
    try:
        await PublishedProgress(pool, "d1", run).record(40)
        await PublishedProgress(pool, "d1", run).record(30, final=True)  # a total never shrinks
        await counted(pool, "validator", "d1", run, 0, range(10), rejected=frozenset({3, 7}))
        # restarted at committed offset 5: 5..9 were counted, 10..14 are new (half the flush)
        await counted(pool, "validator", "d1", run, 0, range(5, 15))
        await counted(pool, "validator", "d1", run, 0, range(10))  # all counted before: nothing
        await counted(pool, "validator", "d1", run, 1, range(100, 103))  # another partition
        await counted(pool, "mapper", "d1", run, 0, range(6))
        await counted(pool, "validator", "d2", run, 0, range(1000))
    finally:
        await close_pool(pool)

    async with api(api_settings(settings, tenants, tmp_path / "uploads")) as http:
        shown = (await http.get(f"/api/v1/tenants/d1/runs/{run}", headers=viewer)).json()
        listed = (await http.get("/api/v1/tenants/d1/runs", headers=viewer)).json()["items"]
        hidden = await http.get(f"/api/v1/tenants/d1/runs/{run}", headers=other)
        theirs = (await http.get(f"/api/v1/tenants/d2/runs/{run}", headers=other)).json()

    assert shown["status"] == "running"
    progress = shown["progress"]
    assert (progress["fetched"], progress["validated"], progress["mapped"]) == (40, 18, 6)
    assert progress["written"] == 0
    validator = progress["stages"]["validator"]
    assert (validator["passed"], validator["rejected"]) == (16, 2)
    assert progress["stages"]["fetcher"]["passed"] == 40
    assert [r["run_id"] for r in listed] == [str(run)]
    in_list = listed[0]["progress"]
    assert (in_list["fetched"], in_list["validated"], in_list["mapped"]) == (40, 18, 6)
    assert in_list["written"] == 0  # counted while the run runs
    assert hidden.status_code == 404
    assert theirs["progress"]["validated"] == 1000
    assert theirs["progress"]["fetched"] == 0
