"""The per-source loop: requested runs first, scheduled runs on time, one at a time, clean stop."""

from __future__ import annotations

import asyncio
from uuid import uuid4

from rostersync_fetcher.rest.scheduler import SourceLoop, SyncRequest
from rostersync_libs.tenants import ApiSchedule, ApiSource, OAuth1Auth, Tenant

SOURCE = ApiSource(
    id="api",
    kind="oneroster-api",
    base_url="https://sis.example",
    auth=OAuth1Auth(kind="oauth1", key="k", secret_env="X"),
)
TENANT = Tenant(id="d1", name="D", sources=[SOURCE])


async def test_requests_run_one_at_a_time_and_stop_ends_the_loop() -> None:
    active, peak, seen = [0], [0], []

    async def runner(tenant: Tenant, source: ApiSource, request: SyncRequest) -> None:
        active[0] += 1
        peak[0] = max(peak[0], active[0])
        seen.append(request)
        await asyncio.sleep(0.01)
        active[0] -= 1

    loop = SourceLoop(TENANT, SOURCE, runner)  # no schedule: on request only
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop))
    first, second = SyncRequest(uuid4(), full=True), SyncRequest(uuid4())
    loop.request(first)
    loop.request(second)
    for _ in range(100):
        if len(seen) == 2:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, 2)
    assert seen == [first, second]
    assert peak[0] == 1


async def test_a_polling_schedule_runs_again_and_again_and_survives_errors() -> None:
    calls = [0]

    async def runner(tenant: Tenant, source: ApiSource, request: SyncRequest) -> None:
        calls[0] += 1
        assert not request.requested
        if calls[0] == 1:
            raise RuntimeError("broker hiccup")

    source = SOURCE.model_copy(update={"schedule": ApiSchedule(every_seconds=0.02)})
    loop = SourceLoop(TENANT, source, runner)
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop))
    await asyncio.sleep(0.2)
    stop.set()
    await asyncio.wait_for(task, 2)
    assert calls[0] >= 3
