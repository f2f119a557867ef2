"""OneRoster JSON objects become the same payloads as CSV rows (1.1 and 1.2)."""

from __future__ import annotations

from rostersync_fetcher.rest.shapes import role_sourced_id, shape
from rostersync_libs.events import EntityType

E = EntityType


def ref(kind: str, sid: str) -> dict[str, str]:
    return {"href": f"https://h/ims/oneroster/v1p1/{kind}s/{sid}", "sourcedId": sid, "type": kind}


USER_1_1 = {
    "sourcedId": "usr-1",
    "status": "active",
    "dateLastModified": "2024-05-01T12:00:00.000Z",
    "username": "jdoe",
    "userIds": [{"type": "LDAP", "identifier": "12"}, {"type": "Fed", "identifier": "23"}],
    "enabledUser": True,
    "givenName": "Jane",
    "familyName": "Doe",
    "middleName": "",
    "role": "student",
    "identifier": "S123",
    "email": "jdoe@example.org",
    "sms": "",
    "phone": None,
    "grades": ["09"],
    "password": "hunter2",
    "agents": [ref("user", "par-1")],
    "orgs": [ref("org", "sch-1"), ref("org", "sch-2")],
    "metadata": {"classification": "x", "empty": "", "n": 3},
}


def test_a_1_1_user_in_bulk_is_its_csv_row() -> None:
    [user] = shape(USER_1_1, E.USER, "1.1", bulk=True)
    assert user.entity is E.USER
    assert user.sourced_id == "usr-1"
    assert user.payload == {
        "sourcedId": "usr-1",
        "enabledUser": "true",
        "orgSourcedIds": ["sch-1", "sch-2"],
        "role": "student",
        "username": "jdoe",
        "userIds": ["{LDAP:12}", "{Fed:23}"],
        "givenName": "Jane",
        "familyName": "Doe",
        "identifier": "S123",
        "email": "jdoe@example.org",
        "agentSourcedIds": ["par-1"],
        "grades": ["09"],
        "metadata.classification": "x",
        "metadata.n": "3",
    }


def test_a_delta_keeps_status_and_date_and_a_deleted_user_is_a_delete() -> None:
    [user] = shape({**USER_1_1, "status": "tobedeleted"}, E.USER, "1.1", bulk=False)
    assert user.payload["status"] == "tobedeleted"
    assert user.payload["dateLastModified"] == "2024-05-01T12:00:00.000Z"
    assert user.status == "tobedeleted"
    assert "password" not in user.payload


USER_1_2 = {
    "sourcedId": "usr-1",
    "status": "active",
    "dateLastModified": "2024-05-01T12:00:00.000Z",
    "enabledUser": "true",
    "givenName": "Jane",
    "familyName": "Doe",
    "preferredFirstName": "Janie",
    "preferredLastName": "D",
    "userMasterIdentifier": "P-0001",
    "username": "jdoe",
    "pronouns": "she/her/hers",
    "roles": [
        {
            "roleType": "primary",
            "role": "student",
            "beginDate": "2024-08-15",
            "org": ref("org", "sch-1"),
        },
        {
            "roleType": "secondary",
            "role": "aide",
            "org": ref("org", "sch-2"),
            "userProfile": {"href": "x", "sourcedId": "prof-1", "type": "userProfile"},
        },
    ],
    "primaryOrg": ref("org", "sch-1"),
    "userProfiles": [
        {
            "profileId": "prof-1",
            "profileType": "lms",
            "vendorId": "v1",
            "credentials": [{"type": "login", "username": "jd", "password": "p"}],
        }
    ],
    "agents": [],
    "grades": ["09"],
    "resources": [ref("resource", "r1")],
}


def test_a_1_2_user_becomes_user_profile_and_role_records() -> None:
    user, profile, primary, aide = shape(USER_1_2, E.USER, "1.2", bulk=True)
    assert user.payload == {
        "sourcedId": "usr-1",
        "enabledUser": "true",
        "username": "jdoe",
        "givenName": "Jane",
        "familyName": "Doe",
        "grades": ["09"],
        "userMasterIdentifier": "P-0001",
        "preferredGivenName": "Janie",
        "preferredFamilyName": "D",
        "primaryOrgSourcedId": "sch-1",
        "pronouns": "she/her/hers",
    }
    assert (profile.entity, profile.sourced_id) == (E.USER_PROFILE, "prof-1")
    assert profile.payload == {
        "sourcedId": "prof-1",
        "userSourcedId": "usr-1",
        "profileType": "lms",
        "vendorId": "v1",
        "credentialType": "login",
        "username": "jd",
    }
    assert primary.entity is E.ROLE
    assert (
        primary.sourced_id == role_sourced_id("usr-1", "sch-1", "student") == "usr-1:sch-1:student"
    )
    assert primary.payload == {
        "sourcedId": "usr-1:sch-1:student",
        "userSourcedId": "usr-1",
        "roleType": "primary",
        "role": "student",
        "beginDate": "2024-08-15",
        "orgSourcedId": "sch-1",
    }
    assert aide.payload["userProfileSourcedId"] == "prof-1"


def test_1_2_roles_in_a_delta_carry_the_users_status_and_date() -> None:
    records = shape(USER_1_2, E.USER, "1.2", bulk=False)
    roles = [r for r in records if r.entity is E.ROLE]
    assert {r.payload["status"] for r in roles} == {"active"}
    assert {r.payload["dateLastModified"] for r in roles} == {"2024-05-01T12:00:00.000Z"}


def test_a_deleted_1_2_user_sends_no_roles() -> None:
    records = shape({**USER_1_2, "status": "tobedeleted"}, E.USER, "1.2", bulk=False)
    assert [r.entity for r in records] == [E.USER]


def test_a_class_flattens_its_guidrefs() -> None:
    obj = {
        "sourcedId": "k-1",
        "status": "active",
        "dateLastModified": "2024-05-01T12:00:00Z",
        "title": "Algebra",
        "classCode": "ALG-1",
        "classType": "scheduled",
        "location": "",
        "grades": ["09", "10"],
        "subjects": ["Math"],
        "subjectCodes": ["MA"],
        "periods": ["1", "2"],
        "course": ref("course", "c-1"),
        "school": ref("org", "s-1"),
        "terms": [ref("academicSession", "t1"), ref("academicSession", "t2")],
    }
    [record] = shape(obj, E.CLASS, "1.1", bulk=True)
    assert record.payload == {
        "sourcedId": "k-1",
        "title": "Algebra",
        "grades": ["09", "10"],
        "courseSourcedId": "c-1",
        "classCode": "ALG-1",
        "classType": "scheduled",
        "schoolSourcedId": "s-1",
        "termSourcedIds": ["t1", "t2"],
        "subjects": ["Math"],
        "subjectCodes": ["MA"],
        "periods": ["1", "2"],
    }


def test_an_enrollment_and_booleans() -> None:
    obj = {
        "sourcedId": "e1",
        "status": "active",
        "dateLastModified": "2024-05-01T12:00:00Z",
        "class": ref("class", "k-1"),
        "school": ref("org", "s-1"),
        "user": ref("user", "u-1"),
        "role": "teacher",
        "primary": False,
        "beginDate": "2024-08-15",
    }
    [record] = shape(obj, E.ENROLLMENT, "1.2", bulk=False)
    assert record.payload == {
        "sourcedId": "e1",
        "status": "active",
        "dateLastModified": "2024-05-01T12:00:00Z",
        "classSourcedId": "k-1",
        "schoolSourcedId": "s-1",
        "userSourcedId": "u-1",
        "role": "teacher",
        "primary": "false",
        "beginDate": "2024-08-15",
    }


def test_sessions_courses_orgs_and_demographics() -> None:
    [session] = shape(
        {"sourcedId": "t1", "title": "T1", "type": "term", "startDate": "2025-08-15",
         "endDate": "2026-01-10", "parent": ref("academicSession", "y26"), "schoolYear": 2026},
        E.ACADEMIC_SESSION, "1.1", bulk=True,
    )  # fmt: skip
    assert session.payload["parentSourcedId"] == "y26"
    assert session.payload["schoolYear"] == "2026"
    [course] = shape(
        {"sourcedId": "c", "title": "Alg", "org": ref("org", "s1"),
         "schoolYear": ref("academicSession", "y26")},
        E.COURSE, "1.1", bulk=True,
    )  # fmt: skip
    assert course.payload == {
        "sourcedId": "c",
        "schoolYearSourcedId": "y26",
        "title": "Alg",
        "orgSourcedId": "s1",
    }
    [org] = shape(
        {"sourcedId": "s1", "name": "S", "type": "school", "parent": ref("org", "d1"),
         "children": [ref("org", "x")]},
        E.ORG, "1.1", bulk=True,
    )  # fmt: skip
    assert org.payload == {
        "sourcedId": "s1",
        "name": "S",
        "type": "school",
        "parentSourcedId": "d1",
    }
    [demo] = shape(
        {"sourcedId": "u1", "birthDate": "2010-01-01", "sex": "female", "white": "true",
         "asian": False, "cityOfBirth": " "},
        E.DEMOGRAPHIC, "1.1", bulk=True,
    )  # fmt: skip
    assert demo.payload == {
        "sourcedId": "u1",
        "birthDate": "2010-01-01",
        "sex": "female",
        "asian": "false",
        "white": "true",
    }
