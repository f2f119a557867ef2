"""The selection rules: what a selection of schools and school years keeps, skips and trims."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from rostersync_fetcher.selection import SelectionRules
from rostersync_libs.events import EntityType as E
from rostersync_libs.tenants import SourceSelection

ORGS = [
    {"sourcedId": "dist", "type": "district"},
    {"sourcedId": "sch-1", "type": "school", "identifier": "NCES:1", "parentSourcedId": "dist"},
    {"sourcedId": "sch-2", "type": "school", "identifier": "NCES:2", "parentSourcedId": "dist"},
    {"sourcedId": "sch-3", "type": "school", "parentSourcedId": "dist"},
    {"sourcedId": "dep-1", "type": "department", "parentSourcedId": "sch-1"},
]
SESSIONS = [
    {"sourcedId": "y25", "type": "schoolYear", "title": "2024-25", "schoolYear": "2025"},
    {"sourcedId": "y26", "type": "schoolYear", "title": "2025-26", "schoolYear": "2026"},
    {"sourcedId": "t26", "type": "term", "parentSourcedId": "y26", "schoolYear": "2026"},
    {"sourcedId": "g26", "type": "gradingPeriod", "parentSourcedId": "t26", "schoolYear": "2026"},
    {"sourcedId": "t26b", "type": "term", "schoolYear": "2026"},  # no parent: same schoolYear
    {"sourcedId": "t25", "type": "term", "parentSourcedId": "y25", "schoolYear": "2025"},
]
CLASSES = [
    {"sourcedId": "c1", "schoolSourcedId": "sch-1", "courseSourcedId": "k1",
     "termSourcedIds": ["t26", "t25"]},
    {"sourcedId": "c1old", "schoolSourcedId": "sch-1", "courseSourcedId": "k1",
     "termSourcedIds": ["t25"]},
    {"sourcedId": "c2", "schoolSourcedId": "sch-2", "courseSourcedId": "k2",
     "termSourcedIds": ["t26b"]},
    {"sourcedId": "c3", "schoolSourcedId": "sch-3", "courseSourcedId": "k3",
     "termSourcedIds": ["t26"]},
]  # fmt: skip
COURSES = [
    {"sourcedId": "k1", "orgSourcedId": "dist", "schoolYearSourcedId": "y25"},
    {"sourcedId": "k2", "orgSourcedId": "sch-3"},  # shared: owned by an unselected school
    {"sourcedId": "k3", "orgSourcedId": "sch-3"},
    {"sourcedId": "k4", "orgSourcedId": "sch-1", "schoolYearSourcedId": "y26"},
    {"sourcedId": "k5", "orgSourcedId": "sch-1", "schoolYearSourcedId": "y25"},
]
ENROLLMENTS = [
    {"sourcedId": "e1", "classSourcedId": "c1", "schoolSourcedId": "sch-1", "userSourcedId": "s3"},
    {"sourcedId": "e2", "classSourcedId": "c3", "schoolSourcedId": "sch-3", "userSourcedId": "s4"},
    {"sourcedId": "e3", "classSourcedId": "c2", "schoolSourcedId": "sch-2", "userSourcedId": "s5"},
]
USERS = [
    {"sourcedId": "s1", "orgSourcedIds": ["sch-1", "sch-3"], "agentSourcedIds": ["p1"]},
    {"sourcedId": "p1", "orgSourcedIds": ["sch-3"]},  # guardian at an unselected school only
    {"sourcedId": "p2", "orgSourcedIds": ["dist"], "agentSourcedIds": ["s1", "s4"]},
    {"sourcedId": "s3", "orgSourcedIds": ["dist"]},  # enrolled in a kept class
    {"sourcedId": "s4", "orgSourcedIds": ["sch-3"]},
    {"sourcedId": "s5", "orgSourcedIds": ["sch-3"]},  # enrolled, but no kept org at all
    {"sourcedId": "a1", "orgSourcedIds": ["dist"]},  # a district administrator
]


def rules(schools: tuple[str, ...] = (), years: tuple[str, ...] = ()) -> SelectionRules:
    selection = SelectionRules(SourceSelection(schools=schools, school_years=years))
    for entity, records in (
        (E.ORG, ORGS), (E.ACADEMIC_SESSION, SESSIONS), (E.CLASS, CLASSES), (E.COURSE, COURSES),
        (E.ENROLLMENT, ENROLLMENTS), (E.USER, USERS),
    ):  # fmt: skip
        for record in records:
            selection.feed(entity, record)
    selection.settle()
    return selection


def kept(selection: SelectionRules, entity: E, records: list[dict[str, Any]]) -> set[str]:
    return {r["sourcedId"] for r in records if selection.decide(entity, r)[0] is not None}


def test_schools_by_sourced_id_or_identifier_keep_their_orgs_and_the_district() -> None:
    selection = rules(schools=("sch-1", "NCES:2"))
    assert kept(selection, E.ORG, ORGS) == {"dist", "sch-1", "sch-2", "dep-1", "sch-3"}
    # sch-3 stays only because a kept class's course names it (an org record, none of its people)
    narrower = rules(schools=("sch-1",))
    assert kept(narrower, E.ORG, ORGS) == {"dist", "sch-1", "dep-1"}


def test_classes_courses_enrollments_follow_the_schools() -> None:
    selection = rules(schools=("sch-1",))
    assert kept(selection, E.CLASS, CLASSES) == {"c1", "c1old"}
    assert kept(selection, E.COURSE, COURSES) == {"k1", "k4", "k5"}
    assert kept(selection, E.ENROLLMENT, ENROLLMENTS) == {"e1"}


def test_users_attached_enrolled_and_their_guardians() -> None:
    selection = rules(schools=("sch-1",))
    # s1 attached, s3 enrolled, p2 names s1 as agent; p1 (s1's agent) has no kept org at all.
    assert kept(selection, E.USER, USERS) == {"s1", "s3", "p2"}
    s1, trimmed = selection.decide(E.USER, USERS[0])
    assert s1 is not None
    assert s1["orgSourcedIds"] == ["sch-1"]
    assert "agentSourcedIds" not in s1
    assert trimmed == 2
    p2, trimmed = selection.decide(E.USER, USERS[2])
    assert p2 is not None
    assert (p2["agentSourcedIds"], trimmed) == (["s1"], 1)
    assert selection.decide(E.DEMOGRAPHIC, {"sourcedId": "s3"})[0] is not None
    assert selection.decide(E.DEMOGRAPHIC, {"sourcedId": "s4"})[0] is None


def test_school_years_keep_their_terms_and_classes() -> None:
    selection = rules(years=("2026",))
    assert kept(selection, E.ACADEMIC_SESSION, SESSIONS) == {"y26", "t26", "g26", "t26b"}
    assert kept(selection, E.CLASS, CLASSES) == {"c1", "c2", "c3"}
    c1, trimmed = selection.decide(E.CLASS, CLASSES[0])
    assert c1 is not None
    assert (c1["termSourcedIds"], trimmed) == (["t26"], 1)
    # k1 is kept for its class, its school year (2025) is trimmed; k5 is of 2025 only
    k1, trimmed = selection.decide(E.COURSE, COURSES[0])
    assert k1 is not None
    assert ("schoolYearSourcedId" in k1, trimmed) == (False, 1)
    assert kept(selection, E.COURSE, COURSES) == {"k1", "k2", "k3", "k4"}
    # a named term is that term (and what is below it), not its whole year
    assert kept(rules(years=("t26",)), E.ACADEMIC_SESSION, SESSIONS) == {"y26", "t26", "g26"}
    by_title = rules(years=("2025-26",))
    assert kept(by_title, E.ACADEMIC_SESSION, SESSIONS) == {"y26", "t26", "g26", "t26b"}


def test_schools_and_years_together() -> None:
    selection = rules(schools=("sch-1",), years=("y26",))
    assert kept(selection, E.CLASS, CLASSES) == {"c1"}
    assert kept(selection, E.COURSE, COURSES) == {"k1", "k4"}


def test_records_the_run_did_not_read_are_left_to_the_validator() -> None:
    selection = rules(schools=("sch-1",))
    unknown_org = {"sourcedId": "s9", "orgSourcedIds": ["sch-1", "elsewhere"]}
    assert selection.decide(E.USER, unknown_org) == (unknown_org, 0)
    # an enrollment of a class the run did not read: kept only if the tenant holds the class
    enrollment = {"sourcedId": "e9", "classSourcedId": "c9", "userSourcedId": "s1",
                  "schoolSourcedId": "sch-1"}  # fmt: skip
    assert selection.decide(E.ENROLLMENT, enrollment)[0] is None
    selection.sets.held[E.CLASS] = {"c9"}
    assert selection.decide(E.ENROLLMENT, enrollment)[0] is not None


def test_a_role_needs_its_user_and_org() -> None:
    selection = SelectionRules(SourceSelection(schools=("sch-1",)))
    for org in ORGS:
        selection.feed(E.ORG, org)
    selection.feed(E.ROLE, {"sourcedId": "r1", "userSourcedId": "u1", "orgSourcedId": "sch-1"})
    selection.feed(E.USER, {"sourcedId": "u1"})
    selection.feed(E.USER, {"sourcedId": "u2", "primaryOrgSourcedId": "sch-3"})
    selection.settle()
    assert selection.decide(E.USER, {"sourcedId": "u1"})[0] is not None
    assert selection.decide(E.USER, {"sourcedId": "u2"})[0] is None
    role = {"sourcedId": "r2", "userSourcedId": "u1", "orgSourcedId": "sch-3"}
    assert selection.decide(E.ROLE, role)[0] is None


def test_a_selection_naming_nothing_in_a_complete_snapshot_stops_the_run() -> None:
    typo = rules(schools=("sch-9", "NCES:9"))
    assert typo.problem(set()) is None  # a delta need not hold the schools
    assert typo.problem({E.ORG}) == (
        "the source's selection names no orgs record it has: schools = [NCES:9, sch-9];"
        " nothing was published"
    )
    partly = rules(schools=("sch-1", "sch-9"), years=("2026", "1999"))
    assert partly.problem({E.ORG, E.ACADEMIC_SESSION}) is None
    assert partly.unmatched() == ["1999", "sch-9"]
    assert rules(years=("1999",)).problem({E.ACADEMIC_SESSION}) is not None


def test_in_a_delta_the_users_the_tenant_holds_stay_selected() -> None:
    selection = SelectionRules(SourceSelection(schools=("NCES:1",)))  # orgs.csv not in the delta
    selection.feed(E.USER, {"sourcedId": "s1", "orgSourcedIds": ["sch-1"]})
    selection.feed(E.USER, {"sourcedId": "s2", "orgSourcedIds": ["sch-1"]})
    selection.sets.held = {E.USER: {"s1"}}
    selection.settle()
    assert selection.decide(E.USER, {"sourcedId": "s1", "orgSourcedIds": ["sch-1"]})[0] is not None
    assert selection.decide(E.USER, {"sourcedId": "s2", "orgSourcedIds": ["sch-1"]})[0] is None


def test_feeding_out_of_order_is_refused() -> None:
    selection = SelectionRules(SourceSelection(schools=("x",)))
    selection.feed(E.USER, {"sourcedId": "u"})
    with pytest.raises(ValueError, match="out of order"):
        selection.feed(E.ORG, {"sourcedId": "o"})


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "needs schools, school_years or both"),
        ({"schools": ["a", " "]}, "must not be blank"),
        ({"school_years": ["2026", "2026"]}, "listed more than once: 2026"),
        ({"schools": ["a"], "colleges": ["b"]}, "Extra inputs"),
    ],
)
def test_settings_are_validated(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SourceSelection.model_validate(fields)
