"""The change feed's events (docs/change-feed.md): one per row the writer changed, or membership
link added or removed, as the admin API serves them and the relay publishes them on
``rostersync.changes.v2`` (in batches: ``ChangeBatch``). Built from a ``change_log`` row (the
writer's outbox, migration 0017).

Two kinds: a ``record`` change (a roster row inserted, updated, archived or restored; an
enrollment also says which membership it is) and a ``membership`` change (a user's org or
guardian link, a class's term: added is ``insert``, removed is ``archive``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, TypeAlias
from uuid import UUID

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

ChangeOperation: TypeAlias = Literal["insert", "update", "archive", "restore"]
RecordEntity: TypeAlias = Literal[
    "orgs", "academicSessions", "courses", "classes", "users", "enrollments", "demographics",
    "roles", "userProfiles",
]  # fmt: skip
LinkEntity: TypeAlias = Literal["userOrgs", "guardianLinks", "classTerms"]
MembershipKind: TypeAlias = Literal["enrollment", "userOrg", "guardian", "classTerm"]
MEMBERSHIP_OF: dict[str, MembershipKind] = {
    "enrollments": "enrollment", "userOrgs": "userOrg", "guardianLinks": "guardian",
    "classTerms": "classTerm",
}  # fmt: skip

# The change_log columns an event is built from (every reader selects these).
COLUMNS = (
    "tenant_id, seq, run_id, effective_at, entity, internal_id, sourced_id, operation, fields,"
    " record"
)


class FieldChange(BaseModel):
    model_config = ConfigDict(frozen=True)

    before: Any = None
    after: Any = None


class Membership(BaseModel):
    """Who belongs to what: a user in a class (enrollment) or an org, a guardian of a user
    (``agent_internal_id``), a class in a term."""

    model_config = ConfigDict(frozen=True)

    kind: MembershipKind
    user_internal_id: UUID | None = None
    class_internal_id: UUID | None = None
    org_internal_id: UUID | None = None
    agent_internal_id: UUID | None = None
    term_internal_id: UUID | None = None
    role: str | None = None


class _Change(BaseModel):
    model_config = ConfigDict(frozen=True)

    schema_version: Literal[1] = 1
    tenant: str
    sequence: int = Field(ge=1, description="per tenant, increasing, without gaps")
    run_id: UUID
    effective_at: datetime = Field(description="when the run read its source")
    internal_id: UUID
    sourced_id: str | None
    operation: ChangeOperation


class RecordChanged(_Change):
    kind: Literal["record"] = "record"
    entity: RecordEntity
    # Updates (and restores that changed content): the columns that differ.
    fields: dict[str, FieldChange] | None = None
    # The row's columns after the change (before it, for an archive).
    record: dict[str, Any]
    membership: Membership | None = None  # enrollments


class MembershipChanged(_Change):
    kind: Literal["membership"] = "membership"
    entity: LinkEntity
    membership: Membership


ChangeEvent: TypeAlias = Annotated[RecordChanged | MembershipChanged, Field(discriminator="kind")]
CHANGE_EVENT: TypeAdapter[RecordChanged | MembershipChanged] = TypeAdapter(ChangeEvent)


class ChangeBatch(BaseModel):
    """One message of the changes topic: a tenant's changes bound for one partition, in sequence
    order (a record's changes always go to the partition of ``tenant:internal_id``)."""

    model_config = ConfigDict(frozen=True)

    schema_version: Literal[2] = 2
    tenant: str
    changes: list[ChangeEvent]


def batch_json(tenant: str, events: list[bytes]) -> bytes:
    """A ``ChangeBatch`` of events already in JSON (``event_json``), without parsing them."""
    head = orjson.dumps({"schema_version": 2, "tenant": tenant})[:-1]
    return head + b',"changes":[' + b",".join(events) + b"]}"


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def event_of(row: Any) -> RecordChanged | MembershipChanged:
    """The event of one numbered ``change_log`` row (selected with :data:`COLUMNS`)."""
    record: dict[str, Any] = _json(row["record"]) or {}
    common: dict[str, Any] = {
        "tenant": row["tenant_id"], "sequence": row["seq"], "run_id": row["run_id"],
        "effective_at": row["effective_at"], "internal_id": row["internal_id"],
        "sourced_id": row["sourced_id"], "operation": row["operation"],
    }  # fmt: skip
    kind = MEMBERSHIP_OF.get(row["entity"])
    membership = None if kind is None else Membership.model_validate({"kind": kind, **record})
    if row["entity"] in MEMBERSHIP_OF and row["entity"] != "enrollments":
        return MembershipChanged(entity=row["entity"], membership=membership, **common)
    return RecordChanged(
        entity=row["entity"],
        fields=_json(row["fields"]),
        record=record,
        membership=membership,
        **common,
    )


def to_json(event: RecordChanged | MembershipChanged) -> bytes:
    return event.model_dump_json().encode()


_MEMBERSHIP_KEYS = tuple(k for k in Membership.model_fields if k != "kind")


def _raw(value: Any) -> Any:
    """A jsonb column as asyncpg returns it (JSON text): embedded as it is, never parsed."""
    if value is None:
        return None
    return orjson.Fragment(value) if isinstance(value, str | bytes) else value


def event_json(row: Any) -> bytes:
    """``to_json(event_of(row))`` without building the models (the relay's hot path: ≈ 55 µs of
    Python per event through pydantic). The record and its fields are embedded as the database
    wrote them; only a membership's record is parsed, for its ids. The same event by value:
    tests/unit/libs/test_change_event_json.py holds the two to it."""
    entity = row["entity"]
    common: dict[str, Any] = {
        "schema_version": 1, "tenant": row["tenant_id"], "sequence": row["seq"],
        "run_id": row["run_id"], "effective_at": row["effective_at"],
        "internal_id": row["internal_id"], "sourced_id": row["sourced_id"],
        "operation": row["operation"],
    }  # fmt: skip
    kind = MEMBERSHIP_OF.get(entity)
    membership = None
    if kind is not None:
        record = _json(row["record"]) or {}
        membership = {"kind": kind, **{k: record.get(k) for k in _MEMBERSHIP_KEYS}}
    if kind is not None and entity != "enrollments":
        event = {**common, "kind": "membership", "entity": entity, "membership": membership}
    else:
        event = {**common, "kind": "record", "entity": entity, "fields": _raw(row["fields"]),
                 "record": _raw(row["record"]) or {}, "membership": membership}  # fmt: skip
    return orjson.dumps(event, default=str, option=orjson.OPT_UTC_Z)  # asyncpg's UUIDs: str


def json_schema() -> dict[str, Any]:
    """The events' JSON Schema, as checked in at docs/change-event.schema.json (a test fails when
    it drifts): ``python -m rostersync_libs.change_events > docs/change-event.schema.json``."""
    schema: dict[str, Any] = CHANGE_EVENT.json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "rostersync change event (in the batches of rostersync.changes.v2)", **schema}  # fmt: skip


if __name__ == "__main__":
    import json
    import sys

    sys.stdout.write(json.dumps(json_schema(), indent=2, sort_keys=True) + "\n")
