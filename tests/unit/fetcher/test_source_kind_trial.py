"""A trial source kind, defined here only, runs through the fetcher's seam for source kinds.

``static`` yields records from a list. What it needed is what any new kind needs: a driver module
(here, this test module stands in for ``sources/static.py``), its config model (here too; a real
kind's goes into ``rostersync_libs.tenants``'s ``Source`` union, so tenants files, the admin API
and the CLI validate it) and its tests. Nothing else in the fetcher changed for it: the command
dispatcher finds the driver by the source's ``kind``, the run guard and the run publisher are the
ones every kind uses.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from functools import partial
from typing import Any, Literal, cast
from uuid import UUID, uuid4

import pytest
from pydantic import BaseModel, ConfigDict
from rostersync_fetcher.dispatch import CommandDispatcher
from rostersync_fetcher.guard import RunGuard
from rostersync_fetcher.publisher import RunPublisher
from rostersync_fetcher.rest.state import MemoryStateStore
from rostersync_fetcher.settings import FetcherSettings
from rostersync_fetcher.sources import registry
from rostersync_fetcher.sources.driver import Fetching
from rostersync_fetcher.sources.registry import build_drivers, driver
from rostersync_libs.commands import SyncRequested
from rostersync_libs.events import EntityType, RecordEvent, RunEnd, SourceKind, record_event
from rostersync_libs.runs import RunEvent, RunPhase
from rostersync_libs.tenant_registry import Registered, merged
from rostersync_libs.tenants import Tenant, TenantsConfig
from rostersync_libs.topics import Topics

from tests.fakes import RecordingProducer


class StaticSource(BaseModel):
    """The trial kind's config model: the records it yields."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    kind: Literal["static"] = "static"
    records: tuple[tuple[EntityType, str, dict[str, str]], ...]
    run_timeout_seconds: float | None = None


class StaticDriver:
    """The trial kind's driver: one run publishes the listed records as a bulk snapshot."""

    takes_bundle = False

    def __init__(self, fetching: Fetching) -> None:
        self._fetching = fetching

    async def sync(self, tenant: Tenant, source: StaticSource, command: SyncRequested) -> None:
        fetching = self._fetching
        await fetching.guard.run(
            self._publish(tenant, source, command.run_id),
            publisher=partial(fetching.publisher, tenant, source.id, command.run_id),
            tenant=tenant.id,
            source=source.id,
            run_id=command.run_id,
            timeout_seconds=source.run_timeout_seconds,
        )

    async def _publish(self, tenant: Tenant, source: StaticSource, run_id: UUID) -> RunEvent:
        out = RunPublisher(
            producer=self._fetching.producer,
            topics=self._fetching.settings.topics,
            tenant=tenant,
            source_id=source.id,
            run_id=run_id,
        )
        await out.run_event(RunPhase.STARTED)
        for entity, sourced_id, payload in source.records:
            await out.send(
                record_event(
                    tenant=tenant.id, source=source.id, run_id=run_id, entity=entity,
                    sourced_id=sourced_id, payload={"sourcedId": sourced_id, **payload},
                    source_kind=SourceKind.REST,
                )
            )  # fmt: skip
            out.counts[entity.value] += 1
        await out.end(sorted({entity for entity, _, _ in source.records}))
        return await out.run_event(RunPhase.FETCHED)

    async def watch(self, stop: asyncio.Event) -> None:
        return

    def release(self) -> list[asyncio.Task[None]]:
        return []


@pytest.fixture
def static_kind() -> Iterator[None]:
    driver("static")(StaticDriver)
    yield
    registry.forget("static")


def tenant_with_static_source() -> Tenant:
    source = StaticSource(
        id="fixed",
        records=(
            (EntityType.ORG, "d1", {"name": "District", "type": "district"}),
            (EntityType.ORG, "s1", {"name": "School", "type": "school"}),
        ),
    )
    # model_construct: the trial model is not in the libs' Source union (a real kind's is).
    return Tenant.model_construct(id="trial", name="Trial", sources=[cast(Any, source)])


async def test_a_trial_kind_registered_by_a_test_runs_through_dispatch_guard_and_publisher(
    static_kind: None,
) -> None:
    producer = RecordingProducer()
    stop = asyncio.Event()
    tenant = tenant_with_static_source()

    async def no_tenants() -> list[Tenant] | None:
        return []

    drivers = build_drivers(
        Fetching(
            settings=FetcherSettings(),
            producer=cast(Any, producer),
            guard=RunGuard(None, 60),
            unchanged=None,
            state=MemoryStateStore(),
            pool=None,
            keys=None,
            live_tenants=no_tenants,
            stop=stop,
        )
    )
    assert {"csv", "inbox", "oneroster-api", "static"} <= set(drivers)

    async def registered() -> Registered:
        return merged(TenantsConfig.model_construct(tenants=[tenant]), [])

    run_id = uuid4()
    await CommandDispatcher(registered, drivers)(SyncRequested(tenant="trial", run_id=run_id))

    topics = Topics()
    runs = [RunEvent.model_validate_json(v) for t, v, _ in producer.sent if t == topics.runs]
    assert [e.phase for e in runs] == [RunPhase.STARTED, RunPhase.FETCHED]
    assert runs[-1].file_counts == {"orgs": 2}
    assert runs[-1].bulk_entities == [EntityType.ORG]
    fetched = producer.events(topics.fetched)
    records = [e for e in fetched if isinstance(e, RecordEvent)]
    assert sorted(str(e.sourced_id) for e in records) == ["d1", "s1"]
    assert all(e.run_id == run_id and e.source == "fixed" for e in records)
    markers = [e for e in fetched if isinstance(e, RunEnd)]
    assert len(markers) == 3  # one per partition
    assert all(m.marker is not None and not m.marker.aborted for m in markers)


async def test_a_kind_without_a_driver_is_refused_not_crashed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tenant = tenant_with_static_source()  # "static" is not registered here

    async def registered() -> Registered:
        return merged(TenantsConfig.model_construct(tenants=[tenant]), [])

    # No driver for the kind: logged and dropped, as an unknown tenant is.
    await CommandDispatcher(registered, {})(SyncRequested(tenant="trial"))
    assert "source fixed: no driver for kind 'static'" in caplog.text
