"""File-level checks: what the fetcher found about a file, judged against the specification."""

from __future__ import annotations

import re

from rostersync_libs.events import FileFacts
from rostersync_libs.finding_codes import Code
from rostersync_libs.findings import Finding, Severity

from rostersync_validator.file_finding import file_finding
from rostersync_validator.header import header_findings

MANIFEST = "manifest.csv"
MANIFEST_MODES = ("bulk", "delta", "absent")

# What one of the fetcher's limits cut from a file, as it states it in ``parse_error``:
# ``[code] line N: message`` (rostersync_libs/oneroster/cuts.py, ``Cut.fact``).
LIMIT_FACT = re.compile(r"^\[(?P<code>[a-z_]+)\](?: line (?P<line>\d+))?: (?P<message>.*)$", re.S)
LIMIT_CODES: dict[str, Code] = {
    code: code
    for code in (
        Code.LINE_TOO_LONG,
        Code.TOO_MANY_COLUMNS,
        Code.TOO_MANY_ROWS,
        Code.UNSAFE_FILE,
        Code.COLLECTION_FORBIDDEN,
    )
}


def _limit(facts: FileFacts) -> Finding | None:
    """The finding for a limit's cut, on the line it names (None: not a limit's fact)."""
    match = LIMIT_FACT.match(facts.parse_error or "")
    code = LIMIT_CODES.get(match["code"]) if match is not None else None
    if match is None or code is None:
        return None
    return Finding(
        code=code,
        severity=code.severity(facts.profile),
        message=match["message"],
        file=facts.file,
        row=int(match["line"]) if match["line"] else None,
    )


def _manifest_finding(facts: FileFacts, code: Code, message: str) -> Finding:
    """A finding on the file's line of manifest.csv (column ``value``, as written)."""
    return Finding(
        code=code,
        severity=code.severity(facts.profile),
        message=message,
        file=MANIFEST,
        row=facts.manifest_line,
        column="value",
        value=facts.manifest_value,
    )


def _manifest(facts: FileFacts) -> list[Finding]:
    """The file's manifest line: its value, and whether a file declared absent is referenced."""
    value = facts.manifest_value
    if value is None:
        return []  # not listed: see _presence
    prop = f"file.{facts.file.removesuffix('.csv')}"
    expected = ", ".join(MANIFEST_MODES)
    if not value:
        return [
            _manifest_finding(
                facts,
                Code.MANIFEST_INVALID_VALUE,
                f"{prop} has no value (expected one of {expected}); read as absent:"
                f" {facts.file} is not read",
            )
        ]
    if value.lower() not in MANIFEST_MODES:
        return [
            _manifest_finding(
                facts,
                Code.MANIFEST_INVALID_VALUE,
                f"{prop}={value!r} is not one of {expected}; read as absent:"
                f" {facts.file} is not read",
            )
        ]
    found = []
    if value not in MANIFEST_MODES:
        found.append(
            _manifest_finding(
                facts,
                Code.MANIFEST_VALUE_CASE,
                f"{prop}={value!r} must be written {value.lower()!r}; read as {value.lower()}",
            )
        )
    if value.lower() == "absent" and facts.referenced_by:
        referring = " and ".join(
            f"{file} ({', '.join(columns)})"
            for file, columns in sorted(facts.referenced_by.items())
        )
        verb = "references" if len(facts.referenced_by) == 1 else "reference"
        entity = facts.file.removesuffix(".csv")
        found.append(
            _manifest_finding(
                facts,
                Code.MANIFEST_ABSENT_REFERENCED,
                f"{prop}=absent, but {referring} {verb} {entity}: a bulk bundle must hold what"
                " it references (each reference is looked up in the tenant's records instead)",
            )
        )
    return found


def _invalid_manifest_value(facts: FileFacts) -> bool:
    return facts.manifest_value is not None and facts.manifest_value.lower() not in MANIFEST_MODES


def _presence(facts: FileFacts) -> list[Finding]:
    if facts.mode in ("bulk", "delta") and not facts.present:
        return [
            file_finding(
                facts,
                Code.MISSING_FILE,
                f"manifest.csv declares {facts.file} {facts.mode} but the bundle has no such file",
            )
        ]
    if facts.mode == "unlisted" and facts.present:
        return [
            file_finding(
                facts,
                Code.MANIFEST_UNLISTED_FILE,
                f"manifest.csv has no file.{facts.file[:-4]} entry; the file is not read",
            )
        ]
    if facts.mode == "absent" and facts.present and not _invalid_manifest_value(facts):
        return [
            file_finding(
                facts,
                Code.ABSENT_FILE_PRESENT,
                f"manifest.csv declares {facts.file} absent; the file is not read",
            )
        ]
    return []


def file_findings(facts: FileFacts) -> list[Finding]:
    """Every file-level fault of one file (and of its line in manifest.csv)."""
    found = _manifest(facts) + _presence(facts)
    if not facts.present or facts.mode not in ("bulk", "delta"):
        return found
    if facts.encoding_error:
        found.append(file_finding(facts, Code.ENCODING, facts.encoding_error))
    if facts.parse_error and (limit := _limit(facts)) is not None:
        found.append(limit)
        return found
    if facts.parse_error:
        found.append(
            file_finding(
                facts,
                Code.PARSE_ERROR,
                f"the CSV cannot be read {facts.parse_error}; later rows are not read",
            )
        )
        return found
    if not facts.has_rows:
        found.append(
            file_finding(
                facts,
                Code.EMPTY_FILE,
                "the file has no data rows (OneRoster does not permit empty files)",
            )
        )
    return found + header_findings(facts)


def rejects_rows(findings: list[Finding]) -> list[Finding]:
    """The file-level errors that make each row of the file unacceptable (strict profile)."""
    row_level = {
        Code.MISSING_HEADER,
        Code.PARSE_ERROR,
        Code.MISSING_FILE,
        Code.EMPTY_FILE,
        *LIMIT_CODES,
    }
    return [f for f in findings if f.severity is Severity.ERROR and f.code not in row_level]
