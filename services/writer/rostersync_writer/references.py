"""What every roster row points at, said once.

- ``required_references``: the references a record cannot land without (OneRoster's required
  reference columns, and demographics → their user). The writer applies a record only when every
  one of them points at an active row that its run did not reject (integrity.py).
- ``POINTERS`` and ``LINKS``: the pointer columns and link rows of the tables, for archive
  cascades (cascade.py) and the integrity check that a run's completion ends with.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any, NamedTuple
from uuid import UUID

from rostersync_libs.events import EntityType, RecordEvent
from rostersync_libs.oneroster.columns import resolved_key, spec_for

from rostersync_writer.convert import uuid as typed_uuid
from rostersync_writer.tables import TABLES

E = EntityType

# Targets before what points at them: within a batch, and when a run's parked records are
# settled, an entity is applied after everything it refers to.
APPLY_ORDER: tuple[EntityType, ...] = (
    E.ORG,
    E.ACADEMIC_SESSION,
    E.COURSE,
    E.CLASS,
    E.USER,
    E.USER_PROFILE,
    E.ROLE,
    E.ENROLLMENT,
    E.DEMOGRAPHIC,
)

TABLE_OF: dict[EntityType, str] = {entity: table.name for entity, table in TABLES.items()}

NOUN: dict[EntityType, str] = {
    E.ORG: "org",
    E.ACADEMIC_SESSION: "academic session",
    E.COURSE: "course",
    E.CLASS: "class",
    E.USER: "user",
    E.ENROLLMENT: "enrollment",
    E.DEMOGRAPHIC: "demographics record",
    E.ROLE: "role",
    E.USER_PROFILE: "user profile",
}


def _pairs(sourced: Any, resolved: Any) -> list[tuple[str, str]]:
    if isinstance(sourced, list) and isinstance(resolved, list):
        return [(str(s), str(r)) for s, r in zip(sourced, resolved, strict=False)]
    if sourced is None or resolved is None or isinstance(sourced, list):
        return []
    return [(str(sourced), str(resolved))]


class Reference(NamedTuple):
    """One required reference of one record (a tuple: made for every reference of every record)."""

    column: str  # as the source names it (findings point at it)
    target: EntityType
    sourced_id: str
    internal_id: UUID
    in_run: bool  # the target is in the record's run: its verdict there decides


@cache
def _required_columns(version: str, entity: EntityType) -> tuple[tuple[str, str, EntityType], ...]:
    """(column, where the mapper put its internal ids, target) of the required references."""
    return tuple(
        (column.name, resolved_key(column.name), column.target)
        for column in spec_for(version, entity).references
        if column.required and column.target is not None
    )


def _id(value: str) -> UUID:
    """The mapper's internal id (asyncpg's UUID: parsed in C); one it cannot read raises."""
    found = typed_uuid(value)
    return found if found is not None else UUID(value)


def required_references(event: RecordEvent) -> list[Reference]:
    """The references this record cannot land without, with the internal ids the mapper gave.

    A reference the fetcher found outside the run (``facts.unresolved``: not in the bundle, or not
    yet read from the API) is judged by the table alone; any other target is in the run.
    """
    payload = event.payload
    unresolved = event.facts.unresolved if event.facts is not None else {}
    found: list[Reference] = []
    for name, resolved_name, target in _required_columns(
        event.oneroster_version or "1.1", event.entity
    ):
        sourced, resolved = payload.get(name), payload.get(resolved_name)
        if sourced is None or resolved is None:
            continue
        outside = unresolved.get(name, ())
        if isinstance(sourced, str) and isinstance(resolved, str):  # most references: one id
            found.append(Reference(name, target, sourced, _id(resolved), sourced not in outside))
            continue
        for sourced_id, internal_id in _pairs(sourced, resolved):
            found.append(
                Reference(name, target, sourced_id, _id(internal_id), sourced_id not in outside)
            )
    if event.entity is E.DEMOGRAPHIC and event.sourced_id and payload.get("userInternalId"):
        # demographics.sourcedId is its user's sourcedId.
        outside = unresolved.get("sourcedId", ())
        found.append(
            Reference(
                "sourcedId",
                E.USER,
                event.sourced_id,
                _id(str(payload["userInternalId"])),
                event.sourced_id not in outside,
            )
        )
    return found


@dataclass(frozen=True)
class Pointer:
    """A typed column of a roster table holding another row's internal id."""

    entity: EntityType  # the table's
    column: str
    target: EntityType
    required: bool  # an active row cannot keep it pointing at an archived row: archived too

    @property
    def table(self) -> str:
        return TABLE_OF[self.entity]


POINTERS: tuple[Pointer, ...] = (
    Pointer(E.ORG, "parent_internal_id", E.ORG, False),
    Pointer(E.ACADEMIC_SESSION, "parent_internal_id", E.ACADEMIC_SESSION, False),
    Pointer(E.COURSE, "org_internal_id", E.ORG, True),
    Pointer(E.COURSE, "school_year_internal_id", E.ACADEMIC_SESSION, False),
    Pointer(E.CLASS, "course_internal_id", E.COURSE, True),
    Pointer(E.CLASS, "school_internal_id", E.ORG, True),
    Pointer(E.USER, "primary_org_internal_id", E.ORG, False),
    Pointer(E.ENROLLMENT, "class_internal_id", E.CLASS, True),
    Pointer(E.ENROLLMENT, "school_internal_id", E.ORG, True),
    Pointer(E.ENROLLMENT, "user_internal_id", E.USER, True),
    Pointer(E.DEMOGRAPHIC, "user_internal_id", E.USER, True),
    Pointer(E.USER_PROFILE, "user_internal_id", E.USER, True),
    Pointer(E.ROLE, "user_internal_id", E.USER, True),
    Pointer(E.ROLE, "org_internal_id", E.ORG, True),
    Pointer(E.ROLE, "user_profile_internal_id", E.USER_PROFILE, False),
)


@dataclass(frozen=True)
class LinkPointer:
    """A link table's row: it belongs to its owner and points at its target."""

    table: str
    owner: EntityType
    owner_column: str
    target: EntityType
    target_column: str
    entity: str  # what the change feed calls its rows' changes (migration 0017)


LINKS: tuple[LinkPointer, ...] = (
    LinkPointer(
        "class_terms",
        E.CLASS,
        "class_internal_id",
        E.ACADEMIC_SESSION,
        "term_internal_id",
        "classTerms",
    ),
    LinkPointer("user_orgs", E.USER, "user_internal_id", E.ORG, "org_internal_id", "userOrgs"),
    LinkPointer(
        "guardian_links", E.USER, "user_internal_id", E.USER, "agent_internal_id", "guardianLinks"
    ),
)
