"""The checked-in JSON Schema of change events is the events' (regenerate:
python -m rostersync_libs.change_events > docs/change-event.schema.json), and events validate."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import jsonschema
from rostersync_libs.change_events import Membership, MembershipChanged, RecordChanged, json_schema

CHECKED_IN = Path(__file__).parents[3] / "docs" / "change-event.schema.json"


def test_the_checked_in_schema_is_the_events() -> None:
    assert json.loads(CHECKED_IN.read_text()) == json_schema(), (
        "docs/change-event.schema.json drifted:"
        " python -m rostersync_libs.change_events > docs/change-event.schema.json"
    )


def test_both_kinds_validate_and_a_wrong_one_does_not() -> None:
    schema = json.loads(CHECKED_IN.read_text())
    common = {"tenant": "d1", "sequence": 7, "run_id": uuid4(), "internal_id": uuid4(),
              "effective_at": datetime(2026, 3, 3, 10, tzinfo=UTC), "sourced_id": "u-1"}  # fmt: skip
    record = RecordChanged(entity="users", operation="update", record={"given_name": "Al"},
                           fields={"given_name": {"before": "A", "after": "Al"}}, **common)  # fmt: skip
    link = MembershipChanged(entity="userOrgs", operation="archive", **common,
                             membership=Membership(kind="userOrg", user_internal_id=uuid4()))  # fmt: skip
    for event in (record, link):
        jsonschema.validate(json.loads(event.model_dump_json()), schema)
    wrong = json.loads(record.model_dump_json()) | {"operation": "delete"}
    try:
        jsonschema.validate(wrong, schema)
    except jsonschema.ValidationError:
        return
    raise AssertionError("an unknown operation validated")
