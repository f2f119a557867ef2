from __future__ import annotations

from typing import Any
from uuid import uuid4

from rostersync_libs.envelope import EntityType, Envelope, Operation, Origin, record_event
from rostersync_libs.ids import internal_id
from rostersync_libs.stage import Rejected
from rostersync_mapper.mapping import map_event
from rostersync_validator.rules import validate

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


def _user(payload: dict[str, Any], operation: Operation = Operation.UPSERT) -> Envelope:
    return record_event(
        tenant="t",
        source="csv",
        run_id=uuid4(),
        entity=EntityType.USER,
        sourced_id=str(payload.get("sourcedId", "")),
        payload=payload,
        operation=operation,
        origin=Origin(file="users.csv", row=7),
    )


def test_a_valid_record_goes_on_unchanged() -> None:
    event = _user(GOOD_USER)
    assert validate(event) is event


def test_every_fault_is_named_with_file_row_column_and_value() -> None:
    bad = {k: v for k, v in GOOD_USER.items() if k != "familyName"} | {"role": "principal"}
    result = validate(_user(bad))
    assert isinstance(result, Rejected)
    found = {(f.code, f.column, f.value, f.file, f.row) for f in result.findings}
    assert found == {
        ("missing_required_data", "familyName", None, "users.csv", 7),
        ("invalid_enumeration", "role", "principal", "users.csv", 7),
    }


def test_a_delete_needs_only_its_sourced_id() -> None:
    event = _user({"sourcedId": "u1", "status": "tobedeleted"}, Operation.DELETE)
    assert validate(event) is event


def test_mapper_assigns_deterministic_ids_and_resolves_references() -> None:
    mapped = map_event(_user(GOOD_USER))
    assert isinstance(mapped, Envelope)
    assert mapped.internal_id == internal_id("t", EntityType.USER, "u1")
    assert mapped.payload["orgInternalIds"] == [str(internal_id("t", EntityType.ORG, "o1"))]
    assert mapped.payload["agentInternalIds"] == [str(internal_id("t", EntityType.USER, "p1"))]
