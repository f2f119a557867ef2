"""OneRoster query parameters: ``filter``, ``sort``/``orderBy``, ``fields``, ``limit``/``offset``.

Filter grammar (1.1/1.2 spec): ``field<op>'value'`` with ``= != > >= < <= ~`` joined by ``AND``
/ ``OR`` (AND binds tighter; mixing is allowed here though 1.1 forbids it). Values are quoted
with ``'`` (or ``"``); a doubled quote inside stands for one. Comparison is on strings (ISO
dates compare right as strings); ``~`` is a case-insensitive "contains". A list field (grades,
orgs…) matches when any item does; a dotted field (``org.sourcedId``, ``orgs.sourcedId``) looks
inside GUIDRefs. A field the object does not have compares as ``""``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from rostersync_oneroster_server.json_shapes import JSON

OPERATORS = ("!=", ">=", "<=", "=", ">", "<", "~")
_FIELD = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_.]*)\s*")
_JOIN = re.compile(r"\s+(AND|OR)\s+", re.IGNORECASE)


class QueryError(ValueError):
    """A bad query parameter; ``code_minor`` is the OneRoster imsx codeMinor to answer with."""

    def __init__(self, code_minor: str, description: str) -> None:
        super().__init__(description)
        self.code_minor = code_minor
        self.description = description


@dataclass(frozen=True)
class Clause:
    field: str
    op: str
    value: str

    def matches(self, obj: JSON) -> bool:
        return any(_compare(actual, self.op, self.value) for actual in values_at(obj, self.field))


# A filter in disjunctive normal form: OR of ANDs of clauses.
Filter = list[list[Clause]]


def parse_filter(text: str, known: Iterable[str]) -> Filter:
    """Parse a filter expression; unknown fields and bad syntax raise ``QueryError``."""
    known_fields = frozenset(known)
    groups: Filter = [[]]
    pos = 0
    text = text.strip()
    if not text:
        raise QueryError("invalid_filter_field", "empty filter")
    while True:
        clause, pos = _clause(text, pos, known_fields)
        groups[-1].append(clause)
        if pos >= len(text):
            return groups
        join = _JOIN.match(text, pos)
        if join is None:
            raise QueryError("invalid_filter_field", f"expected AND or OR at {text[pos:]!r}")
        if join.group(1).upper() == "OR":
            groups.append([])
        pos = join.end()


def _clause(text: str, pos: int, known: frozenset[str]) -> tuple[Clause, int]:
    match = _FIELD.match(text, pos)
    if match is None:
        raise QueryError("invalid_filter_field", f"expected a field name at {text[pos:]!r}")
    field = match.group(1)
    if field.split(".", 1)[0] not in known:
        raise QueryError("invalid_filter_field", f"unknown filter field {field!r}")
    pos = match.end()
    op = next((o for o in OPERATORS if text.startswith(o, pos)), None)
    if op is None:
        raise QueryError("invalid_filter_field", f"expected an operator after {field!r}")
    pos += len(op)
    while pos < len(text) and text[pos] == " ":
        pos += 1
    if pos >= len(text) or text[pos] not in "'\"":
        raise QueryError("invalid_filter_field", f"the value for {field!r} must be quoted")
    quote, pos = text[pos], pos + 1
    value: list[str] = []
    while True:
        end = text.find(quote, pos)
        if end < 0:
            raise QueryError("invalid_filter_field", f"unterminated value for {field!r}")
        value.append(text[pos:end])
        if text.startswith(quote * 2, end):  # a doubled quote stands for one
            value.append(quote)
            pos = end + 2
            continue
        pos = end + 1
        break
    while pos < len(text) and text[pos] == " " and _JOIN.match(text, pos) is None:
        pos += 1
    return Clause(field, op, "".join(value)), pos


def matches(flt: Filter, obj: JSON) -> bool:
    return any(all(c.matches(obj) for c in group) for group in flt)


def values_at(obj: Any, path: str) -> list[str]:
    """The string values at a dotted path; lists fan out; missing → ``[""]``."""
    current: list[Any] = [obj]
    for part in path.split("."):
        nxt: list[Any] = []
        for item in current:
            value = item.get(part) if isinstance(item, dict) else None
            if isinstance(value, list):
                nxt.extend(value)
            elif value is not None:
                nxt.append(value)
        current = nxt
    strings = [v if isinstance(v, str) else str(v) for v in current if not isinstance(v, dict)]
    return strings or [""]


def _compare(actual: str, op: str, expected: str) -> bool:
    compare: dict[str, Callable[[str, str], bool]] = {
        "=": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        "~": lambda a, b: b.lower() in a.lower(),
    }
    return compare[op](actual, expected)


def sort_objects(objs: list[JSON], field: str, order_by: str, known: Iterable[str]) -> list[JSON]:
    """Sort by a field (then sourcedId, so the order is stable)."""
    if field.split(".", 1)[0] not in frozenset(known):
        raise QueryError("invalid_sort_field", f"unknown sort field {field!r}")
    if order_by not in ("asc", "desc"):
        raise QueryError("invaliddata", f"orderBy must be asc or desc, not {order_by!r}")
    return sorted(
        objs,
        key=lambda o: (values_at(o, field)[0], o["sourcedId"]),
        reverse=order_by == "desc",
    )


def parse_fields(text: str, known: Iterable[str]) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    known_fields = frozenset(known)
    unknown = [n for n in names if n not in known_fields]
    if unknown or not names:
        raise QueryError("invalid_selection_field", f"unknown fields: {', '.join(unknown)}")
    return names


def select_fields(obj: JSON, names: list[str]) -> JSON:
    return {n: obj[n] for n in names if n in obj}


def parse_paging(
    limit: str | None, offset: str | None, default: int, maximum: int
) -> tuple[int, int]:
    """``(limit, offset)``; a limit above the maximum is lowered to it."""
    try:
        lim = default if limit in (None, "") else int(limit)
        off = 0 if offset in (None, "") else int(offset)
    except ValueError as exc:
        raise QueryError("invaliddata", "limit and offset must be integers") from exc
    if lim < 1 or off < 0:
        raise QueryError("invaliddata", "limit must be ≥ 1 and offset ≥ 0")
    return min(lim, maximum), off


def page_offsets(total: int, limit: int, offset: int) -> dict[str, int]:
    """The offsets of the first/prev/next/last pages (RFC 8288 relations) for this page."""
    links = {"first": 0, "last": max(0, (total - 1) // limit * limit)}
    if offset > 0:
        links["prev"] = max(0, offset - limit)
    if offset + limit < total:
        links["next"] = offset + limit
    return links
