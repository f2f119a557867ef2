"""One REST run end to end in memory: events, file facts, markers, full vs delta, failures."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from uuid import uuid4

import httpx
import pytest
from pydantic import ValidationError
from rostersync_fetcher.rest.client import OneRosterClient, RetryPolicy
from rostersync_fetcher.rest.run import ApiRun, ApiRunResult, delta_filter
from rostersync_fetcher.rest.state import MemoryStateStore
from rostersync_libs.events import (
    EntityType,
    FileEvent,
    Operation,
    RecordEvent,
    RunEnd,
    SourceKind,
    content_hash,
)
from rostersync_libs.minimisation import Minimisation
from rostersync_libs.runs import RunEvent, RunPhase
from rostersync_libs.tenants import ApiSource, OAuth1Auth, Tenant, load_tenants
from rostersync_libs.topics import Topics
from rostersync_oneroster_server import OneRosterServer
from rostersync_validator.handler import ValidatorHandler

from tests.fakes import FakeKnown, RecordingProducer
from tests.rest_district import district_1_1

TOPICS = Topics("t.")
SOURCE = ApiSource(
    id="api",
    kind="oneroster-api",
    base_url="https://sis.example",
    auth=OAuth1Auth(kind="oauth1", key="k", secret_env="SIS_SECRET"),
    page_size=1,  # one record per page: paging is exercised on every collection
)
TENANT = Tenant(id="d1", name="D", validation="strict", sources=[SOURCE])


class NoAuth:
    async def authorize(self, request: httpx.Request) -> None:
        return None

    async def invalidate(self) -> bool:
        return False


async def nap(_: float) -> None:
    return None


async def run_once(
    server: OneRosterServer,
    store: MemoryStateStore,
    *,
    now: datetime,
    full: bool = False,
    source: ApiSource = SOURCE,
    tenant: Tenant = TENANT,
) -> tuple[ApiRunResult, RecordingProducer]:
    producer = RecordingProducer()
    async with httpx.AsyncClient(transport=server.transport()) as http:
        client = OneRosterClient(
            source, http, NoAuth(), asyncio.Semaphore(2), policy=RetryPolicy(max_attempts=2),
            sleep=nap,
        )  # fmt: skip
        result = await ApiRun(
            producer=cast(Any, producer),
            topics=TOPICS,
            tenant=tenant.model_copy(update={"sources": [source]}),
            source=source,
            run_id=uuid4(),
            client=client,
            store=store,
            force_full=full,
            clock=lambda: now,
        ).run()
    return result, producer


def runs(producer: RecordingProducer) -> list[RunEvent]:
    return [RunEvent.model_validate_json(v) for t, v, _ in producer.sent if t == TOPICS.runs]


NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


async def test_a_first_run_is_a_full_bulk_snapshot_the_validator_accepts() -> None:
    server = OneRosterServer(collections=district_1_1())
    store = MemoryStateStore()
    result, producer = await run_once(server, store, now=NOW)
    assert result.full
    events = producer.events(TOPICS.fetched)
    files = [e for e in events if isinstance(e, FileEvent)]
    assert len(files) == 7 * 3  # every collection's facts on every partition
    assert {f.facts.file for f in files} == {
        "/orgs", "/academicSessions", "/courses", "/classes", "/users", "/enrollments",
        "/demographics",
    }  # fmt: skip
    records = [e for e in events if isinstance(e, RecordEvent)]
    assert [r.sourced_id for r in records if r.entity is EntityType.USER] == ["u-t1", "u-s1"]
    assert {r.mode for r in records} == {"bulk"}
    assert {r.source_kind for r in records} == {SourceKind.REST}
    teacher = next(r for r in records if r.sourced_id == "u-t1")
    assert teacher.origin is not None
    assert (teacher.origin.file, teacher.origin.row) == ("/users", 1)
    assert "password" not in teacher.payload
    assert "status" not in teacher.payload
    assert teacher.date_last_modified == datetime(2025, 1, 1, tzinfo=UTC)
    markers = [e for e in events if isinstance(e, RunEnd)]
    assert len(markers) == 3
    assert markers[0].marker is not None
    assert set(markers[0].marker.bulk_entities) == {
        EntityType.ORG, EntityType.ACADEMIC_SESSION, EntityType.COURSE, EntityType.CLASS,
        EntityType.USER, EntityType.ENROLLMENT, EntityType.DEMOGRAPHIC,
    }  # fmt: skip
    assert [r.phase for r in runs(producer)] == [RunPhase.STARTED, RunPhase.FETCHED]
    assert runs(producer)[1].file_counts["/users"] == 2
    # the strict validator finds nothing to say about any of it
    validator = ValidatorHandler(FakeKnown())
    for event in files:
        assert validator.on_file(event, 0) == []
    outcomes = await validator.handle(records)
    assert [f for o in outcomes for f in o.findings] == []
    # state: marks at the records' dateLastModified, full sync now
    state = store.get("d1", "api")
    assert state is not None
    assert state.last_full_at == NOW
    assert state.marks["users"] == datetime(2025, 1, 1, tzinfo=UTC)


async def test_the_next_run_is_a_delta_since_the_marks_with_overlap() -> None:
    data = district_1_1()
    server = OneRosterServer(collections=data)
    store = MemoryStateStore()
    await run_once(server, store, now=NOW)
    data["users"][1] = {**data["users"][1], "status": "tobedeleted",
                        "dateLastModified": "2025-02-01T00:00:00.000Z"}  # fmt: skip
    server.reset_counts()
    result, producer = await run_once(server, store, now=NOW + timedelta(hours=1))
    assert not result.full
    assert server.filters("users") == ["dateLastModified>'2024-12-31T23:55:00.000Z'"] * 3
    records = [e for e in producer.events(TOPICS.fetched) if isinstance(e, RecordEvent)]
    # the overlap re-sends what changed at the mark itself: harmless duplicates downstream
    deleted = next(r for r in records if r.sourced_id == "u-s1" and r.entity is EntityType.USER)
    assert deleted.operation is Operation.DELETE
    assert deleted.mode == "delta"
    assert deleted.payload["status"] == "tobedeleted"
    marker = next(e for e in producer.events(TOPICS.fetched) if isinstance(e, RunEnd))
    assert marker.marker is not None
    assert marker.marker.bulk_entities == []
    state = store.get("d1", "api")
    assert state is not None
    assert state.marks["users"] == datetime(2025, 2, 1, tzinfo=UTC)
    assert state.marks["orgs"] == datetime(2025, 1, 1, tzinfo=UTC)  # unchanged: nothing newer
    assert state.last_full_at == NOW  # still the first run's
    validator = ValidatorHandler(FakeKnown())
    outcomes = await validator.handle(records)
    assert [f.code for o in outcomes for f in o.findings] == []


async def test_full_reconcile_when_due_or_requested() -> None:
    server = OneRosterServer(collections=district_1_1())
    store = MemoryStateStore()
    await run_once(server, store, now=NOW)
    assert (await run_once(server, store, now=NOW + timedelta(hours=1), full=True))[0].full
    later = NOW + timedelta(hours=1 + SOURCE.full_reconcile_every_hours)
    assert (await run_once(server, store, now=later))[0].full


async def test_a_failing_collection_fails_the_run_with_aborted_markers_and_no_new_marks() -> None:
    server = OneRosterServer(collections=district_1_1())
    store = MemoryStateStore()
    await run_once(server, store, now=NOW)
    before = store.get("d1", "api")
    server.faults.add("503", 100, path_contains="/enrollments")  # every attempt
    result, producer = await run_once(server, store, now=NOW + timedelta(hours=1))
    assert result.state is None
    assert [r.phase for r in runs(producer)] == [RunPhase.STARTED, RunPhase.FAILED]
    reason = runs(producer)[1].reason or ""
    assert "/enrollments" in reason
    assert "gave up after 2 attempts (HTTP 503)" in reason
    # Every partition gets an aborted marker: the stages release the run, nothing is swept.
    markers = [e for e in producer.events(TOPICS.fetched) if isinstance(e, RunEnd)]
    assert markers
    assert all(m.marker and m.marker.aborted and not m.marker.bulk_entities for m in markers)
    assert store.get("d1", "api") == before


async def test_a_1_2_full_run_sends_roles_and_lists_them_as_bulk() -> None:
    data = district_1_1()
    for user in data["users"]:
        user.pop("role")
        user.pop("orgs")
        user["roles"] = [{"roleType": "primary", "role": "student", "org": {"sourcedId": "s1"}}]
    source = SOURCE.model_copy(update={"version": "1.2"})
    _result, producer = await run_once(
        OneRosterServer(collections=data), MemoryStateStore(), now=NOW, source=source
    )
    records = [e for e in producer.events(TOPICS.fetched) if isinstance(e, RecordEvent)]
    roles = [r for r in records if r.entity is EntityType.ROLE]
    assert [r.sourced_id for r in roles] == ["u-t1:s1:student", "u-s1:s1:student"]
    assert {r.origin.file for r in roles if r.origin} == {"/users"}
    marker = next(e for e in producer.events(TOPICS.fetched) if isinstance(e, RunEnd))
    assert marker.marker is not None
    assert {EntityType.ROLE, EntityType.USER_PROFILE} <= set(marker.marker.bulk_entities)
    outcomes = await ValidatorHandler(FakeKnown()).handle(records)
    assert [f.code for o in outcomes for f in o.findings] == []


async def test_references_to_missing_records_are_facts_for_the_validator() -> None:
    data = district_1_1()
    data["enrollments"][0]["class"] = {"sourcedId": "k-missing"}
    _, producer = await run_once(OneRosterServer(collections=data), MemoryStateStore(), now=NOW)
    bad = next(
        e
        for e in producer.events(TOPICS.fetched)
        if isinstance(e, RecordEvent) and e.sourced_id == "e1"
    )
    assert bad.facts is not None
    assert bad.facts.dangling == {"classSourcedId": ["k-missing"]}
    [outcome] = await ValidatorHandler(FakeKnown()).handle([bad])
    assert [f.code for f in outcome.findings] == ["dangling_reference"]


def test_delta_filter_text() -> None:
    mark = datetime(2024, 1, 1, 0, 5, tzinfo=UTC)
    assert delta_filter(mark, 300) == "dateLastModified>'2024-01-01T00:00:00.000Z'"


def test_api_sources_in_the_tenants_file(tmp_path: Path) -> None:
    config = tmp_path / "tenants.toml"
    config.write_text(
        '[[tenants]]\nid = "d1"\nname = "D"\n'
        '[[tenants.sources]]\nid = "csv"\npath = "b"\n'
        '[[tenants.sources]]\nid = "api"\nkind = "oneroster-api"\n'
        'base_url = "https://sis.example"\nversion = "1.2"\n'
        'auth = { kind = "oauth2", token_url = "https://sis.example/token", client_id = "c",'
        ' secret_env = "SIS_SECRET", scopes = ["a", "b"] }\n'
        'schedule = { daily_at = "02:30", timezone = "America/Chicago", pause = ["07:30-15:30"] }\n'
    )
    tenant = load_tenants(config).get("d1")
    api = tenant.find_source("api")
    assert isinstance(api, ApiSource)
    assert (api.page_size, api.max_concurrency, api.full_reconcile_every_hours) == (1000, 2, 168)
    assert api.delta_overlap_seconds == 300
    assert tenant.source().path == (tmp_path / "b").resolve()
    assert tenant.api_sources == [api]
    secret_in_file = config.read_text().replace('secret_env = "SIS_SECRET"', 'secret = "x"')
    config.write_text(secret_in_file)
    with pytest.raises(ValidationError):
        load_tenants(config)


def test_concurrency_is_capped_at_five() -> None:
    with pytest.raises(ValidationError):
        SOURCE.model_validate({**SOURCE.model_dump(), "max_concurrency": 6})


async def test_the_tenants_field_policy_is_applied_before_the_hash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("K", "key-one")
    users = {"username": "hash", "givenName": "hash"}
    tenant = TENANT.model_copy(
        update={"minimise": Minimisation.model_validate({"hash_key_env": "K", "users": users})}
    )
    server = OneRosterServer(collections=district_1_1())
    result, producer = await run_once(server, MemoryStateStore(), now=NOW, tenant=tenant)
    assert result.event.phase is RunPhase.FETCHED
    records = [e for e in producer.events(TOPICS.fetched) if isinstance(e, RecordEvent)]
    people = [r for r in records if r.entity is EntityType.USER]
    assert len(people) == 2
    for person in people:
        assert person.payload["username"].startswith("hmac-sha256:")
        assert person.payload["givenName"].startswith("hmac-sha256:")
        assert person.content_hash == content_hash(person.payload)
