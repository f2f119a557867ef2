"""A file's header against its specification: one function per rule, in the order reported."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from rostersync_libs.events import FileFacts
from rostersync_libs.finding_codes import Code
from rostersync_libs.findings import Finding
from rostersync_libs.oneroster.columns import FileSpec, spec_for

from rostersync_validator.file_finding import file_finding

METADATA_PREFIX = "metadata."

Rule = Callable[[FileFacts, FileSpec, list[str]], list[Finding]]


def duplicate_columns(facts: FileFacts, spec: FileSpec, header: list[str]) -> list[Finding]:
    return [
        file_finding(
            facts,
            Code.DUPLICATE_HEADER,
            f"column {name!r} appears {count} times; the first is read",
            name,
        )
        for name, count in Counter(header).items()
        if count > 1
    ]


def missing_or_miscased_columns(
    facts: FileFacts, spec: FileSpec, header: list[str]
) -> list[Finding]:
    """Each column of the specification the header lacks or writes in another case."""
    found = []
    by_lower = {h.lower(): h for h in header}
    for column in spec.columns:
        actual = by_lower.get(column.name.lower())
        if actual is None:
            code = Code.MISSING_HEADER if column.required else Code.MISSING_OPTIONAL_HEADER
            message = f"the header has no {column.name} column"
            found.append(file_finding(facts, code, message, column.name))
        elif actual != column.name:
            message = f"{actual!r} must be written {column.name!r}"
            found.append(file_finding(facts, Code.HEADER_CASE, message, actual))
    return found


def unknown_columns(facts: FileFacts, spec: FileSpec, header: list[str]) -> list[Finding]:
    known = {c.name.lower() for c in spec.columns}
    return [
        file_finding(
            facts,
            Code.UNKNOWN_COLUMN,
            f"{name!r} is not a OneRoster column (extensions are named metadata.*); it is not read",
            name,
        )
        for name in header
        if name.lower() not in known and not name.startswith(METADATA_PREFIX)
    ]


def scrambled_order(facts: FileFacts, spec: FileSpec, header: list[str]) -> list[Finding]:
    """The specification's columns the header has, not in the specification's order."""
    known = {c.name.lower() for c in spec.columns}
    defined = [h.lower() for h in header if h.lower() in known]
    expected = [c.name.lower() for c in spec.columns if c.name.lower() in set(defined)]
    if defined == expected:
        return []
    message = f"columns are not in the specification's order ({', '.join(spec.names)})"
    return [file_finding(facts, Code.SCRAMBLED_HEADER, message)]


def metadata_not_last(facts: FileFacts, spec: FileSpec, header: list[str]) -> list[Finding]:
    """The first defined column after a metadata column (one finding is enough)."""
    known = {c.name.lower() for c in spec.columns}
    seen_metadata = False
    for name in header:
        if name.startswith(METADATA_PREFIX):
            seen_metadata = True
        elif seen_metadata and name.lower() in known:
            message = f"metadata columns must come after the defined columns; {name!r} follows one"
            return [file_finding(facts, Code.METADATA_NOT_LAST, message, name)]
    return []


RULES: tuple[Rule, ...] = (
    duplicate_columns,
    missing_or_miscased_columns,
    unknown_columns,
    scrambled_order,
    metadata_not_last,
)


def header_findings(facts: FileFacts) -> list[Finding]:
    """Every fault of the file's header, rule by rule."""
    spec = spec_for(facts.oneroster_version, facts.entity, facts.header)
    header = [h.strip() for h in facts.header]
    return [finding for rule in RULES for finding in rule(facts, spec, header)]
