from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest
from rostersync_libs.events import (
    EntityType,
    FileEvent,
    FileFacts,
    Operation,
    Origin,
    Profile,
    RecordEvent,
    RecordFacts,
    RecordMode,
    record_event,
)
from rostersync_libs.ids import internal_id
from rostersync_libs.oneroster.columns import USERS_1_1
from rostersync_mapper.mapping import map_event
from rostersync_validator.files import file_findings
from rostersync_validator.handler import ValidatorHandler
from rostersync_validator.known import Key, KnownKeys
from rostersync_validator.values import check_datetime

GOOD_USER: dict[str, Any] = {
    "sourcedId": "u1",
    "enabledUser": "true",
    "orgSourcedIds": ["o1"],
    "role": "student",
    "username": "sam",
    "givenName": "Sam",
    "familyName": "Smith",
    "agentSourcedIds": ["p1"],
}


class FakeKnown(KnownKeys):
    """The tenant's existing records, without a database (pure-logic tests only)."""

    def __init__(self, keys: set[Key]) -> None:
        self.keys = keys

    async def known(self, wanted: set[Key]) -> set[Key]:
        return wanted & self.keys


def _user(
    payload: dict[str, Any],
    operation: Operation = Operation.UPSERT,
    mode: RecordMode = "bulk",
    facts: RecordFacts | None = None,
    version: str = "1.1",
) -> RecordEvent:
    return record_event(
        tenant="t",
        source="csv",
        run_id=uuid4(),
        entity=EntityType.USER,
        sourced_id=str(payload.get("sourcedId", "")),
        payload=payload,
        operation=operation,
        origin=Origin(file="users.csv", row=7),
        mode=mode,
        facts=facts,
        oneroster_version=version,
    )


async def _judge(
    event: RecordEvent, known: set[Key] | None = None, profile: Profile = "lenient"
) -> Any:
    handler = ValidatorHandler(FakeKnown(known or set()))
    facts = FileFacts(file="users.csv", entity=EntityType.USER, mode=event.mode or "bulk",
                      header=list(USERS_1_1.names), profile=profile)  # fmt: skip
    handler.on_file(FileEvent(tenant="t", source="csv", run_id=event.run_id, facts=facts), 1)
    (outcome,) = await handler.handle([event])
    return outcome


async def test_a_valid_record_goes_on_unchanged() -> None:
    event = _user(GOOD_USER)
    outcome = await _judge(event)
    assert outcome.forward is event
    assert outcome.findings == []


async def test_every_fault_is_named_with_file_row_column_and_value() -> None:
    bad = {k: v for k, v in GOOD_USER.items() if k != "familyName"} | {"role": "principal"}
    outcome = await _judge(_user(bad))
    assert outcome.forward is None
    found = {(f.code, f.column, f.value, f.file, f.row) for f in outcome.findings}
    assert found == {
        ("missing_required_data", "familyName", None, "users.csv", 7),
        ("invalid_enumeration", "role", "principal", "users.csv", 7),
    }


async def test_lenient_corrects_common_slips_with_warnings_and_strict_rejects_them() -> None:
    sloppy = GOOD_USER | {"enabledUser": "TRUE", "status": "inactive",
                          "dateLastModified": "2026-01-02", "grades": ["9"]}  # fmt: skip
    lenient = await _judge(_user(sloppy, mode="delta"))
    codes = {f.code: f.severity.value for f in lenient.findings}
    assert codes == {
        "boolean_case": "warning",
        "legacy_inactive_status": "warning",
        "date_only_timestamp": "warning",
        "invalid_grade": "warning",
    }
    forward = lenient.forward
    assert forward is not None
    assert forward.payload["enabledUser"] == "true"
    assert forward.operation is Operation.DELETE
    assert forward.date_last_modified is not None
    assert forward.content_hash != _user(sloppy).content_hash
    strict = await _judge(_user(sloppy, mode="delta"), profile="strict")
    assert strict.forward is None


async def test_references_resolve_in_the_bundle_or_against_the_tenant() -> None:
    facts = RecordFacts(unresolved={"orgSourcedIds": ["o1"], "agentSourcedIds": ["p1"]})
    known_org = {("t", "orgs", "o1")}
    outcome = await _judge(_user(GOOD_USER, facts=facts), known=known_org)
    # agentSourcedIds is optional: lenient keeps the record and drops the dangling reference
    assert [f.code for f in outcome.findings] == ["dangling_optional_reference"]
    assert outcome.forward is not None
    assert outcome.forward.payload["agentSourcedIds"] == []
    outcome = await _judge(_user(GOOD_USER, facts=facts), known=set())
    assert outcome.forward is None  # orgSourcedIds is required
    assert {f.code for f in outcome.findings} == {
        "dangling_reference",
        "dangling_optional_reference",
    }


async def test_bulk_files_must_leave_status_blank_and_duplicates_are_rejected() -> None:
    outcome = await _judge(_user(GOOD_USER | {"status": "active"}), profile="strict")
    assert [f.code for f in outcome.findings] == ["bulk_status_filled"]
    outcome = await _judge(_user(GOOD_USER, facts=RecordFacts(duplicate_of_row=3)))
    assert outcome.forward is None
    assert outcome.findings[0].message == "sourcedId already used on row 3"


async def test_a_delete_needs_only_its_sourced_id() -> None:
    event = _user({"sourcedId": "u1", "status": "tobedeleted",
                   "dateLastModified": "2026-01-02T00:00:00Z"}, Operation.DELETE, mode="delta")  # fmt: skip
    outcome = await _judge(event)
    assert outcome.forward is event


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("2026-01-02T03:04:05Z", None),
        ("2026-01-02T03:04:05.123+00:00", None),
        ("2026-01-02", "date_only_timestamp"),
        ("2026-01-02T03:04:05+02:00", "datetime_not_utc"),
        ("1/05/2023", "invalid_data_type"),
    ],
)
def test_datetimes_must_be_iso_8601_in_utc(value: str, code: str | None) -> None:
    assert check_datetime(value)[1] == code


def test_header_faults_are_reported_by_file() -> None:
    facts = FileFacts(
        file="users.csv",
        entity=EntityType.USER,
        mode="bulk",
        header=["sourcedid", "status", "dateLastModified", "role", "enabledUser", "shoe"],
        profile="strict",
    )
    codes = [(f.code, f.column) for f in file_findings(facts)]
    assert ("header_case", "sourcedid") in codes
    assert ("missing_header", "username") in codes
    assert ("unknown_column", "shoe") in codes
    assert ("scrambled_header", None) in codes
    missing = FileFacts(file="orgs.csv", entity=EntityType.ORG, mode="bulk", present=False)
    assert [f.code for f in file_findings(missing)] == ["missing_file"]


def test_mapper_assigns_deterministic_ids_and_resolves_references() -> None:
    mapped = map_event(_user(GOOD_USER)).forward
    assert mapped is not None
    assert mapped.internal_id == internal_id("t", EntityType.USER, "u1")
    assert mapped.payload["orgInternalIds"] == [str(internal_id("t", EntityType.ORG, "o1"))]
    assert mapped.payload["agentInternalIds"] == [str(internal_id("t", EntityType.USER, "p1"))]
