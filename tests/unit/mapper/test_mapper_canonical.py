"""The canonical model the mapper adds: 1.2 roles and CEDS grades."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest
from rostersync_libs.events import EntityType, record_event
from rostersync_mapper.canonical import canonical_grade, canonical_role
from rostersync_mapper.mapping import map_event


@pytest.mark.parametrize(
    ("sent", "ceds"),
    [
        ("K", "KG"), ("k", "KG"), ("0", "KG"), ("00", "KG"), ("KG", "KG"), ("kg", "KG"),
        ("1", "01"), ("9", "09"), ("09", "09"), ("10", "10"), ("12", "12"), ("13", "13"),
        ("PK", "PK"), ("pk", "PK"), ("prek", "PK"), ("Pre-K", "PK"), ("PreK", "PK"), ("-1", "PK"),
        ("TK", "TK"), ("tk", "TK"), ("it", "IT"), ("PR", "PR"), ("ps", "PS"), ("ug", "UG"),
        ("Other", "Other"), ("other", "Other"), ("OTHER", "Other"),
        ("14", "14"), ("-2", "-2"), ("Grade 3", "Grade 3"), ("", ""),
    ],
)  # fmt: skip
def test_grades_become_ceds_codes(sent: str, ceds: str) -> None:
    assert canonical_grade(sent) == ceds


@pytest.mark.parametrize(
    ("role", "canonical"),
    [
        ("administrator", "siteAdministrator"),  # 1.1: the org type is not known here
        ("teacher", "teacher"), ("student", "student"), ("aide", "aide"),
        ("guardian", "guardian"), ("parent", "parent"), ("proctor", "proctor"),
        ("relative", "relative"), ("counselor", "counselor"), ("principal", "principal"),
        ("districtAdministrator", "districtAdministrator"),
        ("siteAdministrator", "siteAdministrator"),
        ("systemAdministrator", "systemAdministrator"),
        ("Teacher", "teacher"), ("ext:coach", "ext:coach"), ("janitor", "janitor"),
    ],
)  # fmt: skip
def test_roles_of_both_versions_map_to_the_1_2_vocabulary(role: str, canonical: str) -> None:
    assert canonical_role(role) == canonical


def _mapped(entity: EntityType, payload: dict[str, Any], version: str = "1.1") -> dict[str, Any]:
    event = record_event(
        tenant="t", source="csv", run_id=uuid4(), entity=entity, sourced_id="x1",
        payload={"sourcedId": "x1", **payload}, oneroster_version=version,
    )  # fmt: skip
    forward = map_event(event).forward
    assert forward is not None
    return forward.payload


def test_users_courses_and_classes_get_ceds_grades_and_keep_what_was_sent() -> None:
    for entity in (EntityType.USER, EntityType.COURSE, EntityType.CLASS):
        payload = _mapped(entity, {"grades": ["K", "1", "pk"]})
        assert payload["grades"] == ["KG", "01", "PK"]
        assert payload["gradesAsSent"] == ["K", "1", "pk"]
    unchanged = _mapped(EntityType.COURSE, {"grades": ["09", "10"]})
    assert unchanged["grades"] == ["09", "10"]
    assert "gradesAsSent" not in unchanged


def test_canonical_role_on_1_1_users_and_1_2_roles_only() -> None:
    assert (
        _mapped(EntityType.USER, {"role": "administrator"})["canonicalRole"] == "siteAdministrator"
    )
    role = _mapped(
        EntityType.ROLE,
        {"role": "districtAdministrator", "userSourcedId": "u1", "orgSourcedId": "o1"},
        "1.2",
    )
    assert role["canonicalRole"] == "districtAdministrator"
    assert "canonicalRole" not in _mapped(EntityType.USER, {"username": "x"}, "1.2")
    enrollment = _mapped(EntityType.ENROLLMENT, {"role": "administrator"})
    assert "canonicalRole" not in enrollment
