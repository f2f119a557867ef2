"""The relay's fast encoder (change_events.event_json) says what the models say (event_of)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import orjson
import pytest
from asyncpg.pgproto.pgproto import UUID as PG_UUID
from rostersync_libs.change_events import CHANGE_EVENT, event_json, event_of, to_json

USER, CLASS, AGENT = uuid4(), uuid4(), uuid4()


def row(entity: str, operation: str, record: dict[str, Any], fields: Any = None) -> dict[str, Any]:
    """A change_log row as asyncpg returns it: jsonb columns as JSON text, its own UUID type."""
    return {
        "tenant_id": "d1",
        "seq": 7,
        "run_id": PG_UUID("01a23c3f-978a-7ffd-8749-6fe74eef266e"),
        "effective_at": datetime(2026, 3, 3, 10, 0, 0, 123456, tzinfo=UTC),
        "entity": entity,
        "internal_id": PG_UUID(str(uuid4())),
        "sourced_id": "s-1",
        "operation": operation,
        "fields": None if fields is None else orjson.dumps(fields).decode(),
        "record": orjson.dumps(record).decode(),
    }


ROWS = [
    row("users", "insert", {"givenName": "Ada", "enabledUser": True, "grades": ["09"]}),
    row("users", "update", {"givenName": "Ada"}, {"givenName": {"before": "A", "after": "Ada"}}),
    row("users", "archive", {"givenName": "Ada", "agents": None}),
    row(
        "enrollments",
        "insert",
        {
            "user_internal_id": str(USER),
            "class_internal_id": str(CLASS),
            "role": "student",
            "primary": False,
        },
    ),
    row(
        "guardianLinks", "insert", {"user_internal_id": str(USER), "agent_internal_id": str(AGENT)}
    ),
    row(
        "userOrgs",
        "archive",
        {"user_internal_id": str(USER), "org_internal_id": str(uuid4()), "role": "student"},
    ),
]


@pytest.mark.parametrize("change", ROWS, ids=lambda r: f"{r['entity']}-{r['operation']}")
def test_the_fast_encoding_is_the_same_event(change: dict[str, Any]) -> None:
    fast = event_json(change)
    assert CHANGE_EVENT.validate_json(fast) == event_of(change)
    # The same fields, and the same values once parsed (timestamps written alike, with "Z").
    assert orjson.loads(fast) == orjson.loads(to_json(event_of(change)))
