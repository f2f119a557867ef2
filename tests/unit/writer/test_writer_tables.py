"""The writer's pure row building: typed columns from mapped payloads, NULL for what does not convert."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID, uuid4

import msgspec
import orjson
import pytest
from rostersync_libs.events import EntityType, Operation, RecordEvent, record_event
from rostersync_libs.findings import Finding, FindingsEvent, Severity
from rostersync_libs.ids import internal_id
from rostersync_libs.oneroster.columns import FILES_1_1, FILES_1_2, USERS_1_2_0
from rostersync_libs.runs import RunEvent, RunPhase
from rostersync_libs.store.tables import ENTITY_TABLES
from rostersync_mapper.mapping import map_event
from rostersync_writer import convert
from rostersync_writer.findings import finding_id, finding_rows
from rostersync_writer.memberships import LINKS, class_term_rows, guardian_rows, user_org_rows
from rostersync_writer.run_events import run_event_row
from rostersync_writer.tables import COMMON_COLUMNS, TABLES

TENANT = "district-u"
RUN = UUID("00000000-0000-4000-8000-000000000001")


def mapped(
    entity: EntityType, sourced_id: str, payload: dict[str, Any], version: str = "1.1"
) -> RecordEvent:
    event = record_event(
        tenant=TENANT,
        source="csv",
        run_id=RUN,
        entity=entity,
        sourced_id=sourced_id,
        payload={"sourcedId": sourced_id, **payload},
        oneroster_version=version,
    )
    forward = map_event(event).forward
    assert forward is not None
    return forward


def ref(entity: EntityType, sourced_id: str) -> UUID:
    return internal_id(TENANT, entity, sourced_id)


def by_column(event: RecordEvent) -> dict[str, Any]:
    table = TABLES[event.entity]
    return dict(zip(table.columns, table.typed_row(event.payload), strict=True))


# --- conversions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("2024-08-15", date(2024, 8, 15)), (" 2024-08-15 ", date(2024, 8, 15)),
     ("2023-02-30", None), ("1/05/2023", None), ("20240815", None), ("2024-W01-1", None),
     ("", None), (None, None), (20240815, None)],
)  # fmt: skip
def test_dates_are_yyyy_mm_dd_or_null(raw: Any, expected: date | None) -> None:
    assert convert.day(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("true", True), ("false", False), ("TRUE", True), ("False", False), ("yes", None),
     ("1", None), ("", None), (None, None), (True, True)],
)  # fmt: skip
def test_booleans_are_true_false_or_null(raw: Any, expected: bool | None) -> None:
    assert convert.boolean(raw) is expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("2024", 2024), ("24", None), ("2024-25", None), ("99999999999", None), (None, None)],
)
def test_school_years_are_four_digits_or_null(raw: Any, expected: int | None) -> None:
    assert convert.year(raw) == expected


def test_uuids_lists_and_text() -> None:
    some = uuid4()
    assert convert.uuid(str(some)) == some
    assert convert.uuid("not-a-uuid") is None
    assert convert.uuid(None) is None
    assert convert.uuid_list([str(some), "x", str(some)]) == [some]
    assert convert.uuid_list(None) == []
    assert convert.text_list(["09", " 10", ""]) == ["09", "10"]
    assert convert.text_list("09,10") == ["09", "10"]
    assert convert.text_list(None) == []
    assert convert.text("a\x00b") == "ab"
    assert convert.text("") is None


def test_payload_json_drops_nul_characters_jsonb_cannot_hold() -> None:
    assert orjson.loads(convert.payload_json({"a": "x\x00y", "l": ["\x00"]})) == {
        "a": "xy",
        "l": [""],
    }
    assert convert.payload_json({"a": "é"}) == '{"a":"é"}'


# --- tables ----------------------------------------------------------------------------------


def test_every_entity_of_both_versions_has_a_table() -> None:
    entities = {spec.entity for spec in (*FILES_1_1, *FILES_1_2)}
    assert entities == set(TABLES) == set(EntityType)


def test_table_names_are_the_ones_other_services_look_up() -> None:
    assert {e.value: t.name for e, t in TABLES.items()} == ENTITY_TABLES


def test_columns_are_unique_and_common_columns_come_last() -> None:
    for table in TABLES.values():
        assert len(set(table.all_columns)) == len(table.all_columns)
        assert table.all_columns[-len(COMMON_COLUMNS) :] == COMMON_COLUMNS


def test_academic_session_types_dates_and_year() -> None:
    event = mapped(
        EntityType.ACADEMIC_SESSION,
        "t1",
        {"title": "Fall", "type": "term", "startDate": "2024-08-15", "endDate": "2024-12-20",
         "parentSourcedId": "y1", "schoolYear": "2025"},
    )  # fmt: skip
    table = TABLES[EntityType.ACADEMIC_SESSION]
    assert table.typed_row(event.payload) == (
        "Fall",
        "term",
        date(2024, 8, 15),
        date(2024, 12, 20),
        ref(EntityType.ACADEMIC_SESSION, "y1"),
        2025,
    )


def test_unparsable_values_become_null_and_the_payload_keeps_them() -> None:
    event = mapped(
        EntityType.ACADEMIC_SESSION,
        "t1",
        {"title": "Fall", "type": "term", "startDate": "15/08/2024", "endDate": "2024-13-01",
         "schoolYear": "2024-25"},
    )  # fmt: skip
    row = TABLES[EntityType.ACADEMIC_SESSION].full_row(event)
    assert row[4:10] == ("Fall", "term", None, None, None, None)
    assert orjson.loads(row[-1])["startDate"] == "15/08/2024"
    enrollment = mapped(EntityType.ENROLLMENT, "e1", {"primary": "maybe", "beginDate": "soon"})
    assert TABLES[EntityType.ENROLLMENT].typed_row(enrollment.payload)[4:6] == (None, None)


def test_full_row_matches_all_columns() -> None:
    event = mapped(EntityType.ORG, "s1", {"name": "S", "type": "school", "parentSourcedId": "d1"})
    event = msgspec.structs.replace(event, date_last_modified=datetime(2025, 1, 1, tzinfo=UTC))
    table = TABLES[EntityType.ORG]
    row = dict(zip(table.all_columns, table.full_row(event), strict=True))
    assert row["internal_id"] == ref(EntityType.ORG, "s1")
    assert row["parent_internal_id"] == ref(EntityType.ORG, "d1")
    assert row["source_date_last_modified"] == datetime(2025, 1, 1, tzinfo=UTC)
    assert row["first_seen_run"] == row["last_seen_run"] == RUN
    assert orjson.loads(row["payload"])["parentInternalId"] == str(ref(EntityType.ORG, "d1"))


def test_courses_classes_enrollments() -> None:
    course = mapped(
        EntityType.COURSE,
        "c1",
        {"title": "Algebra", "courseCode": "ALG", "grades": ["09", "10"], "orgSourcedId": "s1",
         "schoolYearSourcedId": "y1", "subjects": ["Math"]},
    )  # fmt: skip
    assert TABLES[EntityType.COURSE].typed_row(course.payload) == (
        "Algebra", "ALG", ["09", "10"], ref(EntityType.ORG, "s1"),
        ref(EntityType.ACADEMIC_SESSION, "y1"), ["Math"],
    )  # fmt: skip
    cls = mapped(
        EntityType.CLASS,
        "k1",
        {"title": "Algebra 1", "classType": "scheduled", "courseSourcedId": "c1",
         "schoolSourcedId": "s1", "termSourcedIds": ["t1", "t2"], "periods": ["1", "2"]},
    )  # fmt: skip
    assert TABLES[EntityType.CLASS].typed_row(cls.payload) == (
        "Algebra 1", None, "scheduled", None, ref(EntityType.COURSE, "c1"),
        ref(EntityType.ORG, "s1"), [], [], ["1", "2"],
    )  # fmt: skip
    assert class_term_rows(cls) == [
        (ref(EntityType.ACADEMIC_SESSION, "t1"),),
        (ref(EntityType.ACADEMIC_SESSION, "t2"),),
    ]
    enrollment = mapped(
        EntityType.ENROLLMENT,
        "e1",
        {"classSourcedId": "k1", "schoolSourcedId": "s1", "userSourcedId": "u1",
         "role": "teacher", "primary": "true", "beginDate": "2024-08-15"},
    )  # fmt: skip
    assert TABLES[EntityType.ENROLLMENT].typed_row(enrollment.payload) == (
        ref(EntityType.CLASS, "k1"), ref(EntityType.ORG, "s1"), ref(EntityType.USER, "u1"),
        "teacher", True, date(2024, 8, 15), None,
    )  # fmt: skip


def test_users_1_1_and_1_2() -> None:
    old = mapped(
        EntityType.USER,
        "u1",
        {"enabledUser": "true", "orgSourcedIds": ["s1", "d1"], "role": "parent",
         "username": "pat", "givenName": "Pat", "familyName": "P", "agentSourcedIds": ["st1"]},
    )  # fmt: skip
    row = by_column(old)
    assert (row["enabled"], row["role"], row["grades"], row["primary_org_internal_id"]) == (
        True, "parent", [], None,
    )  # fmt: skip
    assert user_org_rows(old) == [
        (ref(EntityType.ORG, "s1"), "parent"),
        (ref(EntityType.ORG, "d1"), "parent"),
    ]
    assert guardian_rows(old) == [(ref(EntityType.USER, "st1"),)]
    new = mapped(
        EntityType.USER,
        "u2",
        {"enabledUser": "false", "username": "al", "givenName": "Alexander", "familyName": "B",
         "userMasterIdentifier": "M-2", "preferredGivenName": "Al", "preferredFamilyName": "Bee",
         "primaryOrgSourcedId": "s1", "grades": ["05"], "metadata.district.house": "red"},
        version="1.2.1",
    )  # fmt: skip
    row = by_column(new)
    assert row["role"] is None
    assert row["enabled"] is False
    assert (row["user_master_identifier"], row["preferred_given_name"]) == ("M-2", "Al")
    assert row["preferred_family_name"] == "Bee"
    assert row["primary_org_internal_id"] == ref(EntityType.ORG, "s1")
    assert user_org_rows(new) == []  # 1.2 memberships are roles.csv records
    assert "resourceSourcedIds" in USERS_1_2_0.names  # 1.2.0 layout: stays in the payload


def test_roles_profiles_demographics() -> None:
    role = mapped(
        EntityType.ROLE,
        "r1",
        {"userSourcedId": "u2", "roleType": "primary", "role": "teacher", "orgSourcedId": "s1",
         "beginDate": "2024-08-01", "userProfileSourcedId": "p1"},
        version="1.2",
    )  # fmt: skip
    assert TABLES[EntityType.ROLE].typed_row(role.payload) == (
        ref(EntityType.USER, "u2"), ref(EntityType.ORG, "s1"), "primary", "teacher",
        date(2024, 8, 1), None, ref(EntityType.USER_PROFILE, "p1"),
    )  # fmt: skip
    profile = mapped(
        EntityType.USER_PROFILE,
        "p1",
        {"userSourcedId": "u2", "profileType": "lms", "vendorId": "v", "credentialType": "login",
         "username": "al.b"},
        version="1.2",
    )  # fmt: skip
    assert TABLES[EntityType.USER_PROFILE].typed_row(profile.payload) == (
        ref(EntityType.USER, "u2"), "lms", "v", None, "login", "al.b",
    )  # fmt: skip
    demo = mapped(EntityType.DEMOGRAPHIC, "u2", {"birthDate": "2014-03-02", "sex": "female"})
    assert TABLES[EntityType.DEMOGRAPHIC].typed_row(demo.payload) == (
        ref(EntityType.USER, "u2"),
        date(2014, 3, 2),
        "female",
    )


def test_links_are_declared_for_classes_and_users_only() -> None:
    assert {e: [link.table for link in links] for e, links in LINKS.items()} == {
        EntityType.CLASS: ["class_terms"],
        EntityType.USER: ["user_orgs", "guardian_links"],
    }
    bad = msgspec.structs.replace(
        mapped(EntityType.USER, "u3", {"role": "student"}),
        payload={"role": "student", "orgInternalIds": ["nope"]},
    )
    assert user_org_rows(bad) == []


# --- findings and run events -------------------------------------------------------------------


def findings_event(*findings: Finding) -> FindingsEvent:
    return FindingsEvent(
        tenant=TENANT,
        run_id=str(RUN),
        stage="validator",
        entity="users",
        sourced_id="u1",
        rejected=True,
        findings=list(findings),
    )


def test_finding_rows_have_stable_ids_one_per_finding() -> None:
    a = Finding(code="invalid_enumeration", severity=Severity.ERROR, message="m", file="users.csv",
                row=3, column="role", value="principal")  # fmt: skip
    b = a.model_copy(update={"column": "familyName", "code": "missing_required_data",
                             "value": None})  # fmt: skip
    rows = finding_rows(findings_event(a, b))
    assert len(rows) == 2
    assert rows[0][1:] == (TENANT, RUN, "validator", "users", "u1", True,
                           "invalid_enumeration", "error", "users.csv", 3, "role", "principal",
                           "m")  # fmt: skip
    assert rows[0][0] == finding_id(findings_event(a), a)  # same finding, same id
    assert rows[0][0] != rows[1][0]
    assert rows[1][11:13] == ("familyName", None)


def test_finding_with_a_run_id_that_is_not_a_uuid_keeps_the_row() -> None:
    event = findings_event(Finding(code="x", severity=Severity.WARNING, message="m"))
    rows = finding_rows(event.model_copy(update={"run_id": "not-a-run"}))
    assert rows[0][2] is None


def test_run_event_rows() -> None:
    at = datetime(2025, 1, 1, 12, tzinfo=UTC)
    started = RunEvent(tenant=TENANT, run_id=RUN, source="csv", phase=RunPhase.STARTED, at=at)
    assert run_event_row(started) == (
        TENANT, RUN, "csv", "started", None, None, None, None, None, at, None, None, None, None, None, None,
    )  # fmt: skip
    fetched = started.model_copy(
        update={"phase": RunPhase.FETCHED, "oneroster_version": "1.2", "manifest": {"a": "b"},
                "file_counts": {"users.csv": 2}, "skipped_files": {"results.csv": "gradebook"},
                "unchanged_counts": {"users": 1}, "bulk_entities": [EntityType.USER],
                "fanout": 3, "skipped_by_selection": {"users.csv": 3}},
    )  # fmt: skip
    row = run_event_row(fetched)
    assert row[3:9] == ("fetched", "1.2", '{"a":"b"}', '{"users.csv":2}',
                        '{"results.csv":"gradebook"}', None)  # fmt: skip
    # What the fetcher declared: the only entities the run may sweep, and its partitions; then
    # what its selection skipped and trimmed.
    assert row[9:] == (None, at, '{"users":1}', '["users"]', 3, '{"users.csv":3}', None)
    # An older fetcher's event declared nothing: NULL, not "no bulk entity".
    assert run_event_row(fetched.model_copy(update={"bulk_entities": None}))[12] is None
    assert run_event_row(fetched.model_copy(update={"bulk_entities": []}))[12] == "[]"
    failed = started.model_copy(update={"phase": RunPhase.FAILED, "reason": "no such file"})
    assert run_event_row(failed)[8] == "no such file"


def test_deletes_need_no_typed_columns() -> None:
    event = msgspec.structs.replace(mapped(EntityType.CLASS, "k9", {}), operation=Operation.DELETE)
    assert TABLES[EntityType.CLASS].typed_row(event.payload)[0] is None
