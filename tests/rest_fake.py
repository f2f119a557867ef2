"""A tiny in-process OneRoster REST server (httpx.MockTransport) for the REST source's tests."""

from __future__ import annotations

import re
from typing import Any

import httpx

FILTER = re.compile(r"^dateLastModified>'([^']+)'$")


def ref(kind: str, sid: str) -> dict[str, str]:
    return {"href": f"https://sis.example/{kind}s/{sid}", "sourcedId": sid, "type": kind}


class FakeOneRoster:
    """Collections of JSON objects, paged with limit/offset and filterable by dateLastModified.

    ``fail`` maps a collection to the HTTP status it answers (a broken endpoint).
    """

    def __init__(self, data: dict[str, list[dict[str, Any]]], *, max_page: int = 1000) -> None:
        self.data = data
        self.max_page = max_page
        self.fail: dict[str, int] = {}
        self.requests: list[httpx.Request] = []

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        collection = request.url.path.rsplit("/", 1)[-1]
        if collection in self.fail:
            return httpx.Response(self.fail[collection], json={"imsx_codeMajor": "failure"})
        items = list(self.data.get(collection, []))
        raw_filter = request.url.params.get("filter")
        if raw_filter:
            match = FILTER.match(raw_filter)
            if not match:
                return httpx.Response(400, json={"imsx_description": "invalid_filter_field"})
            items = [i for i in items if i.get("dateLastModified", "") > match.group(1)]
        limit = min(int(request.url.params.get("limit", "100")), self.max_page)
        offset = int(request.url.params.get("offset", "0"))
        page = items[offset : offset + limit]
        return httpx.Response(
            200, json={collection: page}, headers={"X-Total-Count": str(len(items))}
        )

    def filters(self, collection: str) -> list[str | None]:
        return [
            r.url.params.get("filter") for r in self.requests if r.url.path.endswith(collection)
        ]


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
