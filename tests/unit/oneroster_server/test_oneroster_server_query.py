"""The OneRoster server's query parameters: filter parser, sort, fields, paging."""

from __future__ import annotations

import pytest
from rostersync_oneroster_server.query import (
    Clause,
    QueryError,
    matches,
    page_offsets,
    parse_fields,
    parse_filter,
    parse_paging,
    select_fields,
    sort_objects,
)

KNOWN = {"sourcedId", "status", "dateLastModified", "role", "givenName", "email", "grades", "orgs"}
USER = {
    "sourcedId": "u1",
    "status": "active",
    "dateLastModified": "2024-05-01T12:00:00.000Z",
    "role": "teacher",
    "givenName": "Jane",
    "email": "Jane.Doe@example.org",
    "grades": ["09", "10"],
    "orgs": [{"href": "h", "sourcedId": "sch-1", "type": "org"}],
}


def test_simple_clause() -> None:
    assert parse_filter("status='active'", KNOWN) == [[Clause("status", "=", "active")]]


@pytest.mark.parametrize("op", ["=", "!=", ">", ">=", "<", "<=", "~"])
def test_every_operator_parses(op: str) -> None:
    assert parse_filter(f"givenName{op}'x'", KNOWN)[0][0].op == op


def test_and_binds_tighter_than_or() -> None:
    parsed = parse_filter("role='teacher' AND status='active' OR email~'x'", KNOWN)
    assert [[c.field for c in group] for group in parsed] == [["role", "status"], ["email"]]


def test_spaces_around_operator_and_lowercase_join_and_doubled_quote() -> None:
    parsed = parse_filter("givenName = 'O''Hara' and email='a'", KNOWN)
    assert parsed == [[Clause("givenName", "=", "O'Hara"), Clause("email", "=", "a")]]


def test_matching() -> None:
    def check(text: str) -> bool:
        return matches(parse_filter(text, KNOWN), USER)

    assert check("dateLastModified>'2024-01-01T00:00:00Z'")
    assert not check("dateLastModified>'2024-06-01'")
    assert check("role='teacher' AND status='active'")
    assert not check("role='student' AND status='active'")
    assert check("role='student' OR email~'jane.doe'")  # ~ is a case-insensitive contains
    assert check("grades='10'")  # a list matches when any item does
    assert check("orgs.sourcedId='sch-1'")  # dotted paths look inside GUIDRefs
    assert check("role!='student'")
    assert check("givenName<='Jane' AND givenName>='Jane'")
    assert not check("email='missing@x'")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("nope='x'", "unknown filter field"),
        ("role=teacher", "must be quoted"),
        ("role='teacher", "unterminated"),
        ("role=='teacher'", "must be quoted"),
        ("role 'teacher'", "operator"),
        ("role='a' XOR status='b'", "AND or OR"),
        ("", "empty"),
    ],
)
def test_bad_filters(text: str, fragment: str) -> None:
    with pytest.raises(QueryError) as caught:
        parse_filter(text, KNOWN)
    assert caught.value.code_minor == "invalid_filter_field"
    assert fragment in caught.value.description


def test_sort_is_stable_and_checks_fields() -> None:
    objs = [
        {"sourcedId": "b", "givenName": "Ann"},
        {"sourcedId": "a", "givenName": "Ann"},
        {"sourcedId": "c", "givenName": "Bob"},
    ]
    assert [o["sourcedId"] for o in sort_objects(objs, "givenName", "asc", KNOWN)] == [
        "a",
        "b",
        "c",
    ]
    assert [o["sourcedId"] for o in sort_objects(objs, "givenName", "desc", KNOWN)] == [
        "c",
        "b",
        "a",
    ]
    with pytest.raises(QueryError):
        sort_objects(objs, "shoeSize", "asc", KNOWN)
    with pytest.raises(QueryError):
        sort_objects(objs, "givenName", "up", KNOWN)


def test_fields() -> None:
    names = parse_fields("sourcedId, givenName", KNOWN)
    assert select_fields(USER, names) == {"sourcedId": "u1", "givenName": "Jane"}
    with pytest.raises(QueryError) as caught:
        parse_fields("sourcedId,shoeSize", KNOWN)
    assert caught.value.code_minor == "invalid_selection_field"


def test_paging() -> None:
    assert parse_paging(None, None, 100, 10000) == (100, 0)
    assert parse_paging("20000", "5", 100, 10000) == (10000, 5)
    for limit, offset in (("0", "0"), ("x", "0"), ("5", "-1")):
        with pytest.raises(QueryError):
            parse_paging(limit, offset, 100, 10000)
    assert page_offsets(20, 7, 0) == {"first": 0, "last": 14, "next": 7}
    assert page_offsets(20, 7, 7) == {"first": 0, "last": 14, "prev": 0, "next": 14}
    assert page_offsets(20, 7, 14) == {"first": 0, "last": 14, "prev": 7}
    assert page_offsets(0, 7, 0) == {"first": 0, "last": 0}
