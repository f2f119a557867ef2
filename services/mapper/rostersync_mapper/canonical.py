"""The canonical model: one role vocabulary (OneRoster 1.2) and one grade vocabulary (CEDS).

The tables are documented in ``docs/identity.md``; change them there too.
"""

from __future__ import annotations

import re
from typing import Any

from rostersync_libs.events import EntityType

# OneRoster 1.1 users.role and 1.2 roles.role → the 1.2 vocabulary (keys lower-cased).
# 1.1 ``administrator`` could be a district or a site administrator: only the type of the user's
# first org tells, and the mapper is stateless per record, so it maps to ``siteAdministrator``.
CANONICAL_ROLES = {
    # 1.1 users.role
    "administrator": "siteAdministrator",
    "aide": "aide",
    "guardian": "guardian",
    "parent": "parent",
    "proctor": "proctor",
    "relative": "relative",
    "student": "student",
    "teacher": "teacher",
    # 1.2 roles.role, as they are
    "counselor": "counselor",
    "districtadministrator": "districtAdministrator",
    "principal": "principal",
    "siteadministrator": "siteAdministrator",
    "systemadministrator": "systemAdministrator",
}


def canonical_role(role: str) -> str:
    """The 1.2 role of a 1.1 or 1.2 role; ``ext:…`` and unknown values are kept as they are."""
    value = role.strip()
    if value.startswith("ext:"):
        return value
    return CANONICAL_ROLES.get(value.lower(), value)


# CEDS Entry Grade Level codes, and the variants SIS exports send (keys lower-cased).
_GRADE_ALIASES = {
    "k": "KG",
    "kg": "KG",
    "0": "KG",
    "00": "KG",
    "pk": "PK",
    "prek": "PK",
    "pre-k": "PK",
    "-1": "PK",
    "tk": "TK",
    "it": "IT",
    "pr": "PR",
    "ps": "PS",
    "ug": "UG",
    "other": "Other",
}
_NUMBER = re.compile(r"^0?(\d{1,2})$")


def canonical_grade(grade: str) -> str:
    """One grade as a CEDS code: ``K`` → ``KG``, ``9`` → ``09``, ``prek`` → ``PK``; anything
    unknown is kept unchanged."""
    value = grade.strip()
    alias = _GRADE_ALIASES.get(value.lower())
    if alias is not None:
        return alias
    number = _NUMBER.match(value)
    if number is not None and 1 <= int(number.group(1)) <= 13:
        return f"{int(number.group(1)):02d}"
    return grade


def canonical_grades(grades: list[str]) -> list[str]:
    return [canonical_grade(g) for g in grades]


GRADED_ENTITIES = frozenset({EntityType.USER, EntityType.COURSE, EntityType.CLASS})
ROLE_ENTITIES = frozenset({EntityType.USER, EntityType.ROLE})


def add_canonical_fields(entity: EntityType, payload: dict[str, Any]) -> None:
    """``canonicalRole`` (1.1 users, 1.2 roles) and CEDS ``grades``, with the list as sent kept
    in ``gradesAsSent`` when anything changed. Changes ``payload`` in place."""
    role = payload.get("role")
    if entity in ROLE_ENTITIES and isinstance(role, str):
        payload["canonicalRole"] = canonical_role(role)
    grades = payload.get("grades")
    if entity in GRADED_ENTITIES and isinstance(grades, list):
        sent = [str(g) for g in grades]
        normalised = canonical_grades(sent)
        if normalised != sent:
            payload["grades"] = normalised
            payload["gradesAsSent"] = sent
