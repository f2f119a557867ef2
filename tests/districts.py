"""A small, complete district in OneRoster form (1.1 and 1.2), for end-to-end tests."""

from __future__ import annotations

Rows = list[dict[str, str]]

ORGS: Rows = [
    {"sourcedId": "d1", "name": "District One", "type": "district", "identifier": "3400001"},
    {"sourcedId": "s1", "name": "North High", "type": "school", "parentSourcedId": "d1"},
    {"sourcedId": "s2", "name": "South Elementary", "type": "school", "parentSourcedId": "d1"},
]
SESSIONS: Rows = [
    {"sourcedId": "y26", "title": "2025-26", "type": "schoolYear", "startDate": "2025-08-15",
     "endDate": "2026-06-20", "schoolYear": "2026"},
    {"sourcedId": "t1", "title": "Fall", "type": "term", "startDate": "2025-08-15",
     "endDate": "2026-01-10", "parentSourcedId": "y26", "schoolYear": "2026"},
    {"sourcedId": "t2", "title": "Spring", "type": "term", "startDate": "2026-01-10",
     "endDate": "2026-06-20", "parentSourcedId": "y26", "schoolYear": "2026"},
]  # fmt: skip
COURSES: Rows = [
    {"sourcedId": "c-alg", "title": "Algebra I", "courseCode": "MA101", "grades": "09,10",
     "orgSourcedId": "s1", "schoolYearSourcedId": "y26", "subjects": "Math"},
    {"sourcedId": "c-read", "title": "Reading", "orgSourcedId": "s2", "grades": "KG"},
]  # fmt: skip
CLASSES: Rows = [
    {"sourcedId": "k-alg1", "title": "Algebra I - P1", "courseSourcedId": "c-alg",
     "classType": "scheduled", "schoolSourcedId": "s1", "termSourcedIds": "t1,t2", "periods": "1"},
    {"sourcedId": "k-home", "title": "Homeroom K", "courseSourcedId": "c-read",
     "classType": "homeroom", "schoolSourcedId": "s2", "termSourcedIds": "y26"},
]  # fmt: skip
USERS_1_1: Rows = [
    {"sourcedId": "u-t1", "enabledUser": "true", "orgSourcedIds": "s1", "role": "teacher",
     "username": "tina", "givenName": "Tina", "familyName": "Teach", "email": "tina@d1.example"},
    {"sourcedId": "u-s1", "enabledUser": "true", "orgSourcedIds": "s1", "role": "student",
     "username": "sam", "givenName": "Sam", "familyName": "Study", "grades": "09",
     "agentSourcedIds": "u-p1", "identifier": "S001"},
    {"sourcedId": "u-s2", "enabledUser": "true", "orgSourcedIds": "s2", "role": "student",
     "username": "kim", "givenName": "Kim", "familyName": "Small", "grades": "KG"},
    {"sourcedId": "u-p1", "enabledUser": "true", "orgSourcedIds": "s1", "role": "parent",
     "username": "pat", "givenName": "Pat", "familyName": "Study", "agentSourcedIds": "u-s1"},
]  # fmt: skip
ENROLLMENTS: Rows = [
    {"sourcedId": "e1", "classSourcedId": "k-alg1", "schoolSourcedId": "s1", "userSourcedId": "u-t1",
     "role": "teacher", "primary": "true"},
    {"sourcedId": "e2", "classSourcedId": "k-alg1", "schoolSourcedId": "s1", "userSourcedId": "u-s1",
     "role": "student", "primary": "false", "beginDate": "2025-08-15"},
    {"sourcedId": "e3", "classSourcedId": "k-home", "schoolSourcedId": "s2", "userSourcedId": "u-s2",
     "role": "student"},
]  # fmt: skip
DEMOGRAPHICS: Rows = [
    {"sourcedId": "u-s1", "birthDate": "2010-04-01", "sex": "male", "white": "true"},
]


def bundle_1_1() -> dict[str, Rows]:
    return {
        "orgs": ORGS,
        "academicSessions": SESSIONS,
        "courses": COURSES,
        "classes": CLASSES,
        "users": USERS_1_1,
        "enrollments": ENROLLMENTS,
        "demographics": DEMOGRAPHICS,
    }


def _user_1_2(user: dict[str, str]) -> dict[str, str]:
    kept = {k: v for k, v in user.items() if k not in ("orgSourcedIds", "role")}
    return kept | {"userMasterIdentifier": f"M-{user['sourcedId']}"}


USERS_1_2: Rows = [_user_1_2(u) for u in USERS_1_1]
ROLES_1_2: Rows = [
    {"sourcedId": f"r-{u['sourcedId']}", "userSourcedId": u["sourcedId"], "roleType": "primary",
     "role": u["role"], "orgSourcedId": u["orgSourcedIds"]}
    for u in USERS_1_1
] + [
    {"sourcedId": "r-u-t1-s2", "userSourcedId": "u-t1", "roleType": "primary", "role": "counselor",
     "orgSourcedId": "s2", "userProfileSourcedId": "up-t1"},
]  # fmt: skip
USER_PROFILES_1_2: Rows = [
    {"sourcedId": "up-t1", "userSourcedId": "u-t1", "profileType": "lms", "vendorId": "acme",
     "credentialType": "login", "username": "tina.t"},
]  # fmt: skip


def bundle_1_2() -> dict[str, Rows]:
    return bundle_1_1() | {
        "users": USERS_1_2,
        "roles": ROLES_1_2,
        "userProfiles": USER_PROFILES_1_2,
    }
