"""A small district as a OneRoster API serves it (JSON), for ``OneRosterServer(collections=…)``
(tools/oneroster_server) in the REST source's tests."""

from __future__ import annotations

from typing import Any


def ref(kind: str, sid: str) -> dict[str, str]:
    return {"href": f"https://sis.example/{kind}s/{sid}", "sourcedId": sid, "type": kind}


def district_1_1(modified: str = "2025-01-01T00:00:00.000Z") -> dict[str, list[dict[str, Any]]]:
    """A small clean 1.1 district, as a OneRoster API serves it."""
    head = {"status": "active", "dateLastModified": modified}
    return {
        "orgs": [
            {**head, "sourcedId": "d1", "name": "District", "type": "district"},
            {**head, "sourcedId": "s1", "name": "School", "type": "school", "parent": ref("org", "d1")},
        ],
        "academicSessions": [
            {**head, "sourcedId": "y26", "title": "2025-26", "type": "schoolYear",
             "startDate": "2025-08-01", "endDate": "2026-07-01", "schoolYear": "2026"},
            {**head, "sourcedId": "t1", "title": "Fall", "type": "term", "startDate": "2025-08-15",
             "endDate": "2026-01-10", "schoolYear": "2026", "parent": ref("academicSession", "y26")},
        ],
        "courses": [
            {**head, "sourcedId": "c-alg", "title": "Algebra", "org": ref("org", "s1"),
             "schoolYear": ref("academicSession", "y26"), "grades": ["09"]},
        ],
        "classes": [
            {**head, "sourcedId": "k-alg1", "title": "Algebra 1", "classType": "scheduled",
             "course": ref("course", "c-alg"), "school": ref("org", "s1"),
             "terms": [ref("academicSession", "t1")]},
        ],
        "users": [
            {**head, "sourcedId": "u-t1", "enabledUser": True, "role": "teacher",
             "username": "teach", "givenName": "Tea", "familyName": "Cher",
             "orgs": [ref("org", "s1")], "password": "secret!"},
            {**head, "sourcedId": "u-s1", "enabledUser": "true", "role": "student",
             "username": "stud", "givenName": "Stu", "familyName": "Dent",
             "orgs": [ref("org", "s1")], "grades": ["09"]},
        ],
        "enrollments": [
            {**head, "sourcedId": "e1", "class": ref("class", "k-alg1"), "school": ref("org", "s1"),
             "user": ref("user", "u-t1"), "role": "teacher", "primary": "true"},
            {**head, "sourcedId": "e2", "class": ref("class", "k-alg1"), "school": ref("org", "s1"),
             "user": ref("user", "u-s1"), "role": "student", "primary": "false"},
        ],
        "demographics": [
            {**head, "sourcedId": "u-s1", "birthDate": "2010-03-04", "sex": "female"},
        ],
    }  # fmt: skip
