"""A NUL character in a value is reported where it was, and removed; in an identifier it rejects.

Both readers share the validator: a CSV cell (read by the fetcher's CsvRun, in process) and a REST
JSON string with ``\\u0000`` (shaped as the REST path shapes it) get the same finding.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast
from uuid import uuid4

import orjson
from rostersync_fetcher.csv.run import CsvRun
from rostersync_fetcher.rest.shapes import payload_of as rest_payload
from rostersync_libs import events as wire
from rostersync_libs.events import (
    EntityType,
    FileEvent,
    FileFacts,
    Operation,
    Origin,
    Profile,
    RecordBatch,
    RecordEvent,
    RecordMode,
    record_event,
)
from rostersync_libs.findings import Finding, Severity
from rostersync_libs.oneroster.columns import USERS_1_1
from rostersync_libs.runs import RunPhase
from rostersync_libs.stage import Outcome
from rostersync_libs.tenants import CsvSource, Tenant
from rostersync_libs.topics import Topics
from rostersync_validator.handler import ValidatorHandler
from rostersync_validator.known import KnownKeys

from tests.bundles import write_bundle
from tests.fakes import FakeKnown, RecordingProducer

ORG = {"sourcedId": "o1", "name": "School", "type": "school"}
USER = {
    "sourcedId": "u1",
    "enabledUser": "true",
    "orgSourcedIds": "o1",
    "role": "student",
    "username": "sam",
    "givenName": "Sam",
    "familyName": "Smith",
}


async def _through_csv(
    tmp_path: Path, users: list[dict[str, str]]
) -> list[tuple[RecordEvent, Any]]:
    """The bundle through the fetcher's CSV run and the validator, as the pipeline runs them."""
    bundle = write_bundle(tmp_path / "bundle", {"orgs": [ORG], "users": users})
    producer = RecordingProducer()
    tenant = Tenant(id="t", name="T", sources=[CsvSource(id="csv", path=bundle)])
    outcome = await CsvRun(
        producer=cast(Any, producer),
        topics=Topics(),
        tenant=tenant,
        source=cast(CsvSource, tenant.sources[0]),
        run_id=uuid4(),
        roots=[tmp_path],
    ).run()
    assert outcome.phase is RunPhase.FETCHED, outcome.reason
    handler = ValidatorHandler(FakeKnown())
    records: list[RecordEvent] = []
    for topic, value, _ in producer.sent:
        if topic != Topics().fetched:
            continue
        match wire.decode(value):
            case FileEvent() as file:
                handler.on_file(file, 0)
            case RecordBatch() as batch:
                records += wire.records_of(batch)
    users_ = [e for e in records if e.entity is EntityType.USER]
    users_.sort(key=lambda e: e.origin.row if e.origin and e.origin.row else 0)  # file order
    return list(zip(users_, await handler.handle(users_), strict=True))


def _where(finding: Finding) -> tuple[str | None, int | None, str | None, str, Severity]:
    return finding.file, finding.row, finding.column, finding.code, finding.severity


async def test_a_nul_in_a_csv_cell_is_a_warning_and_the_value_is_kept_without_it(
    tmp_path: Path,
) -> None:
    rows = [USER, USER | {"sourcedId": "u2", "givenName": "Jo\x00\x00e", "middleName": "\x00"}]
    (_, clean), (event, outcome) = await _through_csv(tmp_path, rows)
    assert clean.findings == []
    assert clean.forward is not None
    assert event.payload["givenName"] == "Jo\x00\x00e"  # the fetcher sends what the file holds
    assert [_where(f) for f in outcome.findings] == [
        ("users.csv", 3, "givenName", "nul_character", Severity.WARNING),
        ("users.csv", 3, "middleName", "nul_character", Severity.WARNING),
    ]
    named = outcome.findings[0]
    assert named.value == "Jo\x00\x00e"
    assert "expected a value without NUL characters; the NUL was removed" in named.message
    assert "2 NUL characters" in named.message
    assert "\x00" not in named.message
    forward = outcome.forward
    assert forward is not None
    assert forward.payload["givenName"] == "Joe"
    assert "middleName" not in forward.payload  # nothing but a NUL: blank, left out
    assert not any("\x00" in str(v) for v in forward.payload.values())
    assert forward.content_hash != event.content_hash  # stored as corrected, travels whole again


async def test_a_nul_in_a_list_item_is_removed_from_that_item(tmp_path: Path) -> None:
    ((_, outcome),) = await _through_csv(tmp_path, [USER | {"grades": "0\x009,10"}])
    assert [_where(f) for f in outcome.findings] == [
        ("users.csv", 2, "grades", "nul_character", Severity.WARNING)
    ]
    assert outcome.forward is not None
    assert outcome.forward.payload["grades"] == ["09", "10"]


async def test_a_nul_in_a_sourced_id_or_a_reference_rejects_the_record(tmp_path: Path) -> None:
    rows = [USER | {"sourcedId": "u\x001"}, USER | {"sourcedId": "u2", "orgSourcedIds": "o\x001"}]
    (_, own), (_, ref) = await _through_csv(tmp_path, rows)
    assert own.forward is None
    assert [_where(f) for f in own.findings] == [
        ("users.csv", 2, "sourcedId", "nul_character_in_id", Severity.ERROR)
    ]
    assert ref.forward is None
    assert ("users.csv", 3, "orgSourcedIds", "nul_character_in_id", Severity.ERROR) in [
        _where(f) for f in ref.findings
    ]


async def _judge_one(event: RecordEvent, profile: Profile = "lenient") -> Outcome:
    handler = ValidatorHandler(FakeKnown())
    facts = FileFacts(file=event.origin.file if event.origin and event.origin.file else "", entity=EntityType.USER,
                      mode=event.mode or "bulk", header=list(USERS_1_1.names), profile=profile)  # fmt: skip
    handler.on_file(FileEvent(tenant="t", source="csv", run_id=event.run_id, facts=facts), 1)
    (outcome,) = await handler.handle([event])
    return outcome


async def test_a_rest_json_string_with_u0000_gets_the_same_finding() -> None:
    obj = orjson.loads(
        b'{"sourcedId": "u1", "status": "active", "enabledUser": true, "role": "student",'
        b' "orgs": [{"sourcedId": "o1"}], "username": "sam", "givenName": "Sa\\u0000m",'
        b' "familyName": "Smith", "metadata": {"house": "\\u0000red"}}'
    )
    payload = rest_payload(obj, USERS_1_1, bulk=True)
    event = record_event(
        tenant="t", source="api", run_id=uuid4(), entity=EntityType.USER, sourced_id="u1",
        payload=payload, origin=Origin(file="/users", row=4), oneroster_version="1.1",
        mode="bulk",
    )  # fmt: skip
    outcome = await _judge_one(event)
    assert [_where(f) for f in outcome.findings] == [
        ("/users", 4, "givenName", "nul_character", Severity.WARNING),
        ("/users", 4, "metadata.house", "nul_character", Severity.WARNING),
    ]
    assert outcome.forward is not None
    assert outcome.forward.payload["givenName"] == "Sam"
    assert outcome.forward.payload["metadata.house"] == "red"


def _user_event(payload: dict[str, Any], mode: RecordMode = "bulk") -> RecordEvent:
    status = str(payload.get("status", "")).lower()
    return record_event(
        tenant="t", source="csv", run_id=uuid4(), entity=EntityType.USER,
        sourced_id=str(payload.get("sourcedId", "")), payload=payload,
        operation=Operation.DELETE if status == "tobedeleted" else Operation.UPSERT,
        origin=Origin(file="users.csv", row=9), oneroster_version="1.1", mode=mode,
    )  # fmt: skip


async def test_a_status_read_without_its_nul_decides_the_operation() -> None:
    dated = {"orgSourcedIds": ["o1"], "dateLastModified": "2026-01-02T00:00:00Z"}
    event = _user_event(USER | dated | {"status": "tobe\x00deleted"}, mode="delta")
    assert event.operation is Operation.UPSERT  # as the fetcher read it, NUL included
    outcome = await _judge_one(event)
    assert [f.code for f in outcome.findings] == ["nul_character"]
    assert outcome.forward is not None
    assert outcome.forward.operation is Operation.DELETE
    assert outcome.forward.payload["status"] == "tobedeleted"


async def test_a_required_value_of_only_nuls_is_missing_data() -> None:
    outcome = await _judge_one(_user_event(USER | {"orgSourcedIds": ["o1"], "familyName": "\x00 "}))
    assert outcome.forward is None
    assert {(f.column, f.code) for f in outcome.findings} == {
        ("familyName", "nul_character"),
        ("familyName", "missing_required_data"),
    }


async def test_a_column_name_with_a_nul_is_reported_under_its_cleaned_name() -> None:
    payload = USER | {"orgSourcedIds": ["o1"], "metadata.ho\x00use": "red"}
    outcome = await _judge_one(_user_event(payload))
    assert [(f.column, f.code, f.value) for f in outcome.findings] == [
        ("metadata.house", "nul_character", "metadata.ho\x00use")
    ]
    assert outcome.forward is not None
    assert outcome.forward.payload["metadata.house"] == "red"


async def test_the_strict_profile_also_keeps_the_value_with_a_warning() -> None:
    outcome = await _judge_one(
        _user_event(USER | {"orgSourcedIds": ["o1"], "givenName": "S\x00am"}), "strict"
    )
    assert [(f.code, f.severity) for f in outcome.findings] == [("nul_character", Severity.WARNING)]
    assert outcome.forward is not None
    assert outcome.forward.payload["givenName"] == "Sam"


class _Conn:
    def __init__(self, asked: list[list[str]]) -> None:
        self.asked = asked

    async def fetch(self, sql: str, tenant: str, ids: list[str]) -> list[dict[str, str]]:
        assert all("\x00" not in i for i in ids)  # PostgreSQL would refuse the whole query
        self.asked.append(ids)
        return [{"sourced_id": i} for i in ids]


class _Pool:
    def __init__(self) -> None:
        self.asked: list[list[str]] = []

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[_Conn]:
        yield _Conn(self.asked)


async def test_an_id_with_a_nul_is_never_looked_up_in_postgresql() -> None:
    pool = _Pool()
    known = KnownKeys(cast(Any, pool))
    found = await known.known({("t", "orgs", "o\x001"), ("t", "orgs", "o2")})
    assert found == {("t", "orgs", "o2")}
    assert pool.asked == [["o2"]]
